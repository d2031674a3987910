"""What free probability predicts for the singular values s of J_l = d h_l / d h_1 (``lab.engine.jacobian``).

J_l J_l^T has the eigenvalues s^2.  For a wide network it is a product of free matrices, one pair per layer
crossed: W_k W_k^T (the weights) and D_k^2 = diag(phi'(z_k)^2), z_k ~ N(0, q_k).  For free factors the
S-transform multiplies, S_{AB} = S_A S_B, and its first two coefficients are S(z) = 1/m1 - (m2 - m1^2)/m1^3 z + ...
so over the layers k = 2..l crossed (Pennington, Schoenholz & Ganguli 2017, eqs. 12-16; 2018):

    mean of s^2                    = prod_k chi_k,     chi_k = sigma_w^2 mu1(q_k)          (the mean-field chi)
    variance of s^2 / (mean s^2)^2 = sum_k (mu2(q_k) / mu1(q_k)^2 - 1 - s1)

with mu_j(q) = E[phi'(sqrt(q) z)^(2j)] and s1 the weights' first S-coefficient: -1 for i.i.d. weights (Gaussian
or uniform: Marchenko-Pastur, whose normalized variance is 1 for a square matrix) and 0 for orthogonal ones
(W W^T = sigma_w^2 I).  So a linear network with orthogonal weights keeps every s = 1 (variance 0), Gaussian
weights add 1 per layer whatever the activation, and ReLU (mu2 / mu1^2 = 2) adds at least 1 per layer even with
orthogonal weights: it can never be isometric.  tanh with orthogonal weights at q* -> 0 and chi = 1 has
mu2 / mu1^2 -> 1: the spectrum stays near 1 at any depth (dynamical isometry).

The formulas hold for plain networks (no normalization, no shortcut) with random weights; for the others
``applicability`` says the theory does not cover them, and no line is drawn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lab.data.datasets import Dataset, make_dataset
from lab.engine import jacobian as jac
from lab.engine.activations import get_activation
from lab.engine.config import RunConfig
from lab.engine.init import SCHEMES, canonical_init, resolve_gain
from lab.engine.model import MLP, build_mlp
from lab.seeds import run_generators

from .gaussian import gaussian_expectation
from .meanfield import NARROW_WIDTH, Fit, chi, fixed_point, length_map, weight_variance


@dataclass(frozen=True)
class SpectrumFit:
    """Whether the free-probability prediction covers a config: a kind and the reason, as data."""

    fit: Fit
    reason: str = ""  # "cures", "zero weights", "no fixed point", "narrow", "trained" (the report puts it into words)
    weights: str = ""  # "i.i.d." or "orthogonal"


def weight_kind(config: RunConfig) -> str:
    """The kind of the hidden weights' distribution: "orthogonal", "zeros" or "i.i.d." (normal or uniform)."""
    sampler = SCHEMES[canonical_init(config.init)].sampler
    return {"orthogonal": "orthogonal", "zeros": "zeros"}.get(sampler, "i.i.d.")


def s1(kind: str) -> float:
    """The weights' first S-transform coefficient (normalized): -1 for i.i.d., 0 for orthogonal."""
    return {"i.i.d.": -1.0, "orthogonal": 0.0}[kind]


def applicability(config: RunConfig, inputs: str = "data") -> SpectrumFit:
    """Whether ``predict`` describes the spectrum of this config's network at initialization."""
    kind = weight_kind(config)
    if kind == "zeros":
        return SpectrumFit(Fit.DOES_NOT_APPLY, "zero weights", kind)
    if not config.plain:
        return SpectrumFit(Fit.DOES_NOT_APPLY, "cures", kind)
    if inputs == "fixed-point" and q_star(config) is None:
        return SpectrumFit(Fit.DOES_NOT_APPLY, "no fixed point", kind)
    if config.width < NARROW_WIDTH:
        return SpectrumFit(Fit.APPROXIMATE, "narrow", kind)
    return SpectrumFit(Fit.APPLIES, "", kind)


def hidden_sigma_w2(config: RunConfig) -> float:
    """sigma_w^2 of the square hidden layers 2..L-1."""
    act = get_activation(config.activation, config.leaky_slope)
    gain = resolve_gain(config.init, config.gain, act)
    w = config.width
    return weight_variance(config.init, w, w, gain, config.init_scale) * w


def q_star(config: RunConfig) -> float | None:
    """The fixed point of the hidden layers' length map (None when the length runs away)."""
    act = get_activation(config.activation, config.leaky_slope)
    return fixed_point(act, hidden_sigma_w2(config), config.bias_std**2)


def slope_moments(config: RunConfig, q) -> tuple[np.ndarray, np.ndarray]:
    """mu1 = E[phi'^2] and mu2 = E[phi'^4] of phi'(sqrt(q) z), z ~ N(0, 1), for each q."""
    act = get_activation(config.activation, config.leaky_slope)
    q = np.atleast_1d(np.asarray(q, dtype=float))
    mu1 = np.atleast_1d(chi(act, 1.0, q))
    mu2 = np.atleast_1d(gaussian_expectation(lambda x: act.df(x, act.f(x)) ** 4, q, act.kinks))
    return mu1, mu2


def first_q(config: RunConfig, input_dim: int, mean_squares) -> np.ndarray:
    """q_1 = sigma_w1^2 mean(x^2) + sigma_b^2 for each input, from its mean square."""
    act = get_activation(config.activation, config.leaky_slope)
    gain = resolve_gain(config.init, config.gain, act)
    sw1 = weight_variance(config.init, input_dim, config.width, gain, config.init_scale) * input_dim
    return sw1 * np.atleast_1d(np.asarray(mean_squares, dtype=float)) + config.bias_std**2


def predict(config: RunConfig, layers, q1) -> pd.DataFrame:
    """The predicted mean and variance of s^2 at each hidden layer l in ``layers`` (l >= 2), pooled over inputs
    whose first layers have pre-activation variances ``q1`` (one per input; ``[q_star(config)]`` for inputs at
    the fixed point).  Columns depth, mean_s2, var_s2, normalized_var (var / mean^2 of each input, averaged).
    Pooling n inputs is a mixture: its mean is the inputs' mean, its second moment theirs."""
    act = get_activation(config.activation, config.leaky_slope)
    sw2, sb2 = hidden_sigma_w2(config), config.bias_std**2
    layers = [int(l) for l in layers]
    last = max(layers, default=1)
    q = [np.atleast_1d(np.asarray(q1, dtype=float))]  # q[k - 1]: layer k's pre-activation variance per input
    for _ in range(2, last + 1):
        q.append(np.array([length_map(act, sw2, sb2, float(v)) for v in q[-1]]))
    kind = weight_kind(config)
    log_mean = np.zeros(len(q[0]))
    norm_var = np.zeros(len(q[0]))
    rows = {}
    for k in range(2, last + 1):
        mu1, mu2 = slope_moments(config, q[k - 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            log_mean = log_mean + np.log(sw2 * mu1)
            norm_var = norm_var + mu2 / mu1**2 - 1.0 - s1(kind)
        if k in layers:
            with np.errstate(over="ignore", invalid="ignore"):
                mean = np.exp(log_mean)
                second = mean**2 * (1.0 + norm_var)
                rows[k] = (float(mean.mean()), float(second.mean() - mean.mean() ** 2), float(norm_var.mean()))
    return pd.DataFrame([{"depth": k, "mean_s2": m, "var_s2": v, "normalized_var": nv}
                         for k, (m, v, nv) in sorted(rows.items())],
                        columns=["depth", "mean_s2", "var_s2", "normalized_var"])


BATCH = 256  # the examples that go forward with the probe inputs (batch norm's statistics come from them)
FIXED_POINT_STREAM = 26  # the fixed-point inputs' generator: default_rng([seed, 26]), apart from the run's streams


@dataclass(frozen=True)
class Measured:
    """A network's Jacobian spectrum with the theory beside it (``measure``)."""

    spectrum: jac.Spectrum
    theory: pd.DataFrame | None  # ``predict`` at the spectrum's layers, or None where it does not apply
    fit: SpectrumFit
    q_star: float | None

    def theory_mean_s2(self, depth: int) -> float:
        """The theory's mean of s^2 at hidden layer ``depth``: NaN where there is no theory line, or not there."""
        if self.theory is None:
            return math.nan
        at = self.theory.loc[self.theory["depth"] == depth, "mean_s2"]
        return float(at.iloc[0]) if len(at) else math.nan


def measure(config: RunConfig, model: MLP | None = None, data: Dataset | None = None, inputs: str = "data",
            layers=None, probes: int | None = None) -> Measured:
    """The singular values of J_l for ``config``'s network (its weights at initialization unless ``model`` is
    given, a trained one say, which the theory does not describe) at ``layers`` (default ``jac.spectrum_layers``),
    at ``probes`` inputs (default ``jac.probe_count`` of the width): the first training examples of its data
    (``data``, or the config's own made again), or inputs at the fixed point q* (``inputs="fixed-point"``, drawn
    from the seed).  Raises ValueError when the network has fewer than two
    hidden layers, or fixed-point inputs are asked for where the length map has none."""
    if inputs not in jac.INPUT_KINDS:
        raise ValueError(f"inputs must be one of {', '.join(jac.INPUT_KINDS)}, not {inputs!r}")
    if config.depth < 2:
        raise ValueError("a Jacobian between hidden layers needs at least 2 hidden layers")
    probes = jac.probe_count(config.width) if probes is None else probes
    data_rng, init_rng, _ = run_generators(config.seed)
    fixed = q_star(config) if config.plain else None
    if inputs == "fixed-point" and fixed is None:
        raise ValueError("this network has no fixed point q* to start from (its length runs away, or it has "
                         "normalization or shortcuts): use inputs from the data")
    given = model is not None
    if inputs == "data" or model is None:
        data = data if data is not None else make_dataset(config, data_rng)
    if model is None:
        model = build_mlp(config, data.input_dim, data.classes, init_rng)
    if inputs == "data":
        X = data.X_train[:BATCH]
        h1 = jac.first_hidden(model, X)
        q1 = first_q(config, data.input_dim, np.mean(np.asarray(X[:probes], dtype=float) ** 2, axis=1))
    else:
        rng = np.random.default_rng([config.seed, FIXED_POINT_STREAM])
        h1 = jac.fixed_point_inputs(model, fixed, max(probes, 64 if config.norm == "batch" else probes), rng)
        q1 = [fixed]
    spectrum = jac.spectrum(model, h1, layers, probes, inputs)
    # the theory describes the random weights of initialization, not a model's own (trained, say)
    fit = SpectrumFit(Fit.DOES_NOT_APPLY, "trained", weight_kind(config)) if given else applicability(config, inputs)
    predicted = None if fit.fit is Fit.DOES_NOT_APPLY else predict(config, spectrum.layers, q1)
    return Measured(spectrum, predicted, fit, fixed)
