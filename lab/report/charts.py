"""Plotly figures built from a run's DataFrames and arrays: pure functions, no streamlit.

Gradient magnitudes span many orders of magnitude, so every magnitude axis is
logarithmic and says so; captions that say what to look for live in ``summaries.py``.
"""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from lab.engine.model import decision_grid
from lab.engine.results import RunResult, records
from lab.formats import power_of_ten

# one colour per run, in the same order everywhere (Plotly's default qualitative set)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DELTA_COLOR, GRAD_COLOR, INIT_COLOR = "#1f77b4", "#ff7f0e", "#9aa0a6"
LOSS_LABEL = {"cross_entropy": "cross-entropy loss (nats)", "mse": "squared-error loss"}


# The house template, as plotly's default: a figure then takes it when it is turned into JSON (2-3 ms),
# where ``update_layout(template=...)`` validates and copies it into every figure (25-30 ms each, the
# largest cost of drawing most of our figures).  The JSON sent to the browser is the same.
pio.templates.default = "plotly_white"


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left"),
        height=height,
        margin=dict(l=70, r=30, t=50, b=100),
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0),
    )
    _honest_log_axes(fig)
    return fig


def _stacked_title(fig: go.Figure, head: str, *lines: str) -> go.Figure:
    """A title of short lines, ``head`` over ``lines`` in smaller type, pinned to the top with room under
    it: one long line is cut off in a narrow column (a third of a 1000-pixel page)."""
    small = "".join(f"<br><span style='font-size:12px'>{line}</span>" for line in lines)
    top = fig.layout.margin.t or 50
    return fig.update_layout(title=dict(text=head + small, y=1.0, yref="container", yanchor="top", pad=dict(t=12)),
                             margin=dict(t=top + 16 * len(lines)), height=(fig.layout.height or 380) + 16 * len(lines))


MIN_LOG_SPAN = 1.0  # decades: a log axis over less would look like a wild swing in a flat line
FULL_TICKS_BELOW = 3.0  # decades: over fewer, plotly labels the minor ticks with a bare digit ("4" for 0.4)


def _honest_log_axes(fig: go.Figure) -> None:
    """Every log y axis spans at least MIN_LOG_SPAN decades around its data (an axis from 0.7069 to
    0.7071 shows one value as a slope), and one spanning fewer than FULL_TICKS_BELOW decades gets
    ticks at 1, 2 and 5 times a power of ten labelled in full.  Axes given a range or ticks by their
    figure keep them; axes that share another's scale (``matches``) follow it."""
    values: dict[str, list] = {}
    for t in fig.data:
        if t.y is not None and getattr(t, "orientation", None) != "h":
            values.setdefault(_axis_key(t.yaxis or "y"), []).append(np.asarray(t.y, dtype=float).ravel())
    groups: dict[str, list[str]] = {}
    for key in values:
        axis = fig.layout[key]
        if axis.type == "log":
            groups.setdefault(_axis_key(axis.matches) if axis.matches else key, []).append(key)
    for lead, keys in groups.items():
        v = np.concatenate([a for k in keys for a in values[k]])
        v = v[np.isfinite(v) & (v > 0)]
        axis = fig.layout[lead]
        if not v.size or axis.tickvals is not None:
            continue
        if axis.range is not None:
            lo, hi = axis.range
        else:
            lo, hi = math.log10(v.min()), math.log10(v.max())
            if hi - lo < MIN_LOG_SPAN:
                mid = 0.5 * (lo + hi)
                lo, hi = mid - MIN_LOG_SPAN / 2, mid + MIN_LOG_SPAN / 2
            else:
                pad = 0.05 * (hi - lo)
                lo, hi = lo - pad, hi + pad
        if hi - lo >= FULL_TICKS_BELOW:
            # a labelled power of ten every decade or few, and nothing between: on a tall plot plotly
            # would label the 2s and 5s with a bare digit that reads like a value
            for key in keys:
                fig.layout[key].update(dtick=max(1, math.ceil((hi - lo) / 8)))
            continue
        if axis.range is not None:
            continue
        decades = range(math.floor(lo) - 1, math.ceil(hi) + 1)
        ticks = [m * 10.0**k for k in decades for m in (1, 2, 5) if lo <= math.log10(m * 10.0**k) <= hi]
        labels = [power_of_ten(t) for t in ticks]
        if len(ticks) < 3:
            ticks, labels = _round_ticks(10**lo, 10**hi)
        for key in keys:
            fig.layout[key].update(range=[lo, hi], tickvals=ticks, ticktext=labels)


def _axis_key(ref: str) -> str:
    """'y2' -> 'yaxis2': a trace's axis reference as the layout's key."""
    return "yaxis" + ref[1:]


def loss_figure(history: pd.DataFrame, loss_name: str = "cross_entropy", log_y: bool = False,
                diverged_at: float | None = None) -> go.Figure:
    """Loss and accuracy per epoch, training (solid) and validation (dashed), side by side."""
    h = records(history)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"), horizontal_spacing=0.12)
    for col, (name, dash) in enumerate([("", "solid"), ("val_", "dash")]):
        label = "validation" if name else "training"
        fig.add_scatter(x=h["epoch"], y=h[f"{name}loss"], name=f"{label} loss", line=dict(dash=dash, color=PALETTE[col]),
                        row=1, col=1)
        fig.add_scatter(x=h["epoch"], y=h[f"{name}accuracy"], name=f"{label} accuracy",
                        line=dict(dash=dash, color=PALETTE[col]), row=1, col=2, showlegend=False)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=LOSS_LABEL.get(loss_name, "loss") + (" (log scale)" if log_y else ""),
                     type="log" if log_y else "linear", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (fraction correct)", range=[0, 1.02], row=1, col=2)
    if diverged_at is not None:
        for c in (1, 2):
            fig.add_vline(x=diverged_at, line=dict(color="#d62728", dash="dot"), row=1, col=c)
        fig.add_annotation(x=diverged_at, y=1.0, yref="paper", text=f"diverged at epoch {diverged_at:g}",
                           showarrow=False, font=dict(color="#d62728"), xanchor="right")
    return _layout(fig, "Learning curves")


def live_loss_figure(history: pd.DataFrame, loss_name: str = "cross_entropy") -> go.Figure:
    """The training and validation loss so far: one light figure, redrawn while a run trains."""
    fig = go.Figure()
    fig.add_scatter(x=history["epoch"], y=history["loss"], name="training loss", line=dict(color=PALETTE[0]))
    fig.add_scatter(x=history["epoch"], y=history["val_loss"], name="validation loss",
                    line=dict(color=PALETTE[1], dash="dash"))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=LOSS_LABEL.get(loss_name, "loss"))
    return _layout(fig, "Loss so far")


def profile_figure(layers: pd.DataFrame, epoch, predicted: pd.DataFrame | None = None,
                   predicted_name: str = "predicted by mean-field theory") -> go.Figure:
    """delta_rms and grad_norm per layer at ``epoch`` (log y), with epoch 0 in grey for reference;
    ``predicted`` (layer, delta_rms) is the theory's profile at initialization, drawn dashed."""
    fig = go.Figure()
    at = layers[layers["epoch"] == epoch]
    init = layers[layers["epoch"] == layers["epoch"].min()]
    if len(init) and epoch != init["epoch"].iloc[0]:
        fig.add_scatter(x=init["layer"], y=init["delta_rms"], name="delta_rms at initialization",
                        mode="lines+markers", line=dict(color=INIT_COLOR, width=1.5), marker=dict(size=5))
    fig.add_scatter(x=at["layer"], y=at["delta_rms"], name=f"delta_rms (error signal dL/dz) at epoch {epoch:g}",
                    mode="lines+markers", line=dict(color=DELTA_COLOR, width=3))
    fig.add_scatter(x=at["layer"], y=at["grad_norm"], name=f"grad_norm (||dL/dW||) at epoch {epoch:g}",
                    mode="lines+markers", line=dict(color=GRAD_COLOR, dash="dot"))
    if predicted is not None and len(predicted):
        trained = len(init) > 0 and epoch != init["epoch"].iloc[0]
        # after training the line still describes initialization: grey like the profile it belongs to
        fig.add_scatter(x=predicted["layer"], y=predicted["delta_rms"], mode="lines",
                        name=predicted_name + (" (at initialization)" if trained else ""),
                        line=dict(color=INIT_COLOR if trained else "#444", dash="dash"))
    fig.update_xaxes(title_text="layer (1 = first hidden, last = output)", dtick=_dtick(at["layer"].max()))
    _log_axis(fig, "magnitude (log scale)")
    return _layout(fig, f"Gradient profile at epoch {epoch:g}")


def heatmap_figure(layers: pd.DataFrame, column: str = "delta_rms") -> go.Figure:
    """log10 of ``column`` by layer (y) and epoch (x): how the flow changes while the network learns."""
    grid = layers.pivot_table(index="layer", columns="epoch", values=column, aggfunc="first")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log10(grid.to_numpy(dtype=float))
    z[~np.isfinite(z)] = np.nan
    label = {"delta_rms": "log10 delta_rms", "update_ratio": "log10 update_ratio",
             "grad_norm": "log10 grad_norm"}.get(column, f"log10 {column}")
    finite = z[np.isfinite(z)]
    # a colour bar over less than a decade would paint one value as a range (-0.15065 to -0.15055)
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    mid = 0.5 * (lo + hi)
    zrange = dict(zmin=mid - MIN_LOG_SPAN / 2, zmax=mid + MIN_LOG_SPAN / 2) if hi - lo < MIN_LOG_SPAN else {}
    fig = go.Figure(go.Heatmap(
        z=z, x=grid.columns, y=grid.index, colorscale="Viridis", **zrange,
        colorbar=dict(title=dict(text=label, side="right")),
        hovertemplate="epoch %{x}<br>layer %{y}<br>" + label + " %{z:.2f}<extra></extra>",
    ))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="layer", dtick=_dtick(grid.index.max()))
    return _layout(fig, f"{column} by layer and epoch (colour: {label})", height=360)


HIST_ALL_LAYERS_UP_TO = 20  # histogram grids show every layer up to this many; beyond, a choice


def pick_layers(n_layers: int, at_most: int = HIST_ALL_LAYERS_UP_TO) -> list[int]:
    """Layers (1-based) to show as small multiples: all of them up to ``at_most``; beyond, every
    k-th from layer 1 with the same step throughout, and the last one."""
    if n_layers <= at_most:
        return list(range(1, n_layers + 1))
    step = math.ceil((n_layers - 1) / (at_most - 1))
    return sorted({*range(1, n_layers + 1, step), n_layers})


def which_layers(shown: list[int], n_layers: int) -> str:
    """Which of ``n_layers`` layers a grid shows, in words: 'all 11 layers', 'layers 1, 3, 5, …, 31 (16 of 31)'."""
    if list(shown) == list(range(1, n_layers + 1)):
        return f"all {n_layers} layers"
    listed = ", ".join(map(str, shown)) if len(shown) <= 6 else f"{shown[0]}, {shown[1]}, {shown[2]}, …, {shown[-1]}"
    return f"layers {listed} ({len(shown)} of {n_layers})"


def histogram_grid(result: RunResult, snapshot: int, layers: list[int] | None = None, cols: int = 5,
                   colour: str | None = None) -> go.Figure:
    """Activation histograms of hidden layers: at initialization (grey) and at snapshot ``snapshot``.

    ``layers``: which hidden layers (1-based; default ``pick_layers``); ``cols`` small multiples
    per row; ``colour`` draws the initialization in a run's own colour instead of grey."""
    n_hidden = result.act_hist.shape[1]
    shown = [l for l in (layers or pick_layers(n_hidden)) if 1 <= l <= n_hidden] or pick_layers(n_hidden)
    stats = result.layers
    titles = []
    for l in shown:
        row = stats[(stats["layer"] == l) & (stats["epoch"] == _epoch_of(result, snapshot))]
        extra = []
        if len(row) and not np.isnan(row["saturated_frac"].iloc[0]):
            extra.append(f"sat {100 * row['saturated_frac'].iloc[0]:.0f}%")
        if len(row):
            extra.append(f"dead {100 * row['dead_frac'].iloc[0]:.0f}%")
        zeros = result.act_zero_frac[snapshot, l - 1]
        if zeros > 0.005:
            extra.append(f"zeros {100 * zeros:.0f}%")
        titles.append(f"<b>layer {l}</b>" + "".join(f"<br>{e}" for e in extra))  # one per line: columns may be narrow
    # fractions of all activations, so the bars plus the exact zeros in the title add up to 1
    scale = 1.0 - result.act_zero_frac
    lo, hi = result.act_edges[0], result.act_edges[-1]
    return _hist_grid(result.act_hist, scale, result.act_edges, shown, titles, snapshot, result.hist_epochs,
                      "activation value", "Activations per layer",
                      [which_layers(shown, n_hidden), f"non-zero values; outside [{lo:g}, {hi:g}] in the end bins"],
                      cols, colour)


def delta_histogram_grid(result: RunResult, snapshot: int, layers: list[int] | None = None,
                         cols: int = 5) -> go.Figure:
    """Histograms of log10 |per-example error dL/dz| per layer, at initialization (grey) and at ``snapshot``:
    a vanishing signal shows as the histograms sliding left, layer after layer."""
    n_layers = result.delta_hist.shape[1]
    shown = [l for l in (layers or pick_layers(n_layers)) if 1 <= l <= n_layers] or pick_layers(n_layers)
    edges = result.delta_edges
    titles = [f"<b>layer {l}</b>" + (" (output)" if l == n_layers else "")
              + _end_bins(result.delta_hist[:, l - 1], edges, snapshot) for l in shown]
    return _hist_grid(result.delta_hist, np.ones(result.delta_hist.shape[:2]), edges, shown, titles,
                      snapshot, result.hist_epochs, "log10 |dL/dz| per example",
                      "Back-propagated error per layer",
                      [which_layers(shown, n_layers),
                       f"end bins, counted under each layer: ↓ below 10<sup>{edges[1]:g}</sup> or 0, "
                       f"↑ from 10<sup>{edges[-2]:g}</sup> up"], cols, None)


def _end_bins(counts: np.ndarray, edges: np.ndarray, snapshot: int) -> str:
    """Title lines for one layer's first (↓) and last (↑) bins, which also hold every value beyond the
    scale: their counts at the snapshot shown, and at initialization when that differs.  Short lines:
    five histograms to a row leave about 100 pixels for each title at 1000 pixels wide."""
    lines = []
    for bin_, arrow in ((0, "↓"), (-1, "↑")):
        now, init = int(counts[snapshot, bin_]), int(counts[0, bin_])
        if now:
            lines.append(f"{arrow} {now:,}")
        if snapshot != 0 and init:
            lines.append(f"{arrow} {init:,} at init")
    return "".join(f"<br>{line}" for line in lines)


HIST_ROW_PX, TITLE_LINE_PX = 190, 14  # one row of small histograms; one line of a subplot title (11 px type)


def _hist_grid(counts, scale, edges, shown, titles, snapshot, epochs, xlabel, title, notes, cols, colour) -> go.Figure:
    """Small multiples of histograms ``counts`` (R, layers, bins) on fixed ``edges``; ``notes`` are
    short lines under the title (short, because the grid may sit in half a page)."""
    cols = max(1, min(cols, len(shown)))
    rows = math.ceil(len(shown) / cols)
    title_px = TITLE_LINE_PX * (1 + max(t.count("<br>") for t in titles))
    gap_px = 30 + title_px  # tick labels of the row above, then the titles of the next
    plot_px = rows * HIST_ROW_PX + (rows - 1) * gap_px
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_yaxes=True,
                        horizontal_spacing=0.12 / cols + 0.015, vertical_spacing=gap_px / plot_px if rows > 1 else 0)
    centres = 0.5 * (edges[:-1] + edges[1:])
    width = edges[1] - edges[0]
    snaps = [(0, colour or INIT_COLOR, "at initialization")]
    if snapshot != 0:
        snaps.append((snapshot, DELTA_COLOR, f"epoch {epochs[snapshot]:g}"))
    for i, l in enumerate(shown):
        r, c = i // cols + 1, i % cols + 1
        for snap, color, name in snaps:
            row = counts[snap, l - 1]
            frac = row / max(row.sum(), 1) * scale[snap, l - 1]
            fig.add_bar(x=centres, y=frac, width=width, marker_color=color, opacity=0.6, name=name,
                        showlegend=i == 0, row=r, col=c,
                        hovertemplate=f"layer {l}<br>{xlabel} %{{x:.2f}}<br>fraction %{{y:.3f}}<extra>{name}</extra>")
    fig.update_layout(barmode="overlay")
    fig.update_annotations(font_size=11)  # several subplot titles side by side must not run into each other
    fig.update_xaxes(nticks=4, tickfont_size=10)
    fig.update_yaxes(nticks=4, tickfont_size=10)
    fig.update_yaxes(title_text="fraction", col=1)
    # one x-axis title for the whole grid: repeated under narrow columns they run together
    fig.add_annotation(text=xlabel, x=0.5, xref="paper", y=0, yref="paper", yanchor="top", yshift=-28,
                       showarrow=False, font=dict(size=13, color="#444"))
    small = "".join(f"<br><span style='font-size:12px;color:#555'>{n}</span>" for n in notes)
    top = 45 + 18 * len(notes) + title_px + 10  # the title, its notes, and the subplot titles of the first row
    fig = _layout(fig, title + small, height=plot_px + top + 100)
    # the title from the top in pixels (plotly's default sits 2% of the height down: far, on a tall grid)
    return fig.update_layout(margin=dict(t=top, b=100),
                             title=dict(y=1.0, yref="container", yanchor="top", pad=dict(t=12)),
                             legend=dict(orientation="h", yref="container", y=0.0, yanchor="bottom", xanchor="left",
                                         x=0.0))


def _epoch_of(result: RunResult, snapshot: int):
    e = result.hist_epochs[snapshot]
    return int(e) if float(e).is_integer() and result.layers["epoch"].dtype.kind == "i" else e


def boundary_figure(result: RunResult, resolution: int | None = None) -> go.Figure | None:
    """Predicted class over the (standardized) input plane with the training points, from the network in
    evaluation mode (batch norm on its running averages, dropout off); None unless 2-D, and None for a
    batch-normalized network that took no step."""
    data = result.data
    model = result.eval_model() if data is not None and data.input_dim == 2 else None
    if model is None:
        return None
    if result.config.norm == "batch" and not (len(result.history) and result.history["step"].max() > 0):
        return None  # no step taken: batch norm's running averages are still 0 and 1, which describe no network
    X = data.X_train
    xs, ys, pred = decision_grid(model, X, resolution)
    lo, hi = (xs[0], ys[0]), (xs[-1], ys[-1])
    k = data.classes
    colors = [PALETTE[i % len(PALETTE)] for i in range(k)]
    scale = [[i / max(k - 1, 1), c] for i, c in enumerate(colors)] if k > 1 else [[0, colors[0]], [1, colors[0]]]
    fig = go.Figure(go.Heatmap(x=xs, y=ys, z=pred, colorscale=scale, zmin=0, zmax=k - 1, opacity=0.35,
                               showscale=False, hoverinfo="skip"))
    for c in range(k):
        pts = X[data.y_train == c][:600]
        # a label from a CSV is text: plotly would render <a href=...> in a legend as a live link
        fig.add_scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=f"class {html.escape(data.class_names[c])}",
                        marker=dict(color=colors[c], size=5, line=dict(width=0.5, color="white")))
    fig.update_xaxes(title_text=f"{data.feature_names[0]} (standardized)", range=[lo[0], hi[0]], constrain="domain")
    fig.update_yaxes(title_text=f"{data.feature_names[1]} (standardized)", range=[lo[1], hi[1]],
                     scaleanchor="x", scaleratio=1)
    fig = _layout(fig, "Decision boundary", height=420)
    return _stacked_title(fig, "Decision boundary", "shaded: predicted class", "points: training data")


def _log_axis(fig: go.Figure, title: str, **where) -> None:
    """A log y axis with a labelled tick every decade (or every few, over a wide range)."""
    fig.update_yaxes(title_text=title, type="log", exponentformat="power", showexponent="all",
                     minor=dict(showgrid=False), **where)


def _dtick(n_layers) -> int:
    """A layer label every so many layers: at most about a dozen, which a half-width chart at 1000
    pixels can hold side by side."""
    n = int(n_layers) if n_layers == n_layers else 1
    return 1 if n <= 12 else 2 if n <= 25 else 5 if n <= 50 else 10 if n <= 120 else 20


def profiles_overlay(profiles: dict[str, pd.DataFrame], title: str = "Error signal per layer at initialization",
                     predicted: dict[str, pd.DataFrame] | None = None,
                     colours: dict[str, str] | None = None) -> go.Figure:
    """delta_rms per layer of several runs on one log axis; ``profiles`` maps name -> layers rows of one epoch;
    ``predicted`` maps some of the names to a mean-field profile (layer, delta_rms), drawn dashed;
    ``colours`` maps names to colours (default: the palette in order)."""
    fig = go.Figure()
    deepest = 1
    colours = {**colour_map(profiles), **(colours or {})}
    for name, rows in profiles.items():
        if rows.empty:  # a run that overflowed at initialization recorded no profile
            continue
        colour = colours[name]
        fig.add_scatter(x=rows["layer"], y=rows["delta_rms"], name=name, mode="lines+markers",
                        line=dict(color=colour, width=3))
        if predicted and name in predicted and len(predicted[name]):
            fig.add_scatter(x=predicted[name]["layer"], y=predicted[name]["delta_rms"], name=f"{name}: theory",
                            mode="lines", line=dict(color=colour, dash="dash", width=1.5))
        deepest = max(deepest, int(rows["layer"].max()))
    fig.update_xaxes(title_text="layer (1 = first hidden, last = output)", dtick=_dtick(deepest))
    _log_axis(fig, "delta_rms, error signal dL/dz (log scale)")
    return _layout(fig, title)


def colour_map(names) -> dict[str, str]:
    """One colour per name, in order, the same on every chart of a page."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


# A run whose loss peaks this many decades above every other run's would flatten them all
# on one axis (the default comparison: normal(std 1) at 1e15, the others near 1); it gets
# a panel of its own above the rest.
OUTLIER_GAP_DECADES = 3.0


def _as_text(runs: dict, settings: dict, colours: dict | None):
    """Run names and settings as HTML-escaped text: they may come from a user or a file, and
    plotly renders tags (a link, an image) in trace names and titles."""
    esc = lambda v: html.escape(str(v))  # noqa: E731
    return ({esc(k): v for k, v in runs.items()}, {esc(k): esc(v) for k, v in settings.items()},
            {esc(k): v for k, v in (colours or {}).items()} or None)


def split_outliers(peaks: dict[str, float], gap_decades: float = OUTLIER_GAP_DECADES) -> set[str]:
    """The names whose peak lies above the widest gap between the sorted peaks, when that gap
    spans more than ``gap_decades`` decades (peaks as positive values; NaN ones are ignored)."""
    logs = sorted((math.log10(v), k) for k, v in peaks.items() if v is not None and math.isfinite(v) and v > 0)
    if len(logs) < 2:
        return set()
    widest, at = max((logs[i + 1][0] - logs[i][0], i) for i in range(len(logs) - 1))
    return {k for _, k in logs[at + 1:]} if widest > gap_decades else set()


def _peak(*columns: pd.Series) -> float:
    values = pd.concat(columns).to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    return float(values.max()) if values.size else math.nan


def compare_loss_figure(histories: dict[str, pd.DataFrame], settings: dict[str, str], log_y: bool = True,
                        band: pd.DataFrame | None = None, loss_name: str = "cross_entropy",
                        colours: dict[str, str] | None = None) -> go.Figure:
    """Loss per epoch of several runs: training solid, validation dashed, one colour per setting.

    With ``band`` (from compare.mean_band) each setting is drawn as its mean over seeds
    with a shaded min-max band instead of one line per seed.  ``colours`` maps a setting to
    its colour (default: the palette in order).  Runs whose loss peaks more than
    OUTLIER_GAP_DECADES above the others go to a panel of their own on top, so that the
    others keep their detail; a run that diverged ends in a cross.
    """
    histories, settings, colours = _as_text(histories, settings, colours)
    if band is not None and len(band):
        band = band.assign(setting=band["setting"].map(lambda v: html.escape(str(v))))
    colours = {**colour_map(settings.values()), **(colours or {})}
    if band is not None and len(band):
        groups = {s: rows for s, rows in band.groupby("setting", sort=False)}
        high = split_outliers({s: _peak(rows["high"]) for s, rows in groups.items()})
    else:
        groups = None
        high = split_outliers({n: _peak(h["loss"], h["val_loss"]) for n, h in histories.items()})
    label = LOSS_LABEL.get(loss_name, "loss") + (" (log scale)" if log_y else "")
    if high:
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.3, 0.7], vertical_spacing=0.1,
                            subplot_titles=("far above the others (its own axis): " + ", ".join(sorted(high)),
                                            "the other runs"))
    else:
        fig = go.Figure()

    def where(key):
        return {"row": 1 if key in high else 2, "col": 1} if high else {}

    if groups is not None:
        for setting, rows in groups.items():
            c = colours[setting]
            fig.add_scatter(x=rows["epoch"], y=rows["high"], mode="lines", line=dict(width=0, color=c),
                            showlegend=False, hoverinfo="skip", **where(setting))
            fig.add_scatter(x=rows["epoch"], y=rows["low"], mode="lines", line=dict(width=0, color=c), fill="tonexty",
                            fillcolor=_rgba(c, 0.2), showlegend=False, hoverinfo="skip", **where(setting))
            fig.add_scatter(x=rows["epoch"], y=rows["mean"], mode="lines+markers" if len(rows) == 1 else "lines",
                            line=dict(color=c, width=2.5), name=f"{setting} (training, mean of {int(rows['n'].max())} seeds)",
                            **where(setting))
    else:
        for name, h in histories.items():
            _add_run(fig, name, h, colours[settings[name]], where(name))
    fig.update_xaxes(title_text="epoch", **({"row": 2, "col": 1} if high else {}))
    if log_y:
        _log_axis(fig, label)
    else:
        fig.update_yaxes(title_text=label)
    if high:
        fig.update_yaxes(title_text="loss" + (" (log)" if log_y else ""), row=1, col=1)
    if log_y:
        _readable_log_ticks(fig)
    crosses = any(t.marker.symbol == "x" for t in fig.data)
    # the legend under the plot, one row per line, with its own room: pushed into the plot's, a legend of
    # eight lines squashed the plot until the axis title ran past it, and its first row sat on "epoch"
    rows = sum(1 for t in fig.data if t.showlegend is not False) + len(fig.data) // 8
    legend_px = 22 * rows
    fig = _layout(fig, "Loss curves (solid: training, dashed: validation" + ("; ✕: diverged)" if crosses else ")"),
                  height=(620 if high else 440) + legend_px)
    return fig.update_layout(margin=dict(t=90 if high else 50, b=80 + legend_px),
                             legend=dict(yref="container", y=0.0, yanchor="bottom"))


def _readable_log_ticks(fig: go.Figure) -> None:
    """On each log y axis whose data span less than 3 decades, ticks at 1, 2 and 5 times a power of
    ten (or, over a narrower span, evenly spaced round numbers), labelled in full: plotly's own
    labels there are single digits in small type, or none at all."""
    by_axis: dict[str, list] = {}
    for t in fig.data:
        if t.y is not None:
            by_axis.setdefault(t.yaxis or "y", []).append(np.asarray(t.y, dtype=float))
    for axis, arrays in by_axis.items():
        v = np.concatenate(arrays)
        v = v[np.isfinite(v) & (v > 0)]
        if not v.size or v.max() / v.min() >= 1e3:
            continue
        lo, hi = float(v.min()), float(v.max())
        decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
        ticks = [m * 10.0**k for k in decades for m in (1, 2, 5) if lo <= m * 10.0**k <= hi]
        labels = [power_of_ten(t) for t in ticks]
        if len(ticks) < 3:
            ticks, labels = _round_ticks(lo, hi)
        fig.layout["yaxis" + axis[1:]].update(tickvals=ticks, ticktext=labels)


def _round_ticks(lo: float, hi: float, count: int = 4) -> tuple[list[float], list[str]]:
    """About ``count`` round numbers from ``lo`` to ``hi``, and labels with as many digits as the
    step needs (0.6935 must not print as 0.694 next to 0.694)."""
    if hi <= lo:
        return [lo], [power_of_ten(lo)]
    raw = (hi - lo) / count
    step = 10.0 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    ticks = [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
    if not 1e-3 <= hi < 1e4:  # as many significant digits as the step needs: 1.21×10¹⁵, 1.22×10¹⁵
        sig = max(2, math.floor(math.log10(hi)) - math.floor(math.log10(step)) + 1)
        return ticks, [power_of_ten(t, sig) for t in ticks]
    digits = max(0, -math.floor(math.log10(step) + 1e-9))  # a step of 1, 2 or 5 times 10^-k needs k decimals
    return ticks, [f"{t:.{digits}f}" for t in ticks]


def _add_run(fig: go.Figure, name: str, history: pd.DataFrame, colour: str, where: dict) -> None:
    """One run's training (solid) and validation (dashed) loss; a cross where it diverged."""
    h = records(history)
    diverged = history.loc[history["diverged"], "epoch"]
    note = f" (diverged at epoch {diverged.iloc[0]:g})" if len(diverged) else ""
    finite = h[np.isfinite(h["loss"].to_numpy(dtype=float))]
    if finite.empty:  # it overflowed before its first record: nothing to draw, but say so in the legend
        fig.add_scatter(x=[None], y=[None], mode="markers", marker=dict(color=colour, symbol="x", size=10),
                        name=f"{name}{note or ' (no finite loss)'}: nothing to draw", **where)
        return
    mode = "lines+markers" if len(finite) == 1 else "lines"
    fig.add_scatter(x=h["epoch"], y=h["loss"], mode=mode, line=dict(color=colour, width=2.5),
                    name=f"{name} training{note}", legendgroup=name, **where)
    if h["val_loss"].notna().any():
        fig.add_scatter(x=h["epoch"], y=h["val_loss"], mode=mode, line=dict(color=colour, dash="dash"),
                        name=f"{name} validation", legendgroup=name, **where)
    if note:
        last = finite.iloc[-1]
        fig.add_scatter(x=[last["epoch"]], y=[last["loss"]], mode="markers", legendgroup=name, showlegend=False,
                        marker=dict(color=colour, symbol="x", size=13, line=dict(width=1, color="black")),
                        hovertext=[f"{name}: last finite record before it diverged at epoch {diverged.iloc[0]:g}"],
                        hoverinfo="text", **where)


def profiles_grid(layers: dict[str, pd.DataFrame], settings: dict[str, str], epoch: str | float = "end",
                  colours: dict[str, str] | None = None) -> go.Figure:
    """One small gradient profile per run on a shared log axis: delta_rms at initialization (grey)
    and at ``epoch`` ("end" = each run's last record), so heights compare directly across runs.
    A run with no record at ``epoch`` (it diverged earlier) shows its last record, and says so."""
    layers, settings, colours = _as_text(layers, settings, colours)
    colours = {**colour_map(settings.values()), **(colours or {})}
    names = [n for n in layers if not layers[n].empty]  # runs that overflowed at initialization have none
    if not names:
        return _layout(go.Figure(), "No gradient profile: every run overflowed at initialization")
    cols = min(len(names), 5)
    rows = math.ceil(len(names) / cols)
    titles = []
    chosen_epochs = {}
    for name in names:
        recorded = layers[name]["epoch"]
        want = recorded.max() if epoch == "end" else epoch
        at = recorded[recorded <= want].max()
        chosen_epochs[name] = at
        # wrapped to the panel's width: five to a row leave ~110 px each at 1000 px, one has the whole row
        titles.append(_wrap(name, {1: 60, 2: 30}.get(cols, 14))
                      + ("" if at == want else f"<br>(last record: epoch {at:g})"))
    title_px = 15 * (1 + max(t.count("<br>") for t in titles))
    gap_px = 50 + title_px  # x-axis title of the row above, then the panel titles of the next
    plot_px = 220 * rows + gap_px * (rows - 1)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_yaxes="all", shared_xaxes=False,
                        horizontal_spacing=0.02, vertical_spacing=gap_px / plot_px if rows > 1 else 0)
    for i, name in enumerate(names):
        df = layers[name]
        r, c = i // cols + 1, i % cols + 1
        first = df[df["epoch"] == df["epoch"].min()]
        at_epoch = chosen_epochs[name]
        chosen = df[df["epoch"] == at_epoch]
        fig.add_scatter(x=first["layer"], y=first["delta_rms"], mode="lines+markers", marker=dict(size=4),
                        line=dict(color=INIT_COLOR), name="at initialization", showlegend=i == 0, row=r, col=c)
        if at_epoch != first["epoch"].iloc[0] and len(chosen):
            fig.add_scatter(x=chosen["layer"], y=chosen["delta_rms"], mode="lines+markers", marker=dict(size=4),
                            line=dict(color=colours[settings[name]], width=2.5), name=f"{name}, epoch {at_epoch:g}",
                            showlegend=False, row=r, col=c)
        fig.update_xaxes(title_text="layer", nticks=4, row=r, col=c)
    _log_axis(fig, "delta_rms (log)", col=1)
    fig.update_yaxes(type="log", exponentformat="power", minor=dict(showgrid=False))
    fig.update_annotations(font_size=12)
    title = "Gradient profiles, one log axis: grey at initialization, colour at " + (
        "the last record" if epoch == "end" else f"epoch {epoch:g}")
    fig = _layout(fig, title, height=plot_px + 60 + title_px + 110)
    # the title pinned to the top, the panel titles under it (a long run name wrapped into it)
    return fig.update_layout(margin=dict(t=60 + title_px),
                             title=dict(y=1.0, yref="container", yanchor="top", pad=dict(t=12)))


def _wrap(name: str, width: int = 14) -> str:
    """A run name over several lines when it is long, broken after ' · ', '=' or a space: five panels
    side by side leave about 110 pixels per title at 1000 pixels wide."""
    if len(name) <= width:
        return name
    head, found, tail = name.partition(" · ")
    if found:
        return f"{_wrap(head, width)}<br>· {tail}"
    for sep in ("=", " "):
        head, found, tail = name.partition(sep)
        if found and head and tail:
            return f"{head}{found.strip()}<br>{_wrap(tail, width)}"
    return name


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


PASS_COLOR, FAIL_COLOR = "#2ca02c", "#d62728"
REL_ERROR_FLOOR = 1e-17  # a relative error of exactly 0 cannot sit on a log axis; drawn here instead


def gradcheck_figure(table: pd.DataFrame, threshold: float) -> go.Figure:
    """Per layer: the two gradient norms (left) and their relative error against the threshold (right), log y."""
    # two short lines each: on one line the titles ran into each other in a 1000-pixel window
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14, subplot_titles=(
        "gradient norm per layer<br>||dL/dW, dL/db||", "relative error per layer<br>green: passed, red: failed"))
    fig.add_scatter(x=table["layer"], y=table["numerical_norm"], name="numerical (central differences)",
                    mode="lines+markers", line=dict(color=GRAD_COLOR, width=3), marker=dict(size=9), row=1, col=1)
    fig.add_scatter(x=table["layer"], y=table["backprop_norm"], name="back-propagated",
                    mode="lines+markers", line=dict(color=DELTA_COLOR, dash="dot", width=2),
                    marker=dict(size=6, symbol="x"),
                    row=1, col=1)
    colours = [PASS_COLOR if p else FAIL_COLOR for p in table["passed"]]
    fig.add_bar(x=table["layer"], y=table["rel_error"].clip(lower=REL_ERROR_FLOOR), marker_color=colours,
                name="relative error", showlegend=False, row=1, col=2,
                customdata=np.c_[table["rel_error"], table["passed"].map({True: "passed", False: "FAILED"})],
                hovertemplate="layer %{x}<br>relative error %{customdata[0]:.3g}<br>%{customdata[1]}<extra></extra>")
    fig.add_hline(y=threshold, line=dict(color="#444", dash="dash"), row=1, col=2)
    fig.add_annotation(x=1, xref="x2 domain", y=math.log10(threshold), yref="y2", text=f"threshold {threshold:g}",
                       showarrow=False, xanchor="right", yanchor="bottom", font=dict(color="#444"))
    fig.update_xaxes(title_text="layer (1 = first hidden, last = output)", dtick=1)
    _log_axis(fig, "gradient norm (log scale)", row=1, col=1)
    _log_axis(fig, "relative error (log scale)", row=1, col=2)
    low = min(float(table["rel_error"].clip(lower=REL_ERROR_FLOOR).min()), threshold) / 10
    high = max(float(table["rel_error"].max()), threshold) * 10
    fig.update_yaxes(range=[math.log10(low), math.log10(high)], row=1, col=2)
    fig = _layout(fig, "Numerical and back-propagated gradients, layer by layer", height=450)
    # the title at the top, the subplots' two-line titles under it
    return fig.update_layout(bargap=0.4, margin=dict(t=120), title=dict(y=1.0, yref="container", yanchor="top",
                                                                         pad=dict(t=14)))


def gradcheck_scatter(entries: pd.DataFrame, table: pd.DataFrame, max_points: int = 400) -> go.Figure:
    """Every parameter's numerical (x) against back-propagated (y) gradient, one panel per layer.

    Signed values on linear axes, because a sign error is exactly what a check must catch;
    a correct layer lies on the grey diagonal y = x.
    """
    layers = table["layer"].tolist()
    cols = min(len(layers), 4)
    rows = math.ceil(len(layers) / cols)
    verdict = dict(zip(table["layer"], table["passed"]))
    titles = [f"layer {l}: {'passed' if verdict[l] else 'FAILED'}" for l in layers]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.08, vertical_spacing=0.22)
    for i, l in enumerate(layers):
        r, c = i // cols + 1, i % cols + 1
        pts = entries[entries["layer"] == l]
        if len(pts) > max_points:  # evenly thinned; the table's verdict uses every entry
            pts = pts.iloc[np.linspace(0, len(pts) - 1, max_points).astype(int)]
        span = float(np.abs(pts[["numerical", "backprop"]].to_numpy()).max()) or 1.0
        fig.add_scatter(x=[-span, span], y=[-span, span], mode="lines", line=dict(color=INIT_COLOR, dash="dash"),
                        name="y = x (backprop agrees)", showlegend=i == 0, hoverinfo="skip", row=r, col=c)
        fig.add_scatter(x=pts["numerical"], y=pts["backprop"], mode="markers", name="one weight or bias",
                        marker=dict(size=6, color=PASS_COLOR if verdict[l] else FAIL_COLOR, opacity=0.7),
                        showlegend=i == 0, row=r, col=c,
                        hovertemplate="numerical %{x:.4g}<br>backprop %{y:.4g}<extra></extra>")
        fig.update_xaxes(title_text="numerical", row=r, col=c)
        fig.update_yaxes(title_text="back-propagated" if c == 1 else None, row=r, col=c)
    fig.update_traces(selector=dict(mode="markers"), legendgroup="entries")
    fig = _layout(fig, "Each gradient entry: numerical (x) against back-propagated (y)", height=330 * rows + 130)
    return fig.update_layout(margin=dict(t=90))


def softmax_figure(table: pd.DataFrame) -> go.Figure:
    """Per class: softmax output y, one-hot target t and the gradient y - t with respect to the logits.

    ``table`` is ``softmax_steps(...).table``.  Linear axis: the gradient is signed and lies in [-1, 1].
    """
    classes = [f"class {c}" for c in table["class"]]
    fig = go.Figure()
    fig.add_bar(x=classes, y=table["softmax y"], name="softmax output y", marker_color=DELTA_COLOR)
    fig.add_bar(x=classes, y=table["target t"], name="target t (one-hot)", marker_color=INIT_COLOR)
    fig.add_bar(x=classes, y=table["dL/da fused (y - t)"], name="gradient dL/da = y - t", marker_color=GRAD_COLOR)
    fig.add_hline(y=0, line=dict(color="#444", width=1))
    fig.update_xaxes(title_text="class")
    fig.update_yaxes(title_text="probability / gradient", range=[-1.05, 1.05])
    fig.update_layout(barmode="group")
    return _layout(fig, "Softmax output, target and gradient per class", height=360)


PHASE_COLOUR_LIMIT = 20.0  # decades: beyond this the colour saturates (the hover still gives the value)
NO_VALUE_COLOUR = "#b0b0b0"


def phase_figure(table: pd.DataFrame, critical_sigma_w: float | None = None) -> go.Figure:
    """Heatmap of log10(delta_rms first / last hidden) by sigma_w (x) and depth (y), blue below 0,
    red above, with the predicted edge of chaos (chi = 1) as a dashed vertical line.

    A cell whose signal became exactly 0 (-inf) is drawn as vanished as it gets; a cell with no
    value (NaN: overflow, or no signal at the last hidden layer) is grey and says so on hover."""
    grid = table.pivot(index="depth", columns="sigma_w", values="log10_ratio")
    raw = grid.to_numpy(dtype=float)
    finite = np.abs(raw[np.isfinite(raw)])
    largest = float(finite.max()) if finite.size else 1.0
    bound = min(max(largest, 1.0), PHASE_COLOUR_LIMIT)
    z = np.where(np.isneginf(raw), -bound, raw)  # underflowed to zero: as vanished as it gets
    z = np.where(np.isposinf(raw), bound, z)
    shown = np.where(np.isneginf(raw), "signal exactly 0", np.char.mod("%.2f", np.nan_to_num(raw)))
    ticks = np.linspace(-bound, bound, 5)
    ticktext = [f"{t:.3g}" for t in ticks]
    if np.nanmin(raw, initial=0.0) < -bound:  # some cells lie beyond the colour range: say so at that end
        ticktext[0] = f"≤ {ticktext[0]}"
    if np.nanmax(raw, initial=0.0) > bound:
        ticktext[-1] = f"≥ {ticktext[-1]}"
    fig = go.Figure(go.Heatmap(
        z=z, x=grid.columns, y=grid.index, colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound,
        customdata=shown,
        colorbar=dict(title=dict(text="log10 delta_rms<br>first / last hidden", side="right"),
                      tickvals=ticks, ticktext=ticktext),
        hovertemplate="σ_w %{x:.2f}<br>depth %{y}<br>log10 ratio %{customdata}<extra></extra>",
    ))
    missing = np.isnan(raw)
    if missing.any():
        fig.add_heatmap(z=np.where(missing, 1.0, np.nan), x=grid.columns, y=grid.index, showscale=False,
                        colorscale=[[0, NO_VALUE_COLOUR], [1, NO_VALUE_COLOUR]], name="no value",
                        hovertemplate=("σ_w %{x:.2f}<br>depth %{y}<br>no value: the signal overflowed,"
                                       "<br>or none reached the last hidden layer"
                                       "<extra></extra>"))
    if critical_sigma_w is not None:
        fig.add_vline(x=critical_sigma_w, line=dict(color="black", dash="dash", width=2))
        fig.add_annotation(x=critical_sigma_w, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"theory: χ = 1 at σ_w = {critical_sigma_w:.3g}")
    fig.update_xaxes(title_text="σ_w (weight std × √fan_in)")
    fig.update_yaxes(title_text="depth (hidden layers)")
    return _layout(fig, "Error signal ratio across the network, measured at initialization", height=520)


SWEEP_METRICS = {  # metric -> (label, higher is better, drawn on a log colour scale)
    "final_val_accuracy": ("final validation accuracy", True, False),
    "final_accuracy": ("final training accuracy", True, False),
    "final_loss": ("final training loss", False, False),
    "final_val_loss": ("final validation loss", False, False),
    "epochs_to_threshold": ("epochs to the loss threshold", False, False),
    "delta_ratio_init": ("delta ratio first / last hidden, at init", None, True),
    "delta_ratio_end": ("delta ratio first / last hidden, at the end", None, True),
}
XI_POINTS = 100  # the depth-scale line's sigma_w points (a chaotic tanh point costs tens of ms)
SWEEP_XI_MULTIPLES = (6.0,)  # Schoenholz et al. 2017: trainable to depths of about 6 xi_c
PENDING_COLOUR = "#e8e8e8"


def _axis_values(values) -> list:
    return [v.item() if hasattr(v, "item") else v for v in values]


def sweep_figure(table: pd.DataFrame, x: str, y: str, metric: str, depth_scale=None, values=None,
                 multiples=SWEEP_XI_MULTIPLES) -> go.Figure:
    """Heat map of ``metric`` (mean over seeds; geometric mean for a delta ratio, drawn on a log colour
    scale) over settings ``x`` and ``y`` of a sweep's ``table`` (``lab.experiments.sweep.COLUMNS``; any subset of rows).

    values: (x values, y values) of the whole grid; cells without a row are drawn light grey as
    "not run yet" (default: the values the table has).  depth_scale: a function sigma_w array -> xi
    array (``lab.theory.meanfield.depth_scale`` bound to an activation and sigma_b); with x sigma_w and y depth it
    draws c * xi(sigma_w) for c in ``multiples`` over the map."""
    label, higher_better, log = SWEEP_METRICS.get(metric, (metric, None, False))
    xs = _axis_values(values[0] if values is not None else pd.unique(table[x]))
    ys = _axis_values(values[1] if values is not None else pd.unique(table[y]))
    numeric = {a: all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
               for a, vals in ((x, xs), (y, ys))}
    if numeric[x]:
        xs = sorted(xs)
    if numeric[y]:
        ys = sorted(ys)
    shape = (len(ys), len(xs))
    mean, loss, acc = (np.full(shape, np.nan) for _ in range(3))
    seeds, diverged = np.zeros(shape, dtype=int), np.zeros(shape, dtype=int)
    xi_, yi_ = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    if len(table):
        for (xv, yv), group in table.groupby([x, y], sort=False):
            xv, yv = _axis_values([xv, yv])
            if xv not in xi_ or yv not in yi_:
                continue
            i, j = yi_[yv], xi_[xv]
            vals = group[metric].to_numpy(dtype=float)
            with np.errstate(all="ignore"):
                if log:
                    vals = np.where(vals > 0, vals, np.nan)
                    mean[i, j] = 10 ** np.nanmean(np.log10(vals)) if np.isfinite(vals).any() else np.nan
                else:
                    mean[i, j] = np.nanmean(vals) if np.isfinite(vals).any() else np.nan
            seeds[i, j] = len(group)
            loss[i, j] = np.nanmean(group["final_loss"].to_numpy(dtype=float)) if "final_loss" in group else np.nan
            acc[i, j] = (np.nanmean(group["final_val_accuracy"].to_numpy(dtype=float))
                         if "final_val_accuracy" in group else np.nan)
            diverged[i, j] = int(group["diverged_at"].notna().sum()) if "diverged_at" in group else 0
    z = np.log10(mean) if log else mean
    done = seeds > 0
    shown = np.where(np.isfinite(mean), np.char.mod("%.4g", np.nan_to_num(mean)), "no value")
    custom = np.dstack([shown, seeds.astype(str), np.char.mod("%.4g", loss),
                        np.char.mod("%.3f", acc), diverged.astype(str)])
    xs_plot = xs if numeric[x] else [str(v) for v in xs]
    ys_plot = ys if numeric[y] else [str(v) for v in ys]
    how = "geometric mean" if log else "mean"
    colorbar = dict(title=dict(text=label.replace(", ", "<br>"), side="right"))
    finite = z[np.isfinite(z)]
    if log and finite.size:
        lo, hi = math.floor(finite.min()), math.ceil(finite.max())
        ticks = list(range(lo, hi + 1)) if hi > lo else [lo]
        colorbar.update(tickvals=ticks, ticktext=[f"1e{t}" for t in ticks])
    scale = "Viridis" if higher_better is not False else "Viridis_r"
    if log:
        scale = "RdBu_r"
    cell_hover = (f"{x} %{{x}}<br>{y} %{{y}}<br>{label}: %{{customdata[0]}} ({how} over %{{customdata[1]}} "
                  "seed(s))<br>final loss %{customdata[2]}<br>final val accuracy %{customdata[3]}"
                  "<br>diverged in %{customdata[4]} seed(s)<br>click: open it on the Train page<extra></extra>")
    # the numbers come from the invisible markers below, which also take the clicks (a heat map's cells
    # cannot be selected in Streamlit)
    heat = dict(z=z, x=xs_plot, y=ys_plot, colorscale=scale, colorbar=colorbar, hoverinfo="skip")
    if log and finite.size:
        heat["zmid"] = 0.0
    if metric in ("final_val_accuracy", "final_accuracy"):
        heat.update(zmin=0.0, zmax=1.0)
    fig = go.Figure(go.Heatmap(**heat))
    rows, cols = np.nonzero(done)
    if len(rows):
        fig.add_scatter(x=[xs_plot[j] for j in cols], y=[ys_plot[i] for i in rows], mode="markers",
                        marker=dict(size=28, color="rgba(0,0,0,0)", symbol="square"), customdata=custom[rows, cols],
                        hovertemplate=cell_hover, showlegend=False, name="cells")
    for mask, colour, text in ((~done, PENDING_COLOUR, "not run yet"),
                               (done & ~np.isfinite(mean), NO_VALUE_COLOUR, f"no value for {label}")):
        if mask.any():
            fig.add_heatmap(z=np.where(mask, 1.0, np.nan), x=xs_plot, y=ys_plot, showscale=False, name=text,
                            colorscale=[[0, colour], [1, colour]],
                            hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>{text}<extra></extra>")
    xi = None
    if depth_scale is not None and x == "sigma_w" and y == "depth" and numeric[x] and len(xs) > 1:
        grid = np.linspace(min(xs), max(xs), XI_POINTS)
        with np.errstate(all="ignore"):
            xi = depth_scale(grid)  # None: not computed yet (the live map goes on without the line)
    if xi is not None:
        xi = np.asarray(xi, dtype=float)
        top = max(ys) + (max(ys) - min(ys)) * 0.5 + 1
        for c, dash in zip(multiples, ("solid", "dash", "dot", "dashdot")):
            line = c * xi
            line = np.where(np.isfinite(line), np.minimum(line, top), top)  # xi = inf at the edge: off the top
            fig.add_scatter(x=grid, y=line, mode="lines", name=f"{c:g} ξ(σ_w), mean-field depth scale",
                            line=dict(color="white", width=3, dash=dash), hoverinfo="skip")
        half = (ys[1] - ys[0]) / 2 if len(ys) > 1 else 0.5
        fig.update_yaxes(range=[min(ys) - half, max(ys) + half])
    if numeric[x] is False:
        fig.update_xaxes(type="category")
    if numeric[y] is False:
        fig.update_yaxes(type="category")
    fig.update_xaxes(title_text="σ_w (weight std × √fan_in)" if x == "sigma_w" else x)
    fig.update_yaxes(title_text="depth (hidden layers)" if y == "depth" else y)
    return _layout(fig, f"{label[0].upper()}{label[1:]}, by {x} and {y}", height=540)


def figure_html(fig: go.Figure) -> str:
    """A figure as one standalone HTML file: plotly.js (about 4.6 MB) inside it, so that it draws
    without a network (from a CDN it would be a blank page offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


def zip_figures(figures: dict[str, go.Figure]) -> tuple[dict[str, str], dict[str, str]]:
    """``export.runs_zip``'s figures (name -> HTML) and assets: plotly.js once, as figures/plotly.min.js
    beside the HTML files that load it, rather than 4.6 MB inside each of them."""
    if not figures:
        return {}, {}
    from plotly.offline import get_plotlyjs

    html = {n: f.to_html(include_plotlyjs="directory", full_html=True) for n, f in figures.items()}
    return html, {"figures/plotly.min.js": get_plotlyjs()}
