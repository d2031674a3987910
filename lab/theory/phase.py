"""The depth by weight-scale phase diagram, measured at initialization.

Every cell is an untrained network (lecun_normal with gain sigma_w, so weights have std
sigma_w / sqrt(fan_in), biases std sigma_b) pushed through with N(0, 1) random inputs;
its value is log10 of delta_rms in the first hidden layer over that in the last one.

The networks of one sigma_w are nested: the depth-d network is the deepest one's first d
hidden layers with an output layer of its own.  So one forward pass serves every depth,
and the backward passes of all depths run together, as one stacked matrix product per
layer.  The forward pass is float64 (a relu network at sigma_w 0.5 and depth 100 has
activations near 1e-45, below float32's range, where they would turn into exact zeros
and the error signal into 0/0).  The backward pass is linear in the error, so each
depth's error is rescaled to a maximum of 1 at every layer and the scales are summed as
logarithms: no ratio between 1e-300 and 1e300 under- or overflows.
The work is a plain function of plain arguments (``sweep_row``), so any joblib backend
can run the rows; threads by default, since numpy releases the GIL for the products.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from lab.engine.activations import Activation, get_activation
from lab.engine.init import init_weight
from lab.engine.layers import SoftmaxWithLoss

from .meanfield import regime

CLASSES = 10
TINY32 = float(np.finfo(np.float32).tiny)


def draw_networks(sigma_w: float, sigma_b: float, depths, width: int, rng: np.random.Generator):
    """Weights of the nested networks: ``hidden`` [(W, b)] for layers 1..max(depths), each W
    (fan_in, fan_out) = (width, width), and ``outputs`` {depth: (W (width, CLASSES), b)}."""
    def layer(fan_out):
        W = init_weight("lecun_normal", (width, fan_out), rng, sigma_w, 1.0)
        b = rng.standard_normal(fan_out) * sigma_b if sigma_b > 0 else np.zeros(fan_out)
        return W, b

    hidden = [layer(width) for _ in range(max(depths))]
    outputs = {d: layer(CLASSES) for d in sorted(set(depths))}
    return hidden, outputs


def log10_delta_ratios(act: Activation, hidden, outputs, X: np.ndarray, y: np.ndarray) -> dict[int, float]:
    """For each depth d in ``outputs``: log10(delta_rms of layer 1 / delta_rms of layer d) of the
    network hidden[:d] + outputs[d] under the mean cross-entropy on (X (N, width), y (N,)).

    -inf where the error became exactly 0 on its way down (every unit's derivative 0),
    NaN where no error reached layer d or the forward pass overflowed."""
    derivs, starts = [], {}
    h = X.astype(np.float64)
    deepest = max(outputs)
    for l, (W, b) in enumerate(hidden[:deepest], start=1):
        z = h @ W + b
        h = act.f(z)
        deriv = act.df(z, h)
        if l in outputs:
            Wo, bo = outputs[l]
            loss = SoftmaxWithLoss()
            loss.forward(h @ Wo + bo, y)
            starts[l] = (loss.backward() @ Wo.T) * deriv  # dL/dz_l of the depth-l network
        deriv = deriv.astype(np.float32)
        deriv[np.abs(deriv) < TINY32] = 0.0  # float32 subnormals would only slow the products down
        derivs.append(deriv)
    order = sorted(starts, reverse=True)  # deepest first: the active depths are always a prefix
    result = {d: math.nan for d in order}
    V = np.zeros((len(order), X.shape[0], hidden[0][0].shape[1]), dtype=np.float32)
    spare = np.empty_like(V)
    log_scale = np.zeros(len(order))
    dead = np.zeros(len(order), dtype=bool)  # no error at its own last hidden layer, or not finite
    active = 0
    for l in range(deepest, 0, -1):
        while active < len(order) and order[active] == l:
            start = starts[l]
            m = np.abs(start).max()
            dead[active] = not (math.isfinite(m) and m > 0)
            if not dead[active]:
                V[active] = start / m
                log_scale[active] = -math.log10(_norm(V[active]))
            active += 1
        if l == 1:
            break
        k = active
        W_T = np.ascontiguousarray(hidden[l - 1][0].T, dtype=np.float32)
        # (k N, width): delta_l W_l^T, then times phi'(z_{l-1}): delta_{l-1} of every active depth
        np.matmul(V[:k].reshape(-1, W_T.shape[0]), W_T, out=spare[:k].reshape(-1, W_T.shape[1]))
        V, spare = spare, V
        Vk = V[:k]
        Vk *= derivs[l - 2]
        # the largest |entry| of each depth, without an |V| temporary (NaN still propagates)
        flat = Vk.reshape(k, -1)
        m = np.maximum(flat.max(axis=1), -flat.min(axis=1)).astype(np.float64)
        ok = m > 0
        # in place, dividing the depths without a signal by 1 (exact): the same numbers as dividing only the others
        np.divide(Vk, np.where(ok, m, 1.0).astype(np.float32)[:, None, None], out=Vk)
        with np.errstate(divide="ignore"):
            log_scale[:k] += np.log10(m)
    for i, d in enumerate(order):
        if dead[i]:
            continue
        value = -math.inf if log_scale[i] == -math.inf else float(log_scale[i]) + math.log10(_norm(V[i]))
        result[d] = value if math.isfinite(value) or value == -math.inf else math.nan
    return result


def _norm(a: np.ndarray) -> float:
    a = a.astype(np.float64, copy=False)
    return math.sqrt(float(np.vdot(a, a)))


def sweep_row(activation: str, sigma_w: float, sigma_b: float, depths: list[int], width: int, n_probe: int,
              seed: int) -> list[float]:
    """log10(delta_rms_1 / delta_rms_last_hidden) for each depth at one sigma_w (see log10_delta_ratios)."""
    rng = np.random.default_rng([seed, round(sigma_w * 1e6)])
    hidden, outputs = draw_networks(sigma_w, sigma_b, depths, width, rng)
    X = rng.standard_normal((n_probe, width))
    y = rng.integers(0, CLASSES, size=n_probe)
    with np.errstate(all="ignore"):
        ratios = log10_delta_ratios(get_activation(activation), hidden, outputs, X, y)
    return [ratios[int(d)] for d in depths]


def sweep(activation: str, sigma_ws, depths, sigma_b: float = 0.0, width: int = 128, n_probe: int = 256,
          seed: int = 0, n_jobs: int = 2, progress=None, backend: str = "threading") -> pd.DataFrame:
    """The measured diagram, tidy: sigma_w, depth, log10_ratio.  ``progress(done, total)`` after each row."""
    sigma_ws, depths = [float(s) for s in sigma_ws], [int(d) for d in depths]
    jobs = (delayed(sweep_row)(activation, s, sigma_b, depths, width, n_probe, seed) for s in sigma_ws)
    rows: list[list[float]] = []
    # one BLAS thread per worker: the matrices are small, and the workers already fill the cores
    with threadpool_limits(limits=1, user_api="blas"):
        for row in Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")(jobs):
            rows.append(row)
            if progress:
                progress(len(rows), len(sigma_ws))
    return pd.DataFrame(
        [(s, d, rows[i][j]) for i, s in enumerate(sigma_ws) for j, d in enumerate(depths)],
        columns=["sigma_w", "depth", "log10_ratio"],
    )


def critical_sigma_w(activation: str, sigma_b: float = 0.0, lo: float = 0.05, hi: float = 6.0,
                     leaky_slope: float = 0.01, rtol: float = 1e-5) -> float | None:
    """The sigma_w where chi at the fixed point crosses 1 (order to chaos), by bisection to a relative
    ``rtol`` (each step solves for a fixed point, so stop once the line cannot move); None if it does not."""
    act = get_activation(activation, leaky_slope)

    def gap(sw):
        r = regime(act, sw, sigma_b)
        return math.inf if r.chi_star is None else r.chi_star - 1.0

    a, b = gap(lo), gap(hi)
    if not (a < 0 < b):
        return None
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if gap(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
