"""The input-output Jacobian of a network's hidden layers and its singular values (dynamical isometry).

J_l = d h_l / d h_1 maps a change of the first hidden layer's output to the change it makes at hidden layer l,
a width x width matrix per input.  It is the product of the layers' own Jacobians: for a plain layer
h_k = phi(h_{k-1} W_k + b_k), a row vector dh_{k-1} becomes dh_{k-1} W_k D_k with D_k = diag(phi'(z_k)), so

    dh_l = dh_1 P_l,   P_l = (W_2 D_2) (W_3 D_3) ... (W_l D_l),   J_l = P_l^T

with a normalization's Jacobian between W_k and D_k (layer norm: per example, (I - 11^T/n - xhat xhat^T/n) / std,
then gamma; batch norm "with the batch fixed": its batch statistics held constant, so diag(gamma / std)), and
I + alpha (...) for a layer with a shortcut.  The running product P_l is carried layer by layer (one matrix
product per layer and input) and its singular values taken at the layers asked for (``spectrum_layers``):
the SVD, not the product, is what costs.

Pennington, Schoenholz & Ganguli (2017) showed that it is the whole distribution of these singular values, not
their mean square (the mean-field chi^(l-1)), that decides whether a deep network trains fast: the mean of s^2
can be 1 while most directions are crushed.  ``lab.theory.spectrum`` predicts the mean and the variance of s^2.

The products are exact (no finite differences); float64 resolves a singular value only down to about
``FLOOR_EPS`` times the largest of its matrix (``Spectrum.floor``): below that a value is numerically zero.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .model import MLP
from .normalization import BatchNorm, LayerNorm
from .threads import blas_threads

INPUT_KINDS = ("data", "fixed-point")  # where the probe inputs come from (the CLI's --inputs, the pages' choice)
PROBE_INPUTS = 4  # inputs whose Jacobians are taken, at most, by default
PROBE_VALUES = 1024  # ... and fewer in wide networks: about this many singular values per layer draw a density
ALL_LAYERS_UP_TO = 33  # networks up to this many hidden layers get a spectrum at every layer
SPREAD_LAYERS = 24  # deeper ones at about this many layers, spaced evenly in log(depth)
FLOOR_EPS = 1e-13  # a singular value below FLOOR_EPS * the largest is numerically zero (float64's SVD of a product)


def probe_count(width: int) -> int:
    """How many probe inputs the pages and the CLI take by default: ``PROBE_INPUTS``, fewer in wide networks
    (each input gives ``width`` singular values, and its SVDs cost width^3)."""
    return max(1, min(PROBE_INPUTS, PROBE_VALUES // max(width, 1)))


def spectrum_layers(hidden: int, most: int = SPREAD_LAYERS) -> list[int]:
    """The hidden layers l >= 2 at which the spectrum of J_l is taken: all of them in a network of up to
    ``ALL_LAYERS_UP_TO`` hidden layers, otherwise about ``most`` spaced evenly in log(l - 1), always with the
    last.  Each costs one SVD per input (about 8 ms at width 256 on these machines), so that depth 128 stays
    interactive."""
    if hidden < 2:
        return []
    if hidden <= ALL_LAYERS_UP_TO:
        return list(range(2, hidden + 1))
    crossed = np.unique(np.round(np.geomspace(1, hidden - 1, most)).astype(int))
    return sorted({int(c) + 1 for c in crossed} | {hidden})


@dataclass(frozen=True)
class Spectrum:
    """The singular values of J_l = d h_l / d h_1 at some hidden layers l, for a few inputs."""

    layers: np.ndarray  # (K,) the hidden layers l
    values: np.ndarray  # (K, N, width) singular values per layer and input, descending; NaN from ``overflow_at`` on
    inputs: str  # "data" or "fixed-point"
    overflow_at: int | None = None  # the first layer whose product left float64's range, or None

    @property
    def width(self) -> int:
        return self.values.shape[2]

    @property
    def floor(self) -> np.ndarray:
        """(K, N): at or below it a singular value is numerically zero (``FLOOR_EPS`` times its matrix's largest; 0
        for a matrix that is all zeros, every one of whose singular values is then numerically zero)."""
        return FLOOR_EPS * self.values[:, :, 0]

    def frame(self) -> pd.DataFrame:
        """One row per layer, input and singular value: depth, example, index, singular_value (index 0 the
        largest).  Layers past an overflow are left out."""
        k, n, w = self.values.shape
        finite = np.isfinite(self.values).all(axis=(1, 2))
        values = self.values[finite]
        kept = int(finite.sum())
        return pd.DataFrame({
            "depth": np.repeat(self.layers[finite], n * w),
            "example": np.tile(np.repeat(np.arange(n), w), kept),
            "index": np.tile(np.arange(w), kept * n),
            "singular_value": values.reshape(-1),
        })

    def summary(self) -> pd.DataFrame:
        """Per layer (finite ones): the mean and the variance of s^2 over all inputs' singular values, the 5th,
        50th and 95th percentiles of s, the largest s, the share of s below the numerical floor, and decades_90:
        how many orders of magnitude the middle 90% span, log10(p95 / p5), with a p5 below the floor taken at the
        floor (FLOOR_EPS times the largest s), so that it is a lower bound there, not rounding noise (NaN when the 95th
        percentile is below the floor too).  Computed once per spectrum, as every chart and caption of a page
        asks for it: do not modify the table."""
        if "_summary" not in self.__dict__:
            object.__setattr__(self, "_summary", self._summarize())
        return self.__dict__["_summary"]

    def _summarize(self) -> pd.DataFrame:
        rows = []
        for l, v, floor in zip(self.layers, self.values, self.floor):
            if not np.isfinite(v).all():
                break
            with np.errstate(over="ignore", invalid="ignore"):  # s near float64's top: s^2 is inf, said as such
                s2 = v.ravel() ** 2
                var = float(s2.var())
            p5, p50, p95 = np.percentile(v.ravel(), [5, 50, 95])
            s_max = float(v.max())
            with np.errstate(divide="ignore"):
                resolved = p95 > FLOOR_EPS * s_max  # else 95% and more are numerically zero: no span to give
                decades = math.log10(p95 / max(p5, FLOOR_EPS * s_max)) if resolved else math.nan
            rows.append({"depth": int(l), "mean_s2": float(s2.mean()), "var_s2": var,
                         "s_p5": float(p5), "s_p50": float(p50), "s_p95": float(p95), "s_max": s_max,
                         "share_below_floor": float((v <= floor[:, None]).mean()), "decades_90": decades})
        return pd.DataFrame(rows, columns=["depth", "mean_s2", "var_s2", "s_p5", "s_p50", "s_p95", "s_max",
                                           "share_below_floor", "decades_90"])


def first_hidden(model: MLP, X: np.ndarray, mode: str = "probe") -> np.ndarray:
    """h_1 for the inputs X (N, D): the first hidden layer's output, where every J_l starts."""
    block = model.blocks[0]
    return block.forward(np.asarray(X, dtype=model.flat_params.dtype), None, mode, cache=False)


def fixed_point_inputs(model: MLP, q_star: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n outputs of the first hidden layer as they are at the length map's fixed point q*:
    h_1 = phi(sqrt(q*) xi), xi ~ N(0, I), so that every later layer's pre-activations have variance q*
    (the theory of Pennington et al. is stated there)."""
    width = model.blocks[0].affine.params["W"].shape[1]
    z = math.sqrt(q_star) * rng.standard_normal((n, width))
    return model.activation.f(z).astype(model.flat_params.dtype, copy=False)


def _norm_product(norm, u: np.ndarray, Q: np.ndarray, probes: int, mode: str):
    """The norm's output for the batch u (B, w), and Q (probes, w, w) times the norm's Jacobian at each probe
    input (row vectors: d out = d u J_norm).  Batch norm keeps its statistics fixed (those of this batch, or the
    running ones in evaluation)."""
    gamma, beta, eps = norm.params["gamma"], norm.params["beta"], norm.eps
    if isinstance(norm, BatchNorm):
        if mode == "eval":
            mean, var = norm.running_mean, norm.running_var
        else:
            mean, var = u.mean(axis=0), u.var(axis=0)
        scale = gamma / np.sqrt(var + eps)
        return (u - mean) * scale + beta, Q * scale
    if isinstance(norm, LayerNorm):
        n = u.shape[1]
        centred = u - u.mean(axis=1, keepdims=True)
        inv_std = 1.0 / np.sqrt((centred**2).mean(axis=1) + eps)
        xhat = centred * inv_std[:, None]
        # Q (I - 11^T/n - xhat xhat^T / n) inv_std, then times gamma per column
        x = xhat[:probes]
        out = Q - Q.sum(axis=2, keepdims=True) / n - np.einsum("pij,pj->pi", Q, x)[:, :, None] * x[:, None, :] / n
        out *= (inv_std[:probes, None, None] * gamma)
        return xhat * gamma + beta, out
    raise TypeError(f"no Jacobian for a {type(norm).__name__}")


def products(model: MLP, h1: np.ndarray, probes: int | None = None, mode: str = "probe"):
    """Yield (l, P_l) for hidden layers l = 2, 3, ..., L-1: P_l (probes, w, w) with dh_l = dh_1 P_l for each of
    the first ``probes`` rows of h1 (all of them by default).  The whole batch h1 goes forward, for batch
    norm's statistics.  The array yielded is reused for the next layer: copy what you keep."""
    h = np.asarray(h1, dtype=np.float64)
    probes = len(h) if probes is None else min(probes, len(h))
    width = h.shape[1]
    P = np.broadcast_to(np.eye(width), (probes, width, width)).copy()
    act = model.activation
    for l, block in enumerate(model.blocks[1:], start=2):
        W, b = block.affine.params["W"], block.affine.params["b"]
        u = h @ W + b
        Q = np.matmul(P, W)  # (probes, w, w): P W
        if block.norm is not None:
            z, Q = _norm_product(block.norm, u, Q, probes, mode)
        else:
            z = u
        a = act.f(z)
        Q *= act.df(z[:probes], a[:probes])[:, None, :]  # times D_l: scales column j by phi'(z_j)
        if block.alpha is not None:
            Q *= block.alpha
            Q += P
            h = h + block.alpha * a
        else:
            h = a
        P = Q
        yield l, P


def jacobian(model: MLP, h1: np.ndarray, layer: int, probes: int | None = None, mode: str = "probe") -> np.ndarray:
    """J_layer = d h_layer / d h_1 (probes, w, w), entry [p, i, j] = d h_layer[i] / d h_1[j] at probe input p."""
    if layer == 1:
        n = len(h1) if probes is None else min(probes, len(h1))
        return np.broadcast_to(np.eye(h1.shape[1]), (n, h1.shape[1], h1.shape[1])).copy()
    for l, P in products(model, h1, probes, mode):
        if l == layer:
            return np.swapaxes(P, 1, 2).copy()
    raise ValueError(f"the network has no hidden layer {layer} (it has {len(model.blocks)})")


def spectrum(model: MLP, h1: np.ndarray, layers: Sequence[int] | None = None, probes: int = PROBE_INPUTS,
             inputs: str = "data", mode: str = "probe") -> Spectrum:
    """The singular values of J_l at ``layers`` (default ``spectrum_layers``) for the first ``probes`` rows of
    h1 (``first_hidden`` of some data, or ``fixed_point_inputs``).  A product that leaves float64's range ends
    the walk: the layers from there on get NaN and ``overflow_at`` says where."""
    hidden = len(model.blocks)
    wanted = sorted({int(l) for l in (spectrum_layers(hidden) if layers is None else layers)})
    bad = [l for l in wanted if not 2 <= l <= hidden]
    if bad:
        raise ValueError(f"layers {bad} are not hidden layers 2..{hidden} of this network")
    probes = min(probes, len(h1))
    values = np.full((len(wanted), probes, h1.shape[1]), np.nan)
    at, overflow = {l: i for i, l in enumerate(wanted)}, None
    if wanted:
        # BLAS on one thread below lab.engine.threads' width, as in training: with another process on the cores,
        # OpenBLAS's two threads spin and the SVDs of width 100 took 2.8-8.8 s instead of 0.1 s (measured)
        with np.errstate(all="ignore"), blas_threads(h1.shape[1]):
            for l, P in products(model, h1, probes, mode):
                if not np.isfinite(P).all():
                    overflow = l
                    break
                if l in at:
                    values[at[l]] = np.linalg.svd(P, compute_uv=False)
                if l >= wanted[-1]:
                    break
    return Spectrum(np.array(wanted, dtype=int), values, inputs, overflow)
