"""A residual network's verdict judges the layers that share the shortcut (2..L); layer 1, which has
none, is named apart; and the theory caption says where its dashed line is far from the measurement."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from lab import RunConfig, train
from lab.experiments.presets import CURES
from lab.report import summaries
from lab.report.verdicts import EXPLODING_ABOVE, VANISHING_BELOW, Flow, flow
from lab.theory.meanfield import PROFILE_AGREEMENT


def card_run(label: str):
    changes = CURES["residual_scale"].variants[label]
    return train(RunConfig(samples=400, dtype="float32").replace(**{**changes, "epochs": 0}))


@pytest.fixture(scope="module")
def scaled():
    return card_run("α = 1/√50")


def delta_at(result, epoch=0) -> pd.Series:
    return result.layers[result.layers["epoch"] == epoch].set_index("layer")["delta_rms"]


def test_the_scaled_card_is_judged_on_the_shortcut_layers_and_names_layer_1_apart(scaled):
    d = delta_at(scaled)
    last = int(d.index.max()) - 1
    shared, layer1 = d[2] / d[last], d[1] / d[2]
    # the measurement itself: layers 2..50 within the healthy band, layer 1 far above layer 2
    assert VANISHING_BELOW < shared < EXPLODING_ABOVE and layer1 > 3
    v = flow(scaled.layers, 0, residual=True)
    assert v.kind is Flow.HEALTHY
    assert (v.first, v.last) == (2, last)
    assert v.ratio == pytest.approx(shared) and v.layer1_gap == pytest.approx(layer1)
    card = summaries.cure_caption(scaled, trained=False)
    assert "exploding" not in card and "healthy" in card
    assert f"layer 1, which has no shortcut, gets {summaries.fmt(layer1)}×" in card
    assert f"layer 2 gets **{summaries.fmt(shared)}×** layer {last}'s" in card


def test_the_train_page_captions_of_a_residual_run_name_layer_1_apart(scaled):
    caption = summaries.profile_caption(scaled.layers, 0, residual=True)
    assert "healthy" in caption and "exploding" not in caption
    assert f"{summaries.fmt(delta_at(scaled)[1] / delta_at(scaled)[2])}× layer 2's" in caption
    assert "healthy" in summaries.flow_line(scaled.layers, 0, residual=True)
    assert "layer 1, which has no shortcut" in summaries.delta_hist_caption(scaled.layers, 0, residual=True)


def test_the_unscaled_card_still_explodes_over_the_shortcut_layers():
    run = card_run("α = 1")
    d = delta_at(run)
    v = flow(run.layers, 0, residual=True)
    assert v.kind is Flow.EXPLODING and v.ratio == pytest.approx(d[2] / d[int(d.index.max()) - 1])


def test_without_shortcuts_layer_1_is_judged_as_before(scaled):
    v = flow(scaled.layers, 0)
    assert v.first == 1 and math.isnan(v.layer1_gap)


def test_the_theory_caption_says_where_the_dashed_line_is_far_off():
    # a network whose per-layer factor the theory gets right on average while its dashed line is off at layer 1
    run = train(RunConfig(samples=400, epochs=0, dtype="float32", depth=50, residual=True, residual_scale=0.2))
    overlay, caption = summaries.theory_comparison(run)
    measured = delta_at(run).reindex(overlay["layer"]).to_numpy()
    off = measured / overlay["delta_rms"].to_numpy()
    worst = int(abs(pd.Series(off).apply(math.log)).idxmax())
    assert max(off[worst], 1 / off[worst]) > PROFILE_AGREEMENT
    assert "describes this network" not in caption
    assert f"at layer {worst + 1}" in caption and f"{summaries.fmt(max(off[worst], 1 / off[worst]))}×" in caption
