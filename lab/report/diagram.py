"""What will be trained, drawn before training: the data (a scatter for 2-D data, class counts and a
feature summary for any data) and the network as columns of units, Playground-style.

Pure functions, no streamlit.  ``network_figure`` colours units by log10 delta_rms with the heat
map's Viridis scale, so that the vanishing is visible on the network itself while a run trains.
"""
from __future__ import annotations

import html
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from lab.data.datasets import Dataset
from lab.engine.config import RunConfig
from lab.engine.model import build_mlp
from lab.seeds import stream

from .charts import PALETTE, _layout, _stacked_title, pick_layers, which_layers

WEBGL_FROM = 1000  # points: beyond this the scatter is drawn with WebGL
MAX_SCATTER_POINTS = 5000  # a 200,000-row CSV would send megabytes of JSON for a picture 5,000 points already make
MAX_FEATURES_SHOWN = 20
MAX_UNITS = 16  # layers up to this wide are drawn unit by unit, wider ones as one block
MAX_HIDDEN_COLUMNS = 24  # deeper networks show every k-th hidden layer (and the last)
POSITIVE, NEGATIVE, ZERO = PALETTE[0], PALETTE[1], "#c8c8c8"  # weight signs: blue and orange, as Playground
NEUTRAL = "#9aa0a6"  # a unit with no error signal to show
WIDTH_BUCKETS = 5  # line widths per sign: one trace each, so a 16 x 16 x 10 diagram stays a dozen traces
MIN_LINE, MAX_LINE = 0.4, 5.0  # px, for the smallest and the largest |w| of a layer


def class_colours(k: int) -> list[str]:
    """One colour per class, as ``charts.boundary_figure`` draws them."""
    return [PALETTE[i % len(PALETTE)] for i in range(k)]


def data_figure(data: Dataset) -> go.Figure | None:
    """The training points coloured by class, on equal axes; None unless the data is 2-D."""
    if data.input_dim != 2:
        return None
    X, y = data.X_train, data.y_train
    n = len(X)
    kept = np.arange(n) if n <= MAX_SCATTER_POINTS else np.linspace(0, n - 1, MAX_SCATTER_POINTS).astype(int)
    scatter = go.Scattergl if len(kept) > WEBGL_FROM else go.Scatter
    fig = go.Figure()
    for c, colour in enumerate(class_colours(data.classes)):
        pts = X[kept][y[kept] == c]
        fig.add_trace(scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=f"class {html.escape(data.class_names[c])}",
                              marker=dict(color=colour, size=5, line=dict(width=0.5, color="white"))))
    names = [html.escape(name) for name in data.feature_names]
    fig.update_xaxes(title_text=names[0], constrain="domain")
    fig.update_yaxes(title_text=names[1], scaleanchor="x", scaleratio=1)
    shown = f"{n:,} training points" if len(kept) == n else f"{len(kept):,} of {n:,} training points"
    # two lines: "Training data: 320 training po" was all a third of a 1000-pixel page showed of one
    return _stacked_title(_layout(fig, "Training data", height=420), "Training data", shown)


class DataSummary(NamedTuple):
    classes: pd.DataFrame  # class, training, validation, share of training
    features: pd.DataFrame  # feature, mean, std, min, max over the training rows (the first MAX_FEATURES_SHOWN)
    features_not_shown: int


def data_summary(data: Dataset, max_features: int = MAX_FEATURES_SHOWN) -> DataSummary:
    """Class counts in each split and a per-feature summary of the training inputs (as the network sees
    them: standardized when the run standardizes)."""
    train = np.bincount(data.y_train, minlength=data.classes)
    val = np.bincount(data.y_val, minlength=data.classes)
    classes = pd.DataFrame({"class": list(data.class_names), "training": train, "validation": val,
                            "share of training": train / max(train.sum(), 1)})
    X = data.X_train[:, :max_features]
    mean = X.mean(axis=0)
    # a standardized column's mean is 0 up to rounding: 3e-16 would read as a measurement
    mean[np.abs(mean) <= 1e-12 * np.abs(X).max(axis=0, initial=0.0)] = 0.0
    features = pd.DataFrame({"feature": list(data.feature_names[:max_features]), "mean": mean,
                             "std": X.std(axis=0), "min": X.min(axis=0), "max": X.max(axis=0)})
    return DataSummary(classes, features, max(data.input_dim - max_features, 0))


def data_caption(data: Dataset) -> str:
    """One line: examples, features, classes and how balanced they are."""
    n_train, n_val = len(data.y_train), len(data.y_val)
    counts = np.bincount(data.y_train, minlength=data.classes)
    share = counts / max(n_train, 1)
    balance = "balanced" if share.max() - share.min() <= 0.1 else "unbalanced"
    balance += (f" (each class {share.min():.0%} of the training examples)" if f"{share.min():.0%}" == f"{share.max():.0%}"
                else f" (from {share.min():.0%} to {share.max():.0%} of the training examples per class)")
    return (f"{n_train + n_val:,} examples ({n_train:,} for training, {n_val:,} for validation), "
            f"{data.input_dim} feature{'s' * (data.input_dim != 1)}, {data.classes} classes, {balance}.")


def _columns(layer_sizes) -> list[int]:
    """Which layers (0 = input, L = output) get a column: all of them, or every k-th hidden layer."""
    n_hidden = len(layer_sizes) - 2
    hidden = pick_layers(n_hidden, MAX_HIDDEN_COLUMNS) if n_hidden > 0 else []
    return [0, *hidden, len(layer_sizes) - 1]


def _tick(layer: int, last: int) -> str:
    return "input" if layer == 0 else "output" if layer == last else str(layer)


def _unit_y(n: int) -> np.ndarray:
    return (n - 1) / 2.0 - np.arange(n)  # centred on 0, first unit on top


def _weight_traces(segments: list, last_width: float) -> list[go.Scatter]:
    """Lines for the weights of each (x0, x1, W) column pair, grouped into one trace per sign and
    width bucket; widths scale with |w| over each layer's largest |w|."""
    parts = []  # per column pair: x (m, 3), y (m, 3), key (m,) with NaN ends that break the line
    for x0, x1, W in segments:
        W = np.asarray(W, dtype=float)
        top = np.abs(W).max()
        scaled = np.abs(W) / top if top > 0 else np.zeros_like(W)
        bucket = np.minimum((scaled * WIDTH_BUCKETS).astype(int), WIDTH_BUCKETS - 1)
        sign = np.sign(W).astype(int)
        key = ((sign + 1) * WIDTH_BUCKETS + np.where(sign == 0, 0, bucket)).ravel()
        y0, y1 = np.meshgrid(_unit_y(W.shape[0]), _unit_y(W.shape[1]), indexing="ij")
        m = W.size
        xs = np.column_stack([np.full(m, x0, float), np.full(m, x1, float), np.full(m, np.nan)])
        ys = np.column_stack([y0.ravel(), y1.ravel(), np.full(m, np.nan)])
        parts.append((xs, ys, key))
    if not parts:
        return []
    xs, ys, key = (np.concatenate(p) for p in zip(*parts))
    traces, named = [], set()
    for k in np.unique(key)[::-1]:  # widest first, so the legend shows each sign at its boldest
        sign, b = int(k) // WIDTH_BUCKETS - 1, int(k) % WIDTH_BUCKETS
        width = MIN_LINE if sign == 0 else MIN_LINE + (last_width - MIN_LINE) * (b + 1) / WIDTH_BUCKETS
        colour = {1: POSITIVE, -1: NEGATIVE, 0: ZERO}[sign]
        name = {1: "positive weight", -1: "negative weight", 0: "zero weight"}[sign]
        traces.append(go.Scatter(x=_gapped(xs[key == k]), y=_gapped(ys[key == k]), mode="lines",
                                 line=dict(color=colour, width=round(width, 2)), opacity=0.75, hoverinfo="skip",
                                 showlegend=sign not in named, legendgroup=name, name=name,
                                 meta={"sign": sign, "bucket": b}))
        named.add(sign)
    return traces


def _gapped(a: np.ndarray) -> list:
    """Rows of (start, end, NaN) as one list with None where a line breaks: short JSON, unlike
    plotly's base64 float64 arrays, for coordinates that are integers and halves."""
    return [None if v != v else (int(v) if v == int(v) else v) for v in a.ravel().tolist()]


def network_figure(layer_sizes, weights=None, delta_rms=None, max_units: int = MAX_UNITS,
                   cmin: float | None = None, cmax: float | None = None, input_names=None,
                   title: str | None = None) -> go.Figure:
    """The network as columns of units from input (left) to output (right).

    layer_sizes: [input_dim, width, ..., width, classes]; weights: [(W, b)] with W (fan_in, fan_out),
    drawn as lines (colour: sign, width: |w|) when every layer has at most ``max_units`` units;
    wider networks get one block per layer.  delta_rms: (L,) for layers 1..L, colours units by its
    log10 (Viridis, as the heat map; ``cmin``/``cmax`` fix the scale across frames).  More than
    MAX_HIDDEN_COLUMNS hidden layers: every k-th one (and the last) is drawn, and the title says which."""
    sizes = [int(s) for s in layer_sizes]
    last = len(sizes) - 1
    shown = _columns(sizes)
    units = max(sizes) <= max_units
    log_delta = None
    if delta_rms is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_delta = np.log10(np.asarray(delta_rms, dtype=float))
        log_delta[~np.isfinite(log_delta)] = np.nan
        finite = log_delta[np.isfinite(log_delta)]
        cmin = cmin if cmin is not None else (float(finite.min()) if finite.size else 0.0)
        cmax = cmax if cmax is not None else (float(finite.max()) if finite.size else 1.0)
    fig = go.Figure()
    # lines first, so that units sit on top of them
    adjacent = [(x, shown[x], shown[x + 1]) for x in range(len(shown) - 1)]
    if units and weights is not None:
        last_width = MAX_LINE if max(sizes) <= 8 else MAX_LINE * 0.7
        segs = [(x, x + 1, weights[b - 1][0]) for x, a, b in adjacent if b == a + 1]
        fig.add_traces(_weight_traces(segs, last_width))
    else:
        xs, ys = [], []
        for x, a, b in adjacent:
            if b != a + 1:
                continue
            if units:  # every connection, in one thin grey trace: no weights to show yet
                for y0 in _unit_y(sizes[a]):
                    for y1 in _unit_y(sizes[b]):
                        xs += [x, x + 1, None]
                        ys += [y0, y1, None]
            else:
                xs += [x, x + 1, None]
                ys += [0, 0, None]
        fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color=ZERO, width=1.0 if units else 3.0),
                        hoverinfo="skip", showlegend=False, name="connections")
    gaps = [(x + 0.5, b - a - 1) for x, a, b in adjacent if b != a + 1]
    if gaps:
        fig.add_scatter(x=[g[0] for g in gaps], y=[0.0] * len(gaps), mode="text", text=["⋯"] * len(gaps),
                        textfont=dict(size=18, color="#666"), showlegend=False, name="layers not drawn",
                        hovertemplate="%{customdata} layers not drawn<extra></extra>", customdata=[g[1] for g in gaps])
    if units:
        _add_units(fig, sizes, shown, log_delta, cmin, cmax, input_names)
    else:
        _add_blocks(fig, sizes, shown, log_delta, cmin, cmax)
    labelled = _labelled(len(shown))
    fig.update_xaxes(tickvals=labelled, ticktext=[_tick(shown[x], last) for x in labelled],
                     title_text="layer", showgrid=False, zeroline=False, range=[-0.5, len(shown) - 0.5])
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    if title is None:
        title = network_title(sizes, shown)
    height = 160 + 26 * max(min(max(sizes), max_units), 4) if units else 280
    lines = title.count("<br>")
    fig = _layout(fig, title, height=height + 20 * lines)
    # no y axis to label: the units take the room a chart's axis title would (a half-width column is narrow)
    return fig.update_layout(margin=dict(l=10, r=10, t=50 + 20 * lines, b=90))


MAX_LAYER_LABELS = 9  # a diagram in a third of a 1000-pixel page has room for this many layer labels


def _labelled(columns: int) -> list[int]:
    """The columns that get a layer label: all of them, or every k-th with the first and the last
    (26 labels side by side ran into each other)."""
    if columns <= MAX_LAYER_LABELS:
        return list(range(columns))
    step = -(-(columns - 1) // (MAX_LAYER_LABELS - 1))
    picked = list(range(0, columns - 1, step))
    if columns - 1 - picked[-1] < step / 2 and len(picked) > 1:
        picked.pop()  # too close to the last column's label
    return [*picked, columns - 1]


def network_title(sizes, shown) -> str:
    """'Network 2 → 8 × 3 → 2', and which hidden layers are drawn when not all of them."""
    hidden = sizes[1:-1]
    if not hidden:
        middle = ""
    elif len(set(hidden)) == 1:
        middle = f" → {hidden[0]} × {len(hidden)}" if len(hidden) > 1 else f" → {hidden[0]}"
    else:
        middle = " → " + " → ".join(map(str, hidden))
    text = f"Network {sizes[0]}{middle} → {sizes[-1]}"
    n_hidden = len(hidden)
    drawn = shown[1:-1]
    if drawn != list(range(1, n_hidden + 1)):  # a line of its own: after the network it ran out of the chart
        text += f"<br><span style='font-size:12px'>drawn: hidden {which_layers(drawn, n_hidden)}</span>"
    return text


def _colour_marker(log_delta, layers, cmin, cmax) -> dict:
    return dict(color=log_delta[np.asarray(layers) - 1], colorscale="Viridis", cmin=cmin, cmax=cmax,
                colorbar=dict(title=dict(text="log10 delta_rms", side="right")), showscale=True)


def _add_units(fig, sizes, shown, log_delta, cmin, cmax, input_names) -> None:
    """Markers for every unit: inputs grey, the rest by log10 delta_rms (grey where it has no value)."""
    last = len(sizes) - 1
    size = 16 if max(sizes) <= 8 else 11
    x_in, y_in = [0] * sizes[0], _unit_y(sizes[0])
    names = [html.escape(str(n)) for n in (input_names or [f"x{i + 1}" for i in range(sizes[0])])]
    fig.add_scatter(x=x_in, y=y_in, mode="markers", showlegend=False, name="input units",
                    marker=dict(color=NEUTRAL, size=size, line=dict(width=1, color="white")), customdata=names,
                    hovertemplate="input %{customdata}<extra></extra>")
    rows = [(x, layer, u, y) for x, layer in enumerate(shown) if layer > 0
            for u, y in enumerate(_unit_y(sizes[layer]))]
    xs, layers, unit, ys = (list(c) for c in zip(*rows))
    where = ["output" if layer == last else f"layer {layer}" for layer in layers]
    has = np.isfinite(log_delta[np.asarray(layers) - 1]) if log_delta is not None else np.zeros(len(rows), bool)
    value = log_delta[np.asarray(layers) - 1] if log_delta is not None else np.full(len(rows), np.nan)
    custom = [[w, u + 1, f"{10 ** v:.3g}" if np.isfinite(v) else "n/a"] for w, u, v in zip(where, unit, value)]
    hover = "%{customdata[0]}, unit %{customdata[1]}<br>delta_rms %{customdata[2]}<extra></extra>"
    for keep, coloured in ((~has, False), (has, True)):
        if not keep.any():
            continue
        pick = np.flatnonzero(keep)
        marker = dict(size=size, line=dict(width=1, color="white"), color=NEUTRAL)
        if coloured:
            marker.update(_colour_marker(log_delta, [layers[i] for i in pick], cmin, cmax))
        fig.add_scatter(x=[xs[i] for i in pick], y=[ys[i] for i in pick], mode="markers", marker=marker,
                        customdata=[custom[i] for i in pick], hovertemplate=hover, showlegend=False,
                        name="units by log10 delta_rms" if coloured else "units")


def _text_colour(log_value: float, cmin: float, cmax: float) -> str:
    """Black on Viridis' light end, white on its dark end."""
    t = 0.5 if cmax <= cmin else min(max((log_value - cmin) / (cmax - cmin), 0.0), 1.0)
    r, g, b = (int(v) for v in sample_colorscale("Viridis", [t])[0][4:-1].split(","))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"


def _add_blocks(fig, sizes, shown, log_delta, cmin, cmax) -> None:
    """One square per layer with its width written on it, coloured like the units."""
    last = len(sizes) - 1
    side = max(min(46.0, 440.0 / len(shown)), 14.0)  # a half-width chart is ~500 px: gaps stay between blocks
    value = [np.nan if layer == 0 or log_delta is None else log_delta[layer - 1] for layer in shown]
    coloured = [i for i, v in enumerate(value) if np.isfinite(v)]
    plain = [i for i, v in enumerate(value) if not np.isfinite(v)]
    custom = [[_tick(layer, last) if layer in (0, last) else f"layer {layer}", sizes[layer],
               f"{10 ** v:.3g}" if np.isfinite(v) else "n/a"] for layer, v in zip(shown, value)]
    hover = "%{customdata[0]}: %{customdata[1]} units<br>delta_rms %{customdata[2]}<extra></extra>"
    font = max(min(13, int(side / 3)), 8)
    # many narrow blocks: their widths would run together (the title says the width)
    written = len(shown) <= MAX_LAYER_LABELS + 3
    for group, is_coloured in ((plain, False), (coloured, True)):
        if not group:
            continue
        marker = dict(symbol="square", size=side, line=dict(width=1, color="white"), color=NEUTRAL)
        text_colour = ["white"] * len(group)
        if is_coloured:
            marker.update(_colour_marker(log_delta, [shown[i] for i in group], cmin, cmax))
            text_colour = [_text_colour(value[i], cmin, cmax) for i in group]
        fig.add_scatter(x=group, y=[0.0] * len(group), mode="markers+text", marker=marker,
                        text=[str(sizes[shown[i]]) if written else "" for i in group], textposition="middle center",
                        textfont=dict(size=font, color=text_colour), customdata=[custom[i] for i in group],
                        hovertemplate=hover, showlegend=False,
                        name="layers by log10 delta_rms" if is_coloured else "layers")


def delta_at(layers: pd.DataFrame, epoch) -> np.ndarray:
    """delta_rms of layers 1..L at ``epoch`` from a run's layer table (RunResult.layers), in layer order."""
    at = layers[layers["epoch"] == epoch].sort_values("layer")
    return at["delta_rms"].to_numpy(dtype=float)


def delta_scale(layers: pd.DataFrame) -> tuple[float, float]:
    """(cmin, cmax) of log10 delta_rms over every record: the heat map's colour range, one for all frames."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(layers["delta_rms"].to_numpy(dtype=float))
    logs = logs[np.isfinite(logs)]
    return (float(logs.min()), float(logs.max())) if logs.size else (0.0, 1.0)


def layer_sizes(config: RunConfig, data: Dataset) -> list[int]:
    """[input_dim, width, ..., width, classes]: the units of each layer of the network ``config`` builds."""
    return [data.input_dim] + [config.width] * config.depth + [data.classes]


def initial_weights(config: RunConfig, data: Dataset, max_units: int = MAX_UNITS) -> list | None:
    """The (W, b) a run of ``config`` starts from (its seed's init stream), when the diagram draws every
    weight; None for a network wider than ``max_units``, whose blocks show no weights (and which would
    be costly to build just for a picture)."""
    if max(layer_sizes(config, data)) > max_units:
        return None
    return build_mlp(config, data.input_dim, data.classes, stream(config.seed, "init")).weights()
