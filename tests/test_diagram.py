"""The data and network diagrams drawn before training: counts of units and weights, colours by sign,
widths by |w|, blocks for wide layers, log10 delta_rms colours, and the data summaries."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab.data.datasets import make_dataset
from lab.engine.config import RunConfig
from lab.report import diagram


def _segments(trace) -> int:
    """Line segments in a lines trace: (start, end, None) triples."""
    return sum(1 for x in trace.x if x is None)


def _weight_traces(fig):
    return [t for t in fig.data if t.mode == "lines" and t.meta and "sign" in t.meta]


def _unit_markers(fig) -> int:
    return sum(len(t.x) for t in fig.data if t.mode == "markers")


def _coloured(fig):
    return [t for t in fig.data if t.marker is not None and t.marker.colorscale is not None]


def _weights(sizes, rng):
    return [(rng.standard_normal((a, b)), np.zeros(b)) for a, b in zip(sizes[:-1], sizes[1:])]


def test_every_unit_and_every_weight_is_drawn():
    sizes = [3, 5, 4, 2]
    fig = diagram.network_figure(sizes, _weights(sizes, np.random.default_rng(0)))
    assert _unit_markers(fig) == sum(sizes)
    assert sum(_segments(t) for t in _weight_traces(fig)) == 3 * 5 + 5 * 4 + 4 * 2
    # grouped by sign and width bucket, not one trace per weight
    assert len(_weight_traces(fig)) <= 2 * diagram.WIDTH_BUCKETS


def test_without_weights_every_connection_is_one_grey_trace():
    sizes = [2, 4, 3]
    fig = diagram.network_figure(sizes)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 1 and _segments(lines[0]) == 2 * 4 + 4 * 3
    assert not _coloured(fig)  # no delta_rms: neutral units


def _trace_of(fig, x0, y0, x1, y1):
    """The weight trace holding the segment from (x0, y0) to (x1, y1)."""
    for t in _weight_traces(fig):
        xs, ys = list(t.x), list(t.y)
        for k in range(0, len(xs), 3):
            if (xs[k], ys[k], xs[k + 1], ys[k + 1]) == (x0, y0, x1, y1):
                return t
    raise AssertionError("segment not drawn")


def test_colour_follows_sign_and_width_grows_with_size():
    # one input to four units: weights -3, -0.5, 0.5, 3; unit j of 4 sits at y = 1.5 - j
    W1 = np.array([[-3.0, -0.5, 0.5, 3.0]])
    W2 = np.ones((4, 1))
    fig = diagram.network_figure([1, 4, 1], [(W1, np.zeros(4)), (W2, np.zeros(1))])
    traces = [_trace_of(fig, 0, 0, 1, 1.5 - j) for j in range(4)]
    assert [t.line.color for t in traces] == [diagram.NEGATIVE, diagram.NEGATIVE, diagram.POSITIVE, diagram.POSITIVE]
    assert traces[0].line.width > traces[1].line.width
    assert traces[3].line.width > traces[2].line.width
    assert traces[0].line.width == traces[3].line.width  # the same |w|, the same width


def test_widths_increase_with_magnitude_within_a_layer():
    w = np.array([0.05, 0.3, 0.5, 0.7, 1.0])
    fig = diagram.network_figure([1, 5, 1], [(w[None, :], np.zeros(5)), (np.ones((5, 1)), np.zeros(1))])
    widths = [_trace_of(fig, 0, 0, 1, 2.0 - j).line.width for j in range(5)]
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_wide_layers_become_blocks_with_their_size_written():
    sizes = [2, 64, 64, 3]
    fig = diagram.network_figure(sizes, _weights(sizes, np.random.default_rng(1)))
    assert not _weight_traces(fig)
    blocks = [t for t in fig.data if t.mode == "markers+text"]
    assert sorted(int(s) for t in blocks for s in t.text) == sorted(sizes)
    assert all(t.marker.symbol == "square" for t in blocks)


def test_units_are_coloured_by_log10_delta_rms():
    sizes = [2, 3, 4, 2]
    delta = np.array([1e-6, 1e-3, 0.5])
    fig = diagram.network_figure(sizes, delta_rms=delta, cmin=-8.0, cmax=0.0)
    (trace,) = _coloured(fig)
    expected = np.repeat([-6.0, -3.0, np.log(0.5) / np.log(10)], sizes[1:])
    np.testing.assert_allclose(np.asarray(trace.marker.color, dtype=float), expected)
    assert (trace.marker.cmin, trace.marker.cmax) == (-8.0, 0.0)
    assert trace.marker.colorscale[0][1] == "#440154"  # Viridis, as the heat map
    assert trace.marker.colorbar.title.text == "log10 delta_rms"


def test_blocks_are_coloured_by_log10_delta_rms():
    delta = np.array([1e-9, 1e-4, 1e-2])
    fig = diagram.network_figure([2, 100, 100, 3], delta_rms=delta)
    (trace,) = _coloured(fig)
    np.testing.assert_allclose(np.asarray(trace.marker.color, dtype=float), [-9.0, -4.0, -2.0])
    assert (trace.marker.cmin, trace.marker.cmax) == (-9.0, -2.0)  # the values' range when not given


def test_a_unit_without_an_error_signal_is_grey_not_coloured():
    fig = diagram.network_figure([2, 3, 2], delta_rms=[0.0, 1e-2])
    (trace,) = _coloured(fig)
    assert len(trace.x) == 2  # only the output's units


def test_deep_networks_draw_every_kth_hidden_layer_and_say_which():
    depth = 100
    sizes = [2] + [8] * depth + [2]
    fig = diagram.network_figure(sizes)
    ticks = list(fig.layout.xaxis.ticktext)
    columns = fig.layout.xaxis.range[1] + 0.5  # input, the hidden layers drawn, output
    assert 3 < columns <= diagram.MAX_HIDDEN_COLUMNS + 2
    # a label on the first and the last column and on a few between: 26 side by side ran together
    assert ticks[0] == "input" and ticks[-1] == "output" and len(ticks) <= diagram.MAX_LAYER_LABELS
    assert list(fig.layout.xaxis.tickvals)[-1] == columns - 1
    assert f"of {depth})" in fig.layout.title.text
    small = diagram.network_figure([2, 8, 8, 2])
    assert list(small.layout.xaxis.ticktext) == ["input", "1", "2", "output"]
    assert "drawn" not in small.layout.title.text


def test_a_sixteen_wide_ten_layer_diagram_stays_light():
    sizes = [16] * 11 + [10]
    fig = diagram.network_figure(sizes, _weights(sizes, np.random.default_rng(2)), delta_rms=np.ones(11))
    assert len(fig.data) <= 2 * diagram.WIDTH_BUCKETS + 3
    assert len(fig.to_json()) < 150_000


@pytest.fixture(scope="module")
def spirals():
    return make_dataset(RunConfig(dataset="spirals", samples=300, classes=3, val_fraction=0.2))


def test_data_figure_draws_each_training_point_once_by_class(spirals):
    fig = diagram.data_figure(spirals)
    assert sum(len(t.x) for t in fig.data) == len(spirals.y_train)
    assert [t.marker.color for t in fig.data] == diagram.class_colours(3)
    assert fig.layout.yaxis.scaleanchor == "x"


def test_data_figure_is_none_unless_two_dimensional():
    data = make_dataset(RunConfig(dataset="blobs", samples=100, input_dim=3))
    assert diagram.data_figure(data) is None


def test_data_summary_counts_the_labels(spirals):
    summary = diagram.data_summary(spirals)
    np.testing.assert_array_equal(summary.classes["training"], np.bincount(spirals.y_train, minlength=3))
    np.testing.assert_array_equal(summary.classes["validation"], np.bincount(spirals.y_val, minlength=3))
    assert summary.classes["share of training"].sum() == pytest.approx(1.0)
    assert "300 examples (240 for training, 60 for validation), 2 features, 3 classes" in diagram.data_caption(spirals)


def test_feature_summary_shows_at_most_twenty_and_counts_the_rest():
    data = make_dataset(RunConfig(dataset="random", samples=50, input_dim=25, standardize=False))
    summary = diagram.data_summary(data)
    assert len(summary.features) == 20 and summary.features_not_shown == 5
    np.testing.assert_allclose(summary.features["max"], data.X_train[:, :20].max(axis=0))
    np.testing.assert_allclose(summary.features["std"], np.std(data.X_train[:, :20], axis=0))


def test_a_csv_dataset_is_summarised_with_its_names():
    text = "height,weight,kind\n" + "".join(
        f"{1.5 + 0.01 * i},{50 + i},{'cat' if i % 3 else 'dog'}\n" for i in range(30))
    config = RunConfig(dataset="csv", data_path="upload.csv", label="kind", val_fraction=0.2, standardize=False)
    data = make_dataset(config, csv_source=text.encode())
    summary = diagram.data_summary(data)
    assert list(summary.features["feature"]) == ["height", "weight"]
    assert list(summary.classes["class"]) == ["cat", "dog"]
    assert summary.classes["training"].sum() + summary.classes["validation"].sum() == 30
    assert summary.classes.set_index("class").loc["dog", ["training", "validation"]].sum() == 10
    np.testing.assert_allclose(summary.features.set_index("feature").loc["weight", "min"],
                               pd.Series(data.X_train[:, 1]).min())
    fig = diagram.data_figure(data)
    assert fig.layout.xaxis.title.text == "height" and fig.layout.yaxis.title.text == "weight"
    assert [t.name for t in fig.data] == ["class cat", "class dog"]


def test_before_training_the_diagram_shows_the_weights_the_run_starts_from():
    from lab.engine.training import train

    config = RunConfig(dataset="xor", depth=2, width=4, epochs=0, samples=40)
    data = make_dataset(config)
    assert diagram.layer_sizes(config, data) == [2, 4, 4, 2]
    for (W, b), (W0, b0) in zip(diagram.initial_weights(config, data), train(config).weights):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    assert diagram.initial_weights(config.replace(width=64), data) is None  # blocks draw no weights


def test_a_standardized_mean_reads_zero_not_rounding_noise():
    data = make_dataset(RunConfig(dataset="blobs", samples=200, input_dim=3))
    assert np.abs(data.X_train.mean(axis=0)).max() < 1e-12  # standardized with the training rows' mean
    summary = diagram.data_summary(data)
    assert (summary.features["mean"] == 0.0).all()
    np.testing.assert_allclose(summary.features["std"], 1.0)
