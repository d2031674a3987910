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
from plotly.subplots import make_subplots

from .activations import get_activation
from .model import mlp_from_weights
from .train import RunResult

# one colour per run, in the same order everywhere (Plotly's default qualitative set)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
DELTA_COLOR, GRAD_COLOR, INIT_COLOR = "#1f77b4", "#ff7f0e", "#9aa0a6"
LOSS_LABEL = {"cross_entropy": "cross-entropy loss (nats)", "mse": "squared-error loss"}


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left"),
        height=height,
        margin=dict(l=70, r=30, t=50, b=100),
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0),
        template="plotly_white",
    )
    return fig


def loss_figure(history: pd.DataFrame, loss_name: str = "cross_entropy", log_y: bool = False,
                diverged_at: float | None = None) -> go.Figure:
    """Loss and accuracy per epoch, training (solid) and validation (dashed), side by side."""
    h = history[~history["diverged"]]
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
    fig = go.Figure(go.Heatmap(
        z=z, x=grid.columns, y=grid.index, colorscale="Viridis",
        colorbar=dict(title=dict(text=label, side="right")),
        hovertemplate="epoch %{x}<br>layer %{y}<br>" + label + " %{z:.2f}<extra></extra>",
    ))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="layer", dtick=_dtick(grid.index.max()))
    return _layout(fig, f"{column} by layer and epoch (colour: {label})", height=360)


def pick_layers(n_hidden: int, at_most: int = 10) -> list[int]:
    """Evenly spaced hidden layers (1-based) to show as small multiples, first and last included."""
    if n_hidden <= at_most:
        return list(range(1, n_hidden + 1))
    return sorted({int(round(v)) for v in np.linspace(1, n_hidden, at_most)})


def histogram_grid(result: RunResult, snapshot: int) -> go.Figure:
    """Activation histograms of hidden layers: at initialization (grey) and at snapshot ``snapshot``."""
    n_hidden = result.act_hist.shape[1]
    shown = pick_layers(n_hidden)
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
        titles.append(f"layer {l}" + (": " + ", ".join(extra) if extra else ""))
    # fractions of all activations, so the bars plus the exact zeros in the title add up to 1
    scale = 1.0 - result.act_zero_frac
    lo, hi = result.act_edges[0], result.act_edges[-1]
    return _hist_grid(result.act_hist, scale, result.act_edges, shown, titles, snapshot, result.hist_epochs,
                      "activation", f"Activations per layer (non-zero values; outside [{lo:g}, {hi:g}] they fall in the end bins)")


def delta_histogram_grid(result: RunResult, snapshot: int) -> go.Figure:
    """Histograms of log10 |per-example error dL/dz| per layer, at initialization (grey) and at ``snapshot``:
    a vanishing signal shows as the histograms sliding left, layer after layer."""
    n_layers = result.delta_hist.shape[1]
    shown = pick_layers(n_layers)
    titles = [f"layer {l}" + (" (output)" if l == n_layers else "") for l in shown]
    return _hist_grid(result.delta_hist, np.ones(result.delta_hist.shape[:2]), result.delta_edges, shown, titles,
                      snapshot, result.hist_epochs, "log10 |dL/dz| per example",
                      "Back-propagated error per layer (values below 1e-16, and exact zeros, in the first bin)")


def _hist_grid(counts, scale, edges, shown, titles, snapshot, epochs, xlabel, title) -> go.Figure:
    """Small multiples of histograms ``counts`` (R, layers, bins) on fixed ``edges``."""
    cols = min(5, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, shared_yaxes=True,
                        horizontal_spacing=0.03, vertical_spacing=0.18)
    centres = 0.5 * (edges[:-1] + edges[1:])
    width = edges[1] - edges[0]
    snaps = [(0, INIT_COLOR, "at initialization")]
    if snapshot != 0:
        snaps.append((snapshot, DELTA_COLOR, f"epoch {epochs[snapshot]:g}"))
    for i, l in enumerate(shown):
        r, c = i // cols + 1, i % cols + 1
        for snap, color, name in snaps:
            row = counts[snap, l - 1]
            frac = row / max(row.sum(), 1) * scale[snap, l - 1]
            fig.add_bar(x=centres, y=frac, width=width, marker_color=color, opacity=0.6, name=name,
                        showlegend=i == 0, row=r, col=c)
    fig.update_layout(barmode="overlay")
    fig.update_annotations(font_size=11)  # five subplot titles side by side must not run into each other
    fig.update_xaxes(title_text=xlabel, row=rows)
    fig.update_yaxes(title_text="fraction", col=1)
    return _layout(fig, title, height=260 * rows + 80)


def _epoch_of(result: RunResult, snapshot: int):
    e = result.hist_epochs[snapshot]
    return int(e) if float(e).is_integer() and result.layers["epoch"].dtype.kind == "i" else e


BOUNDARY_FLOPS = 4e9  # the grid's forward pass costs at most this (about 0.2 s), whatever the network


def boundary_resolution(weights, most: int = 120, least: int = 24) -> int:
    """Grid points per side for the decision boundary: ``most`` for small networks, fewer for
    large ones, so that drawing a depth-100, width-512 network does not take a minute."""
    flops_per_point = 2.0 * sum(W.size for W, _ in weights)
    side = int(math.sqrt(BOUNDARY_FLOPS / max(flops_per_point, 1.0)))
    return max(least, min(most, side))


def boundary_figure(result: RunResult, resolution: int | None = None) -> go.Figure | None:
    """Predicted class over the (standardized) input plane with the training points; None unless 2-D."""
    data = result.data
    if data is None or data.input_dim != 2 or not result.weights:
        return None
    resolution = resolution or boundary_resolution(result.weights)
    X = data.X_train
    lo, hi = X.min(axis=0) - 0.3, X.max(axis=0) + 0.3
    xs = np.linspace(lo[0], hi[0], resolution)
    ys = np.linspace(lo[1], hi[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.c_[gx.ravel(), gy.ravel()]
    model = mlp_from_weights(result.weights, get_activation(result.config.activation, result.config.leaky_slope),
                             result.config.loss)
    with np.errstate(all="ignore"):
        pred = model.predict(grid.astype(result.weights[0][0].dtype)).reshape(gx.shape)
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
    return _layout(fig, "Decision boundary (shaded: predicted class; points: training data)", height=420)


def _log_axis(fig: go.Figure, title: str, **where) -> None:
    """A log y axis with a labelled tick every decade (or every few, over a wide range)."""
    fig.update_yaxes(title_text=title, type="log", exponentformat="power", showexponent="all",
                     minor=dict(showgrid=False), **where)


def _dtick(n_layers) -> int:
    n = int(n_layers) if n_layers == n_layers else 1
    return 1 if n <= 12 else 2 if n <= 25 else 5 if n <= 60 else 10


def profiles_overlay(profiles: dict[str, pd.DataFrame], title: str = "Error signal per layer at initialization",
                     predicted: dict[str, pd.DataFrame] | None = None) -> go.Figure:
    """delta_rms per layer of several runs on one log axis; ``profiles`` maps name -> layers rows of one epoch;
    ``predicted`` maps some of the names to a mean-field profile (layer, delta_rms), drawn dashed."""
    fig = go.Figure()
    deepest = 1
    for i, (name, rows) in enumerate(profiles.items()):
        if rows.empty:  # a run that overflowed at initialization recorded no profile
            continue
        colour = PALETTE[i % len(PALETTE)]
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


def compare_loss_figure(histories: dict[str, pd.DataFrame], settings: dict[str, str], log_y: bool = True,
                        band: pd.DataFrame | None = None, loss_name: str = "cross_entropy") -> go.Figure:
    """Loss per epoch of several runs: training solid, validation dashed, one colour per setting.

    With ``band`` (from compare.mean_band) each setting is drawn as its mean over seeds
    with a shaded min-max band instead of one line per seed.
    """
    colours = colour_map(settings.values())
    fig = go.Figure()
    if band is not None and len(band):
        for setting, rows in band.groupby("setting", sort=False):
            c = colours[setting]
            fig.add_scatter(x=rows["epoch"], y=rows["high"], mode="lines", line=dict(width=0, color=c),
                            showlegend=False, hoverinfo="skip")
            fig.add_scatter(x=rows["epoch"], y=rows["low"], mode="lines", line=dict(width=0, color=c), fill="tonexty",
                            fillcolor=_rgba(c, 0.2), showlegend=False, hoverinfo="skip")
            fig.add_scatter(x=rows["epoch"], y=rows["mean"], mode="lines", line=dict(color=c, width=2.5),
                            name=f"{setting} (training, mean of {int(rows['n'].max())} seeds)")
    else:
        for name, h in histories.items():
            h = h[~h["diverged"]]
            c = colours[settings[name]]
            fig.add_scatter(x=h["epoch"], y=h["loss"], mode="lines", line=dict(color=c, width=2.5), name=f"{name} training",
                            legendgroup=name)
            if h["val_loss"].notna().any():
                fig.add_scatter(x=h["epoch"], y=h["val_loss"], mode="lines", line=dict(color=c, dash="dash"),
                                name=f"{name} validation", legendgroup=name)
    fig.update_xaxes(title_text="epoch")
    if log_y:
        _log_axis(fig, LOSS_LABEL.get(loss_name, "loss") + " (log scale)")
    else:
        fig.update_yaxes(title_text=LOSS_LABEL.get(loss_name, "loss"))
    return _layout(fig, "Loss curves (solid: training, dashed: validation)", height=440)


def profiles_grid(layers: dict[str, pd.DataFrame], settings: dict[str, str], epoch: str | float = "end") -> go.Figure:
    """One small gradient profile per run on a shared log axis: delta_rms at initialization (grey)
    and at ``epoch`` ("end" = each run's last record), so heights compare directly across runs."""
    colours = colour_map(settings.values())
    names = [n for n in layers if not layers[n].empty]  # runs that overflowed at initialization have none
    if not names:
        return _layout(go.Figure(), "No gradient profile: every run overflowed at initialization")
    cols = min(len(names), 5)
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, shared_yaxes="all", shared_xaxes=False,
                        horizontal_spacing=0.02, vertical_spacing=0.2)
    for i, name in enumerate(names):
        df = layers[name]
        r, c = i // cols + 1, i % cols + 1
        first = df[df["epoch"] == df["epoch"].min()]
        at_epoch = df["epoch"].max() if epoch == "end" else epoch
        chosen = df[df["epoch"] == at_epoch]
        fig.add_scatter(x=first["layer"], y=first["delta_rms"], mode="lines+markers", marker=dict(size=4),
                        line=dict(color=INIT_COLOR), name="at initialization", showlegend=i == 0, row=r, col=c)
        if at_epoch != first["epoch"].iloc[0] and len(chosen):
            fig.add_scatter(x=chosen["layer"], y=chosen["delta_rms"], mode="lines+markers", marker=dict(size=4),
                            line=dict(color=colours[settings[name]], width=2.5), name=f"epoch {at_epoch:g}",
                            showlegend=False, row=r, col=c)
        fig.update_xaxes(title_text="layer", row=r, col=c)
    _log_axis(fig, "delta_rms (log)", col=1)
    fig.update_yaxes(type="log", exponentformat="power", minor=dict(showgrid=False))
    title = "Gradient profiles on one log axis: grey at initialization, colour at " + (
        "each run's last epoch" if epoch == "end" else f"epoch {epoch:g}")
    return _layout(fig, title, height=300 * rows + 110)


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


PASS_COLOR, FAIL_COLOR = "#2ca02c", "#d62728"
REL_ERROR_FLOOR = 1e-17  # a relative error of exactly 0 cannot sit on a log axis; drawn here instead


def gradcheck_figure(table: pd.DataFrame, threshold: float) -> go.Figure:
    """Per layer: the two gradient norms (left) and their relative error against the threshold (right), log y."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14, subplot_titles=(
        "gradient norm ||dL/dW, dL/db|| per layer", "relative error per layer (green: passed, red: failed)"))
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
    fig = _layout(fig, "Numerical and back-propagated gradients, layer by layer", height=420)
    return fig.update_layout(bargap=0.4, margin=dict(t=90))


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


def phase_figure(table: pd.DataFrame, critical_sigma_w: float | None = None) -> go.Figure:
    """Heatmap of log10(delta_rms first / last hidden) by sigma_w (x) and depth (y), blue below 0,
    red above, with the predicted edge of chaos (chi = 1) as a dashed vertical line."""
    grid = table.pivot(index="depth", columns="sigma_w", values="log10_ratio")
    z = grid.to_numpy(dtype=float)
    finite = np.abs(z[np.isfinite(z)])
    bound = float(min(max(finite.max() if finite.size else 1.0, 1.0), 20.0))
    z = np.where(np.isneginf(z), -bound, z)  # underflowed to zero: as vanished as it gets
    fig = go.Figure(go.Heatmap(
        z=z, x=grid.columns, y=grid.index, colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound,
        colorbar=dict(title=dict(text="log10 delta_rms<br>first / last hidden", side="right")),
        hovertemplate="σ_w %{x:.2f}<br>depth %{y}<br>log10 ratio %{z:.2f}<extra></extra>",
    ))
    if critical_sigma_w is not None:
        fig.add_vline(x=critical_sigma_w, line=dict(color="black", dash="dash", width=2))
        fig.add_annotation(x=critical_sigma_w, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"theory: χ = 1 at σ_w = {critical_sigma_w:.3g}")
    fig.update_xaxes(title_text="σ_w (weight std × √fan_in)")
    fig.update_yaxes(title_text="depth (hidden layers)")
    return _layout(fig, "Error signal ratio across the network, measured at initialization", height=520)
