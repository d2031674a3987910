"""Charts that say what they clip or squash: the histograms' end bins carry their counts, a log axis
spans at least a decade and labels its ticks in full, and a table column keeps one number format."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from lab import RunConfig, train
from lab.report import charts, tables


@pytest.fixture(scope="module")
def chaotic():
    """tanh with weights of std 1 over 30 layers: layer 1's errors run far beyond the histogram's 1e8."""
    return train(RunConfig(samples=400, epochs=0, dtype="float32", activation="tanh", init="normal",
                           init_scale=1.0, depth=30))


@pytest.fixture(scope="module")
def zeros():
    return train(RunConfig(samples=200, epochs=3, dtype="float32", activation="tanh", init="zeros", depth=3))


def titles(fig) -> dict[int, str]:
    """Subplot titles by layer number."""
    out = {}
    for a in fig.layout.annotations:
        m = re.match(r"<b>layer (\d+)</b>", a.text or "")
        if m:
            out[int(m.group(1))] = a.text
    return out


def test_the_error_histograms_label_the_overflow_bin_with_its_count(chaotic):
    layers = chaotic.layers[chaotic.layers["epoch"] == 0].set_index("layer")["delta_rms"]
    top = chaotic.delta_edges[-2]  # the last bin holds everything from here up
    assert layers[1] > 10 ** top  # layer 1's rms error is off the scale...
    over = int(chaotic.delta_hist[0, 0, -1])
    assert over > 0  # ...so its errors pile into the last bin
    text = titles(charts.delta_histogram_grid(chaotic, 0, [1, 30]))[1]
    assert f"<br>↑ {over:,}" in text and f"↑ from 10<sup>{top:g}</sup> up" in charts.delta_histogram_grid(
        chaotic, 0, [1]).layout.title.text
    # a layer with nothing in either end bin says nothing about them
    healthy = train(RunConfig(samples=200, epochs=0, depth=3, dtype="float32", activation="tanh", init="xavier_normal"))
    assert healthy.delta_hist[0, 0, [0, -1]].sum() == 0
    assert "<br>" not in titles(charts.delta_histogram_grid(healthy, 0, [1]))[1]


def test_the_error_histograms_label_the_underflow_bin_with_its_count(zeros):
    under = int(zeros.delta_hist[0, 0, 0])  # zero weights: layer 1 gets exactly zero error
    assert under == zeros.delta_hist[0, 0].sum() > 0
    text = titles(charts.delta_histogram_grid(zeros, 0, [1]))[1]
    assert f"<br>↓ {under:,}" in text
    assert f"↓ below 10<sup>{zeros.delta_edges[1]:g}</sup> or 0" in charts.delta_histogram_grid(zeros, 0, [1]).layout.title.text


def log_span(fig, axis: str = "yaxis") -> float:
    lo, hi = fig.layout[axis].range
    return hi - lo


def test_a_log_axis_over_one_value_spans_a_decade(zeros):
    fig = charts.profile_figure(zeros.layers, 0)
    assert fig.layout.yaxis.type == "log"
    assert log_span(fig) >= 1.0
    drawn = zeros.layers[(zeros.layers["epoch"] == 0) & (zeros.layers["delta_rms"] > 0)]["delta_rms"]
    lo, hi = fig.layout.yaxis.range
    assert all(lo <= math.log10(v) <= hi for v in drawn)  # and still shows what is drawn


def test_a_colour_bar_over_one_value_spans_a_decade(zeros):
    heat = charts.heatmap_figure(zeros.layers, "delta_rms").data[0]
    finite = np.asarray(heat.z, dtype=float)
    finite = finite[np.isfinite(finite)]
    assert np.ptp(finite) < 0.01  # one value (the output layer's) at every epoch
    assert heat.zmax - heat.zmin >= 1.0 and heat.zmin <= finite.min() and heat.zmax >= finite.max()


def test_a_short_log_axis_labels_its_ticks_in_full():
    layers = pd.DataFrame({"epoch": 0, "layer": [1, 2, 3, 4], "delta_rms": [0.35, 0.5, 0.8, 1.2],
                           "grad_norm": [0.3, 0.45, 0.7, 1.1]})
    fig = charts.profile_figure(layers, 0)
    ax = fig.layout.yaxis
    assert ax.tickvals is not None and len(ax.tickvals) >= 3
    for value, label in zip(ax.tickvals, ax.ticktext):
        shown = float(label.replace("×10<sup>", "e").replace("</sup>", ""))
        assert shown == pytest.approx(value, rel=1e-9)  # "0.4", not a "4" under the "1"


def column_text(table: pd.DataFrame, column: str) -> list[str]:
    """The text st.dataframe shows in each cell of ``column`` (the Styler's formatted values)."""
    html = tables.styled(table).to_html()
    col = list(table.columns).index(column)
    return re.findall(rf'class="data row\d+ col{col}" >([^<]*)<', html)


def test_one_number_format_per_column():
    wide = column_text(pd.DataFrame({"layer": [1, 2, 3], "delta_rms": [5.03e8, 4790.0, 0.25]}), "delta_rms")
    assert len(wide) == 3
    assert all(re.fullmatch(r"-?\d\.\d\de-?\d+", c) for c in wide), wide  # all in one scientific form
    assert [float(c) for c in wide] == pytest.approx([5.03e8, 4790.0, 0.25], rel=5e-3)
    narrow = column_text(pd.DataFrame({"loss": [4790.0, 0.25]}), "loss")
    assert narrow == ["4790", "0.25"]  # plain, with no "4.79e+03"


def test_a_long_log_axis_labels_powers_of_ten_only():
    """Over many decades plotly labels the 2s and 5s between powers of ten with a bare digit on a tall
    plot ("5" under "1" for 0.5): a tick every whole number of decades leaves only powers of ten."""
    history = pd.DataFrame({"epoch": range(6), "step": range(6), "loss": [1, 0.1, 1e-2, 1e-3, 1e-4, 1e-5],
                            "val_loss": [1, 0.2, 2e-2, 2e-3, 2e-4, 2e-5], "accuracy": 0.5, "val_accuracy": 0.5,
                            "diverged": False})
    fig = charts.compare_loss_figure({"a": history}, {"a": "a"})
    ax = fig.layout.yaxis
    assert ax.type == "log" and ax.tickvals is None
    assert ax.dtick is not None and float(ax.dtick) == int(float(ax.dtick)) >= 1
