"""Mean-field theory of signal propagation at initialization (Poole et al. 2016, Schoenholz et al. 2017).

For a wide network with i.i.d. weights of variance sigma_w^2 / fan_in and biases of
variance sigma_b^2, the pre-activations of layer l for an input x are Gaussian with variance q_l:

    q_1 = sigma_w1^2 * mean(x^2) + sigma_b^2
    q_l = sigma_w^2 * E[phi(sqrt(q_{l-1}) z)^2] + sigma_b^2,      z ~ N(0, 1)

and going back one layer multiplies the squared error signal by

    chi_l = sigma_w^2 * E[phi'(sqrt(q_l) z)^2]

so delta_rms_l / delta_rms_{L-1} = sqrt(chi_l * chi_{l+1} * ... * chi_{L-2}); ``predict``
averages that over the examples, each with its own q_1.  The expectations are in ``gaussian``.

With the cures of issue 11 the same bookkeeping, carried per unit through normalization and
shortcuts (``_predict_cured``), gives the published profiles: batch norm + ReLU multiplies the
squared error signal by pi/(pi - 1) per layer going back (Yang et al. 2019), residual ReLU with He
weights by 1 + alpha^2.  For batch norm with other activations the examples of a batch interact in
a way this bookkeeping leaves out (measured 10-75% off), so ``applicability`` says the theory does not apply
(as a kind and its reasons: ``summaries.caveat_text`` puts them into words).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from lab.engine.activations import Activation, get_activation
from lab.engine.config import RunConfig
from lab.engine.init import SCHEMES, canonical_init, resolve_gain

from .gaussian import gaussian_expectation


def _mean_square_slope(activation: Activation) -> float | None:
    """E[phi'(sqrt(q) z)^2] = E[phi(sqrt(q) z)^2] / q, the same at every q, for the positively
    homogeneous activations (phi(x) = phi'(x) x: identity, relu, leaky relu); None for the others."""
    if activation.name == "leaky_relu":
        return (1.0 + activation.slope**2) / 2.0
    return {"identity": 1.0, "relu": 0.5}.get(activation.name)


def chi(activation: Activation, sigma_w2, q):
    """sigma_w^2 E[phi'(sqrt(q) z)^2], in closed form where there is one; numbers or arrays."""
    slope2 = _mean_square_slope(activation)
    if slope2 is not None:
        value = sigma_w2 * slope2 * np.ones_like(np.asarray(q, dtype=float))
    else:
        value = sigma_w2 * gaussian_expectation(lambda x: activation.df(x, activation.f(x)) ** 2, q, activation.kinks)
    return float(value) if np.ndim(value) == 0 else value


def length_map(activation: Activation, sigma_w2: float, sigma_b2: float, q: float) -> float:
    """sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2: the variance of the next layer's pre-activations."""
    slope2 = _mean_square_slope(activation)
    if slope2 is not None:
        return sigma_w2 * slope2 * q + sigma_b2
    return sigma_w2 * gaussian_expectation(lambda x: activation.f(x) ** 2, q, activation.kinks) + sigma_b2


def fixed_point(activation: Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0,
                iterations: int = 2000, tol: float = 1e-12) -> float | None:
    """q* of the length map reached from q0, or None when q runs away (grows without bound, or is still
    growing after ``iterations`` steps, as for a linear network with sigma_w = 1 and a bias)."""
    q, prev_step, step = q0, None, 0.0
    for _ in range(iterations):
        nxt = length_map(activation, sigma_w2, sigma_b2, q)
        if not math.isfinite(nxt) or nxt > 1e12:
            return None
        step = nxt - q
        if abs(step) <= tol * max(1.0, q):
            return nxt
        # Near q* the iteration shrinks each step by a ratio r = L'(q*) that can be close to 1
        # (hundreds of steps near the edge of chaos); while the steps keep one direction and a
        # steady ratio, jump to the limit of the geometric series (Aitken).  The result is still
        # a plain step that moved less than tol, so only the speed changes.
        ratio = step / prev_step if prev_step else 0.0
        prev_step = step
        if 0.0 < ratio < 1.0:
            jump = nxt + step * ratio / (1.0 - ratio)
            if jump >= sigma_b2 and abs(jump - nxt) <= 1e6 * abs(step):
                nxt, prev_step = jump, None
        q = nxt
    return None if step > 0 else q


def weight_variance(init: str, fan_in: int, fan_out: int, gain: float, scale: float) -> float:
    """The variance of one weight entry under ``init`` (weights laid out (fan_in, fan_out))."""
    return SCHEMES[canonical_init(init)].variance(fan_in, fan_out, gain, scale)


def sigma_w(config: RunConfig, fan_in: int | None = None, fan_out: int | None = None) -> float:
    """The mean-field sigma_w of a hidden layer (square unless fans are given): sqrt(var * fan_in)."""
    act = get_activation(config.activation, config.leaky_slope)
    gain = resolve_gain(config.init, config.gain, act)
    fi = fan_in or config.width
    return math.sqrt(weight_variance(config.init, fi, fan_out or config.width, gain, config.init_scale) * fi)


NARROW_WIDTH = 50  # below it one network's per-layer factors scatter by 20% and more around the theory


class Fit(StrEnum):
    """How far the theory describes a config at initialization."""

    APPLIES = "applies"
    APPROXIMATE = "approximate"  # it holds on average, one network scatters around it
    DOES_NOT_APPLY = "does not apply"  # no line is drawn


class Reason(StrEnum):
    """Why the theory fits less than exactly (``Applicability.reasons``)."""

    ZERO_WEIGHTS = "zero weights"  # no random signal to propagate: does not apply
    BATCH_NORM = "batch norm"  # batch norm with an activation other than ReLU: does not apply
    NARROW = "narrow"  # width below NARROW_WIDTH: approximate
    ORTHOGONAL = "orthogonal"  # weights not independent: the average factor holds, the scatter is smaller


@dataclass(frozen=True)
class Applicability:
    """Whether the theory describes a config, as a kind and its reasons (data; the words are the report's)."""

    fit: Fit
    reasons: tuple[Reason, ...] = ()
    width: int = 0  # the config's, for NARROW
    activation: str = ""  # the config's, for BATCH_NORM


def applicability(config: RunConfig) -> Applicability:
    """Where the theory does not (or only approximately) describe this config at initialization.
    Measured on the Home presets: at width 256 the geometric-mean factor stays within a few per cent
    of chi, at width 32 it is off by up to 25%, at 16 by up to 45%."""
    init = canonical_init(config.init)
    facts = {"width": config.width, "activation": config.activation}
    if init == "zeros":
        return Applicability(Fit.DOES_NOT_APPLY, (Reason.ZERO_WEIGHTS,), **facts)
    if config.norm == "batch" and config.activation != "relu":
        return Applicability(Fit.DOES_NOT_APPLY, (Reason.BATCH_NORM,), **facts)
    reasons = ((Reason.NARROW,) if config.width < NARROW_WIDTH else ()) + (
        (Reason.ORTHOGONAL,) if init == "orthogonal" else ())
    return Applicability(Fit.APPROXIMATE if Reason.NARROW in reasons else Fit.APPLIES, reasons, **facts)


def line_name(config: RunConfig) -> str:
    """The legend of the predicted profile: which theory the dashed line is."""
    name = {"batch": "batch norm theory (Yang et al. 2019)", "layer": "layer norm mean field"}.get(
        config.norm, "mean-field theory")
    if config.residual:
        name += f", residual α = {config.residual_scale:.3g}"
    return name + (", approximate" if applicability(config).fit is Fit.APPROXIMATE else "")


# A data set's examples enter as at most this many quantiles of their mean(x^2), and fewer in a deep
# network (at most COLUMN_LAYERS quantiles x layers), which bounds predict's cost at depth 100 to a
# few times that of a single input; the per-example correction matters in the first layers only.
INPUT_QUANTILES = 16
COLUMN_LAYERS = 800


def _representatives(mean_squares, depth: int) -> np.ndarray:
    """Equally weighted values standing for the examples' mean squares (their quantiles); one
    value when they are all alike."""
    values = np.atleast_1d(np.asarray(mean_squares, dtype=float)).ravel()
    count = max(1, min(INPUT_QUANTILES, COLUMN_LAYERS // max(depth, 1)))
    if len(values) > count:
        values = np.quantile(values, (np.arange(count) + 0.5) / count)
    return values[:1] if np.ptp(values) == 0 else values


def _weighted_mean(values: np.ndarray, log_weights: np.ndarray) -> np.ndarray:
    """Row-wise mean of ``values`` (rows, n) weighted by exp(log_weights); a plain mean where every
    weight is 0."""
    top = log_weights.max(axis=1, keepdims=True)
    w = np.exp(log_weights - np.where(np.isfinite(top), top, 0.0))
    w[~np.isfinite(top[:, 0])] = 1.0
    return (w * values).sum(axis=1) / w.sum(axis=1)


def _moments(activation: Activation, q) -> tuple:
    """E[phi], E[phi^2] and E[phi'^2] of phi(sqrt(q) z), z ~ N(0, 1), for each q."""
    kinks = activation.kinks
    mean = gaussian_expectation(activation.f, q, kinks)
    square = gaussian_expectation(lambda x: activation.f(x) ** 2, q, kinks)
    return np.asarray(mean), np.asarray(square), np.asarray(chi(activation, 1.0, q))


def _predict_cured(config: RunConfig, sw2: list[float], sb2: float, mean_squares: np.ndarray) -> pd.DataFrame:
    """``predict`` for a network with normalization or residual connections (see ``cured_recursion``
    below).  Per unit and layer it carries the mean m, the second moment s and,
    for batch normalization, the variance over the batch u of h_l, with the layers' outputs taken as
    independent of their inputs (true for wide random layers up to O(1/sqrt(width))):

        z_l ~ N(0, q_l),  q_l = sigma_w^2 s_{l-1} + sigma_b^2 without normalization, 1 with it
        h_l = [h_{l-1}] + a_l phi(z_l)     (the shortcut and a_l = alpha for 2 <= l with residual; a_1 = 1)
        going back from h_l to h_{l-1} the squared signal g^2 is multiplied by
            [1] + a_l^2 sigma_w^2 E[phi'(z_l)^2] / D_l
        where D_l, the square of what the normalization divides by, is 1 (none), sigma_w^2 u_{l-1}
        (batch: each unit's variance over the batch) or sigma_w^2 s_{l-1} + sigma_b^2 (layer: each
        example's variance over the units); and delta_rms_l^2 = a_l^2 E[phi'(z_l)^2] g_l^2.

    For batch norm + ReLU this gives Yang et al.'s pi/(pi-1) per layer; for residual ReLU with He
    weights, (1 + alpha^2) per layer (Hanin & Rolnick 2018; Zhang et al. 2019).  With normalization the
    examples share one column (z is standardized); without it each keeps its own q, as in ``predict``."""
    act = get_activation(config.activation, config.leaky_slope)
    hidden, norm = config.depth, config.norm
    alpha = config.residual_scale if config.residual else 0.0
    columns = mean_squares[:1] if norm != "none" else mean_squares
    s, m, u = np.asarray(columns, dtype=float), np.zeros(len(columns)), np.zeros(len(columns))
    q_rows, log_d, log_step = [], [], []
    for i in range(hidden):
        shortcut = config.residual and i > 0
        a = alpha if shortcut else 1.0
        q = sw2[i] * s + sb2 if norm == "none" else np.ones_like(s)
        mean, square, slope2 = _moments(act, q)
        divisor = {"none": 1.0, "batch": sw2[i] * u, "layer": sw2[i] * s + sb2}[norm]
        with np.errstate(divide="ignore", invalid="ignore"):
            # the factor from h_l back to h_{l-1} (unused for layer 1, whose input is the data)
            log_step.append(np.log((1.0 if shortcut else 0.0) + a * a * sw2[i] * slope2 / divisor))
            log_d.append(np.log(a * a * slope2))
        q_rows.append(q)
        if shortcut:
            s, m, u = s + 2 * a * m * mean + a * a * square, m + a * mean, u + a * a * (square - mean**2)
        else:
            s, m, u = a * a * square, a * mean, a * a * (square - mean**2)
    # log g_l^2 relative to the last hidden layer's h, then log delta_l^2
    log_g = np.zeros((hidden, len(columns)))
    for i in range(hidden - 2, -1, -1):
        log_g[i] = log_g[i + 1] + log_step[i + 1]
    log_signal = log_g + np.array(log_d)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_mean = logsumexp(log_signal, axis=1) - math.log(len(columns))
        ratio = np.exp(0.5 * (log_mean - log_mean[-1]))
        factor = np.append(np.exp(log_mean[:-1] - log_mean[1:]), np.nan)
    return pd.DataFrame({"layer": np.arange(1, hidden + 1), "q": np.mean(q_rows, axis=1), "chi": factor,
                         "predicted_delta_ratio": ratio})


def predict(config: RunConfig, input_dim: int, n_classes: int, input_mean_square=1.0) -> pd.DataFrame:
    """Predicted q_l, chi_l and delta_rms_l / delta_rms_{L-1} for hidden layers l = 1..L-1.

    input_mean_square: mean over features of x^2, one number or one per example (n,).  The theory is
    per input (q_1 = sigma_w1^2 * mean(x^2) + sigma_b^2 for each x), and with low-dimensional data
    such as the 2-d spirals the examples' q_1 differ by orders of magnitude, which changes the first
    layers' chi by up to 2x; so each example (or quantile of them) is propagated on its own and the
    columns describe the squared error signal averaged over examples (the output deltas taken alike):
    q is the examples' mean q_l, chi the factor by which that average changes from layer l + 1 to l.
    Columns: layer, q, chi, predicted_delta_ratio.  Empty for a network without hidden layers.
    """
    act = get_activation(config.activation, config.leaky_slope)
    gain = resolve_gain(config.init, config.gain, act)
    sw2 = [weight_variance(config.init, fi, fo, gain, config.init_scale) * fi
           for fi, fo in config.layer_shapes(input_dim, n_classes)]
    sb2 = config.bias_std**2
    hidden = config.depth
    if hidden == 0:
        return pd.DataFrame(columns=["layer", "q", "chi", "predicted_delta_ratio"])
    mean_squares = _representatives(input_mean_square, hidden)
    if not config.plain:
        return _predict_cured(config, sw2, sb2, mean_squares)
    q = np.zeros((hidden, len(mean_squares)))  # q[l, k]: layer l + 1, example (quantile) k
    q[0] = sw2[0] * mean_squares + sb2
    # once every example has reached the same q (the fixed point, within a few layers in most
    # regimes) one column stands for all, which keeps a deep network as cheap as a single input
    alike = np.zeros(hidden, dtype=bool)
    for l in range(hidden):
        alike[l] = np.ptp(q[l]) <= 1e-12 * np.max(q[l])
        if l + 1 < hidden:
            q[l + 1] = length_map(act, sw2[l + 1], sb2, q[l, :1] if alike[l] else q[l])
    slope2 = np.empty_like(q)  # E[phi'^2] per layer and example
    slope2[alike] = chi(act, 1.0, q[alike, :1])
    slope2[~alike] = chi(act, 1.0, q[~alike])
    # chi of layer l uses the weights that carry the signal back into it: W_{l+1}
    chis = np.array(sw2[1:])[:, None] * slope2
    # log of each example's squared error signal at layer l, up to the output delta's size
    log_signal = np.empty_like(q)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_signal[-1] = np.log(slope2[-1])
        log_chi = np.log(chis)
        for l in range(hidden - 2, -1, -1):
            log_signal[l] = log_signal[l + 1] + log_chi[l]
        log_mean = logsumexp(log_signal, axis=1)
        ratio = np.exp(0.5 * (log_mean - log_mean[-1]))
        upstream = np.vstack([log_signal[1:], np.zeros((1, len(mean_squares)))])
        mean_chi = _weighted_mean(chis, upstream)
    return pd.DataFrame({"layer": np.arange(1, hidden + 1), "q": q.mean(axis=1), "chi": mean_chi,
                         "predicted_delta_ratio": ratio})


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


def _pair_expectation(g, q: float, c: float) -> float:
    """E[g(u1) g(u2)] for (u1, u2) Gaussian with variances q and correlation c: the trapezoid rule in
    (z1, z2) on [-10, 10]^2, u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2), with a step that
    resolves g at scale sqrt(q) (exponentially accurate for smooth g; Gauss-Hermite with 80 nodes was
    1% off for tanh' at q = 8, as the module ``gaussian`` says of fixed rules)."""
    h = min(0.05, 0.2 / math.sqrt(q)) if q > 0 else 0.05
    z = np.linspace(-10.0, 10.0, min(2 * int(10.0 / h) + 1, 2001))
    w = np.full(len(z), z[1] - z[0]) * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    u1 = math.sqrt(q) * z[:, None]
    u2 = math.sqrt(q) * (c * z[:, None] + math.sqrt(max(1.0 - c * c, 0.0)) * z[None, :])
    return float(w @ (g(u1) * g(u2)) @ w)


def _correlation_fixed_point(activation: Activation, sigma_w2: float, sigma_b2: float, q_star: float) -> float:
    """c* < 1: the stable fixed point of the correlation map C(c) = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*
    in the chaotic phase, where c = 1 repels.  C(0) = (sigma_w^2 E[phi]^2 + sigma_b^2) / q* >= 0 and C(c) < c just below 1, so
    a root of C(c) - c lies in [0, 1); 1.0 when none is found that far from 1 (at the edge itself)."""
    from scipy.optimize import brentq

    def gap(c):
        return (sigma_w2 * _pair_expectation(activation.f, q_star, c) + sigma_b2) / q_star - c

    for below in (1e-2, 1e-4, 1e-6):
        if gap(1.0 - below) < 0:
            return brentq(gap, 0.0, 1.0 - below, xtol=1e-12) if gap(0.0) > 0 else 0.0
    return 1.0


def depth_scale(activation, sigma_w, sigma_b: float = 0.0, leaky_slope: float = 0.01):
    """xi_c, the depth over which two inputs' correlation approaches its fixed point (Schoenholz et al.
    2017, eq. 9): xi_c = -1 / ln chi_c with chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] at (q*, c*).  In the
    ordered phase c* = 1 and chi_c is chi* (``regime``); in the chaotic phase c* < 1.  It diverges at the
    edge of chaos (chi* = 1); the paper finds networks trainable to depths of about 6 xi_c.

    activation: an Activation or its name; sigma_w: a number or an array (then one xi per entry).
    inf at the edge itself, nan where the length map has no fixed point (relu-like activations in the
    chaotic phase)."""
    act = get_activation(activation, leaky_slope) if isinstance(activation, str) else activation
    sw = np.asarray(sigma_w, dtype=float)
    out = np.empty(sw.shape)
    for i, s in np.ndenumerate(sw):
        r = regime(act, float(s), sigma_b)
        if r.chi_star is None:
            out[i] = math.nan
            continue
        chi_c = r.chi_star
        if chi_c > 1.0:  # chaotic: correlations settle at c* < 1, where chi_c < 1 again
            c_star = _correlation_fixed_point(act, s * s, sigma_b**2, r.q_star)
            chi_c = s * s * _pair_expectation(lambda x: act.df(x, act.f(x)), r.q_star, c_star)
        out[i] = math.inf if chi_c >= 1.0 else -1.0 / math.log(chi_c) if chi_c > 0 else math.nan
    return float(out) if out.ndim == 0 else out


def measured_factor(layers: pd.DataFrame, epoch=0) -> pd.Series:
    """Measured (delta_rms_l / delta_rms_{l+1})^2 for hidden layers l = 1..L-2 at ``epoch``."""
    at = layers[layers["epoch"] == epoch].set_index("layer")["delta_rms"]
    hidden = int(at.index.max()) - 1
    idx = range(1, hidden)
    with np.errstate(all="ignore"):  # a signal that underflowed to 0 gives NaN, not a warning
        return pd.Series([(at.loc[l] / at.loc[l + 1]) ** 2 for l in idx], index=list(idx), name="measured_chi",
                         dtype=float)


def overlay_frame(predicted: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """``predict``'s profile scaled to pass through the measured last hidden layer at initialization
    (columns layer, delta_rms), for drawing over the measurement."""
    at0 = layers[layers["epoch"] == layers["epoch"].min()].set_index("layer")["delta_rms"]
    if predicted.empty or len(at0) < 2:
        return pd.DataFrame(columns=["layer", "delta_rms"])
    anchor = at0.loc[int(predicted["layer"].max())]
    return pd.DataFrame({"layer": predicted["layer"], "delta_rms": predicted["predicted_delta_ratio"] * anchor})


THEORY_AGREEMENT = 0.10  # relative: the theory describes a network whose per-layer factor is this close
# and whose dashed profile is within this factor of the measured delta_rms at every hidden layer (a 1.5%
# error per layer, as at width 256, compounds to 1.3x over 30 layers; a whole 2x is not "describes")
PROFILE_AGREEMENT = 1.5


def overlay_gap(overlay: pd.DataFrame, layers: pd.DataFrame) -> tuple[int, float] | None:
    """Where the dashed profile (``overlay_frame``) is farthest from the measurement at initialization:
    (layer, measured / predicted delta_rms there); None when no layer has both positive."""
    at0 = layers[layers["epoch"] == layers["epoch"].min()].set_index("layer")["delta_rms"]
    line = overlay.set_index("layer")["delta_rms"].astype(float)
    measured = at0.reindex(line.index).astype(float)
    ok = (line > 0) & (measured > 0) & np.isfinite(line) & np.isfinite(measured)
    if not ok.any():
        return None
    log_gap = np.log(measured[ok] / line[ok])
    layer = int(log_gap.abs().idxmax())
    return layer, float(np.exp(log_gap.loc[layer]))


def chi_means(predicted: pd.DataFrame, measured_chi: pd.Series) -> tuple[float, float] | None:
    """Geometric means of the predicted and the measured per-layer factor over the layers where both
    are positive; None when there is no such layer (no error signal to compare)."""
    pred = predicted.set_index("layer")["chi"].reindex(measured_chi.index)
    ok = (pred > 0) & (measured_chi > 0)
    if not ok.any():
        return None
    return float(np.exp(np.log(pred[ok]).mean())), float(np.exp(np.log(measured_chi[ok]).mean()))


@dataclass(frozen=True)
class Comparison:
    """A run's measured error-signal profile at initialization against the theory's prediction.

    overlay: the predicted profile to draw over the measurement (None where the theory does not apply);
    predicted: ``predict``'s table; measured_chi: ``measured_factor`` at the first record;
    applies: ``applicability`` of the run's config; trained_epoch: the epoch a chart shows when it is after
    initialization (None at initialization).
    """

    overlay: pd.DataFrame | None
    predicted: pd.DataFrame
    measured_chi: pd.Series
    applies: Applicability
    trained_epoch: float | None
    gap: tuple[int, float] | None = None  # ``overlay_gap``: where the dashed line is farthest from the measurement

    @property
    def means(self) -> tuple[float, float] | None:
        """(predicted, measured) geometric-mean factors, see ``chi_means``."""
        if self.predicted.empty or self.measured_chi.empty:
            return None
        return chi_means(self.predicted, self.measured_chi)


def against_measurement(result, epoch=None) -> Comparison | None:
    """For a finished run, the theory's prediction next to its measurement at initialization; None
    when there is nothing to compare (no data, fewer than two hidden layers, no records).  ``epoch``
    is the one a chart shows."""
    config, data = result.config, result.data
    if data is None or config.depth < 2 or result.layers.empty:
        return None
    applies = applicability(config)
    first = result.layers["epoch"].min()
    trained_epoch = epoch if epoch is not None and epoch != first else None
    if applies.fit is Fit.DOES_NOT_APPLY:
        return Comparison(None, pd.DataFrame(columns=["layer", "q", "chi", "predicted_delta_ratio"]),
                          pd.Series(dtype=float), applies, trained_epoch)
    # the examples the measurement was taken on (train's probe set), each with its own q_1
    mean_squares = np.mean(data.X_train[:config.probe_size].astype(float) ** 2, axis=1)
    table = predict(config, data.input_dim, data.classes, mean_squares)
    measured = measured_factor(result.layers, first)
    if config.residual and config.depth >= 3:
        # layer 1 has no shortcut: its step is of another kind, and the factor is the shortcut layers' (2..L)
        measured = measured.drop(index=1)
    overlay = overlay_frame(table, result.layers)
    return Comparison(overlay, table, measured, applies, trained_epoch, overlay_gap(overlay, result.layers))


def predict_for(config: RunConfig) -> pd.DataFrame:
    """``predict`` on the config's own data (at most 2,000 examples, one q_1 per example, as the pages do)."""
    from lab.data.datasets import make_dataset

    data = make_dataset(config.replace(samples=min(config.n_samples, 2000)))
    return predict(config, data.input_dim, data.classes, np.mean(data.X_train**2, axis=1))
