"""Gradient checking: back-propagated gradients against central differences.

The numerical gradient perturbs one parameter at a time by +-eps and takes
(L(p + eps) - L(p - eps)) / (2 eps); it costs two forward passes per parameter,
which is why nobody trains that way, and exactly why it makes a good referee.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .model import MLP

PASS_THRESHOLD = 1e-6
# Central differences carry a rounding error of about 1e-16 * |L| / eps = 1e-10; a layer whose
# gradient is itself that small (a vanished signal) is judged by absolute difference instead.
ABS_FLOOR = 1e-9


def numerical_gradient(f, p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every entry of ``p``, in place and restored."""
    grad = np.zeros_like(p, dtype=np.float64)
    flat, gflat = p.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2.0 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||), 0 when both are 0."""
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def gradient_check(model: MLP, X: np.ndarray, t: np.ndarray, eps: float = 1e-6,
                   threshold: float = PASS_THRESHOLD) -> pd.DataFrame:
    """Compare backprop with central differences for every parameter of every layer.

    Returns one row per layer: layer, rel_error_W, rel_error_b, rel_error (the larger),
    max_abs_diff, passed (rel_error < threshold, or max_abs_diff < ABS_FLOOR), backprop_s (one backward pass), numerical_s (this layer's central differences).
    """
    start = time.perf_counter()
    model.loss_and_grads(X, t)
    backprop_s = time.perf_counter() - start
    analytic = [(a.grads["W"].copy(), a.grads["b"].copy()) for a in model.affines]

    def f():
        return model.loss(X, t)

    rows = []
    for l, affine in enumerate(model.affines):
        start = time.perf_counter()
        num_W = numerical_gradient(f, affine.params["W"], eps)
        num_b = numerical_gradient(f, affine.params["b"], eps)
        elapsed = time.perf_counter() - start
        err_W = relative_error(num_W, analytic[l][0])
        err_b = relative_error(num_b, analytic[l][1])
        abs_diff = max(np.abs(num_W - analytic[l][0]).max(), np.abs(num_b - analytic[l][1]).max())
        rows.append({
            "layer": l + 1, "rel_error_W": err_W, "rel_error_b": err_b, "rel_error": max(err_W, err_b),
            "max_abs_diff": float(abs_diff), "passed": max(err_W, err_b) < threshold or abs_diff < ABS_FLOOR,
            "backprop_s": backprop_s, "numerical_s": elapsed,
        })
    return pd.DataFrame(rows)
