"""Training and the record pass: determinism, record points, divergence, and every
statistic against its formula, recomputed here by an independent per-example backprop.

The last section checks the effect the lab exists to show, at initialization on the
"random" dataset, with bands set from measured values (stated next to each assertion).
"""
from __future__ import annotations

import math
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

from lab.data.datasets import make_dataset
from lab.engine import divergence
from lab.engine.config import MAX_DEPTH, ConfigError, RunConfig
from lab.engine.divergence import DIVERGENCE_FACTOR, DivergenceCheck, chance_loss
from lab.engine.layers import LOSSES
from lab.engine.model import build_mlp
from lab.engine.optim import OPTIMIZERS
from lab.engine.probe import STAT_COLUMNS, probe
from lab.engine.results import HISTORY_COLUMNS, LAYER_COLUMNS
from lab.engine.training import train

SMALL = RunConfig(dataset="blobs", samples=120, input_dim=4, classes=3, depth=3, width=7, epochs=0,
                  batch_size=32, probe_size=50, seed=3)


def no_warnings_train(config, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return train(config, **kw)


# ---------------------------------------------------------------- an independent reference network

def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


REF_ACT = {  # phi, phi' written from the definitions
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: (z > 0).astype(float)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
}


def ref_example(weights, act, x, label, loss):
    """One example through the net and back: z_l, h_l (l = 1..L-1), loss_n and d loss_n / d z_l (l = 1..L)."""
    phi, dphi = REF_ACT[act]
    h, zs, hs = x, [], [x]
    for W, b in weights[:-1]:
        z = h @ W + b
        h = phi(z)
        zs.append(z)
        hs.append(h)
    a = h @ weights[-1][0] + weights[-1][1]
    target = np.zeros_like(a)
    target[label] = 1.0
    if loss == "cross_entropy":
        p = np.exp(a - a.max())
        p /= p.sum()
        loss_n = -math.log(p[label])
        delta = p - target
    else:
        loss_n = 0.5 * float(((a - target) ** 2).sum())
        delta = a - target
    deltas = [delta]
    for l in range(len(weights) - 1, 0, -1):
        delta = (weights[l][0] @ delta) * dphi(zs[l - 1])
        deltas.append(delta)
    deltas.reverse()
    return zs, hs, a, loss_n, deltas


def ref_stats(weights, act, X, t, loss):
    """Per-layer statistics from per-example backprop, one example at a time."""
    L = len(weights)
    per = [ref_example(weights, act, X[n], t[n], loss) for n in range(len(X))]
    N = len(X)
    out = {"loss": sum(p[3] for p in per) / N, "correct": sum(int(np.argmax(p[2]) == t[n]) for n, p in enumerate(per))}
    rows = []
    for l in range(L):
        grad_W = sum(np.outer(p[1][l], p[4][l]) for p in per) / N  # dL/dW_l of the mean loss
        row = {
            "grad_W": grad_W,
            "grad_norm": math.sqrt(float((grad_W**2).sum())),
            "grad_mean_abs": float(np.abs(grad_W).mean()),
            "delta_rms": math.sqrt(sum(float(p[4][l] @ p[4][l]) for p in per) / N),
            "weight_norm": math.sqrt(float((weights[l][0] ** 2).sum())),
        }
        if l < L - 1:
            H = np.array([p[1][l + 1] for p in per])
            Z = np.array([p[0][l] for p in per])
            row.update(act_mean=H.mean(), act_std=H.std(), Z=Z,
                       dead_frac=float(np.mean(np.all(H == 0, axis=0))))
        else:
            A = np.array([p[2] for p in per])
            row.update(act_mean=A.mean(), act_std=A.std())
        rows.append(row)
    out["layers"] = rows
    return out


def ref_mean_loss(weights, act, X, t, loss):
    return sum(ref_example(weights, act, X[n], t[n], loss)[3] for n in range(len(X))) / len(X)


# ---------------------------------------------------------------- history and layers tables

def test_columns_are_exactly_as_documented():
    result = no_warnings_train(SMALL.replace(epochs=2))
    assert tuple(result.history.columns) == HISTORY_COLUMNS
    assert tuple(result.layers.columns) == LAYER_COLUMNS
    assert sorted(LAYER_COLUMNS) == sorted(("epoch", "step", "layer", *STAT_COLUMNS))
    assert result.history["diverged"].dtype == bool


def test_epochs_zero_gives_only_the_initial_record():
    result = no_warnings_train(SMALL)
    L = SMALL.depth + 1
    assert len(result.history) == 1
    row = result.history.iloc[0]
    assert (row["epoch"], row["step"], bool(row["diverged"])) == (0, 0, False)
    assert len(result.layers) == L
    assert list(result.layers["layer"]) == list(range(1, L + 1))
    assert set(result.layers["step"]) == {0}
    assert result.diverged_at is None and not result.stopped
    assert result.depth == L
    assert result.act_hist.shape[:2] == (1, L - 1) and result.delta_hist.shape[:2] == (1, L)


def test_same_config_and_seed_give_identical_runs():
    config = SMALL.replace(dataset="spirals", epochs=3, optimizer="adam")
    a, b = no_warnings_train(config), no_warnings_train(config)
    pd.testing.assert_frame_equal(a.history.drop(columns="elapsed_s"), b.history.drop(columns="elapsed_s"))
    pd.testing.assert_frame_equal(a.layers, b.layers)
    for (Wa, ba), (Wb, bb) in zip(a.weights, b.weights):
        np.testing.assert_array_equal(Wa, Wb)
        np.testing.assert_array_equal(ba, bb)
    np.testing.assert_array_equal(a.act_hist, b.act_hist)
    np.testing.assert_array_equal(a.delta_hist, b.delta_hist)
    c = no_warnings_train(config.replace(seed=4))
    assert not np.array_equal(a.weights[0][0], c.weights[0][0])


def test_training_changes_the_weights_and_records_every_epoch():
    result = no_warnings_train(SMALL.replace(epochs=4, optimizer="sgd", lr=0.1))
    n_train = len(result.data.X_train)
    steps_per_epoch = math.ceil(n_train / SMALL.batch_size)  # 96 / 32
    assert result.steps_per_epoch == steps_per_epoch == 3
    assert list(result.history["epoch"]) == [0, 1, 2, 3, 4]
    assert list(result.history["step"]) == [0, 3, 6, 9, 12]
    assert len(result.layers) == 5 * (SMALL.depth + 1)
    initial = no_warnings_train(SMALL).weights
    assert not np.array_equal(initial[0][0], result.weights[0][0])


@pytest.mark.parametrize("every, epochs", [(2, 3), (4, 3), (1, 1), (100, 2)])
def test_record_every_k_steps(every, epochs):
    config = SMALL.replace(epochs=epochs, record_every=every)
    result = no_warnings_train(config)
    total = epochs * math.ceil(96 / 32)  # 96 training examples, batches of 32
    expected = sorted({0, total, *range(every, total + 1, every)})
    assert list(result.history["step"]) == expected
    assert len(result.history) == 1 + math.ceil(total / every)
    np.testing.assert_allclose(result.history["epoch"], np.array(expected) / 3)
    assert len(result.layers) == len(expected) * (config.depth + 1)


def test_histograms_count_every_unit_of_every_probe_example():
    # tanh: no activation is exactly 0, so every unit of every probe example lands in a bin
    result = no_warnings_train(SMALL.replace(epochs=2, activation="tanh"))
    n_probe = min(SMALL.probe_size, len(result.data.X_train))
    assert result.act_hist.shape[1:] == (SMALL.depth, len(result.act_edges) - 1)
    np.testing.assert_array_equal(result.act_hist.sum(axis=2), n_probe * SMALL.width)
    widths = [SMALL.width] * SMALL.depth + [SMALL.classes]
    np.testing.assert_array_equal(result.delta_hist.sum(axis=2), np.tile(np.array(widths) * n_probe, (len(result.delta_hist), 1)))
    assert result.hist_epochs[0] == 0 and result.hist_epochs[-1] == 2


# ---------------------------------------------------------------- statistics against their formulas

@pytest.mark.parametrize("act, loss", [("tanh", "cross_entropy"), ("relu", "mse"), ("sigmoid", "cross_entropy")])
def test_initial_record_against_independent_per_example_backprop(act, loss):
    config = SMALL.replace(activation=act, loss=loss, bias_std=0.1)
    result = no_warnings_train(config)  # epochs 0: result.weights are the initial weights
    data = result.data
    n_probe = config.probe_size
    ref = ref_stats(result.weights, act, data.X_train[:n_probe], data.y_train[:n_probe], loss)
    got = result.layers.set_index("layer")
    L = config.depth + 1
    for l in range(1, L + 1):
        r = ref["layers"][l - 1]
        for col in ("grad_norm", "grad_mean_abs", "delta_rms", "weight_norm", "act_mean", "act_std"):
            assert got.loc[l, col] == pytest.approx(r[col], rel=1e-9, abs=1e-13), (l, col)
        assert math.isnan(got.loc[l, "update_ratio"])  # no update yet
        if l < L:
            assert got.loc[l, "dead_frac"] == pytest.approx(r["dead_frac"])
    # history at step 0: training loss and accuracy over the whole training set, validation at the same weights
    full = ref_stats(result.weights, act, data.X_train, data.y_train, loss)
    val = ref_stats(result.weights, act, data.X_val, data.y_val, loss)
    row = result.history.iloc[0]
    assert row["loss"] == pytest.approx(full["loss"], rel=1e-10)
    assert row["accuracy"] == pytest.approx(full["correct"] / len(data.X_train))
    assert row["val_loss"] == pytest.approx(val["loss"], rel=1e-10)
    assert row["val_accuracy"] == pytest.approx(val["correct"] / len(data.X_val))


def test_grad_norm_is_frobenius_norm_of_central_difference_gradient(numgrad):
    config = SMALL.replace(activation="tanh", depth=2, width=4, probe_size=20)
    result = no_warnings_train(config)
    weights = [(W.copy(), b.copy()) for W, b in result.weights]
    X, t = result.data.X_train[:20], result.data.y_train[:20]
    got = result.layers.set_index("layer")
    for l, (W, _) in enumerate(weights, start=1):
        g = numgrad(lambda: ref_mean_loss(weights, "tanh", X, t, "cross_entropy"), W)
        assert got.loc[l, "grad_norm"] == pytest.approx(np.sqrt((g**2).sum()), rel=1e-6)
        assert got.loc[l, "grad_mean_abs"] == pytest.approx(np.abs(g).mean(), rel=1e-6)


def test_saturated_frac_against_threshold_on_pre_activations():
    # phi' < 1% of its maximum  <=>  |z| > z*, with z* solved from the formula of phi'
    z_star = {
        "sigmoid": math.log((1 + math.sqrt(0.99)) / (1 - math.sqrt(0.99))),  # s(1-s) = 0.0025
        "tanh": math.atanh(math.sqrt(0.99)),  # 1 - tanh^2 = 0.01
    }
    for act in ("sigmoid", "tanh"):
        config = SMALL.replace(activation=act, init="normal", init_scale=4.0)
        result = no_warnings_train(config)
        ref = ref_stats(result.weights, act, result.data.X_train[:50], result.data.y_train[:50], "cross_entropy")
        got = result.layers.set_index("layer")["saturated_frac"]
        for l in range(1, config.depth + 1):
            expected = np.mean(np.abs(ref["layers"][l - 1]["Z"]) > z_star[act])
            assert got.loc[l] == pytest.approx(expected, abs=1e-12), (act, l)
        assert got.iloc[:-1].max() > 0.1  # the check is not vacuous
        assert math.isnan(got.loc[config.depth + 1])
    relu = no_warnings_train(SMALL.replace(activation="relu"))
    assert relu.layers["saturated_frac"].isna().all()  # recorded only for saturating activations


def test_dead_frac_counts_a_unit_forced_dead():
    config = SMALL.replace(activation="relu", width=8).validate()
    data = make_dataset(config)
    model = build_mlp(config, data.input_dim, data.classes, np.random.default_rng(0))
    X, t = data.X_train[:50], data.y_train[:50]

    def reference_dead(layer):
        ref = ref_stats(model.weights(), "relu", X, t, "cross_entropy")
        return ref["layers"][layer]["dead_frac"]

    before = probe(model, X, t, None, False)[1]  # (loss, stats, ...)
    col = STAT_COLUMNS.index("dead_frac")
    H = np.maximum(X @ model.affines[0].params["W"] + model.affines[0].params["b"], 0)
    Z2 = H @ model.affines[1].params["W"] + model.affines[1].params["b"]
    unit = int(np.argmax((Z2 > 0).sum(axis=0)))  # a unit of layer 2 that is alive now
    assert (Z2[:, unit] > 0).any()
    model.affines[1].params["W"][:, unit] = 0.0
    model.affines[1].params["b"][unit] = -1.0  # relu(-1) = 0 for every input
    after = probe(model, X, t, None, False)[1]
    assert after[1, col] == pytest.approx(reference_dead(1))
    assert after[1, col] - before[1, col] == pytest.approx(1 / 8)
    assert after[0, col] == before[0, col]


def test_probe_changes_no_weight():
    config = SMALL.replace(activation="tanh").validate()
    data = make_dataset(config)
    model = build_mlp(config, data.input_dim, data.classes, np.random.default_rng(0))
    flat = model.flat_params.copy()
    weights = model.weights()
    probe(model, data.X_train, data.y_train, [1.0] * model.depth, True)
    np.testing.assert_array_equal(model.flat_params, flat)
    for (W, b), affine in zip(weights, model.affines):
        np.testing.assert_array_equal(affine.params["W"], W)
        np.testing.assert_array_equal(affine.params["b"], b)
        assert np.shares_memory(affine.params["W"], model.flat_params)  # still linked to the flat buffer


def test_sgd_step_and_update_ratio_on_a_full_batch():
    # batch and probe set = the whole training set, so the first step is W1 = W0 - lr * g0 with g0 the
    # gradient recorded at step 0, and update_ratio at step 1 is lr * ||g0|| / ||W1||
    lr = 0.05
    config = SMALL.replace(optimizer="sgd", lr=lr, batch_size=1000, probe_size=1000, epochs=1, activation="tanh")
    before = no_warnings_train(config.replace(epochs=0))
    after = no_warnings_train(config)
    X, t = before.data.X_train, before.data.y_train
    ref = ref_stats(before.weights, "tanh", X, t, "cross_entropy")
    layers = after.layers.set_index(["step", "layer"])
    for l, ((W0, _), (W1, _)) in enumerate(zip(before.weights, after.weights), start=1):
        g0 = ref["layers"][l - 1]["grad_W"]
        np.testing.assert_allclose(W1, W0 - lr * g0, rtol=1e-9, atol=1e-13)
        expected = lr * np.sqrt((g0**2).sum()) / np.sqrt((W1**2).sum())
        assert layers.loc[(1, l), "update_ratio"] == pytest.approx(expected, rel=1e-8)


# ---------------------------------------------------------------- callbacks and stopping

def test_callback_stop_keeps_the_records():
    seen = []

    def callback(progress):
        seen.append((progress.step, len(progress.history), len(progress.layer_stats), progress.fraction))
        return progress.step >= 2

    result = no_warnings_train(SMALL.replace(epochs=5, record_every=1), callback=callback)
    total = 5 * 3
    assert seen == [(0, 1, 1, 0.0), (1, 2, 2, 1 / total), (2, 3, 3, 2 / total)]
    assert result.stopped and result.diverged_at is None
    assert list(result.history["step"]) == [0, 1, 2]
    assert not result.history["diverged"].any()
    assert len(result.layers) == 3 * (SMALL.depth + 1)


def test_callback_can_stop_before_the_first_step():
    result = no_warnings_train(SMALL.replace(epochs=5), callback=lambda progress: True)
    assert result.stopped and list(result.history["step"]) == [0]
    initial = no_warnings_train(SMALL)
    np.testing.assert_array_equal(result.weights[0][0], initial.weights[0][0])


# ---------------------------------------------------------------- divergence

DIVERGING = {
    # measured: loss 1.0, 0.98 (val 1.4e34), then NaN at step 2
    "sgd lr 1e4": dict(optimizer="sgd", lr=1e4, depth=10, width=16, record_every=1, epochs=5),
    # measured: the loss grows ~1e17 per epoch and overflows in epoch 17
    "sgd lr 10 mse": dict(optimizer="sgd", lr=10.0, loss="mse", epochs=200, width=16),
    # measured: loss 5e128 at init, NaN at the second step
    "normal init 50, depth 30": dict(init="normal", init_scale=50.0, depth=30, width=16, loss="mse",
                                     optimizer="sgd", lr=0.01, epochs=5),
}


@pytest.mark.parametrize("case", sorted(DIVERGING))
def test_divergence_is_reported_not_raised(case):
    config = SMALL.replace(samples=200, **DIVERGING[case])
    result = no_warnings_train(config)  # no exception, no RuntimeWarning
    history = result.history
    assert result.diverged_at is not None and result.diverge_reason
    assert bool(history["diverged"].iloc[-1]) and not history["diverged"].iloc[:-1].any()
    assert len(history) >= 2
    assert history["epoch"].iloc[-1] == pytest.approx(result.diverged_at)
    before = history.iloc[:-1]
    assert np.isfinite(before[["loss", "accuracy", "val_loss", "val_accuracy"]].to_numpy(float)).all()
    stats = result.layers[["grad_norm", "grad_mean_abs", "delta_rms", "weight_norm"]].to_numpy()
    assert np.isfinite(stats).all()
    assert set(result.layers["step"]) == set(before["step"])
    assert not result.stopped
    for W, b in result.weights:
        assert W.shape[1] == b.shape[0]


def test_a_stable_run_is_not_diverged():
    result = no_warnings_train(SMALL.replace(epochs=3))
    assert result.diverged_at is None and result.diverge_reason == ""
    assert np.isfinite(result.history[["loss", "val_loss"]].to_numpy()).all()


# ---------------------------------------------------------------- divergence of a finite loss (issue 9)

# issue 9's example: a linear network at lr 3.  Measured: loss 0.66 at initialization and in
# epoch 1 (its one full-batch step is taken at the initial weights), then 1.5e12 at step 2,
# and 1e19 to 1e21 from epoch 3 to 40, all finite.
IDENTITY_LR3 = RunConfig(dataset="spirals", samples=600, val_fraction=0.0, depth=10, width=32, epochs=40, seed=5,
                         batch_size=600, activation="identity", init="xavier_normal", lr=3.0)
# normal(std 1) weights in 20 ReLU layers of 16: the signal grows by sqrt(16 / 2) per layer,
# and the loss at initialization is 4.0e7 (5.7e7 times ln 2); the Compare page's default
# (width 64) starts at 1.2e15.
EXPLODED_AT_INIT = RunConfig(samples=200, depth=20, width=16, init="normal", init_scale=1.0, epochs=3)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("classes", [2, 3, 10])
def test_chance_loss_is_the_loss_of_guessing_every_class_equally(loss, classes):
    labels = np.arange(4 * classes) % classes
    # cross-entropy sees logits (all equal: probability 1/C each); MSE sees the outputs themselves
    shape = (len(labels), classes)
    outputs = np.zeros(shape) if loss == "cross_entropy" else np.full(shape, 1 / classes)
    assert chance_loss(loss, classes) == pytest.approx(LOSSES[loss]().forward(outputs, labels), rel=1e-12)


def test_divergence_check_compares_with_the_larger_reference_and_says_so_in_words():
    assert DIVERGENCE_FACTOR == 1e4
    low_start = DivergenceCheck(chance=math.log(2), initial=0.66)
    assert low_start.limit == pytest.approx(1e4 * math.log(2))
    assert low_start.during_training(6900.0, 5) == ""
    assert low_start.during_training(7.2e4, 5) == (
        "the training loss reached 7.2e4 at step 5, more than 10,000 times the chance-level loss (0.69)")
    # a run that starts high is measured against its own start, not against chance
    high_start = DivergenceCheck(chance=math.log(2), initial=120.0)
    assert high_start.at_initialization() == ""
    assert high_start.during_training(1.0e6, 3) == ""
    assert high_start.during_training(1.3e6, 3).endswith("more than 10,000 times its value at initialization (120)")
    assert DivergenceCheck(chance=0.25, initial=2600.0).at_initialization() == (
        "the network exploded at initialization, with a training loss of 2600, "
        "more than 10,000 times the chance-level loss (0.25)")
    assert DivergenceCheck(chance=0.25, initial=2400.0).at_initialization() == ""


def test_a_finite_explosion_is_divergence_with_everything_before_kept(monkeypatch):
    result = no_warnings_train(IDENTITY_LR3)
    history = result.history
    assert result.diverged_at == 2 and not result.stopped
    assert list(history["epoch"]) == [0, 1, 2] and list(history["diverged"]) == [False, False, True]
    assert np.isfinite(history["loss"].iloc[:2]).all() and history["loss"].iloc[0] < math.log(2)
    assert set(result.layers["epoch"]) == {0, 1} and len(result.layers) == 2 * (IDENTITY_LR3.depth + 1)
    assert np.isfinite(result.layers[["grad_norm", "delta_rms", "weight_norm"]].to_numpy()).all()
    match = re.fullmatch(r"the training loss reached (\S+) at step 2, "
                         r"more than 10,000 times the chance-level loss \(0\.69\)", result.diverge_reason)
    assert match, result.diverge_reason
    # the same run with the rule switched off records that very loss at epoch 2 (full batch:
    # the mean of epoch 2 is the loss of step 2), and never comes back
    monkeypatch.setattr(divergence, "DIVERGENCE_FACTOR", math.inf)
    unchecked = no_warnings_train(IDENTITY_LR3.replace(epochs=6)).history
    mantissa, exponent = f"{unchecked['loss'].iloc[2]:.1e}".split("e")  # written as lab.formats does: 1.5e12
    assert match.group(1) == f"{mantissa}e{int(exponent)}"
    assert (unchecked["loss"].iloc[2:] > 1e4 * math.log(2)).all() and unchecked["diverged"].sum() == 0


def test_a_network_exploded_at_initialization_keeps_its_record():
    config = EXPLODED_AT_INIT
    result = no_warnings_train(config)
    history = result.history
    assert result.diverged_at == 0 and not result.stopped
    assert result.diverge_reason.startswith("the network exploded at initialization, with a training loss of ")
    assert list(history["epoch"]) == [0, 0] and list(history["diverged"]) == [False, True]
    # no update was made: the weights are those of initialization, and the loss kept at
    # epoch 0 is theirs, recomputed here one example at a time
    init_model = build_mlp(config, 2, 2, np.random.default_rng(np.random.SeedSequence(config.seed).spawn(3)[1]))
    for (W, b), (W0, b0) in zip(result.weights, init_model.weights()):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    h = result.data.X_train
    for W, b in result.weights[:-1]:
        h = np.maximum(h @ W + b, 0.0)
    logits = h @ result.weights[-1][0] + result.weights[-1][1]
    # log-sum-exp by scipy: the logits are ~1e7, where a plain softmax underflows
    loss0 = float(np.mean(logsumexp(logits, axis=1) - logits[np.arange(len(logits)), result.data.y_train]))
    assert history["loss"].iloc[0] == pytest.approx(loss0, rel=1e-9)
    assert loss0 > DIVERGENCE_FACTOR * math.log(2)
    # its per-layer statistics and histograms at initialization are kept for the charts
    layers = result.layers
    assert set(layers["epoch"]) == {0} and list(layers["layer"]) == list(range(1, config.depth + 2))
    assert np.isfinite(layers[["grad_norm", "delta_rms", "weight_norm", "act_std"]].to_numpy()).all()
    assert list(result.hist_epochs) == [0.0] and result.delta_hist.shape[0] == 1


def test_the_default_run_is_not_diverged():
    # the Train page's default run (pages.ui.widgets.ui_defaults) with fewer epochs; measured:
    # its largest mini-batch loss is 1.09 times its reference (benchmarks/divergence_margins.py)
    result = no_warnings_train(RunConfig(samples=400, epochs=20, dtype="float32"))
    assert result.diverged_at is None and result.diverge_reason == ""
    assert not result.history["diverged"].any() and len(result.history) == 21


SMALL_SPIRALS = RunConfig(samples=200, depth=4, width=16, epochs=20, batch_size=32)
HIGH_BUT_NOT_DIVERGED = {
    # (config, the least the largest recorded loss reaches as a multiple of chance); measured:
    # starts at 962 x chance and trains down to 2.3 (a rule with a factor 100 would call it exploded)
    "relu normal std 1, depth 8": (SMALL_SPIRALS.replace(init="normal", init_scale=1.0, depth=8), 500),
    # MSE on outputs of ~45: starts at 4,100 x chance (0.25), trains down to 8.9
    "mse, relu normal std 1, depth 3": (SMALL_SPIRALS.replace(init="normal", init_scale=1.0, depth=3, loss="mse"),
                                        2000),
    # a noisy first epoch: one mini-batch at 364 x chance, epoch 1's mean at 89 x, then 96% accuracy
    "blobs, rmsprop lr 0.03, depth 8": (SMALL_SPIRALS.replace(dataset="blobs", optimizer="rmsprop", lr=0.03, depth=8,
                                                              epochs=30), 50),
}


@pytest.mark.parametrize("case", sorted(HIGH_BUT_NOT_DIVERGED))
def test_high_but_passing_losses_are_not_divergence(case):
    config, at_least = HIGH_BUT_NOT_DIVERGED[case]
    result = no_warnings_train(config)
    assert result.diverged_at is None, result.diverge_reason
    losses = result.history["loss"] / chance_loss(config.loss, config.classes)
    assert losses.max() > at_least, "the case no longer tests a high loss"
    assert result.history["loss"].iloc[-1] < result.history["loss"].max() / 10


def test_readme_states_the_divergence_rule_and_its_constant():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    paragraph = next(" ".join(p.split()) for p in readme.split("\n\n") if "diverged at epoch k" in " ".join(p.split()))
    assert f"{DIVERGENCE_FACTOR:,.0f}" in paragraph and "DIVERGENCE_FACTOR" in paragraph
    assert "ln C" in paragraph and "0.5 (1 - 1/C)" in paragraph and "initialization" in paragraph


# ---------------------------------------------------------------- dtype

@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_float32_config_keeps_float32_weights(optimizer, loss):
    config = SMALL.replace(dtype="float32", optimizer=optimizer, loss=loss, epochs=2, lr=0.01)
    result = no_warnings_train(config)
    for W, b in result.weights:
        assert W.dtype == np.float32 and b.dtype == np.float32
    assert np.isfinite(result.history[["loss", "val_loss"]].to_numpy()).all()
    assert result.diverged_at is None
    float64 = no_warnings_train(config.replace(dtype="float64"))
    # same seed, same run up to float32 rounding
    np.testing.assert_allclose(result.weights[0][0], float64.weights[0][0], rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- configuration errors

@pytest.mark.parametrize("change, message", [
    (dict(lr=-0.1), r"lr must be above 0.*got -0\.1"),
    (dict(lr=0.0), r"lr must be above 0"),
    (dict(depth=10_000), rf"depth must be between 0 and {MAX_DEPTH}; got 10000"),
    (dict(activation="swish9"), r"activation must be one of .*relu.*; got 'swish9'"),
    (dict(init="glorot"), r"unknown init 'glorot'"),
    (dict(optimizer="lbfgs"), r"optimizer must be one of .*adam.*'lbfgs'"),
    (dict(width=0), r"width must be between 1"),
    (dict(epochs=2.5), r"epochs must be a whole number"),
    (dict(batch_size=True), r"batch_size must be a whole number"),
    (dict(val_fraction=0.95), r"val_fraction must be"),
    (dict(gain="big"), r"gain must be a number or 'auto'"),
    (dict(dtype="float16"), r"dtype must be one of float64, float32"),
    (dict(dataset="csv"), r"CSV dataset needs a file"),
    (dict(depth=500, width=4096), r"too large"),
])
def test_absurd_settings_raise_config_error(change, message):
    with pytest.raises(ConfigError, match=message):
        train(SMALL.replace(**change))


def test_config_validation_details():
    assert issubclass(ConfigError, ValueError)
    assert RunConfig(init="kaiming_normal").validate().init == "he_normal"
    assert RunConfig(gain="auto").validate().gain == "auto"
    assert RunConfig.from_dict(SMALL.to_dict()) == SMALL.validate()
    with pytest.raises(ConfigError, match="unknown setting.*colour"):
        RunConfig.from_dict({**SMALL.to_dict(), "colour": "red"})


# ---------------------------------------------------------------- bugs found while writing these tests

def test_validation_split_that_rounds_to_zero_is_not_divergence():
    # samples 10, val_fraction 0.04: round(0.4) = 0 validation examples.  That is a valid config
    # (validate accepts it); the run must train, with NaN validation columns, not stop at step 0
    # with "the validation loss became nan".
    config = RunConfig(dataset="blobs", samples=10, val_fraction=0.04, depth=1, width=4, epochs=2, batch_size=5)
    result = no_warnings_train(config)
    assert len(result.data.X_val) == 0
    assert result.diverged_at is None, result.diverge_reason
    assert list(result.history["step"]) == [0, 2, 4]
    assert np.isfinite(result.history["loss"]).all()


def test_non_finite_training_loss_at_initialization_is_divergence():
    # With no validation set and no probe pass nothing but the training loss can tell that the
    # network is already broken at initialization (normal init 1e6 over 60 layers overflows).
    config = RunConfig(dataset="blobs", samples=200, val_fraction=0.0, depth=60, width=16, init="normal",
                       init_scale=1e6, epochs=2, instrument=False)
    result = no_warnings_train(config)
    history = result.history
    ok = history[~history["diverged"]]
    assert np.isfinite(ok["loss"]).all(), "a record with a non-finite loss is not marked diverged"
    assert result.diverged_at == 0


def test_norm_statistics_of_huge_but_finite_gradients_are_finite():
    # normal init 1e6 over 30 layers: every gradient entry is finite (|g| up to ~1e191) and so is
    # its Frobenius norm (~1e193 < 1.8e308), but squaring the entries first overflows.  The run is
    # then reported as diverged at step 0 "because a gradient became inf or NaN", which is untrue.
    config = RunConfig(dataset="blobs", samples=200, val_fraction=0.0, depth=30, width=16, init="normal",
                       init_scale=1e6).validate()
    data = make_dataset(config)
    model = build_mlp(config, data.input_dim, data.classes, np.random.default_rng(0))
    with np.errstate(all="ignore"):
        stats = probe(model, data.X_train, data.y_train, None, False)[1]
    assert np.isfinite(model.flat_grads).all()
    for l, affine in enumerate(model.affines):
        g = affine.grads["W"]
        scale = np.abs(g).max()
        frobenius = scale * np.sqrt(((g / scale) ** 2).sum())
        assert stats[l, STAT_COLUMNS.index("grad_norm")] == pytest.approx(frobenius, rel=1e-9), l


# ---------------------------------------------------------------- the effect itself, at initialization

EFFECT = RunConfig(dataset="random", input_dim=100, classes=10, width=100, samples=1000, epochs=0)
SEEDS = (0, 1)


def hidden(config, column="delta_rms"):
    """``column`` for hidden layers 1..depth at initialization."""
    result = no_warnings_train(config)
    layers = result.layers.set_index("layer")[column]
    return layers.loc[1:config.depth].to_numpy()


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_xavier_gradient_vanishes(seed):
    d = hidden(EFFECT.replace(activation="sigmoid", init="xavier_normal", depth=10, seed=seed))
    # measured (seeds 0..5): delta_rms of layer 1 / layer 10 = 1.7e-6 .. 2.2e-6
    assert 1e-7 < d[0] / d[-1] < 1e-5
    # per layer, going back: sigma' <= 1/4 and Var(W) = 1/fan_in, so a factor of about 1/4 or less;
    # measured 0.205 .. 0.257, geometric mean 0.229 .. 0.235
    factors = d[:-1] / d[1:]
    assert factors.max() < 0.3
    assert 0.2 < np.exp(np.log(factors).mean()) < 0.25


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_he_keeps_the_signal(seed):
    d = hidden(EFFECT.replace(activation="relu", init="he_normal", depth=30, seed=seed))
    # measured (seeds 0..5): max/min over the 30 hidden layers 1.32 .. 2.25
    assert d.max() / d.min() < 3.0


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_xavier_loses_a_factor_sqrt2_per_layer(seed):
    d = hidden(EFFECT.replace(activation="relu", init="xavier_normal", depth=30, seed=seed))
    # square layers: Var(W) = 1/fan_in, and relu halves E[phi'^2]: chi = 1/2 per layer in delta^2,
    # 1/sqrt(2) in delta_rms.  Measured per-layer factor 0.687 .. 0.714 (slope ratio 0.97 .. 1.08).
    slope = np.polyfit(np.arange(1, 31), np.log(d), 1)[0]  # log delta_rms grows with l going forward
    assert -slope == pytest.approx(math.log(1 / math.sqrt(2)), rel=0.1)


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_normal_saturates_but_keeps_its_gradient(seed):
    config = EFFECT.replace(activation="sigmoid", init="normal", init_scale=1.0, depth=10, seed=seed)
    sat = hidden(config, "saturated_frac")
    d = hidden(config)
    # layer 1: standardized inputs in 100 dims and std-1 weights give z ~ N(0, 100); sigmoid' < 1% of
    # 1/4 where |z| > 5.99, so P = 2 * (1 - Phi(0.599)) = 0.549.  Measured 0.540 .. 0.550.
    z_star = math.log((1 + math.sqrt(0.99)) / (1 - math.sqrt(0.99)))
    assert sat[0] == pytest.approx(math.erfc(z_star / 10 / math.sqrt(2)), abs=0.03)
    # deeper layers: roughly a third saturated; measured 0.245 .. 0.443 per layer, mean 0.35 .. 0.39
    assert np.all((sat[1:] > 0.2) & (sat[1:] < 0.5))
    assert 0.28 < sat[1:].mean() < 0.45
    # ... yet the error signal barely shrinks: measured layer 1 / layer 10 0.60 .. 0.88, max/min <= 1.66
    assert d[0] / d[-1] > 0.3
    assert d.max() / d.min() < 2.5


def test_progress_snapshot_is_a_stopped_result_with_the_records_so_far():
    from lab import RunConfig, train

    seen = []

    def callback(progress):
        if progress.history[-1]["epoch"] == 3:
            seen.append(progress.snapshot())
        return False

    full = train(RunConfig(samples=200, epochs=6, depth=3, width=8), callback=callback)
    (partial,) = seen
    assert partial.stopped and list(partial.history["epoch"]) == [0, 1, 2, 3]
    assert partial.layers["epoch"].max() == 3 and len(partial.layers) == 4 * 4
    import pandas as pd

    pd.testing.assert_frame_equal(partial.history.drop(columns="elapsed_s"),
                                  full.history.drop(columns="elapsed_s").iloc[:4])


def test_stop_ends_a_long_run_between_records_within_2_s():
    import threading

    # records only at the start and the end: without a per-step check, Stop would wait for the end
    config = RunConfig(depth=30, width=64, samples=2000, epochs=10_000, batch_size=8, record_every=10**7)
    pressed = threading.Event()
    timer = threading.Timer(0.5, pressed.set)
    timer.start()
    started = time.perf_counter()
    try:
        result = train(config, should_stop=pressed.is_set)
    finally:
        timer.cancel()
    latency = time.perf_counter() - started - 0.5
    assert result.stopped and result.diverged_at is None
    assert latency < 2.0, latency
    assert list(result.history["epoch"]) == [0]  # the record at initialization is kept
    assert len(result.layers) == config.depth + 1


def test_a_network_that_overflows_at_initialization_says_so_in_words():
    result = train(RunConfig(init="normal", init_scale=1000.0, depth=30, samples=100, epochs=1, dtype="float32"))
    assert result.diverged_at == 0
    assert result.diverge_reason.startswith("the network overflowed at initialization")
    assert "float32" in result.diverge_reason
