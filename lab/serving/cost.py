"""What a run will cost, before it starts: seconds and bytes from its config.

Time is counted in the operations the engine performs, each priced on this machine:

    step   = per layer: 3 matrix products (forward, dW, dX) + a few elementwise passes + call overhead
             + the optimizer's passes over the flat parameter buffer
    record = the probe pass (forward, backward and statistics on up to ``probe_size`` examples)
             + the validation forward pass

Prices come from ``calibrate()``: a fraction of a second of timing numpy on the shapes the
lab uses, done once per process.  Memory adds up the arrays that live at the same time:
the data, the parameters with their gradients and optimizer moments, the activations of one
batch and of the probe set, and the recorded tables and histograms.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lab.engine.config import RunConfig
from lab.engine.init import SCHEMES, canonical_init
from lab.engine.optim import OPTIMIZERS
from lab.engine.probe import ACT_BINS, DELTA_EDGES, EVAL_CHUNK, STAT_COLUMNS, histogram_steps
from lab.engine.threads import probe_in_background
from lab.formats import duration, size

# what the engine declares, read from it (nothing here is a copy that could drift)
HIST_BINS = len(DELTA_EDGES) - 1 + ACT_BINS  # error and activation histogram bins per layer
OPTIMIZER_PASSES = {name: opt.passes for name, opt in OPTIMIZERS.items()}
OPTIMIZER_SLOTS = {name: len(opt.slots) for name, opt in OPTIMIZERS.items()}


@dataclass(frozen=True)
class Cost:
    """A run's estimated cost."""

    seconds: float
    peak_bytes: int
    steps: int  # optimizer steps
    records: int  # record points (probe passes)


@dataclass(frozen=True)
class Prices:
    """Seconds per unit of work on this machine, in one dtype."""

    matmul: tuple[tuple[float, float], ...]  # (flops, seconds) measured, ascending
    element: float  # seconds per element of one elementwise pass
    call: float  # seconds of Python overhead per layer per forward+backward
    record_call: float  # seconds of Python overhead per layer per probe pass (statistics, histograms)
    record_element: float  # seconds per unit per example of the probe's statistics and histograms
    param: float  # seconds per parameter per optimizer pass

    def product(self, m: int, k: int, n: int) -> float:
        """Seconds for an (m, k) @ (k, n) product, interpolated in log-log between measured sizes."""
        flops = 2.0 * m * k * n
        xs, ys = _log_log(self.matmul)
        per_flop = math.exp(float(np.interp(math.log(max(flops, 1.0)), xs, ys)))
        return flops * per_flop


@lru_cache(maxsize=16)
def _log_log(matmul: tuple) -> tuple[np.ndarray, np.ndarray]:
    """log flops and log seconds per flop of the measured products (seconds per flop falls as products grow)."""
    return np.log([f for f, _ in matmul]), np.log([s / f for f, s in matmul])


def _typical_time(fn, budget_s: float = 0.02, rounds: int = 3) -> float:
    """Seconds per call of ``fn``: the median of repeated calls within about ``budget_s``, and the
    least of ``rounds`` such medians, so that a moment when another process holds the cores
    does not set the price."""
    medians = []
    for _ in range(rounds):
        times: list[float] = []
        while len(times) < 5 or (sum(times) < budget_s and len(times) < 200):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        medians.append(float(np.median(times)))
    return min(medians)


@lru_cache(maxsize=4)
def calibrate(dtype: str = "float64") -> Prices:
    """Price numpy's operations on this machine (about 0.3 s, once per process and dtype)."""
    from lab.engine.model import build_mlp
    from lab.engine.threads import blas_threads

    rng = np.random.default_rng(0)
    matmul = []
    for m, k, n in ((8, 8, 8), (64, 32, 32), (64, 128, 128), (128, 512, 512), (256, 1024, 1024)):
        a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
        with blas_threads(k):
            matmul.append((2.0 * m * k * n, _typical_time(lambda a=a, b=b: a @ b)))
    x = rng.standard_normal(200_000).astype(dtype)
    element = _typical_time(lambda: np.multiply(np.tanh(x), x)) / (2 * x.size)
    # Python overhead: a deep, tiny network, where the arithmetic is negligible
    tiny = build_mlp(RunConfig(depth=30, width=2, dtype=dtype), 2, 2, rng)
    xb, yb = rng.standard_normal((2, 2)).astype(dtype), np.array([0, 1])
    with blas_threads(2):
        call = _typical_time(lambda: tiny.loss_and_grads(xb, yb)) / tiny.depth
    from lab.engine.probe import probe

    record_call = _typical_time(lambda: probe(tiny, xb, yb, None, True)) / tiny.depth
    # the statistics' elementwise work: a probe pass on a wide network, less its products and overhead
    wide = build_mlp(RunConfig(depth=3, width=256, dtype=dtype), 16, 2, rng)
    xw, yw = rng.standard_normal((512, 16)).astype(dtype), rng.integers(0, 2, 512)
    with blas_threads(256):
        whole = _typical_time(lambda: probe(wide, xw, yw, None, True), budget_s=0.05)
    partial = Prices(tuple(matmul), element, call, record_call, 0.0, 0.0)
    shapes = [(16, 256), (256, 256), (256, 256), (256, 2)]
    rest = whole - _pass_seconds(partial, shapes, 512, backward=True) - record_call * len(shapes)
    record_element = max(rest, 0.0) / (512 * sum(fo for _, fo in shapes))
    # the optimizer streams the flat buffers through memory: price it on a buffer larger than the caches
    flat = np.zeros(4_000_000, dtype=dtype)
    opt = OPTIMIZERS["adam"](0.1)
    opt.step([flat], [flat])
    param = _typical_time(lambda: opt.step([flat], [flat]), budget_s=0.05) / (OPTIMIZER_PASSES["adam"] * flat.size)
    return Prices(tuple(matmul), element, call, record_call, record_element, param)


# Prices measured on the project's 2-core machines (calibrate() there, 2026-11): a first
# estimate that costs nothing.  Only when it comes near a limit is the machine itself timed.
TYPICAL_PRICES = {
    "float64": Prices(((1024.0, 9.2e-07), (131072.0, 3.8e-06), (2097152.0, 4.5e-05), (67108864.0, 6.5e-04),
                       (536870912.0, 5.0e-03)), 5.1e-10, 6.9e-06, 2.9e-05, 2.2e-08, 5.8e-10),
    "float32": Prices(((1024.0, 8.5e-07), (131072.0, 2.2e-06), (2097152.0, 1.9e-05), (67108864.0, 3.0e-04),
                       (536870912.0, 2.3e-03)), 1.4e-10, 7.1e-06, 3.0e-05, 1.8e-08, 2.0e-10),
}
CALIBRATE_ABOVE_S = 5.0  # a typical-price estimate above this is redone with this machine's prices


def priced(config: RunConfig, limit_s: float = math.inf, **data) -> Cost:
    """``estimate`` at typical prices, redone at this machine's own (a calibration of about a
    second, once per process) when the first answer is above CALIBRATE_ABOVE_S or near ``limit_s``."""
    quick = estimate(config, prices=TYPICAL_PRICES[config.dtype], **data)
    if quick.seconds < min(CALIBRATE_ABOVE_S, limit_s / 3):
        return quick
    return estimate(config, **data)


def _network(config: RunConfig, input_dim: int, classes: int) -> list[tuple[int, int]]:
    return config.layer_shapes(input_dim, classes)


def _pass_seconds(prices: Prices, shapes, rows: int, backward: bool) -> float:
    """One forward (and backward) pass of ``rows`` examples through layers of ``shapes``."""
    products = 3 if backward else 1
    elementwise = 6 if backward else 2
    total = 0.0
    for (fan_in, fan_out), count in Counter(shapes).items():  # a deep network has few distinct layers: price each once
        layer = products * prices.product(rows, fan_in, fan_out)
        layer += elementwise * rows * fan_out * prices.element
        if backward:  # dW is computed into a temporary and copied into the flat gradient buffer
            layer += 2 * fan_in * fan_out * prices.element
        layer += prices.call * (1.0 if backward else 0.4)
        total += count * layer
    return total


def estimate(config: RunConfig, n_train: int | None = None, input_dim: int | None = None,
             classes: int | None = None, prices: Prices | None = None) -> Cost:
    """The time and peak memory of training ``config``.

    n_train, input_dim, classes: the data's, when known (an uploaded CSV); by default from config.
    """
    n_total = config.n_samples if n_train is None else n_train
    n_val = int(round(config.val_fraction * n_total)) if n_train is None else 0
    n_train = n_total - n_val
    input_dim = input_dim or config.n_inputs
    classes = classes or config.n_classes
    prices = prices or calibrate(config.dtype)
    shapes = _network(config, input_dim, classes)
    params = sum(fi * fo + fo for fi, fo in shapes)
    batch = max(1, min(config.batch_size, n_train))
    steps_per_epoch = math.ceil(n_train / batch)
    steps = config.epochs * steps_per_epoch
    every = config.record_every or steps_per_epoch
    records = 1 + (steps // every if steps else 0)
    n_probe = min(n_train, config.probe_size) if config.instrument else 0

    passes = OPTIMIZER_PASSES.get(config.optimizer, 10)
    step = _pass_seconds(prices, shapes, batch, backward=True) + passes * params * prices.param
    record = _pass_seconds(prices, shapes, n_val, backward=False) if n_val else 0.0
    if n_probe:
        # forward, backward, then statistics that read every activation and error about 6 times
        record += _pass_seconds(prices, shapes, n_probe, backward=True) + prices.record_call * len(shapes)
        record += n_probe * sum(fo for _, fo in shapes) * prices.record_element + 4 * params * prices.param
    first = _pass_seconds(prices, shapes, n_train, backward=False)  # the loss at initialization
    seconds = steps * step + records * record + first

    item = np.dtype(config.dtype).itemsize
    units = sum(fo for _, fo in shapes)
    # float64 generation and split, the cast copy, and the training set laid out in each epoch's order
    data = 8 * n_total * input_dim * 2 + item * n_total * input_dim + item * n_train * input_dim
    # parameters, gradients and the optimizer's moments (its steps make no temporaries), + the result's copy
    slots = OPTIMIZER_SLOTS.get(config.optimizer, 2) if steps else 0  # moments are made at the first step
    weights = item * params * (2 + slots) + 8 * params
    batch_acts = item * batch * units * 2  # each layer's output (phi computed over it) and its error
    probe_acts = item * n_probe * units * 3  # z, h and the error kept per layer for the statistics
    if n_probe and probe_in_background(config, params):
        probe_acts += 2 * item * params  # the copy of the weights (and its gradients) it works on
    # a forward pass in chunks (the loss at initialization, validation) keeps nothing: a layer's input and output
    eval_acts = item * min(max(n_val, n_train), EVAL_CHUNK) * 2 * max(config.width, input_dim, classes)
    recorded = records * (len(shapes) * (len(STAT_COLUMNS) + 2) * 8 + 200)
    hists = len(histogram_steps(range(records))) * len(shapes) * HIST_BINS * 8
    # training and evaluation take turns on one network; the record pass may run beside them
    peak = data + weights + max(batch_acts, eval_acts) + probe_acts + 3 * recorded + hists
    return Cost(seconds=seconds, peak_bytes=int(peak), steps=steps, records=records)


# an n x n SVD (singular values only) costs about this many n x n products at the typical prices (LAPACK; 5-30
# measured at n = 32..1024)
SVD_PRODUCTS = 20.0
ORTHOGONAL_PRODUCTS = 7.0  # drawing an orthogonal n x n matrix (a QR) costs about this many n x n products
# (w, w) float64 arrays per probe input alive at once: the running product, the next, the norm's temporaries, and
# LAPACK's copy for the SVD (tracemalloc: 5-7 with the weights, at width 512)
JACOBIAN_MATRICES = 8
BATCHED = 1.5  # a product of a stack of probe matrices costs this much more per matrix than one alone


def jacobian_estimate(config: RunConfig, probes: int, n_layers: int, input_dim: int | None = None,
                      classes: int | None = None, prices: Prices | None = None) -> Cost:
    """The time and peak memory of the Jacobian spectrum of ``config``'s network at initialization
    (``lab.theory.spectrum.measure``): drawing the weights, one forward pass of the batch, the running product
    (one width x width product per hidden layer and probe input) and ``n_layers`` SVDs per probe input.  It is
    computed in float64 whatever the run's dtype."""
    prices = prices or TYPICAL_PRICES["float64"]
    shapes = _network(config, input_dim or config.n_inputs, classes or config.n_classes)
    w, hidden = config.width, config.depth
    square = prices.product(w, w, w)
    params = sum(fi * fo + fo for fi, fo in shapes)
    draw = 20 * params * prices.element  # normal or uniform draws, about 20 elementwise passes each
    if SCHEMES[canonical_init(config.init)].sampler == "orthogonal":
        draw += len(shapes) * ORTHOGONAL_PRODUCTS * square
    batch = min(config.n_samples, 256)
    walk = probes * max(hidden - 1, 0) * (BATCHED * square + 6 * w * w * prices.element + prices.call)
    svds = probes * n_layers * SVD_PRODUCTS * square
    seconds = draw + _pass_seconds(prices, shapes, batch, backward=False) + walk + svds
    data = 8 * config.n_samples * (input_dim or config.n_inputs) * 3
    peak = 8 * params * 2 + data + 8 * JACOBIAN_MATRICES * probes * w * w + 8 * batch * w * 4
    return Cost(seconds=seconds, peak_bytes=int(peak), steps=0, records=0)


def describe(cost: Cost) -> str:
    """'about 3 s, 40 MB' as a person writes it."""
    took = duration(cost.seconds)
    return f"{'' if took.startswith('under') else 'about '}{took}, {size(cost.peak_bytes)} of memory"
