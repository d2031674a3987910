"""Gradient checking: back-propagated gradients against central differences.

The numerical gradient perturbs one parameter at a time by +-eps and takes
(L(p + eps) - L(p - eps)) / (2 eps); it costs two forward passes per parameter,
which is why nobody trains that way, and exactly why it makes a good referee.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .activations import Activation
from .config import RunConfig
from .layers import ActivationLayer
from .model import MLP, build_mlp

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


def _against_central_differences(model: MLP, X, t, eps: float, threshold: float):
    """Per layer, the model's current gradients (from its last backward pass) against central
    differences: one row per layer, and the (numerical, backprop) pairs of (W, b) gradients."""
    analytic = [(a.grads["W"].copy(), a.grads["b"].copy()) for a in model.affines]

    def f():
        return model.loss(X, t, mode="probe")

    rows, pairs = [], []
    for l, affine in enumerate(model.affines):
        start = time.perf_counter()
        num = (numerical_gradient(f, affine.params["W"], eps), numerical_gradient(f, affine.params["b"], eps))
        elapsed = time.perf_counter() - start
        errs = [relative_error(n, a) for n, a in zip(num, analytic[l])]
        abs_diff = max(float(np.abs(n - a).max()) for n, a in zip(num, analytic[l]))
        rows.append({
            "layer": l + 1, "n_params": int(num[0].size + num[1].size),
            "numerical_norm": float(np.sqrt(sum((n * n).sum() for n in num))),
            "backprop_norm": float(np.sqrt(sum((a * a).sum() for a in analytic[l]))),
            "rel_error_W": errs[0], "rel_error_b": errs[1], "rel_error": max(errs), "max_abs_diff": abs_diff,
            "passed": max(errs) < threshold or abs_diff < ABS_FLOOR, "numerical_s": elapsed,
        })
        pairs.append((num, analytic[l]))
    return pd.DataFrame(rows), pairs


def gradient_check(model: MLP, X: np.ndarray, t: np.ndarray, eps: float = 1e-6,
                   threshold: float = PASS_THRESHOLD) -> pd.DataFrame:
    """Compare backprop with central differences for every parameter of every layer.

    Returns one row per layer: layer, rel_error_W, rel_error_b, rel_error (the larger),
    max_abs_diff, passed (rel_error < threshold, or max_abs_diff < ABS_FLOOR), backprop_s (one
    backward pass), numerical_s (this layer's central differences).
    """
    start = time.perf_counter()
    model.loss_and_grads(X, t, mode="probe")
    backprop_s = time.perf_counter() - start
    table, _ = _against_central_differences(model, X, t, eps, threshold)
    table["backprop_s"] = backprop_s
    return table[["layer", "rel_error_W", "rel_error_b", "rel_error", "max_abs_diff", "passed",
                  "backprop_s", "numerical_s"]]


# --- a planted bug, every entry side by side, honest timings -------------------------------

BUG_KINDS = {
    "halved": "the derivative multiplied by 0.5, as if a factor had been dropped",
    "sign": "the derivative with its sign flipped",
    "forgotten": "the derivative left out (taken as 1, as if the activation were linear)",
}


class WrongDerivative(Activation):
    """An activation whose forward is right and whose derivative is wrong in the way ``kind`` names."""

    def __init__(self, inner: Activation, kind: str):
        if kind not in BUG_KINDS:
            raise KeyError(f"unknown bug {kind!r}; choose one of {', '.join(BUG_KINDS)}")
        self.inner, self.kind = inner, kind
        self.name, self.max_deriv, self.kinks = inner.name, inner.max_deriv, inner.kinks
        self.saturating, self.hist_range = inner.saturating, inner.hist_range

    def f(self, x):
        return self.inner.f(x)

    def df(self, x, y):
        if self.kind == "forgotten":
            return np.ones_like(x)
        d = self.inner.df(x, y)
        return 0.5 * d if self.kind == "halved" else -d

    def __repr__(self):
        return f"WrongDerivative({self.inner!r}, {self.kind!r})"


def planted_bug(model: MLP, layer_index: int, kind: str = "halved") -> MLP:
    """Give hidden layer ``layer_index`` (1-based) a wrong activation derivative; changes ``model`` and returns it.

    The forward pass is untouched, so the loss and the numerical gradient stay right; only
    back-propagation through that layer goes wrong, and with it the gradients of every
    layer below it (1 .. layer_index).  Layers above it still pass the check.
    """
    if not 1 <= layer_index <= len(model.acts):
        raise ValueError(f"layer_index must be a hidden layer, 1 to {len(model.acts)}; got {layer_index}")
    model.blocks[layer_index - 1].act = ActivationLayer(WrongDerivative(model.activation, kind))
    return model


def check_problem(config: RunConfig, n_inputs: int = 4, n_classes: int = 3, n_samples: int = 8):
    """A network drawn from ``config`` and a small random batch: (model, X (N, D), t (N,)), seeded by config.seed."""
    rng = np.random.default_rng(config.seed)
    model = build_mlp(config.replace(dtype="float64"), n_inputs, n_classes, rng)
    X = rng.standard_normal((n_samples, n_inputs))
    t = rng.integers(0, n_classes, size=n_samples)
    return model, X, t


def time_pass(fn, repeats: int = 21) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, in seconds (one call is too noisy to quote)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@dataclass(frozen=True)
class GradientComparison:
    """Backprop against central differences, entry by entry.

    table: one row per layer: layer, n_params, numerical_norm, backprop_norm, rel_error_W,
    rel_error_b, rel_error, max_abs_diff, passed, numerical_s (that layer's central differences).
    entries: one row per parameter: layer, param ("W" or "b"), numerical, backprop.
    backprop_s: median time of one forward + backward pass (all layers at once).
    numerical_s: total time of the central differences (2 forward passes per parameter).
    """

    table: pd.DataFrame
    entries: pd.DataFrame
    backprop_s: float
    numerical_s: float
    threshold: float

    @property
    def speedup(self) -> float:
        return self.numerical_s / self.backprop_s if self.backprop_s > 0 else math.inf

    @property
    def passed(self) -> bool:
        return bool(self.table["passed"].all())


def compare_gradients(model: MLP, X: np.ndarray, t: np.ndarray, eps: float = 1e-6,
                      threshold: float = PASS_THRESHOLD, repeats: int = 21) -> GradientComparison:
    """``gradient_check``'s verdict (the same loop), keeping both gradients and timing backprop by its median."""
    backprop_s = time_pass(lambda: model.loss_and_grads(X, t, mode="probe"), repeats)
    model.loss_and_grads(X, t, mode="probe")
    table, pairs = _against_central_differences(model, X, t, eps, threshold)
    entries = [
        pd.DataFrame({"layer": l, "param": name, "numerical": n.ravel(), "backprop": a.ravel()})
        for l, (num, analytic) in enumerate(pairs, start=1)
        for name, n, a in zip("Wb", num, analytic)
    ]
    return GradientComparison(table, pd.concat(entries, ignore_index=True), backprop_s,
                              float(table["numerical_s"].sum()), threshold)


def estimate_numerical_seconds(model: MLP, X: np.ndarray, t: np.ndarray) -> float:
    """What central differences would cost: two forward passes per parameter, at the measured forward time."""
    return 2 * model.flat_params.size * time_pass(lambda: model.loss(X, t), 7)


def parameter_count(config: RunConfig, n_inputs: int = 4, n_classes: int = 3) -> int:
    """Weights and biases of the network ``config`` describes, without drawing them."""
    return sum(fi * fo + fo for fi, fo in config.layer_shapes(n_inputs, n_classes))
