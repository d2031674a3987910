#!/usr/bin/env python
"""Speed of the Backprop Lab engine: a training step, a whole run, beside matmul and PyTorch.

    python benchmarks/bench_engine.py              # everything, about 2-3 minutes on 2 idle cores
    python benchmarks/bench_engine.py --quick      # fewer repeats, a 20-epoch whole run
    python benchmarks/bench_engine.py --dtype float32
    python benchmarks/bench_engine.py --wait-idle 60   # on a shared machine

Prints figures and the issue's targets beside them; it never fails on a time.  The one
thing it does check is that float32 stays float32 through a training step: if it does
not, it says so and exits with status 1 after printing everything else.

A *training step* is what ``lab.train`` does per mini-batch: forward and backward
of the mean cross-entropy (``model.loss_and_grads``) and one optimizer step on the flat
parameter buffer, on one fixed batch (so no batch slicing is timed), with BLAS on the
thread count the engine's ``train`` sets for that width.  Times are the median over
several repeats of blocks of steps, after warm-up steps, by ``time.perf_counter``.  For
each figure numpy and PyTorch are timed one right after the other (never at the same
time, each after its own warm-up), so slow drifts of a shared machine's speed hit both.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import glob
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lab import train  # noqa: E402
from lab.engine import threads as engine_policy  # noqa: E402
from lab.engine.config import RunConfig  # noqa: E402
from lab.engine.model import build_mlp  # noqa: E402
from lab.engine.optim import OPTIMIZERS  # noqa: E402

DTYPES = ("float64", "float32")
LR = 1e-3
SEED = 0
INSTRUMENT_TARGET = 1.2
BUSY = 0.10  # other processes' CPU share above which a figure is flagged as unreliable


@dataclass(frozen=True)
class Case:
    key: str
    depth: int  # hidden layers
    width: int
    batch: int
    n_inputs: int
    n_classes: int
    vs_torch: str  # "faster" or "no slower"
    matmul_share: float | None  # least fraction of the 1024 matmul GFLOP/s, or None

    @property
    def shapes(self) -> list[tuple[int, int]]:
        sizes = [self.n_inputs] + [self.width] * self.depth + [self.n_classes]
        return list(zip(sizes[:-1], sizes[1:]))

    @property
    def flops(self) -> int:
        """Matmul FLOP per step: 2 forward + 2 (dW) + 2 (dx) per weight multiply-add and
        example, less the dx of layer 1 (its input is data; engine and torch both skip it)."""
        shapes = self.shapes
        macs = sum(fi * fo for fi, fo in shapes)
        return (6 * macs - 2 * shapes[0][0] * shapes[0][1]) * self.batch

    @property
    def label(self) -> str:
        return (f"({self.key}) depth {self.depth}, width {self.width}, batch {self.batch}, "
                f"{self.n_inputs} in, {self.n_classes} out")


CASES = {
    "a": Case("a", 10, 64, 128, 2, 2, "faster", None),
    "b": Case("b", 50, 128, 256, 2, 2, "no slower", None),
    "c": Case("c", 6, 1024, 512, 784, 10, "no slower", 0.85),
}


@dataclass(frozen=True)
class Settings:
    warmup: int  # at least this many warm-up calls ...
    warmup_s: float  # ... and at least this long
    repeats: int
    min_block_s: float
    run_epochs: int
    run_repeats: int
    idle_wait_s: float = 0.0  # before each measurement, wait up to this long for an idle machine


FULL = Settings(warmup=3, warmup_s=0.3, repeats=5, min_block_s=0.2, run_epochs=200, run_repeats=3)
QUICK = Settings(warmup=2, warmup_s=0.1, repeats=3, min_block_s=0.05, run_epochs=20, run_repeats=3)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------- machine load

class OtherLoad:
    """Share of the machine's CPU time that other processes used between start() and stop()
    (from /proc/stat less this process's own CPU time); None where /proc/stat is missing."""

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.ncpu = os.cpu_count() or 1
        self.start()

    @staticmethod
    def _busy_ticks():
        try:
            with open("/proc/stat") as fh:
                f = [int(v) for v in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal (guest is inside user)
        return f[0] + f[1] + f[2] + sum(f[5:8])

    @staticmethod
    def _own_cpu():
        t = os.times()
        return t.user + t.system

    def start(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), self._busy_ticks(), self._own_cpu()

    def stop(self) -> float | None:
        wall = time.perf_counter() - self.t0
        busy = self._busy_ticks()
        if busy is None or self.busy0 is None or wall <= 0:
            return None
        others = (busy - self.busy0) / self.tick - (self._own_cpu() - self.own0)
        return min(1.0, max(0.0, others / (wall * self.ncpu)))


WAITED = [0.0]  # seconds spent in wait_for_idle


def wait_for_idle(max_wait_s: float, quiet: float = 0.05, window_s: float = 0.3) -> float | None:
    """Sleep until other processes use less than ``quiet`` of the CPUs over a window, or
    until max_wait_s has passed; returns the last window's share."""
    start = time.perf_counter()
    deadline = start + max_wait_s
    load = OtherLoad()
    said = False
    while True:
        time.sleep(window_s)
        share = load.stop()
        if share is None or share < quiet or time.perf_counter() >= deadline:
            WAITED[0] += time.perf_counter() - start
            return share
        if not said:
            log(f"    waiting for other processes to leave the CPUs ({100 * share:.0f}% busy)")
            said = True
        load.start()


# ---------------------------------------------------------------------------- timing

@dataclass
class Timing:
    median: float  # seconds per call
    low: float
    high: float
    per_block: int
    repeats: int
    others: float | None  # other processes' share of the CPUs while timing

    @property
    def spread(self) -> float:
        return (self.high - self.low) / self.median if self.median > 0 else 0.0


def time_calls(fn, settings: Settings, attempts: int = 3) -> Timing:
    """Seconds per call of fn: warm-up calls (settings.warmup, and for settings.warmup_s at
    least), then the median of repeats of blocks of calls, each block long enough
    (settings.min_block_s) for the timer's resolution not to matter.  When other processes
    took more than BUSY of the CPUs meanwhile, measure again (up to ``attempts`` in all)
    and keep the quietest attempt."""
    best = None
    for _ in range(attempts):
        if settings.idle_wait_s > 0:
            wait_for_idle(settings.idle_wait_s)
        start = time.perf_counter()
        n = 0
        while n < settings.warmup or time.perf_counter() - start < settings.warmup_s:
            fn()
            n += 1
        est = (time.perf_counter() - start) / n
        k = max(1, math.ceil(settings.min_block_s / est)) if est > 0 else 100
        samples = []
        load = OtherLoad()
        for _ in range(settings.repeats):
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples.append((time.perf_counter() - t0) / k)
        t = Timing(statistics.median(samples), min(samples), max(samples), k, settings.repeats, load.stop())
        if best is None or (t.others or 0.0) < (best.others or 0.0):
            best = t
        if best.others is None or best.others <= BUSY:
            break
        log(f"    other processes took {100 * t.others:.0f}% of the CPUs: measuring again")
    return best


# ---------------------------------------------------------------------- environment

def numpy_blas() -> tuple[int | None, str]:
    """(threads, description) of the BLAS numpy calls, as set now; threads None when unknown."""
    try:
        from threadpoolctl import threadpool_info  # optional here (the engine needs it)

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                desc = f"{info.get('internal_api')} {info.get('version')} {info.get('architecture') or ''}"
                return info.get("num_threads"), desc.strip()
    except ImportError:
        pass
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle
        except OSError:
            continue
        threads, desc = None, "OpenBLAS"
        for sym in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, sym):
                fn = getattr(lib, sym)
                fn.restype = ctypes.c_int
                threads = fn()
                break
        for sym in ("scipy_openblas_get_config64_", "openblas_get_config64_", "openblas_get_config"):
            if hasattr(lib, sym):
                fn = getattr(lib, sym)
                fn.restype = ctypes.c_char_p
                desc = fn().decode(errors="replace")
                break
        return threads, desc
    return None, "unknown BLAS (install threadpoolctl to see it)"


def engine_threads(width: int):
    """The BLAS thread context lab.train runs a network of this width in."""
    return engine_policy.blas_threads(width)


def blas_limit(n: int | None):
    """A context with BLAS on n threads (None: unchanged); needs threadpoolctl."""
    if n is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---------------------------------------------------------------------------- numpy

def matmul_timing(dtype: str, settings: Settings) -> Timing:
    rng = np.random.default_rng(SEED)
    A = rng.standard_normal((1024, 1024)).astype(dtype)
    B = rng.standard_normal((1024, 1024)).astype(dtype)
    out = np.empty((1024, 1024), dtype=dtype)
    return time_calls(lambda: np.matmul(A, B, out=out), settings)


def case_batch(case: Case, dtype: str):
    rng = np.random.default_rng(SEED + 1)
    X = rng.standard_normal((case.batch, case.n_inputs)).astype(dtype)
    y = rng.integers(0, case.n_classes, size=case.batch)
    return X, y


def numpy_model(case: Case, dtype: str):
    config = RunConfig(
        dataset="random", input_dim=case.n_inputs, classes=case.n_classes, depth=case.depth,
        width=case.width, batch_size=case.batch, activation="relu", init="he_normal",
        loss="cross_entropy", optimizer="sgd", lr=LR, dtype=dtype,
    ).validate()
    return build_mlp(config, case.n_inputs, case.n_classes, np.random.default_rng(SEED))


def numpy_step_fn(model, optimizer, X, y):
    params, grads = [model.flat_params], [model.flat_grads]

    def step():
        loss = model.loss_and_grads(X, y)
        optimizer.step(params, grads)
        return loss

    return step


def float32_problems(model, optimizer) -> list[str]:
    """What is not float32 after a float32 step: the flat buffers and the loss layer's
    output must be float32 arrays; every other floating array the layers, the loss and
    the optimizer hold must be float32 too."""
    bad = []

    def need(name, arr):
        if not isinstance(arr, np.ndarray):
            bad.append(f"{name} is a {type(arr).__name__}, not a float32 array")
        elif arr.dtype != np.float32:
            bad.append(f"{name} is {arr.dtype}")

    def scan(obj, name):
        for attr, val in getattr(obj, "__dict__", {}).items():
            items = []
            if isinstance(val, np.ndarray):
                items = [(f"{name}.{attr}", val)]
            elif isinstance(val, dict):
                items = [(f"{name}.{attr}[{k!r}]", v) for k, v in val.items()]
            elif isinstance(val, (list, tuple)):
                items = [(f"{name}.{attr}[{i}]", v) for i, v in enumerate(val)]
            for label, arr in items:
                if isinstance(arr, np.ndarray) and arr.dtype.kind in "fc" and arr.dtype != np.float32:
                    bad.append(f"{label} is {arr.dtype}")

    need("model.flat_params", model.flat_params)
    need("model.flat_grads", model.flat_grads)
    loss_layer = model.loss_layer
    need("loss_layer.y (softmax output)", getattr(loss_layer, "y", None))
    if hasattr(loss_layer, "per_example"):
        need("loss_layer.per_example", loss_layer.per_example)
    for i, layer in enumerate(getattr(model, "affines", [])):
        scan(layer, f"affines[{i}]")
    for i, layer in enumerate(getattr(model, "acts", [])):
        scan(layer, f"acts[{i}]")
    scan(loss_layer, "loss_layer")
    scan(optimizer, type(optimizer).__name__)
    need("loss_layer.backward() (dL/dlogits)", loss_layer.backward())
    return bad


def matmul_floor_fn(case: Case, dtype: str):
    """The step's matrix products alone, into arrays made beforehand: forward x_l @ W_l, backward
    x_l.T @ d_l (dW) and d_l @ W_l.T (dx, not for layer 1), on the same shapes as the step.  What
    a step of any engine that does these products with this BLAS cannot go below."""
    rng = np.random.default_rng(SEED)
    Ws = [rng.standard_normal(shape).astype(dtype) * 0.01 for shape in case.shapes]
    dWs = [np.empty_like(W) for W in Ws]
    xs = [rng.standard_normal((case.batch, fi)).astype(dtype) for fi, _ in case.shapes]
    ds = [rng.standard_normal((case.batch, fo)).astype(dtype) * 0.01 for _, fo in case.shapes]
    zs = [np.empty_like(d) for d in ds]
    dxs = [np.empty_like(x) for x in xs]

    def floor():
        for x, W, z in zip(xs, Ws, zs):
            np.matmul(x, W, out=z)
        for i in range(len(Ws) - 1, -1, -1):
            np.matmul(xs[i].T, ds[i], out=dWs[i])
            if i > 0:
                np.matmul(ds[i], Ws[i].T, out=dxs[i])

    return floor


@dataclass
class NumpyResult:
    threads: int | None  # BLAS threads the engine uses for this width
    sgd: Timing
    adam: Timing
    floor: Timing  # the step's matrix products alone (matmul_floor_fn)
    sgd_default_threads: Timing | None  # when the engine uses fewer threads than the default
    f32_problems: list | None  # None: not a float32 case
    finite: bool


def bench_numpy_case(case: Case, dtype: str, settings: Settings, default_threads: int | None) -> NumpyResult:
    X, y = case_batch(case, dtype)
    problems: list[str] = []
    finite = True
    timings = {}
    with engine_threads(case.width):
        threads, _ = numpy_blas()
        for opt_name in ("sgd", "adam"):
            model = numpy_model(case, dtype)
            optimizer = OPTIMIZERS[opt_name](LR)
            step = numpy_step_fn(model, optimizer, X, y)
            log(f"  numpy ({case.key}) {dtype} {opt_name}, {threads} BLAS threads")
            with np.errstate(all="ignore"):
                timings[opt_name] = time_calls(step, settings)
                finite &= math.isfinite(step())
            if dtype == "float32":
                problems += [f"{opt_name}: {p}" for p in float32_problems(model, optimizer)]
        log(f"  numpy ({case.key}) {dtype} matmul floor")
        floor = time_calls(matmul_floor_fn(case, dtype), settings)
    at_default = None
    if threads and default_threads and threads != default_threads:
        with blas_limit(default_threads):
            model = numpy_model(case, dtype)
            step = numpy_step_fn(model, OPTIMIZERS["sgd"](LR), X, y)
            log(f"  numpy ({case.key}) {dtype} sgd, {default_threads} BLAS threads")
            with np.errstate(all="ignore"):
                at_default = time_calls(step, settings)
    return NumpyResult(threads, timings["sgd"], timings["adam"], floor, at_default,
                       problems if dtype == "float32" else None, finite)


def profile_case(case: Case, dtype: str, steps: int) -> None:
    import cProfile
    import pstats

    X, y = case_batch(case, dtype)
    with engine_threads(case.width):
        model = numpy_model(case, dtype)
        step = numpy_step_fn(model, OPTIMIZERS["sgd"](LR), X, y)
        for _ in range(3):
            step()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(steps):
            step()
        prof.disable()
    print(f"\ncProfile of {steps} numpy SGD steps, {case.label}, {dtype} (by own time)")
    pstats.Stats(prof, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(14)


@dataclass
class RunTiming:
    on: list
    off: list
    n_train: int
    n_val: int
    records: int
    steps: int
    others: float | None

    @property
    def ratio(self) -> float:
        return statistics.median(self.on) / statistics.median(self.off)


def bench_whole_run(dtype: str, settings: Settings) -> RunTiming:
    """Case (a) trained by lab.train on 2000 examples, recorded every epoch."""
    case = CASES["a"]
    base = RunConfig(
        dataset="spirals", samples=2500, val_fraction=0.2, depth=case.depth, width=case.width,
        batch_size=case.batch, optimizer="sgd", lr=0.003, record_every=0, dtype=dtype, seed=SEED,
    )
    for flag in (True, False):  # warm-up: imports, pandas, first-call costs
        train(base.replace(epochs=2, instrument=flag))
    on, off = [], []
    result = None
    load = OtherLoad()
    for r in range(settings.run_repeats):
        for flag, bucket in ((True, on), (False, off)):
            if settings.idle_wait_s > 0:
                wait_for_idle(settings.idle_wait_s)
            log(f"  whole run {dtype} instrument={flag} ({r + 1}/{settings.run_repeats})")
            t0 = time.perf_counter()
            result = train(base.replace(epochs=settings.run_epochs, instrument=flag))
            bucket.append(time.perf_counter() - t0)
            if result.diverged_at is not None:
                log(f"  warning: the whole run diverged ({result.diverge_reason})")
    return RunTiming(on, off, len(result.data.X_train), len(result.data.X_val), len(result.history),
                     settings.run_epochs * result.steps_per_epoch, load.stop())


# ---------------------------------------------------------------------------- torch

def torch_net(torch, case: Case, dtype: str, weights=None):
    nn = torch.nn
    tdtype = getattr(torch, dtype)
    layers = []
    for i, (fi, fo) in enumerate(case.shapes):
        lin = nn.Linear(fi, fo, dtype=tdtype)
        if weights is not None:
            W, b = weights[i]
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(case.shapes) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def torch_step_fn(torch, net, optimizer, X, y):
    criterion = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(net(X), y)
        loss.backward()
        optimizer.step()
        return loss.item()  # the engine returns a Python float too

    return step


def torch_agreement(torch, case: Case, dtype: str) -> float:
    """Largest gradient difference (relative to the largest gradient) between the engine
    and torch on the same weights and batch: both time the same computation."""
    X, y = case_batch(case, dtype)
    model = numpy_model(case, dtype)
    net = torch_net(torch, case, dtype, model.weights())
    model.loss_and_grads(X, y)
    loss = torch.nn.CrossEntropyLoss()(net(torch.from_numpy(X)), torch.from_numpy(y.astype(np.int64)))
    loss.backward()
    lins = [m for m in net if isinstance(m, torch.nn.Linear)]
    tgrads = np.concatenate(
        [np.concatenate([lin.weight.grad.numpy().T.ravel(), lin.bias.grad.numpy()]) for lin in lins]
    )
    scale = float(np.abs(tgrads).max()) or 1.0
    return float(np.abs(tgrads.astype(np.float64) - model.flat_grads.astype(np.float64)).max()) / scale


@dataclass
class TorchResult:
    threads: int  # torch intra-op threads, = the engine's BLAS threads for this case
    sgd: Timing
    adam: Timing
    sgd_default_threads: Timing | None  # torch's own default, when it differs
    grad_diff: float


def bench_torch_case(torch, case: Case, dtype: str, settings: Settings, threads: int | None) -> TorchResult:
    X, y = case_batch(case, dtype)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    default = torch.get_num_threads()
    diff = torch_agreement(torch, case, dtype)

    def timed(cls, n):
        torch.manual_seed(SEED)
        net = torch_net(torch, case, dtype)
        step = torch_step_fn(torch, net, cls(net.parameters(), lr=LR), tX, ty)
        log(f"  torch ({case.key}) {dtype} {cls.__name__}, {n} threads")
        torch.set_num_threads(n)
        try:
            return time_calls(step, settings)
        finally:
            torch.set_num_threads(default)

    n = threads or default
    sgd = timed(torch.optim.SGD, n)
    adam = timed(torch.optim.Adam, n)
    at_default = timed(torch.optim.SGD, default) if n != default else None
    return TorchResult(n, sgd, adam, at_default, diff)


def torch_matmul(torch, dtype: str, settings: Settings) -> Timing:
    g = torch.Generator().manual_seed(SEED)
    A = torch.randn(1024, 1024, generator=g, dtype=getattr(torch, dtype))
    B = torch.randn(1024, 1024, generator=g, dtype=getattr(torch, dtype))
    out = torch.empty(1024, 1024, dtype=getattr(torch, dtype))
    return time_calls(lambda: torch.matmul(A, B, out=out), settings)


# ---------------------------------------------------------------------------- output

def table(rows: list[list[str]], right: set[int] | None = None) -> str:
    """Plain-text table; the first row is the header."""
    right = right if right is not None else set(range(1, len(rows[0])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ms(t: Timing | None) -> str:
    if t is None:
        return "-"
    v = t.median * 1e3
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 1000 else f"{v:.0f}"


def gflops(flop: float, t: Timing) -> float:
    return flop / t.median / 1e9


def pct(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.0f}%"


def others(*timings) -> str:
    """Other processes' CPU share while each of the timings was taken, joined by '/'."""
    return "/".join(pct(t.others) for t in timings if t is not None)


def busy(*shares) -> bool:
    return any(s is not None and s > BUSY for s in shares)


def verdict(ok: bool, detail: str, unreliable: bool = False) -> str:
    return f"{'MET' if ok else 'MISSED'} ({detail})" + (" busy machine: unreliable" if unreliable else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and a 20-epoch whole run")
    ap.add_argument("--dtype", choices=[*DTYPES, "both"], default="both", help="limit to one dtype")
    ap.add_argument("--cases", default="abc", help="which of the cases a, b, c to time (default abc)")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    ap.add_argument("--no-run", action="store_true", help="skip the whole-run (instrumentation) timing")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of numpy steps of each case")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                    help="before each measurement wait up to S seconds for other processes to leave the CPUs")
    args = ap.parse_args(argv)

    settings = dataclasses.replace(QUICK if args.quick else FULL, idle_wait_s=max(0.0, args.wait_idle))
    dtypes = list(DTYPES) if args.dtype == "both" else [args.dtype]
    if not args.cases or set(args.cases) - set(CASES):
        ap.error(f"--cases takes letters from abc, got {args.cases!r}")
    cases = [CASES[k] for k in "abc" if k in args.cases]
    total_start = time.perf_counter()
    total_load = OtherLoad()

    blas_threads, blas_desc = numpy_blas()

    # ---- torch is optional
    torch = None if args.no_torch else import_torch()
    torch_note = "PyTorch: skipped (--no-torch)" if args.no_torch else "PyTorch: torch not installed"
    if torch is not None:
        torch_note = (
            f"torch {torch.__version__}: default {torch.get_num_threads()} intra-op threads, "
            f"{torch.get_num_interop_threads()} inter-op; each case is timed on the engine's BLAS thread count"
        )

    # ---- numpy and torch one after the other per figure, so drifts of the machine's speed hit both
    np_mm, t_mm, np_res, t_res = {}, {}, {}, {}
    log("1024x1024 matmul")
    for dt in dtypes:
        np_mm[dt] = matmul_timing(dt, settings)
        if torch is not None:
            t_mm[dt] = torch_matmul(torch, dt, settings)
    log("training steps")
    for c in cases:
        for dt in dtypes:
            np_res[(c.key, dt)] = bench_numpy_case(c, dt, settings, blas_threads)
            if torch is not None:
                t_res[(c.key, dt)] = bench_torch_case(torch, c, dt, settings, np_res[(c.key, dt)].threads)
    log("numpy 1024x1024 matmul again (the machine's figure is the faster of the two)")
    for dt in dtypes:
        again = matmul_timing(dt, settings)
        if again.median < np_mm[dt].median:
            np_mm[dt] = again
    run_res = {}
    if not args.no_run:
        run_dtype = dtypes[0]
        log(f"whole run of (a), {settings.run_epochs} epochs, {run_dtype}")
        run_res[run_dtype] = bench_whole_run(run_dtype, settings)

    # ---- report
    out = []
    out.append("Backprop Lab engine benchmark" + (" (--quick)" if args.quick else ""))
    out.append(
        f"machine: {cpu_name()}, {usable_cpus()} CPUs usable | python {platform.python_version()} | "
        f"numpy {np.__version__}"
    )
    out.append(f"numpy BLAS: {blas_desc}, {blas_threads if blas_threads else '?'} threads by default")
    out.append(f"engine: lab.train keeps BLAS on 1 thread for width < {engine_policy.SINGLE_THREAD_BELOW_WIDTH}; "
               "steps below are timed the same way")
    out.append(torch_note)
    out.append(
        f"timing: time.perf_counter; >= {settings.warmup} warm-up calls lasting >= {settings.warmup_s:g} s, then the median\n"
        f"of {settings.repeats} repeats of a block of calls lasting >= {settings.min_block_s:g} s. 'others' = CPU share other\n"
        f"processes took while a figure was timed (/proc/stat); above {100 * BUSY:.0f}% the figure is not to be trusted."
    )

    out.append("\n1024x1024 matrix multiply (2 * 1024^3 FLOP per call), default thread counts; numpy timed before and\n"
               "after its training steps, the faster kept")
    rows = [["dtype", "numpy ms", "numpy GFLOP/s", "torch ms", "torch GFLOP/s", "others"]]
    mm_flop = 2 * 1024**3
    for dt in dtypes:
        tm = t_mm.get(dt)
        rows.append([
            dt, ms(np_mm[dt]), f"{gflops(mm_flop, np_mm[dt]):.1f}",
            ms(tm), f"{gflops(mm_flop, tm):.1f}" if tm else "-", others(np_mm[dt], tm),
        ])
    out.append(table(rows))

    out.append("\nTraining step: forward + backward of the mean cross-entropy + one optimizer step (lr 1e-3), one fixed batch")
    out.append(
        "FLOP per step = batch * (6 * sum_l fan_in_l * fan_out_l - 2 * fan_in_1 * fan_out_1): per weight multiply-add and\n"
        "example 2 forward, 2 for dW and 2 for dx, less dx of layer 1 (its input is data; both the engine and torch skip it).\n"
        "Only the matmuls are counted (not bias, ReLU, softmax or optimizer work), the same count for numpy and torch.\n"
        "% matmul = step GFLOP/s / numpy's 1024x1024 matmul GFLOP/s of that dtype (the machine's figure, all cores).\n"
        "numpy/torch = numpy ms / torch ms on the same thread count (below 1: numpy is faster).\n"
        "floor ms = the step's matrix products alone, with numpy into arrays made beforehand, on the same thread count:\n"
        "what no engine doing these products with this BLAS goes below; / floor = a step's time over it."
    )
    for c in cases:
        out.append(f"  {c.label}: {len(c.shapes)} weight layers, {c.flops / 1e6:,.1f} MFLOP per step")

    rows = [["case", "dtype", "threads", "floor ms", "numpy ms", "/ floor", "GFLOP/s", "% matmul", "spread",
             "torch ms", "/ floor", "GFLOP/s", "% matmul", "numpy/torch", "others"]]
    for c in cases:
        for dt in dtypes:
            r = np_res[(c.key, dt)]
            tr = t_res.get((c.key, dt))
            mm = gflops(mm_flop, np_mm[dt])
            row = [f"({c.key})", dt, str(r.threads or "?"), ms(r.floor), ms(r.sgd), f"{r.sgd.median / r.floor.median:.2f}",
                   f"{gflops(c.flops, r.sgd):.2f}", f"{100 * gflops(c.flops, r.sgd) / mm:.1f}", f"{100 * r.sgd.spread:.0f}%"]
            if tr:
                row += [ms(tr.sgd), f"{tr.sgd.median / r.floor.median:.2f}", f"{gflops(c.flops, tr.sgd):.2f}",
                        f"{100 * gflops(c.flops, tr.sgd) / mm:.1f}", f"{r.sgd.median / tr.sgd.median:.2f}"]
            else:
                row += ["-", "-", "-", "-", "-"]
            rows.append(row + [others(r.sgd, tr.sgd if tr else None)])
    out.append("\nSGD (torch.optim.SGD, defaults). spread = (slowest - fastest repeat) / median of numpy; others: numpy/torch")
    out.append(table(rows, right=set(range(2, 15))))

    rows = [["case", "dtype", "numpy ms", "torch ms", "numpy/torch", "numpy Adam - SGD ms", "others"]]
    for c in cases:
        for dt in dtypes:
            r = np_res[(c.key, dt)]
            tr = t_res.get((c.key, dt))
            rows.append([
                f"({c.key})", dt, ms(r.adam), ms(tr.adam) if tr else "-",
                f"{r.adam.median / tr.adam.median:.2f}" if tr else "-",
                f"{(r.adam.median - r.sgd.median) * 1e3:+.3f}", others(r.adam, tr.adam if tr else None),
            ])
    out.append("\nAdam (the engine's Adam vs torch.optim.Adam, defaults, lr 1e-3), same thread counts as above")
    out.append(table(rows, right=set(range(2, 7))))

    alt = [(c, dt) for c in cases for dt in dtypes if np_res[(c.key, dt)].sgd_default_threads
           or (t_res.get((c.key, dt)) and t_res[(c.key, dt)].sgd_default_threads)]
    if alt:
        rows = [["case", "dtype", "numpy ms 1 thr", "numpy ms default thr", "torch ms 1 thr", "torch ms default thr", "others"]]
        for c, dt in alt:
            r, tr = np_res[(c.key, dt)], t_res.get((c.key, dt))
            rows.append([f"({c.key})", dt, ms(r.sgd), ms(r.sgd_default_threads),
                         ms(tr.sgd) if tr else "-", ms(tr.sgd_default_threads) if tr else "-",
                         others(r.sgd, r.sgd_default_threads, *((tr.sgd, tr.sgd_default_threads) if tr else ()))])
        out.append(f"\nThread count: SGD step on 1 thread (as the engine runs these widths) and on the default "
                   f"({blas_threads} for numpy{', ' + str(torch.get_num_threads()) + ' for torch' if torch else ''})")
        out.append(table(rows, right=set(range(2, 7))))

    if t_res:
        out.append("\nSame computation check: engine vs torch gradients on the same weights and batch")
        rows = [["case", "dtype", "max |grad diff| / max |grad|", "verdict"]]
        for c in cases:
            for dt in dtypes:
                d = t_res[(c.key, dt)].grad_diff
                tol = 1e-9 if dt == "float64" else 1e-3
                rows.append([f"({c.key})", dt, f"{d:.1e}", "agree" if d <= tol else f"DIFFER (> {tol:g})"])
        out.append(table(rows, right={2}))

    not_finite = [f"({k}) {dt}" for (k, dt), r in np_res.items() if not r.finite]
    if not_finite:
        out.append(f"\nwarning: the numpy loss was not finite after timing {', '.join(not_finite)}")

    for dt, rt in run_res.items():
        on, off = statistics.median(rt.on), statistics.median(rt.off)
        out.append(
            f"\nWhole run of (a) with lab.train: spirals, {rt.n_train} training + {rt.n_val} validation examples, "
            f"{dt}, SGD lr 0.003,\n{settings.run_epochs} epochs = {rt.steps} steps, {rt.records} record points "
            f"(every epoch, probe set 512), median of {settings.run_repeats} runs each, alternating; others {pct(rt.others)}"
        )
        rows = [["", "wall s", "runs (s)"],
                ["instrument=True", f"{on:.2f}", ", ".join(f"{t:.2f}" for t in rt.on)],
                ["instrument=False", f"{off:.2f}", ", ".join(f"{t:.2f}" for t in rt.off)]]
        out.append(table(rows, right={1}))
        out.append(
            f"ratio instrumented / uninstrumented: {rt.ratio:.2f} (target <= {INSTRUMENT_TARGET}); "
            f"{(on - off) / rt.records * 1e3:.2f} ms per record point for the probe;\n"
            f"{off / rt.steps * 1e3:.3f} ms per step uninstrumented (slicing, evaluation and tables included)"
        )

    f32_failed = False
    if "float32" in dtypes:
        out.append("\nfloat32 end to end (checked after float32 SGD and Adam steps: flat_params, flat_grads, the loss\n"
                   "layer's softmax output, per-example loss and dL/dlogits, every cached array and optimizer state)")
        for c in cases:
            probs = np_res[(c.key, "float32")].f32_problems
            f32_failed |= bool(probs)
            more = " ..." if len(probs) > 6 else ""
            out.append(f"  ({c.key}): " + ("PASS" if not probs else "FAIL: " + "; ".join(probs[:6]) + more))

    # ---- targets
    out.append("\nTargets (from the issue; times are figures, not tests)")
    rows = [["target", *dtypes]]
    for c in cases:
        for opt in ("sgd", "adam"):
            cells = []
            for dt in dtypes:
                tr = t_res.get((c.key, dt))
                if not tr:
                    cells.append(f"n/a: {torch_note.split(': ', 1)[1]}")
                    continue
                mine, theirs = getattr(np_res[(c.key, dt)], opt), getattr(tr, opt)
                ratio = mine.median / theirs.median
                ok = ratio < 1.0 if c.vs_torch == "faster" else ratio <= 1.0
                cells.append(verdict(ok, f"numpy/torch {ratio:.2f}", busy(mine.others, theirs.others)))
            name = "SGD" if opt == "sgd" else "Adam"
            rows.append([f"({c.key}) numpy {name} step {c.vs_torch} than torch", *cells])
        if c.matmul_share is not None:
            cells = []
            for dt in dtypes:
                r = np_res[(c.key, dt)]
                share = gflops(c.flops, r.sgd) / gflops(mm_flop, np_mm[dt])
                cells.append(verdict(share >= c.matmul_share, f"{100 * share:.0f}%", busy(r.sgd.others, np_mm[dt].others)))
            rows.append([f"({c.key}) >= {100 * c.matmul_share:.0f}% of numpy matmul GFLOP/s", *cells])
    for dt, rt in run_res.items():
        cell = verdict(rt.ratio <= INSTRUMENT_TARGET, f"{rt.ratio:.2f}x", busy(rt.others))
        rows.append([f"instrumented run <= {INSTRUMENT_TARGET}x uninstrumented", *[cell if d == dt else "-" for d in dtypes]])
    if "float32" in dtypes:
        rows.append(["float32 end to end (a real check)",
                     *[("FAIL" if f32_failed else "PASS") if d == "float32" else "-" for d in dtypes]])
    out.append(table(rows, right=set()))
    share = total_load.stop()
    waited = f" ({WAITED[0]:.0f} s of it waiting for an idle machine)" if WAITED[0] else ""
    out.append(f"\ntotal benchmark time {time.perf_counter() - total_start:.0f} s{waited}; "
               f"other processes took {pct(share)} of the CPUs meanwhile")
    if busy(share) or share is not None and share > 0.05:
        out.append("WARNING: the machine was not idle; look at the 'others' columns, and rerun (--wait-idle 60) when it is.")
    print("\n".join(out), flush=True)

    if args.profile:
        for c in cases:
            steps = max(5, min(200, int(1.0 / np_res[(c.key, dtypes[0])].sgd.median)))
            profile_case(c, dtypes[0], steps)

    if f32_failed:
        print("\nFAILED: float32 did not stay float32 through a training step (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
