"""Gradient clipping by global norm and weight decay, against PyTorch's rules written out here."""
import math

import numpy as np
import pytest

from lab import RunConfig, make_dataset, train
from lab.engine.model import build_mlp
from lab.engine.regularize import add_weight_decay, clip_by_global_norm
from lab.seeds import run_generators


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clipping_scales_by_max_norm_over_the_norm_only_when_that_is_below_one(rng, max_norm):
    g = rng.standard_normal(1000)
    norm = math.sqrt(sum(v * v for v in g))  # written out, not the implementation's dot product
    expected = g * min(1.0, max_norm / (norm + 1e-6))
    before, clipped = clip_by_global_norm(g, max_norm)
    assert before == pytest.approx(norm, rel=1e-12)
    assert clipped == (max_norm / (norm + 1e-6) < 1)
    np.testing.assert_allclose(g, expected, rtol=1e-12)


def test_clipping_keeps_float32():
    g = np.full(10, 3.0, dtype=np.float32)
    clip_by_global_norm(g, 1.0)
    assert g.dtype == np.float32 and np.linalg.norm(g) == pytest.approx(1.0, rel=1e-5)


def test_weight_decay_touches_weight_matrices_only():
    config = RunConfig(depth=2, width=4)
    model = build_mlp(config, 2, 2, np.random.default_rng(0))
    model.flat_grads[:] = 0.0
    add_weight_decay(model.flat_grads, model.flat_params, model.layer_slices(), 0.1)
    for affine in model.affines:
        np.testing.assert_allclose(affine.grads["W"], 0.1 * affine.params["W"])
        np.testing.assert_array_equal(affine.grads["b"], 0.0)


def test_one_sgd_step_with_weight_decay_is_w_minus_lr_times_g_plus_lambda_w():
    lam, lr = 0.05, 0.1
    config = RunConfig(depth=2, width=8, samples=64, val_fraction=0, epochs=1, batch_size=64, optimizer="sgd", lr=lr,
                       weight_decay=lam, bias_std=0.1, instrument=False)
    data_rng, init_rng, _ = run_generators(config.seed)
    data = make_dataset(config, data_rng)
    model = build_mlp(config, data.input_dim, data.classes, init_rng)
    before = [(a.params["W"].copy(), a.params["b"].copy()) for a in model.affines]
    model.loss_and_grads(data.X_train, data.y_train)  # the full batch: its mean gradient, whatever the order
    grads = [(a.grads["W"].copy(), a.grads["b"].copy()) for a in model.affines]
    after = train(config).weights
    for (W0, b0), (gW, gb), (W1, b1) in zip(before, grads, after):
        np.testing.assert_allclose(W1, W0 - lr * (gW + lam * W0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b1, b0 - lr * gb, rtol=1e-10, atol=1e-12)  # no decay on biases


def test_a_run_that_diverges_finishes_with_clipping_and_says_how_often_it_fired():
    config = RunConfig(optimizer="sgd", lr=1.0, depth=10, epochs=20, samples=400)
    assert train(config).diverged_at is not None
    clipped = train(config.replace(clip_norm=1.0))
    assert clipped.diverged_at is None
    record = clipped.meta["clipping"]
    assert 0 < record["clip_steps"] < 100 and record["grad_norm_max"] > 1.0
    assert record["clip_fraction"] == pytest.approx(record["clip_steps"] / 100)


def test_defaults_leave_runs_unchanged():
    plain = train(RunConfig(samples=200, epochs=2, depth=3, width=8))
    explicit = train(RunConfig(samples=200, epochs=2, depth=3, width=8, clip_norm=0.0, weight_decay=0.0))
    for (W, b), (W2, b2) in zip(plain.weights, explicit.weights):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert "clipping" not in plain.meta


def test_cli_carries_the_cures_into_config_json(tmp_path, capsys):
    import json

    from lab.cli.main import main

    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--samples", "200", "--depth", "3", "--width", "8", "--norm", "layer",
                 "--residual", "--residual-scale", "0.5", "--dropout", "0.1", "--clip-norm", "0.01",
                 "--weight-decay", "0.001", "--quiet", "--out", str(out)]) == 0
    # 160 training examples in batches of 64: 3 steps an epoch, and every one is clipped at norm 0.01
    assert "Clipping at norm 0.01 fired on 6 steps of 6 (100%)" in capsys.readouterr().out
    doc = json.loads((out / "config.json").read_text())
    c = doc["config"]
    assert (c["norm"], c["residual"], c["residual_scale"], c["dropout"], c["clip_norm"], c["weight_decay"]) == (
        "layer", True, 0.5, 0.1, 0.01, 0.001)
    assert doc["result"]["clip_steps"] > 0


def test_gradients_npz_holds_gamma_and_beta_of_normalized_layers(tmp_path, numgrad):
    """The written dgamma and dbeta against central differences of the probe loss, recomputed from the file."""
    from lab.cli.commands import _probe_model
    from lab.cli.main import main

    out = tmp_path / "g.npz"
    args = ["gradients", "--depth", "2", "--width", "5", "--norm", "batch", "--samples", "40", "--out", str(out)]
    assert main(args) == 0
    saved = np.load(out)
    assert {"gamma1", "beta1", "dgamma1", "dbeta1", "gamma2", "dgamma2"} <= set(saved.files)
    assert "gamma3" not in saved.files  # the output layer is not normalized
    config = RunConfig(depth=2, width=5, norm="batch", samples=40).validate()
    model, X, y = _probe_model(config, config.probe_size)
    gamma = model.norms[0].params["gamma"]
    expected = numgrad(lambda: model.loss(X, y, mode="probe"), gamma)
    np.testing.assert_allclose(saved["dgamma1"], expected, rtol=1e-5, atol=1e-9)
