"""Chart builders at the extremes: pure functions from tables to figures, checked without a browser."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from lab import RunConfig, train
from lab.engine.results import HISTORY_COLUMNS
from lab.report import charts


def history(losses, diverged_at=None) -> pd.DataFrame:
    """A history table with training losses ``losses`` at epochs 0, 1, ...; validation 10% above."""
    rows = [{"epoch": e, "loss": v, "accuracy": 0.5, "val_loss": 1.1 * v, "val_accuracy": 0.5, "elapsed_s": 0.1 * e,
             "step": e, "diverged": False} for e, v in enumerate(losses)]
    if diverged_at is not None:
        rows.append({"epoch": diverged_at, "loss": math.nan, "accuracy": math.nan, "val_loss": math.nan,
                     "val_accuracy": math.nan, "elapsed_s": 1.0, "step": diverged_at, "diverged": True})
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def healthy(start: float) -> list[float]:
    return list(start * np.exp(-0.05 * np.arange(40)))


# the default comparison, as found: one run at 1e12..1e15, four near 1
DEFAULT_LIKE = {
    "init=xavier_normal": history(healthy(0.7)),
    "init=he_normal": history(healthy(0.8)),
    "init=lecun_normal": history(healthy(0.69)),
    "init=orthogonal": history(healthy(0.75)),
    "init=normal": history(list(np.geomspace(1e15, 1e12, 40))),
}


def traces_of(fig, name_part: str):
    return [t for t in fig.data if t.name and name_part in t.name]


def axis_of(trace) -> str:
    return trace.yaxis or "y"


def test_outlier_split_finds_the_runs_above_the_widest_gap():
    assert charts.split_outliers({"a": 0.7, "b": 0.9, "c": 2.0, "big": 1e15}) == {"big"}
    assert charts.split_outliers({"a": 0.7, "b": 1e9, "c": 1e12}) == {"b", "c"}
    assert charts.split_outliers({"a": 1e-3, "b": 0.5, "c": 2.0}) == set()  # 3.3 decades in steps: no gap
    assert charts.split_outliers({"a": 0.5}) == set()
    assert charts.split_outliers({"a": 0.5, "b": math.nan, "c": math.inf}) == set()


def test_a_run_orders_of_magnitude_above_gets_its_own_panel():
    fig = charts.compare_loss_figure(DEFAULT_LIKE, {n: n for n in DEFAULT_LIKE})
    (outlier,) = traces_of(fig, "init=normal training")
    others = [t for t in fig.data if t.name and t.name.endswith("training") and t is not outlier]
    assert len(others) == 4
    assert {axis_of(t) for t in others} == {"y2"} and axis_of(outlier) == "y"
    # the panel of the four spans what they span, not 16 decades
    bottom = np.concatenate([np.asarray(t.y, dtype=float) for t in fig.data if axis_of(t) == "y2"])
    assert math.log10(bottom.max() / bottom.min()) < 2
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert "init=normal" in fig.layout.annotations[0].text


def test_without_an_outlier_one_axis():
    runs = {k: v for k, v in DEFAULT_LIKE.items() if k != "init=normal"}
    fig = charts.compare_loss_figure(runs, {n: n for n in runs})
    assert {axis_of(t) for t in fig.data} == {"y"} and fig.layout.yaxis.type == "log"
    fig = charts.compare_loss_figure(runs, {n: n for n in runs}, log_y=False)
    assert fig.layout.yaxis.type in (None, "linear", "-")


def test_a_run_diverged_at_epoch_0_with_one_record_is_drawn_and_marked():
    runs = {"ok": history(healthy(0.7)), "boom": history([3e6], diverged_at=0),
            "nothing": history([], diverged_at=0)}
    fig = charts.compare_loss_figure(runs, {n: n for n in runs})
    (boom,) = traces_of(fig, "boom training")
    assert "diverged at epoch 0" in boom.name
    assert "markers" in boom.mode  # a single point drawn as a line would be invisible
    crosses = [t for t in fig.data if t.legendgroup == "boom" and t.marker.symbol == "x"]
    assert len(crosses) == 1 and list(crosses[0].y) == [3e6]
    (nothing,) = traces_of(fig, "nothing")
    assert "nothing to draw" in nothing.name
    assert axis_of(boom) != axis_of(traces_of(fig, "ok training")[0])  # 7 decades above: its own panel


def test_colours_follow_the_run_on_every_chart():
    names = list(DEFAULT_LIKE)
    colours = {n: charts.PALETTE[-1 - i] for i, n in enumerate(names)}  # not the palette's order
    loss = charts.compare_loss_figure(DEFAULT_LIKE, {n: n for n in names}, colours=colours)
    for n in names:
        assert {t.line.color for t in loss.data if t.legendgroup == n and t.mode != "markers"} == {colours[n]}
    layers = {n: _layers(depth=3) for n in names}
    grid = charts.profiles_grid(layers, {n: n for n in names}, colours=colours)
    for n in names:
        (t,) = [t for t in grid.data if t.name == f"{n}, epoch 2"]
        assert t.line.color == colours[n]


def _layers(depth: int, epochs=(0, 1, 2)) -> pd.DataFrame:
    rows = [{"epoch": e, "layer": l, "delta_rms": 10.0 ** (l - e)} for e in epochs for l in range(1, depth + 2)]
    return pd.DataFrame(rows)


def test_profiles_grid_shows_a_run_that_stopped_early_at_its_last_record():
    layers = {"long": _layers(3), "diverged": _layers(3, epochs=(0,))}
    fig = charts.profiles_grid(layers, {"long": "long", "diverged": "diverged"}, epoch=2)
    titles = [a.text for a in fig.layout.annotations]
    assert "long" in titles and any("last record: epoch 0" in t for t in titles)


@pytest.mark.parametrize("n, expected", [
    (5, [1, 2, 3, 4, 5]),
    (11, list(range(1, 12))),  # layer 6 of 11 used to be skipped
    (31, list(range(1, 32, 2))),
])
def test_pick_layers(n, expected):
    assert charts.pick_layers(n) == expected


def test_pick_layers_for_depth_100_keeps_one_step_and_the_output():
    shown = charts.pick_layers(101)
    assert shown[0] == 1 and shown[-1] == 101 and len(shown) <= charts.HIST_ALL_LAYERS_UP_TO
    assert len(set(np.diff(shown[:-1]))) == 1


@pytest.fixture(scope="module")
def run10():
    return train(RunConfig(depth=10, width=8, samples=120, epochs=2, dtype="float64"))


@pytest.fixture(scope="module")
def run30():
    return train(RunConfig(depth=30, width=4, samples=120, epochs=0, activation="tanh", init="zeros"))


def subplot_titles(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.text.startswith("<b>layer")]


def test_histogram_grids_show_every_layer_of_a_10_layer_network(run10):
    acts = charts.histogram_grid(run10, 1)
    assert len(subplot_titles(acts)) == 10 and "all 10 layers" in acts.layout.title.text
    errors = charts.delta_histogram_grid(run10, 1)
    titles = subplot_titles(errors)
    assert len(titles) == 11 and any(t.startswith("<b>layer 6</b>") for t in titles)
    assert titles[-1] == "<b>layer 11</b> (output)"
    # one bar per snapshot per layer: initialization and the chosen epoch
    assert len([t for t in errors.data if t.type == "bar"]) == 2 * 11


def test_histogram_grid_says_which_layers_it_shows_and_takes_a_choice(run30):
    fig = charts.histogram_grid(run30, 0)
    assert "(16 of 30)" in fig.layout.title.text
    fig = charts.histogram_grid(run30, 0, layers=[2, 17, 30], cols=2, colour="#123456")
    assert [t.split("</b>")[0] for t in subplot_titles(fig)] == ["<b>layer 2", "<b>layer 17", "<b>layer 30"]
    assert "layers 2, 17, 30 (3 of 30)" in fig.layout.title.text
    assert {t.marker.color for t in fig.data} == {"#123456"}


def test_histogram_grid_of_30_layers_in_two_columns_fits(run30):
    """15 rows of two: the spacing between rows is in pixels, so many rows cannot overlap."""
    fig = charts.histogram_grid(run30, 0, layers=list(range(1, 31)), cols=2)
    assert len(subplot_titles(fig)) == 30
    domains = sorted(fig.layout[f"yaxis{'' if i == 1 else i}"].domain for i in range(1, 31))
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(domains) if b[0] != a[0]]
    assert min(gaps) * (fig.layout.height - fig.layout.margin.t - fig.layout.margin.b) > 40  # px for the titles


def test_phase_figure_draws_every_cell():
    table = pd.DataFrame({"sigma_w": [0.5, 0.5, 2.0, 2.0], "depth": [2, 100, 2, 100],
                          "log10_ratio": [-0.4, -math.inf, 0.3, math.nan]})
    fig = charts.phase_figure(table, 1.0)
    main, missing = fig.data
    z = np.asarray(main.z, dtype=float)
    assert z[1, 0] == -main.zmax  # depth 100, sigma_w 0.5: as vanished as the colours go
    assert np.isnan(np.asarray(missing.z, dtype=float)).sum() == 3  # only the NaN cell is grey
    assert not np.isnan(np.asarray(missing.z, dtype=float)[1, 1])


def test_phase_figure_marks_colours_that_saturate():
    table = pd.DataFrame({"sigma_w": [0.5, 3.0], "depth": [100, 100], "log10_ratio": [-45.0, 30.0]})
    fig = charts.phase_figure(table)
    assert fig.data[0].zmax == charts.PHASE_COLOUR_LIMIT
    assert fig.data[0].colorbar.ticktext[0].startswith("≤") and fig.data[0].colorbar.ticktext[-1].startswith("≥")
    assert len(fig.data) == 1


def test_phase_colour_bar_marks_only_the_end_that_saturates():
    table = pd.DataFrame({"sigma_w": [0.5, 3.0], "depth": [100, 100], "log10_ratio": [-45.0, 12.0]})
    ticks = charts.phase_figure(table).data[0].colorbar.ticktext
    assert ticks[0].startswith("≤") and not ticks[-1].startswith("≥")


def test_a_narrow_log_axis_gets_distinct_readable_ticks():
    runs = {"a": history(list(np.linspace(0.6929, 0.6947, 6))), "b": history([0.6931] * 6)}
    fig = charts.compare_loss_figure(runs, {"a": "a", "b": "b"})
    labels = list(fig.layout.yaxis.ticktext)
    assert len(labels) >= 3 and len(set(labels)) == len(labels)  # no two ticks print alike


def test_narrow_huge_log_axis_ticks_are_distinct():
    from lab.report.charts import _round_ticks

    ticks, labels = _round_ticks(1.21e15, 1.26e15)
    assert len(ticks) >= 2 and len(set(labels)) == len(labels)
