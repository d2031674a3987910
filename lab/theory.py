"""Mean-field theory of signal propagation at initialization (Poole et al. 2016, Schoenholz et al. 2017).

For a wide network with i.i.d. weights of variance sigma_w^2 / fan_in and biases of
variance sigma_b^2, the pre-activations of layer l are Gaussian with variance q_l:

    q_1 = sigma_w1^2 * mean(x^2) + sigma_b^2
    q_l = sigma_w^2 * E[phi(sqrt(q_{l-1}) z)^2] + sigma_b^2,      z ~ N(0, 1)

and going back one layer multiplies the squared error signal by

    chi_l = sigma_w^2 * E[phi'(sqrt(q_l) z)^2]

so delta_rms_l / delta_rms_{L-1} = sqrt(chi_l * chi_{l+1} * ... * chi_{L-2}).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .activations import Activation, get_activation
from .config import RunConfig
from .init import canonical_init, resolve_gain
from .summaries import theory_caption

# Gaussian expectations: Gauss-Hermite for smooth functions; for a kink, Gauss-Legendre on
# each side of it over |z| <= Z_MAX (the tails beyond weigh less than 1e-32)
HERMITE_NODES = 100
LEGENDRE_NODES = 200
Z_MAX = 12.0
_HX, _HW = np.polynomial.hermite.hermgauss(HERMITE_NODES)
_LX, _LW = np.polynomial.legendre.leggauss(LEGENDRE_NODES)


def gaussian_expectation(f, q: float, kinks=()) -> float:
    """E[f(sqrt(q) z)] for z ~ N(0, 1); ``kinks`` are the points (in the argument of f) where
    f or its derivative jumps.  Returns f(0) for q = 0."""
    if q <= 0:
        return float(f(np.zeros(1))[0])
    s = math.sqrt(q)
    if not kinks:
        return float(np.sum(_HW * f(math.sqrt(2.0 * q) * _HX)) / math.sqrt(math.pi))
    cuts = sorted({-Z_MAX, Z_MAX, *[k / s for k in kinks if -Z_MAX < k / s < Z_MAX]})
    total = 0.0
    for a, b in zip(cuts[:-1], cuts[1:]):
        z = 0.5 * (b - a) * _LX + 0.5 * (b + a)
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        total += 0.5 * (b - a) * float(np.sum(_LW * f(s * z) * pdf))
    return total


def chi(activation: Activation, sigma_w2: float, q: float) -> float:
    """sigma_w^2 E[phi'(sqrt(q) z)^2], with the closed forms where they exist."""
    if activation.name == "identity":
        return sigma_w2
    if activation.name == "relu":
        return sigma_w2 / 2.0
    if activation.name == "leaky_relu":
        return sigma_w2 * (1.0 + activation.slope**2) / 2.0
    return sigma_w2 * gaussian_expectation(lambda x: activation.df(x, activation.f(x)) ** 2, q, activation.kinks)


def length_map(activation: Activation, sigma_w2: float, sigma_b2: float, q: float) -> float:
    """sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2: the variance of the next layer's pre-activations."""
    return sigma_w2 * gaussian_expectation(lambda x: activation.f(x) ** 2, q, activation.kinks) + sigma_b2


def fixed_point(activation: Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0,
                iterations: int = 2000, tol: float = 1e-12) -> float | None:
    """q* of the length map, or None when q runs away (grows without bound)."""
    q = q0
    for _ in range(iterations):
        nxt = length_map(activation, sigma_w2, sigma_b2, q)
        if not math.isfinite(nxt) or nxt > 1e12:
            return None
        if abs(nxt - q) <= tol * max(1.0, q):
            return nxt
        q = nxt
    return q


def weight_variance(init: str, fan_in: int, fan_out: int, gain: float, scale: float) -> float:
    """The variance of one weight entry under ``init`` (weights laid out (fan_in, fan_out))."""
    init = canonical_init(init)
    return {
        "zeros": 0.0,
        "normal": (gain * scale) ** 2,
        "uniform": (gain * scale) ** 2 / 3.0,
        "xavier_normal": gain**2 * 2.0 / (fan_in + fan_out),
        "xavier_uniform": gain**2 * 2.0 / (fan_in + fan_out),
        "he_normal": gain**2 * 2.0 / fan_in,
        "he_uniform": gain**2 * 2.0 / fan_in,
        "lecun_normal": gain**2 / fan_in,
        "lecun_uniform": gain**2 / fan_in,
        "orthogonal": gain**2 / max(fan_in, fan_out),
    }[init]


def sigma_w(config: RunConfig, fan_in: int | None = None, fan_out: int | None = None) -> float:
    """The mean-field sigma_w of a hidden layer (square unless fans are given): sqrt(var * fan_in)."""
    act = get_activation(config.activation, config.leaky_slope)
    gain = resolve_gain(config.init, config.gain, act)
    fi = fan_in or config.width
    return math.sqrt(weight_variance(config.init, fi, fan_out or config.width, gain, config.init_scale) * fi)


def caveat(config: RunConfig) -> str:
    """Where the theory does not (or only approximately) apply to this config; "" when it does."""
    init = canonical_init(config.init)
    notes = []
    if init == "zeros":
        return "Theory does not apply: with all weights zero there is no random signal to propagate."
    if init == "orthogonal":
        notes.append("orthogonal weights are not independent; the theory uses only their variance (1/width)")
    if init in ("normal", "uniform"):
        notes.append(f"an absolute scale maps onto sigma_w = scale * sqrt(width){' / sqrt(3)' if init == 'uniform' else ''}")
    if config.width < 64:
        notes.append(f"width {config.width} is narrow; the theory is exact only for wide layers")
    return ("Approximate: " + "; ".join(notes) + ".") if notes else ""


def predict(config: RunConfig, input_dim: int, n_classes: int, input_mean_square: float = 1.0) -> pd.DataFrame:
    """Predicted q_l, chi_l and delta_rms_l / delta_rms_{L-1} for hidden layers l = 1..L-1.

    Columns: layer, q, chi, predicted_delta_ratio.  Empty for a network without hidden layers.
    """
    act = get_activation(config.activation, config.leaky_slope)
    gain = resolve_gain(config.init, config.gain, act)
    sizes = [input_dim] + [config.width] * config.depth + [n_classes]
    sw2 = [weight_variance(config.init, fi, fo, gain, config.init_scale) * fi for fi, fo in zip(sizes[:-1], sizes[1:])]
    sb2 = config.bias_std**2
    hidden = config.depth
    if hidden == 0:
        return pd.DataFrame(columns=["layer", "q", "chi", "predicted_delta_ratio"])
    q = np.zeros(hidden)
    q[0] = sw2[0] * input_mean_square + sb2
    for l in range(1, hidden):
        q[l] = length_map(act, sw2[l], sb2, q[l - 1])
    # chi of layer l uses the weights that carry the signal back into it: W_{l+1}
    chis = np.array([chi(act, sw2[l + 1], q[l]) for l in range(hidden)])
    ratio_sq = np.ones(hidden)
    for l in range(hidden - 2, -1, -1):
        ratio_sq[l] = ratio_sq[l + 1] * chis[l]
    with np.errstate(over="ignore", invalid="ignore"):
        ratio = np.sqrt(ratio_sq)
    return pd.DataFrame({"layer": np.arange(1, hidden + 1), "q": q, "chi": chis, "predicted_delta_ratio": ratio})


@dataclass(frozen=True)
class Regime:
    q_star: float | None
    chi_star: float | None
    depth_scale: float | None  # -1 / ln(chi*), in layers; None at chi* = 1 or without q*


def regime(activation: Activation, sigma_w: float, sigma_b: float) -> Regime:
    """Fixed point, its chi and the depth scale over which the squared signal changes by e."""
    q_star = fixed_point(activation, sigma_w**2, sigma_b**2)
    if q_star is None:
        return Regime(None, None, None)
    c = chi(activation, sigma_w**2, q_star)
    scale = -1.0 / math.log(c) if c > 0 and abs(math.log(c)) > 1e-12 else None
    return Regime(q_star, c, scale)


def measured_factor(layers: pd.DataFrame, epoch=0) -> pd.Series:
    """Measured (delta_rms_l / delta_rms_{l+1})^2 for hidden layers l = 1..L-2 at ``epoch``."""
    at = layers[layers["epoch"] == epoch].set_index("layer")["delta_rms"]
    hidden = int(at.index.max()) - 1
    idx = range(1, hidden)
    with np.errstate(all="ignore"):  # a signal that underflowed to 0 gives NaN, not a warning
        return pd.Series([(at.loc[l] / at.loc[l + 1]) ** 2 for l in idx], index=list(idx), name="measured_chi",
                         dtype=float)


def overlay_frame(config: RunConfig, layers: pd.DataFrame, input_dim: int, n_classes: int,
                  input_mean_square: float = 1.0) -> pd.DataFrame:
    """The predicted profile scaled to pass through the measured last hidden layer at epoch 0
    (columns layer, delta_rms), for drawing over the measurement."""
    pred = predict(config, input_dim, n_classes, input_mean_square)
    at0 = layers[layers["epoch"] == layers["epoch"].min()].set_index("layer")["delta_rms"]
    if pred.empty or len(at0) < 2:
        return pd.DataFrame(columns=["layer", "delta_rms"])
    anchor = at0.loc[config.depth]
    return pd.DataFrame({"layer": pred["layer"], "delta_rms": pred["predicted_delta_ratio"] * anchor})


def against_measurement(result) -> tuple[pd.DataFrame | None, str]:
    """For a finished run: the predicted profile to draw over its measurement at initialization
    (None where theory does not apply), and one sentence comparing the per-layer factors."""
    config, data = result.config, result.data
    if data is None or config.depth < 2 or result.layers.empty:
        return None, ""
    note = caveat(config)
    if note.startswith("Theory does not apply"):
        return None, note
    mean_square = float(np.mean(data.X_train**2))
    overlay = overlay_frame(config, result.layers, data.input_dim, data.classes, mean_square)
    table = predict(config, data.input_dim, data.classes, mean_square)
    measured = measured_factor(result.layers, result.layers["epoch"].min())
    return overlay, theory_caption(table, measured, note)
