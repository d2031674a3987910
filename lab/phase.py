"""The depth by weight-scale phase diagram, measured at initialization.

Every cell is an untrained network (lecun_normal with gain sigma_w, so weights have std
sigma_w / sqrt(fan_in), biases std sigma_b) pushed through with N(0, 1) random inputs;
its value is log10 of delta_rms in the first hidden layer over that in the last one.
The work is a plain function of plain arguments (``sweep_row``), so any joblib backend
(processes here, a cluster elsewhere) can run the rows.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from .activations import get_activation
from .config import RunConfig
from .model import build_mlp
from .probe import STAT_COLUMNS, probe
from .theory import regime
from .train import blas_threads

DELTA = STAT_COLUMNS.index("delta_rms")
CLASSES = 10


def sweep_row(activation: str, sigma_w: float, sigma_b: float, depths: list[int], width: int, n_probe: int,
              seed: int) -> list[float]:
    """log10(delta_rms_1 / delta_rms_last_hidden) for each depth at one sigma_w: -inf where the signal
    underflowed to zero on its way down, NaN where it overflowed."""
    out = []
    with blas_threads(width), np.errstate(all="ignore"):
        for depth in depths:
            rng = np.random.default_rng([seed, depth, int(round(sigma_w * 1e6))])
            config = RunConfig(dataset="random", depth=depth, width=width, activation=activation, init="lecun_normal",
                               gain=sigma_w, bias_std=sigma_b, input_dim=width, classes=CLASSES,
                               dtype="float32").validate()
            model = build_mlp(config, width, CLASSES, rng)
            X = rng.standard_normal((n_probe, width), dtype=np.float32)
            y = rng.integers(0, CLASSES, size=n_probe)
            _, stats, *_ = probe(model, X, y, None, with_hist=False)
            first, last = stats[0, DELTA], stats[depth - 1, DELTA]
            if not (math.isfinite(first) and math.isfinite(last)) or last == 0:
                out.append(math.nan)  # overflowed, or no signal reached even the last layer
            elif first == 0:
                out.append(-math.inf)  # the signal underflowed to exactly 0 before layer 1
            else:
                out.append(math.log10(first / last))
    return out


def sweep(activation: str, sigma_ws, depths, sigma_b: float = 0.0, width: int = 128, n_probe: int = 256,
          seed: int = 0, n_jobs: int = 2, progress=None) -> pd.DataFrame:
    """The measured diagram, tidy: sigma_w, depth, log10_ratio.  ``progress(done, total)`` after each row."""
    sigma_ws, depths = [float(s) for s in sigma_ws], [int(d) for d in depths]
    jobs = (delayed(sweep_row)(activation, s, sigma_b, depths, width, n_probe, seed) for s in sigma_ws)
    rows: dict[int, list[float]] = {}
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    for i, row in enumerate(results):
        rows[i] = row
        if progress:
            progress(i + 1, len(sigma_ws))
    return pd.DataFrame(
        [(s, d, rows[i][j]) for i, s in enumerate(sigma_ws) for j, d in enumerate(depths)],
        columns=["sigma_w", "depth", "log10_ratio"],
    )


def critical_sigma_w(activation: str, sigma_b: float = 0.0, lo: float = 0.05, hi: float = 6.0,
                     leaky_slope: float = 0.01) -> float | None:
    """The sigma_w where chi at the fixed point crosses 1 (order to chaos), by bisection; None if it does not."""
    act = get_activation(activation, leaky_slope)

    def gap(sw):
        r = regime(act, sw, sigma_b)
        return math.inf if r.chi_star is None else r.chi_star - 1.0

    a, b = gap(lo), gap(hi)
    if not (a < 0 < b):
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if gap(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
