"""The process a run lives in: BLAS on one thread for the small matrix products of narrow networks,
their record passes on the core that leaves free (and the one thread those passes run on), and the C
heap under numpy's arrays.

The heap: glibc serves a block above its mmap threshold with an mmap of its own and unmaps it when freed; the
engine raises that threshold once a process (``keep_freed_arrays_in_the_heap``) so that a training step's
freed arrays are reused by the next step.  The price is that memory a run frees stays in the process, in
glibc's arenas (one per thread that allocated, up to 8 per core), until something trims them: in a
Streamlit server, where every page rerun is a new thread, ten runs of depth 100 x width 512 whose live
data was 0.55 GB left 1.7-1.8 GB resident with nothing trimming, and 0.7 GB with a trim after each run
(benchmarks/bench_server_memory.py).  ``return_free_memory`` is that trim; ``Trainer.close`` calls it
once a run's model is let go, and the app when a session lets go of runs or its browser leaves.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

import numpy as np

from . import pieces

# Below this width a matrix product is too small to split across cores: OpenBLAS's threads
# cost more than they save, and when another process shares the cores they spin and a run
# gets 10-15 times slower (measured: 20 s instead of 1.4 s for the Train page's default run).
SINGLE_THREAD_BELOW_WIDTH = 512

_found: tuple[int, ThreadpoolController | None] = (-1, None)  # (len(sys.modules) then, the libraries found)


def _controller() -> ThreadpoolController:
    # Finding the loaded BLAS libraries costs about 1 ms, limiting them about 7 us (measured), and a
    # Trainer advanced one step at a time enters this context per step: look again only after an
    # import, since a BLAS library comes with one (numpy's, scipy's, torch's).
    from threadpoolctl import ThreadpoolController  # imported by the first run, not by lab.serving.cost

    global _found
    if _found[0] != len(sys.modules):
        _found = (len(sys.modules), ThreadpoolController())
    return _found[1]


def blas_threads(width: int):
    """A context that keeps BLAS on one thread for the small matrices of narrow networks."""
    if width < SINGLE_THREAD_BELOW_WIDTH:
        return _controller().limit(limits=1, user_api="blas")
    return contextlib.nullcontext()


# The record pass of a narrow network runs beside its training, in a thread of its own, on a copy of the
# weights at the record point, so the numbers are those of a pass in line (lab.engine.training).
BACKGROUND_PROBE_MAX_PARAMS = 1 << 22  # the copy (weights and gradients) is the overlap's price in memory


def probe_in_background(config, n_params: int) -> bool:
    """Whether a run's record passes overlap its training: instrumented, BLAS on one thread (a narrow
    network), a second core to run on, and a model small enough to copy."""
    return (config.instrument and config.width < SINGLE_THREAD_BELOW_WIDTH and pieces.THREADS >= 2
            and n_params <= BACKGROUND_PROBE_MAX_PARAMS)

_probe_pool: tuple[int, ThreadPoolExecutor | None] = (-1, None)  # (the process it was made in, the pool)


def probe_executor() -> ThreadPoolExecutor:
    """The one thread that runs the background record passes (``probe_in_background``)."""
    # one per process: a pool made before a fork has no thread in the child (sweeps fork their workers)
    global _probe_pool
    if _probe_pool[0] != os.getpid():
        _probe_pool = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-probe"))
    return _probe_pool[1]


# The C heap

HEAP_BLOCK_BYTES = 16 * 2**20  # below glibc's largest dynamic mmap threshold, 32 MiB on 64 bits (a larger block changes nothing)
TRIM_SWITCH = "BACKPROP_LAB_HEAP_TRIM"  # "0": never trim (how benchmarks/bench_server_memory.py measures a heap left alone)

_kept = False  # done once a process
_trim = None  # glibc's malloc_trim, once found (False: there is none)


def keep_freed_arrays_in_the_heap() -> None:
    """Let the C heap hand a training step's freed arrays to the next step.

    glibc serves a block above its mmap threshold (128 KiB when a process starts) with a fresh mmap
    and unmaps it when freed, so the probe and validation passes of a narrow network page-fault their
    arrays (512 x 64 float64 is 256 KiB) anew at every record.  Freeing one mmapped block raises the
    threshold to that block's size and the heap's trim threshold to twice it; numpy's allocations come
    from malloc, so one large empty array, freed at once, is enough.  On case (a) of the engine
    benchmark this takes 12-16% off the training time (an unused 16 MiB: no page is touched); with
    another C library it is an allocation and nothing more.
    """
    global _kept
    if not _kept:
        _kept = True
        np.empty(HEAP_BLOCK_BYTES // 8)


def return_free_memory() -> bool:
    """Hand the heap's free pages back to the operating system: glibc's ``malloc_trim(0)``, over every arena
    (measured: 0.5 ms when there is nothing to return, 30 ms for 400 MB).  Returns whether it ran: False
    without glibc, or with BACKPROP_LAB_HEAP_TRIM=0."""
    global _trim
    if os.environ.get(TRIM_SWITCH) == "0":
        return False
    if _trim is None:
        try:  # the symbols the process has loaded: the C library's, without a search (find_library runs ldconfig)
            _trim = ctypes.CDLL(None).malloc_trim
            _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):
            _trim = False
    if not _trim:
        return False
    _trim(0)
    return True
