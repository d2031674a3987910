"""The record pass: per-layer statistics of the error signal on a fixed probe set.

``probe`` runs one forward and one backward pass of the mean loss on the probe set
with the current weights.  It changes no weight (it overwrites the layers' caches and
gradients, which the next training step recomputes anyway).
"""
from __future__ import annotations

import math

import numpy as np

from . import pieces
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
(_GRAD_NORM, _GRAD_MEAN_ABS, _DELTA_RMS, _WEIGHT_NORM, _UPDATE_RATIO, _ACT_MEAN, _ACT_STD, _SATURATED,
 _DEAD) = range(len(STAT_COLUMNS))

ACT_BINS = 40
EVAL_CHUNK = 4096  # validation and evaluation passes take this many examples at a time (bounds their memory)
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
    """Euclidean norm of all entries of a contiguous array, finite past float64's sum of squares
    (``pieces.norm``: entries above about 1e154, or 1e19 in float32, are summed after scaling)."""
    return pieces.norm(a.reshape(-1))


class Work:
    """Work arrays the probe reuses from one record to the next: one per (name, dtype), as large as
    the largest layer asked for, so that a record's statistics and histograms allocate nothing
    activation-sized after the first record."""

    def __init__(self):
        self._arrays: dict = {}

    def get(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """An array of ``shape`` whose content is anything."""
        key, size = (name, np.dtype(dtype)), math.prod(shape)
        a = self._arrays.get(key)
        if a is None or a.size < size:
            a = self._arrays[key] = np.empty(size, dtype=dtype)
        return a[:size].reshape(shape)


def _mean_std(h: np.ndarray, col_sums: np.ndarray, work: Work) -> tuple[float, float]:
    """Mean and std of all entries, two-pass (a one-pass E[h^2] - E[h]^2 cancels for tiny spreads);
    col_sums: h's column sums; the centred copy goes into a work array."""
    mean = float(col_sums.sum()) / h.size
    centred = np.subtract(h, mean, out=work.get("centred", h.shape, h.dtype))
    return mean, math.sqrt(float(np.vdot(centred, centred)) / h.size)


def _dead_frac(h: np.ndarray, col_sums: np.ndarray) -> float:
    """Fraction of units (columns) that are exactly 0 on every example.  A column whose sum is not 0
    has a non-zero entry; only the columns that sum to 0 (relu's dead units) are looked at."""
    maybe = np.flatnonzero(col_sums == 0)
    dead = maybe.size
    if dead:
        dead -= int(np.count_nonzero((h[:, maybe] != 0).any(axis=0)))
    return dead / h.shape[1]


def act_edges(model: MLP) -> np.ndarray:
    lo, hi = model.activation.hist_range
    return np.linspace(lo, hi, ACT_BINS + 1)


def _index(pos: np.ndarray, edges: np.ndarray, out: np.ndarray, finite: bool = False) -> np.ndarray:
    """The bin of each entry of ``pos`` = values - edges[0] (float64, overwritten) on uniform ``edges``,
    into ``out`` (intp); values outside fall into the first or last bin, NaN into the first.
    finite: the caller knows there is no NaN."""
    nb = len(edges) - 1
    np.multiply(pos, nb / (edges[-1] - edges[0]), out=pos)
    np.clip(pos, 0, nb - 1, out=pos)  # also maps -inf (log10 of 0) to the first bin
    if not finite:
        pos[np.isnan(pos)] = 0
    np.copyto(out, pos, casting="unsafe")  # truncation, as astype
    return out


def _hist(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts on uniform ``edges``; values outside fall into the first or last bin, NaN into the first."""
    pos = np.subtract(values, edges[0], dtype=np.float64)
    return np.bincount(_index(pos, edges, np.empty(pos.shape, np.intp)).reshape(-1), minlength=len(edges) - 1)


def _act_index(h: np.ndarray, edges: np.ndarray, work: Work, finite: bool) -> np.ndarray:
    """The bin of every entry of h on ``edges`` (a work array)."""
    pos = np.subtract(h, edges[0], out=work.get("pos", h.shape, np.float64))
    return _index(pos, edges, work.get("act_index", h.shape, np.intp), finite)


def _delta_index(d: np.ndarray, n: int, work: Work, finite: bool) -> np.ndarray:
    """The bin of log10 |n d| (the per-example error; log10 in d's dtype) of every entry of d on
    DELTA_EDGES (a work array)."""
    scaled = np.abs(d, out=work.get("pos" if d.dtype == np.float64 else "scaled", d.shape, d.dtype))
    np.multiply(scaled, n, out=scaled)
    # log10 is several times slower on zeros (-inf) than on numbers; + tiny changes no value above 2e-292
    # (2e-31 in float32) and takes every zero to a number that lands in the first bin as -inf did
    np.add(scaled, np.finfo(d.dtype).tiny, out=scaled)
    np.log10(scaled, out=scaled)
    pos = np.subtract(scaled, DELTA_EDGES[0], out=work.get("pos", d.shape, np.float64))
    return _index(pos, DELTA_EDGES, work.get("delta_index", d.shape, np.intp), finite)


def _layer_hists(h, d, n, edges, zero_bin, work: Work, finite_h: bool, finite_d: bool):
    """Histograms of a hidden layer's activations h (non-zero entries only) and of log10 |n d|, counted
    together: one bincount of the pairs (activation bin, delta bin), whose margins are the two
    histograms (counting is most of a histogram's time).  Returns (act counts, zero fraction, delta counts)."""
    nb_delta = len(DELTA_EDGES) - 1
    pair = _act_index(h, edges, work, finite_h)
    np.multiply(pair, nb_delta, out=pair)
    np.add(pair, _delta_index(d, n, work, finite_d), out=pair)
    joint = np.bincount(pair.reshape(-1), minlength=(len(edges) - 1) * nb_delta).reshape(-1, nb_delta)
    act_counts = joint.sum(axis=1)
    # count_nonzero of a bool array is several times faster than of the float array itself
    nonzero = int(np.count_nonzero(np.not_equal(h, 0, out=work.get("nonzero", h.shape, bool))))
    act_counts[zero_bin] -= h.size - nonzero  # every entry was binned: take the zeros out of 0's bin
    return act_counts, 1.0 - nonzero / h.size, joint.sum(axis=0)


def probe(model: MLP, X: np.ndarray, t: np.ndarray, update_norms: list[float] | None, with_hist: bool,
          work: Work | None = None):
    """Statistics of every layer l = 1..L at the current weights.

    update_norms: ||change of W_l|| of the optimizer's last step, l = 1..L (``optimizer.update_norms``,
    taken before this pass overwrites the gradients), or None before any step.
    work: work arrays kept between calls (a new ``Work`` when None).
    Returns (loss, stats (L, len(STAT_COLUMNS)) float64, act_hist (L-1, ACT_BINS) or None,
    act_zero (L-1,) fraction of activations exactly 0 or None, delta_hist (L, len(DELTA_EDGES)-1) or None).
    The activation histograms count only non-zero values, so that relu's spike of
    exact zeros (reported in act_zero) does not flatten every other bar.
    """
    work = work or Work()
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
    if with_hist:
        edges = act_edges(model)
        zero_bin = int(_hist(np.zeros(1), edges).argmax())
    ones = np.ones(n, dtype=logits.dtype)  # column sums as ones @ h, a BLAS gemv (h.sum(axis=0) is slower)
    sqrt_n = math.sqrt(n)
    with np.errstate(divide="ignore"):  # log10 of 0
        for l in range(L):
            W = model.affines[l].params["W"]
            g = model.affines[l].grads["W"]
            d = deltas[l]
            row = stats[l]
            row[_GRAD_NORM] = _norm(g)
            row[_GRAD_MEAN_ABS] = float(np.abs(g, out=work.get("abs_g", g.shape, g.dtype)).sum()) / g.size
            # per-example error is n * d (d is the gradient of the *mean* loss), so
            # sqrt(mean_n ||n d_n||^2) = sqrt(n * sum d^2) = sqrt(n) * ||d||
            row[_DELTA_RMS] = sqrt_n * _norm(d)
            w_norm = _norm(W)
            row[_WEIGHT_NORM] = w_norm
            if update_norms is not None and w_norm > 0:
                row[_UPDATE_RATIO] = update_norms[l] / w_norm
            h = forward_keep[l][1] if l < L - 1 else logits
            col_sums = ones @ h
            row[_ACT_MEAN], row[_ACT_STD] = _mean_std(h, col_sums, work)
            if l < L - 1:
                if fn.saturating:
                    z = forward_keep[l][0]
                    row[_SATURATED] = np.mean(fn.df(z, h) < SATURATION_LEVEL * fn.max_deriv)
                row[_DEAD] = _dead_frac(h, col_sums)
                if with_hist:
                    act_hist[l], act_zero[l], delta_hist[l] = _layer_hists(
                        h, d, n, edges, zero_bin, work, math.isfinite(row[_ACT_STD]), math.isfinite(row[_DELTA_RMS]))
            elif with_hist:
                index = _delta_index(d, n, work, math.isfinite(row[_DELTA_RMS]))
                delta_hist[l] = np.bincount(index.reshape(-1), minlength=len(DELTA_EDGES) - 1)
    return loss, stats, act_hist, act_zero, delta_hist
