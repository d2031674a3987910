"""Captions state the verdict of the run at hand, computed from the numbers in their chart.

A table of small, fast runs (one per case: vanishing, exploding, healthy, all-zero weights,
diverged, 0 epochs, stopped, converged) says which verdict each caption must state; synthetic
layer tables cover what a real run would make slow or rare (a dead layer, a ratio just
either side of a threshold, numbers that are not finite, a run that diverged before its
second record).
"""
import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest

from lab import RunConfig, train
from lab.engine.optim import OPTIMIZERS
from lab.engine.results import LAYER_COLUMNS
from lab.report import summaries
from lab.report.verdicts import ADAPTIVE_OPTIMIZERS, Flow, Outcome, flow, outcome

S = RunConfig(samples=200, width=16, depth=6, epochs=0, dtype="float64")

RUNS = {
    "vanishing": S.replace(activation="sigmoid", init="normal", init_scale=0.01),
    "vanishing_sgd": S.replace(activation="sigmoid", init="xavier_normal", depth=10, optimizer="sgd", lr=0.1),
    "vanishing_to_zero": S.replace(activation="sigmoid", init="normal", init_scale=0.01, depth=30, dtype="float32"),
    "exploding": S.replace(activation="tanh", init="normal", init_scale=1.0, epochs=3),
    "exploding_relu": S.replace(activation="relu", init="normal", init_scale=1.0),
    "healthy": S.replace(activation="relu", init="he_normal", epochs=5),
    "zeros": S.replace(activation="tanh", init="zeros", epochs=3),
    "zeros_sigmoid": S.replace(activation="sigmoid", init="zeros", epochs=5),
    "zero_weights_random_bias": S.replace(activation="tanh", init="zeros", bias_std=0.5),
    # a linear network whose loss climbs for a few epochs before it diverges
    "diverged": S.replace(activation="identity", init="xavier_normal", optimizer="sgd", lr=2.0, batch_size=200,
                          epochs=30),
    "converged": S.replace(dataset="xor", activation="tanh", init="xavier_normal", depth=3, epochs=60,
                           lr=0.03, batch_size=32),
}

# case: (flow verdict at initialization, at the last record, what became of the run)
VERDICTS = {
    "vanishing": (Flow.VANISHING, Flow.VANISHING, Outcome.UNTRAINED),
    "vanishing_sgd": (Flow.VANISHING, Flow.VANISHING, Outcome.UNTRAINED),
    "vanishing_to_zero": (Flow.VANISHING, Flow.VANISHING, Outcome.UNTRAINED),
    "exploding": (Flow.EXPLODING, Flow.EXPLODING, None),
    "exploding_relu": (Flow.EXPLODING, Flow.EXPLODING, Outcome.UNTRAINED),
    "healthy": (Flow.HEALTHY, Flow.HEALTHY, Outcome.LEARNING),
    "zeros": (Flow.SYMMETRIC, Flow.SYMMETRIC, Outcome.AT_CHANCE),
    "zeros_sigmoid": (Flow.SYMMETRIC, Flow.SYMMETRIC, Outcome.AT_CHANCE),
    "zero_weights_random_bias": (Flow.BLOCKED, Flow.BLOCKED, Outcome.UNTRAINED),
    "diverged": (Flow.HEALTHY, None, Outcome.DIVERGED),
    "converged": (Flow.HEALTHY, None, Outcome.CONVERGED),
}
WORD = {Flow.VANISHING: "vanishing", Flow.EXPLODING: "exploding", Flow.HEALTHY: "healthy",
        Flow.SYMMETRIC: "symmetric", Flow.BLOCKED: "blocked"}


@pytest.fixture(scope="module")
def runs():
    return {name: train(config) for name, config in RUNS.items()}


def epochs_of(result):
    return sorted(result.layers["epoch"].unique())


def every_caption(result) -> str:
    first, last = epochs_of(result)[0], epochs_of(result)[-1]
    layers = result.layers
    return " ".join([
        summaries.preset_caption(result), summaries.loss_caption(result), summaries.extent(result),
        summaries.flow_line(layers, first), summaries.flow_line(layers, last),
        summaries.profile_caption(layers, first, result.config.optimizer),
        summaries.profile_caption(layers, last, result.config.optimizer),
        *(summaries.heatmap_caption(result, c) for c in ("delta_rms", "update_ratio", "grad_norm")),
        summaries.saturation_caption(layers, last), summaries.delta_hist_caption(layers, last),
    ])


@pytest.mark.parametrize("name", list(RUNS))
def test_every_caption_states_the_verdict_of_the_case(runs, name):
    result = runs[name]
    at_init, at_end, became = VERDICTS[name]
    first, last = epochs_of(result)[0], epochs_of(result)[-1]
    assert flow(result.layers, first).kind is at_init
    if at_end is not None:
        assert flow(result.layers, last).kind is at_end
    if became is not None:
        assert outcome(result).outcome is became
    word = WORD[at_init]
    # the Home card and the Train page's "At initialization" say the same word for the same network
    assert f"**{word}**" in summaries.preset_caption(result)
    assert summaries.flow_line(result.layers, first).startswith(f"**At initialization: {word}.**")
    assert word in summaries.profile_caption(result.layers, first, result.config.optimizer).lower()
    if at_end is not None and last != first:
        assert f": {WORD[at_end]}.**" in summaries.flow_line(result.layers, last)
    text = every_caption(result)
    assert "Dark rows are layers the error signal hardly reaches" not in text  # the old fixed sentence
    assert "n/a" not in summaries.loss_caption(result)


@pytest.mark.parametrize("name", ["vanishing", "vanishing_sgd", "exploding", "exploding_relu", "healthy"])
def test_the_ratio_in_the_words_is_the_ratio_in_the_chart(runs, name):
    layers = runs[name].layers
    at0 = layers[layers["epoch"] == 0].set_index("layer")["delta_rms"]
    last_hidden = RUNS[name].depth
    ratio = at0[1] / at0[last_hidden]
    per_layer = ratio ** (1 / (last_hidden - 1))
    line = summaries.flow_line(layers, 0)
    shown = re.search(r"Layer 1 gets ([0-9.e+-]+)× layer (\d+)'s error signal \(([0-9.e+-]+)× per layer\)", line)
    assert shown, line
    assert float(shown[1]) == pytest.approx(ratio, rel=0.06)
    assert int(shown[2]) == last_hidden
    assert float(shown[3]) == pytest.approx(per_layer, rel=0.01)


def test_all_zero_weights_are_symmetric_not_dead(runs):
    result = runs["zeros"]  # tanh: every hidden unit outputs tanh(0) = 0
    text = every_caption(result)
    assert "dead" not in text and "saturated" not in summaries.saturation_caption(result.layers, 3)
    assert "every hidden unit outputs 0 for every example" in summaries.saturation_caption(result.layers, 3)
    profile = summaries.profile_caption(result.layers, 3, "adam")
    assert "symmetric" in profile and "only the output biases learn" in profile
    # and the numbers say so: no hidden layer and not even the output weights got a gradient
    at = result.layers[result.layers["epoch"] == 3]
    assert (at["grad_norm"] == 0).all()
    assert "blank" in summaries.heatmap_caption(result, "delta_rms")


def test_zero_weights_with_sigmoid_stay_symmetric_while_the_output_layer_learns(runs):
    result = runs["zeros_sigmoid"]  # sigmoid(0) = 0.5: the output weights do get a gradient
    profile = summaries.profile_caption(result.layers, 5, "adam")
    assert "symmetric" in profile and "output biases" not in profile
    assert "dead" not in every_caption(result)
    W = result.weights[1][0]  # (fan_in, fan_out): every unit of layer 2 has the same incoming weights
    assert np.ptp(W, axis=1).max() == 0 and np.abs(W).max() > 0


def test_zero_weights_with_random_biases_block_the_signal_until_the_weights_move(runs):
    v = flow(runs["zero_weights_random_bias"].layers, 0)
    assert v.cause == "zero_weights" and v.blocked_at == RUNS["zero_weights_random_bias"].depth
    text = summaries.profile_caption(runs["zero_weights_random_bias"].layers, 0, "adam")
    assert "layers 1-6 get exactly zero error signal" in text and "move away from zero" in text


def test_a_signal_that_underflows_to_zero_is_vanishing_not_dead(runs):
    result = runs["vanishing_to_zero"]
    v = flow(result.layers, 0)
    assert v.cause == "underflow" and v.blocked_at > 1
    assert (result.layers.query("epoch == 0 and layer <= @v.blocked_at")["delta_rms"] == 0).all()
    assert "dead" not in every_caption(result) and "exactly 0" in summaries.flow_line(result.layers, 0)


def test_zero_epochs_say_initialization_only(runs):
    result = runs["vanishing"]
    assert summaries.extent(result) == "initialization only (0 epochs)"
    loss = summaries.loss_caption(result)
    assert loss.startswith("Only the initialization (0 epochs) was recorded") and "went from" not in loss
    assert "records" not in every_caption(result)
    assert "Train for at least one epoch" in summaries.heatmap_caption(result)


def test_a_diverged_run_says_where_it_diverged_and_keeps_what_came_before(runs):
    result = runs["diverged"]
    k = result.diverged_at
    assert k is not None and k >= 2
    loss = summaries.loss_caption(result)
    assert f"diverged at epoch {k:g}" in loss and "at epoch 0" not in loss
    last_ok = result.history[~result.history["diverged"]].iloc[-1]
    assert f"to {summaries.fmt(last_ok['loss'])} at epoch {last_ok['epoch']:g}" in loss
    assert summaries.extent(result) == f"diverged at epoch {k:g} of 30"
    assert "before the run diverged" in summaries.heatmap_caption(result)


def _diverged_copy(result, at):
    """``result`` as the divergence rule reports a run whose epoch-0 record is its last finite one."""
    diverged_row = result.history.iloc[[0]].assign(epoch=at, loss=math.nan, accuracy=math.nan, diverged=True)
    return dataclasses.replace(result, history=pd.concat([result.history.iloc[[0]], diverged_row]),
                               layers=result.layers[result.layers["epoch"] == 0], diverged_at=at,
                               diverge_reason="the training loss grew 1e4-fold")


def _check_exploded_at_initialization(result):
    loss = summaries.loss_caption(result)
    assert loss.startswith("Diverged at initialization") and "went from" not in loss
    assert summaries.fmt(result.history["loss"].iloc[0]) in loss
    assert summaries.extent(result).startswith("diverged at epoch 0")
    assert "exploding" in summaries.preset_caption(result)
    assert "diverged at initialization" in summaries.heatmap_caption(result)


def test_a_run_exploded_at_initialization_is_not_a_loss_that_went_from_x_to_x(runs):
    _check_exploded_at_initialization(_diverged_copy(runs["exploding_relu"], 0))


def test_a_real_run_exploded_at_initialization():
    result = train(RUNS["exploding_relu"].replace(init_scale=10.0, epochs=3))  # loss about 3e8 before any update
    if result.diverged_at is None:
        pytest.skip("this engine does not yet call a finite exploded loss divergence")
    assert result.diverged_at == 0 and list(result.layers["epoch"].unique()) == [0]
    _check_exploded_at_initialization(result)


def test_a_run_that_diverged_before_its_second_record(runs):
    loss = summaries.loss_caption(_diverged_copy(runs["healthy"], 1))
    assert "diverged at epoch 1, before the next record" in loss and "went from" not in loss


def test_a_stopped_run_says_where_it_stopped():
    result = train(RUNS["healthy"].replace(epochs=10), callback=lambda p: p.epoch >= 2)
    assert result.stopped
    assert summaries.extent(result) == "stopped at epoch 2 of 10"
    assert "(stopped at epoch 2 of 10)" in summaries.loss_caption(result)


def test_a_run_stopped_between_two_records_says_where_it_stands_not_its_last_record():
    from lab import Trainer

    trainer = Trainer(RUNS["healthy"].replace(epochs=10, samples=200, batch_size=40))  # 160 examples: 4 steps an epoch
    assert trainer.steps_per_epoch == 4
    trainer.advance(steps=4 * 2 + 2)  # two epochs and a half
    result = trainer.result()
    assert result.stopped and result.history["epoch"].iloc[-1] == 2  # its last record
    assert summaries.extent(result) == "stopped at epoch 2.5 of 10"
    assert summaries.extent(result, paused=True) == "paused at epoch 2.5 of 10"
    assert "(paused at epoch 2.5 of 10)" in summaries.loss_caption(result, paused=True)
    trainer.advance(steps=1)  # 2.75 epochs: never said ahead of where it is
    assert summaries.extent(trainer.result()) == "stopped at epoch 2.7 of 10"
    trainer.close()


def test_a_converged_run_darkens_the_whole_map_without_being_called_vanishing(runs):
    result = runs["converged"]
    h = result.history
    assert h["loss"].iloc[-1] < 0.01 * h["loss"].iloc[0]  # the case is what it claims to be
    assert "Converged" in summaries.loss_caption(result)
    heat = summaries.heatmap_caption(result, "delta_rms")
    assert "whole map darkens" in heat and "not a vanishing signal" in heat and "(converged)" in heat
    last = epochs_of(result)[-1]
    assert flow(result.layers, last).kind is not Flow.VANISHING


def test_an_exploding_run_is_called_exploding_in_the_heat_map(runs):
    heat = summaries.heatmap_caption(runs["exploding"], "delta_rms")
    assert "Exploding at initialization and at epoch 3" in heat and "darkens" not in heat


def test_what_the_optimizer_does_with_the_ratio(runs):
    # plain gradient descent: steps follow the gradient
    assert "barely learn" in summaries.profile_caption(runs["vanishing_sgd"].layers, 0, "sgd")
    # adam at initialization: it rescales, except where the gradient is below its epsilon
    text = summaries.profile_caption(runs["vanishing"].layers, 0, "adam")
    v = flow(runs["vanishing"].layers, 0)
    assert "partly makes up" in text and (("ε" in text) == (v.grad_first < OPTIMIZERS["adam"](1.0).eps))
    exploding = summaries.profile_caption(runs["exploding_relu"].layers, 0, "adam")
    assert "partly makes up" in exploding and "ε" not in exploding
    # after training: the measured step sizes, not a guess
    trained = summaries.profile_caption(runs["exploding"].layers, 3, "adam")
    at = runs["exploding"].layers.query("epoch == 3").set_index("layer")["update_ratio"]
    assert f"layer 1's weights by {summaries.fmt(at[1])}" in trained and "need not follow" in trained
    assert ADAPTIVE_OPTIMIZERS <= set(OPTIMIZERS)


# ---------------------------------------------------------------- synthetic layer tables


def table(deltas: dict, **columns) -> pd.DataFrame:
    """A tidy per-layer table: ``deltas`` maps epoch -> delta_rms of layers 1..L (the last is the output)."""
    rows = []
    for epoch, ds in deltas.items():
        for layer, d in enumerate(ds, start=1):
            row = {"epoch": epoch, "layer": layer, "step": epoch, "grad_norm": 1.0, "grad_mean_abs": 0.1,
                   "delta_rms": d, "weight_norm": 1.0, "update_ratio": math.nan if epoch == 0 else 1e-3,
                   "act_mean": 0.0, "act_std": 0.5, "saturated_frac": math.nan, "dead_frac": 0.0}
            row.update({k: v(epoch, layer) if callable(v) else v for k, v in columns.items()})
            rows.append(row)
    return pd.DataFrame(rows, columns=list(LAYER_COLUMNS))


@pytest.mark.parametrize("ratio, kind", [(0.05, Flow.VANISHING), (0.5, Flow.HEALTHY), (5.0, Flow.HEALTHY),
                                         (50.0, Flow.EXPLODING)])
def test_the_same_ratio_gets_the_same_word_at_every_epoch(ratio, kind):
    layers = table({0: [ratio, 1.0, 1.0, 1.0, 0.7], 7: [ratio * 0.3, 0.3, 0.3, 0.3, 0.2]})
    assert flow(layers, 0).kind is flow(layers, 7).kind is kind
    assert summaries.flow_line(layers, 0).split(":")[1] == summaries.flow_line(layers, 7).split(":")[1]


def test_a_dead_layer_blocks_the_signal():
    layers = table({0: [0.0, 0.0, 0.0, 0.5, 0.7]}, dead_frac=lambda e, layer: 1.0 if layer == 3 else 0.2)
    v = flow(layers, 0)
    assert v.kind is Flow.BLOCKED and v.cause == "dead" and v.blocked_at == 3
    assert "every unit of layer 3 is dead" in summaries.profile_caption(layers, 0)


def test_numbers_that_are_not_finite_get_no_verdict():
    layers = table({0: [math.inf, 1.0, 1.0, 1.0, 0.7]})
    assert flow(layers, 0).kind is Flow.UNKNOWN
    assert "cannot tell" in summaries.flow_line(layers, 0)


def test_one_hidden_layer_has_no_depth_to_judge():
    layers = table({0: [1.0, 0.7]})
    assert flow(layers, 0).kind is Flow.SHALLOW
    assert "no depth" in summaries.profile_caption(layers, 0)


def test_a_dip_in_the_middle_is_named_in_the_heat_map(runs):
    layers = table({0: [1.0, 1.0, 1.0, 1.0, 1.0, 0.7], 5: [0.5, 0.01, 0.002, 0.01, 0.8, 0.7]})
    result = dataclasses.replace(runs["healthy"], layers=layers)
    heat = summaries.heatmap_caption(result, "delta_rms")
    assert "darkest row at epoch 5 is layer 3" in heat and "darkens" not in heat
