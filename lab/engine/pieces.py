"""Elementwise work over a model's flat buffers, one cache-sized piece at a time.

An optimizer's step is a chain of elementwise operations over arrays as large as all the
parameters together (the parameters, the gradient, one or two moments).  Done whole array by
whole array, as numpy does ``m * b1 + (1 - b1) * g``, every operation reads and writes arrays far
larger than the caches and allocates a temporary as large as the parameters.  Done a piece at a
time, the whole chain runs on a few thousand entries that stay in the core's cache, the only
temporary is one piece-sized scratch array per thread, allocated once, and a large buffer's
pieces are shared out between threads (numpy releases the GIL inside its loops), which is what
PyTorch's elementwise kernels do with their OpenMP threads.

``for_pieces(fn, start, stop, dtype)`` calls ``fn(where, scratch)`` for consecutive slices of
``range(start, stop)``, with ``scratch`` a 1-D array of the slice's length, and returns the
results in order, so that a sum over them is the same whichever thread computed which piece.
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PIECE_BYTES = 1 << 18  # 256 KiB of each array per piece: the arrays of a step's piece stay in cache
THREADS_FROM = 1 << 23  # bytes: below this a buffer is done on the calling thread alone
MAX_THREADS = 4  # elementwise work is bound by memory bandwidth: more threads stop helping

_local = threading.local()
_pool: tuple[int, ThreadPoolExecutor | None] = (-1, None)  # (the process it was made in, the pool)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


THREADS = max(1, min(MAX_THREADS, _usable_cpus()))


def _executor() -> ThreadPoolExecutor:
    # A pool made before a fork would wait forever in the child for threads that did not come with it
    # (sweeps run cells in forked worker processes): each process makes its own.
    global _pool
    if _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=THREADS - 1, thread_name_prefix="lab-pieces"))
    return _pool[1]


def piece_size(dtype) -> int:
    """Entries of ``dtype`` in a piece."""
    return PIECE_BYTES // np.dtype(dtype).itemsize


def scratch(n: int, dtype) -> np.ndarray:
    """A 1-D array of ``n`` entries (n <= piece_size(dtype)) owned by the calling thread; its content is anything."""
    key = np.dtype(dtype)
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get(key)
    if buf is None or buf.size < n:
        buf = bufs[key] = np.empty(max(n, piece_size(key)), dtype=key)
    return buf[:n]


def _run(fn, bounds, dtype) -> list:
    out = []
    for lo, hi in bounds:
        out.append(fn(slice(lo, hi), scratch(hi - lo, dtype)))
    return out


def for_pieces(fn, start: int, stop: int, dtype) -> list:
    """[fn(slice, scratch) for each piece of range(start, stop)], in order; on several threads for a large range."""
    size = piece_size(dtype)
    bounds = [(lo, min(stop, lo + size)) for lo in range(start, stop, size)]
    threads = THREADS if (stop - start) * np.dtype(dtype).itemsize >= THREADS_FROM else 1
    if threads == 1:
        return _run(fn, bounds, dtype)
    per = math.ceil(len(bounds) / threads)
    parts = [bounds[i : i + per] for i in range(0, len(bounds), per)]
    futures = [_executor().submit(_run, fn, part, dtype) for part in parts[1:]]
    out = _run(fn, parts[0], dtype)  # the calling thread does the first part meanwhile
    for f in futures:
        out += f.result()
    return out


def all_finite(a: np.ndarray) -> bool:
    """Whether no entry of ``a`` is inf or NaN: each piece's float64 sum is finite (a NaN or an inf
    carries through a sum; finite float32 entries cannot overflow a float64 sum of a piece)."""
    sums = for_pieces(lambda where, s: float(np.add.reduce(a[where], dtype=np.float64)), 0, a.size, a.dtype)
    return all(math.isfinite(v) for v in sums)


def sum_squares(a: np.ndarray) -> float:
    """The sum of the squares of a piece, in float64 arithmetic, never overflowing before float64 does:
    float32 entries are widened a piece at a time (a float32 sum of squares overflows above 1.8e19)."""
    if a.dtype == np.float64:
        return float(np.dot(a, a))
    wide = scratch(a.size, np.float64)  # grows once to the piece of a float32 buffer
    np.copyto(wide, a)
    return float(np.dot(wide, wide))


def norm(a: np.ndarray, start: int = 0, stop: int | None = None, fill=None) -> float:
    """Euclidean norm of ``a[start:stop]``, or, with ``fill(where, out)``, of what fill writes into ``out``
    for each piece ``where`` (a value computed a piece at a time, never held whole).

    Past float64's range (entries above about 1e154) the pieces' squares are summed after scaling
    by their largest entry, as LAPACK's nrm2 does, so the norm itself is finite up to 1.8e308."""
    stop = a.size if stop is None else stop

    def piece(where, out):
        if fill is None:
            out = a[where]
        else:
            fill(where, out)
        sq = sum_squares(out)
        if math.isfinite(sq):
            return sq, 1.0
        top = float(np.max(np.abs(out)))
        if not math.isfinite(top) or top == 0.0:
            return top, 1.0
        return sum_squares(out / top), top  # rare: a temporary the size of one piece

    total, scale = 0.0, 1.0  # norm = scale * sqrt(total)
    for sq, s in for_pieces(piece, start, stop, a.dtype):
        if not math.isfinite(sq):
            return sq if math.isnan(sq) else math.inf
        if s > scale:
            total, scale = total * (scale / s) ** 2 + sq, s
        else:
            total += sq * (s / scale) ** 2
    return scale * math.sqrt(total)  # inf when finite pieces' squares overflow in their sum (a norm past 1e154)
