"""The record pass: per-layer statistics of the error signal on a fixed probe set.

``probe`` runs one forward and one backward pass of the mean loss on the probe set
with the current weights.  It changes no weight (it overwrites the layers' caches and
gradients, which the next training step recomputes anyway).
"""
from __future__ import annotations

import math

import numpy as np

from .model import MLP

STAT_COLUMNS = (
    "grad_norm",
    "grad_mean_abs",
    "delta_rms",
    "weight_norm",
    "update_ratio",
    "act_mean",
    "act_std",
    "saturated_frac",
    "dead_frac",
)
_COL = {name: i for i, name in enumerate(STAT_COLUMNS)}

ACT_BINS = 40
HIST_RECORDS = 21  # aim for this many histogram snapshots per run (see histogram_steps)
# log10 |delta| from 1e-16 to 1e8; exact zeros and smaller values land in the first bin
DELTA_EDGES = np.linspace(-16.0, 8.0, 49)


def histogram_steps(record_steps: list[int] | range) -> set[int]:
    """The record steps that also keep histograms: every k-th, k = len // (HIST_RECORDS - 1), and the last.

    That is every record up to 39 records (38 epochs give 39 snapshots), then between 21 and
    39 of them, evenly spaced, with the first and the last always included.
    """
    stride = max(1, len(record_steps) // (HIST_RECORDS - 1))
    return set(record_steps[::stride]) | {record_steps[-1]}
SATURATION_LEVEL = 0.01  # a unit is saturated where phi' < 1% of its maximum


def _norm(a: np.ndarray) -> float:
    """Euclidean norm of all entries.  The fast sum of squares overflows for entries above
    about 1e154 (1e19 in float32); then the entries are scaled by their maximum first."""
    sq = float(np.vdot(a, a))
    if math.isfinite(sq):
        return math.sqrt(sq)
    m = float(np.max(np.abs(a))) if a.size else 0.0
    if m == 0.0 or not math.isfinite(m):
        return m
    s = a / m
    return m * math.sqrt(float(np.vdot(s, s)))


def _mean_std(h: np.ndarray) -> tuple[float, float]:
    """Mean and std of all entries, two-pass (a one-pass E[h^2] - E[h]^2 cancels for tiny spreads)."""
    mean = float(h.sum(axis=0).sum()) / h.size
    centred = h - mean
    return mean, math.sqrt(float(np.vdot(centred, centred)) / h.size)


def act_edges(model: MLP) -> np.ndarray:
    lo, hi = model.activation.hist_range
    return np.linspace(lo, hi, ACT_BINS + 1)


def _hist(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts on uniform ``edges``; values outside fall into the first or last bin."""
    nb = len(edges) - 1
    pos = (values.ravel() - edges[0]) * (nb / (edges[-1] - edges[0]))
    np.clip(pos, 0, nb - 1, out=pos)  # also maps -inf (log10 of 0) to the first bin
    pos[np.isnan(pos)] = 0
    return np.bincount(pos.astype(np.intp), minlength=nb)


def probe(model: MLP, X: np.ndarray, t: np.ndarray, last_update: np.ndarray | None, with_hist: bool):
    """Statistics of every layer l = 1..L at the current weights.

    last_update: the optimizer's last change of the flat parameter buffer (None before any step).
    Returns (loss, stats (L, len(STAT_COLUMNS)) float64, act_hist (L-1, ACT_BINS) or None,
    act_zero (L-1,) fraction of activations exactly 0 or None, delta_hist (L, len(DELTA_EDGES)-1) or None).
    The activation histograms count only non-zero values, so that relu's spike of
    exact zeros (reported in act_zero) does not flatten every other bar.
    """
    forward_keep: list = []
    deltas: list = []
    logits = model.forward(X, forward_keep, mode="probe")
    loss = model.loss_layer.forward(logits, t)
    model.backward(deltas)
    deltas.reverse()  # now dL/dz_l for l = 1..L
    n = X.shape[0]
    L = model.depth
    stats = np.full((L, len(STAT_COLUMNS)), np.nan)
    fn = model.activation
    act_hist = np.zeros((L - 1, ACT_BINS), dtype=np.int64) if with_hist else None
    act_zero = np.zeros(L - 1) if with_hist else None
    delta_hist = np.zeros((L, len(DELTA_EDGES) - 1), dtype=np.int64) if with_hist else None
    edges = act_edges(model)
    slices = model.layer_slices()
    for l in range(L):
        W = model.affines[l].params["W"]
        g = model.affines[l].grads["W"]
        d = deltas[l]
        row = stats[l]
        row[_COL["grad_norm"]] = _norm(g)
        row[_COL["grad_mean_abs"]] = float(np.abs(g).sum()) / g.size
        # per-example error is n * d (d is the gradient of the *mean* loss), so
        # sqrt(mean_n ||n d_n||^2) = sqrt(n * sum d^2) = sqrt(n) * ||d||
        row[_COL["delta_rms"]] = np.sqrt(n) * _norm(d)
        w_norm = _norm(W)
        row[_COL["weight_norm"]] = w_norm
        if last_update is not None and w_norm > 0:
            upd = last_update[slices[l]]
            row[_COL["update_ratio"]] = _norm(upd) / w_norm
        if l < L - 1:
            z, h = forward_keep[l]
            row[_COL["act_mean"]], row[_COL["act_std"]] = _mean_std(h)
            if fn.saturating:
                row[_COL["saturated_frac"]] = np.mean(fn.df(z, h) < SATURATION_LEVEL * fn.max_deriv)
            row[_COL["dead_frac"]] = 1.0 - float((h != 0).any(axis=0).mean())
            if with_hist:
                nonzero = h[h != 0]
                act_hist[l] = _hist(nonzero, edges)
                act_zero[l] = 1.0 - nonzero.size / h.size
        else:
            row[_COL["act_mean"]], row[_COL["act_std"]] = _mean_std(logits)
        if with_hist:
            with np.errstate(divide="ignore"):
                delta_hist[l] = _hist(np.log10(np.abs(d) * n), DELTA_EDGES)
    return loss, stats, act_hist, act_zero, delta_hist
