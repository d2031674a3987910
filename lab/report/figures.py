"""The figures of one run as the Train page draws them, each made by one function that the page and the notebook
API (``lab.RunResult.plot_*``) both call, so that a notebook shows the very figure the page shows."""
from __future__ import annotations

import plotly.graph_objects as go

from lab.engine.results import RunResult

from . import charts, summaries


def last_epoch(result: RunResult):
    """The last recorded epoch (the one the page's epoch slider opens at)."""
    return result.layers["epoch"].max() if len(result.layers) else 0


def curves(result: RunResult, log_y: bool = False) -> go.Figure:
    """The learning curves: training and validation loss, and accuracy."""
    return charts.loss_figure(result.history, result.config.loss, log_y, result.diverged_at)


def profile(result: RunResult, epoch=None) -> tuple[go.Figure, str]:
    """The gradient profile at ``epoch`` (default: the last) with the mean-field prediction for initialization
    (dashed, where the theory applies), and the caption that compares the two ("" when there is none)."""
    from lab.theory import meanfield

    epoch = last_epoch(result) if epoch is None else epoch
    predicted, theory_text = summaries.theory_comparison(result, epoch)
    return charts.profile_figure(result.layers, epoch, predicted, meanfield.line_name(result.config)), theory_text


def heatmap(result: RunResult, column: str = "delta_rms") -> go.Figure:
    """One colour per (layer, record) of ``column`` (delta_rms, update_ratio or grad_norm), log scale."""
    return charts.heatmap_figure(result.layers, column)


def snapshot_index(result: RunResult, snapshot: int) -> int:
    """A histogram snapshot counted from the start (0: initialization) or, negative, from the end (-1: the last)."""
    count = result.act_hist.shape[0]
    if not -count <= snapshot < count:
        raise IndexError(f"this run has {count} histogram snapshots; snapshot {snapshot} is not one of them")
    return snapshot % count


def histograms(result: RunResult, snapshot: int = -1, layers: list[int] | None = None) -> go.Figure:
    """The hidden layers' activation histograms at a snapshot, over those at initialization (grey)."""
    return charts.histogram_grid(result, snapshot_index(result, snapshot), layers)


def error_histograms(result: RunResult, snapshot: int = -1, layers: list[int] | None = None) -> go.Figure:
    """Histograms of log10 |per-example error dL/dz| per layer at a snapshot, over those at initialization."""
    return charts.delta_histogram_grid(result, snapshot_index(result, snapshot), layers)


def boundary(result: RunResult) -> go.Figure | None:
    """The decision boundary over the input plane (2-D data with the run's weights; None otherwise)."""
    return charts.boundary_figure(result)
