"""The input-output Jacobian J_l = d h_l / d h_1 and its singular values (issue 26): exact against central
differences and against backpropagating unit vectors, and its spectrum against free probability."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lab.engine import jacobian as jac
from lab.engine.config import RunConfig
from lab.engine.model import build_mlp
from lab.engine.normalization import BatchNorm
from lab.theory import spectrum as theory

N_IN, N_OUT = 5, 3


def _model(seed=0, **settings):
    config = RunConfig(**{"width": 6, "depth": 4, "activation": "tanh", "bias_std": 0.3, "dtype": "float64",
                          **settings}).validate()
    rng = np.random.default_rng(seed)
    model = build_mlp(config, N_IN, N_OUT, rng)
    for n in model.norms:  # gamma and beta away from 1 and 0, so that a missing term shows
        if n is not None:
            n.params["gamma"][...] = 1.0 + 0.3 * rng.standard_normal(n.params["gamma"].shape)
            n.params["beta"][...] = 0.3 * rng.standard_normal(n.params["beta"].shape)
    return config, model, rng


def _freeze_batch_statistics(model, h1):
    """Set each batch norm's running statistics to those of the batch h1 makes at its layer, so that the
    evaluation pass is the probe pass with the batch's statistics held fixed."""
    h = h1
    for block in model.blocks[1:]:
        if isinstance(block.norm, BatchNorm):
            u = h @ block.affine.params["W"] + block.affine.params["b"]
            block.norm.running_mean[...] = u.mean(axis=0)
            block.norm.running_var[...] = u.var(axis=0)
        h = block.forward(h, None, "eval", cache=False)


def _h_at(model, h1, layer):
    h = h1
    for block in model.blocks[1:layer]:
        h = block.forward(h, None, "eval", cache=False)
    return h


CURES = {
    "plain tanh": {},
    "plain relu": {"activation": "relu", "init": "he_normal"},
    "residual": {"residual": True, "residual_scale": 0.7},
    "layer norm": {"norm": "layer"},
    "batch norm": {"norm": "batch"},
    "layer norm + residual": {"norm": "layer", "residual": True, "residual_scale": 0.5},
}


@pytest.mark.parametrize("cure", list(CURES))
def test_the_product_is_the_central_difference_jacobian(cure):
    config, model, rng = _model(**CURES[cure])
    X = rng.standard_normal((8, N_IN))
    h1 = jac.first_hidden(model, X)
    _freeze_batch_statistics(model, h1)
    for layer in (2, 3, 4):
        J = jac.jacobian(model, h1, layer, probes=3)
        eps = 1e-6
        for p in range(3):
            numeric = np.empty((h1.shape[1], h1.shape[1]))
            for j in range(h1.shape[1]):
                up, down = h1.copy(), h1.copy()
                up[p, j] += eps
                down[p, j] -= eps
                numeric[:, j] = (_h_at(model, up, layer)[p] - _h_at(model, down, layer)[p]) / (2 * eps)
            assert np.abs(numeric).max() > 1e-3  # a Jacobian worth comparing
            np.testing.assert_allclose(J[p], numeric, rtol=1e-6, atol=1e-8, err_msg=f"{cure}, layer {layer}, input {p}")


@pytest.mark.parametrize("cure", list(CURES))
def test_the_product_is_backpropagating_each_unit_vector(cure):
    """Row i of J_l is what the model's own backward pass gives for the error signal e_i at layer l."""
    config, model, rng = _model(seed=1, **CURES[cure])
    X = rng.standard_normal((7, N_IN))
    h1 = jac.first_hidden(model, X)
    _freeze_batch_statistics(model, h1)
    layer = 4
    J = jac.jacobian(model, h1, layer)
    h = h1
    for block in model.blocks[1:layer]:
        h = block.forward(h, None, "eval", cache=True)
    width = h1.shape[1]
    for i in range(width):
        d = np.zeros_like(h)
        d[:, i] = 1.0
        for block in reversed(model.blocks[1:layer]):
            d = block.backward(d, None)
        np.testing.assert_allclose(J[:, i, :], d, rtol=1e-12, atol=1e-14, err_msg=f"{cure}, row {i}")


def test_a_linear_network_with_orthogonal_weights_is_an_isometry_at_every_depth():
    config = RunConfig(width=64, depth=40, activation="identity", init="orthogonal", bias_std=0.5).validate()
    model = build_mlp(config, N_IN, N_OUT, np.random.default_rng(3))
    h1 = jac.first_hidden(model, np.random.default_rng(4).standard_normal((3, N_IN)))
    spectrum = jac.spectrum(model, h1, layers=range(2, 41), probes=3)
    assert spectrum.values.shape == (39, 3, 64)
    np.testing.assert_allclose(spectrum.values, 1.0, atol=1e-10)
    # Gaussian weights of the same variance are not: the spread grows with depth
    gaussian = build_mlp(config.replace(init="lecun_normal"), N_IN, N_OUT, np.random.default_rng(3))
    s = jac.spectrum(gaussian, jac.first_hidden(gaussian, np.ones((1, N_IN))), layers=[40], probes=1).values
    assert s.max() / s.min() > 1e3


def test_the_frame_has_one_row_per_depth_input_and_value_and_the_summary_reads_it():
    config, model, rng = _model(width=5, depth=6)
    h1 = jac.first_hidden(model, rng.standard_normal((4, N_IN)))
    spectrum = jac.spectrum(model, h1, layers=[2, 4, 6], probes=2)
    frame = spectrum.frame()
    assert list(frame.columns) == ["depth", "example", "index", "singular_value"]
    assert len(frame) == 3 * 2 * 5
    J4 = jac.jacobian(model, h1, 4, probes=2)
    by_hand = np.linalg.svd(J4[1], compute_uv=False)
    got = frame[(frame.depth == 4) & (frame.example == 1)].sort_values("index")["singular_value"].to_numpy()
    np.testing.assert_allclose(got, by_hand, rtol=1e-12)
    summary = spectrum.summary().set_index("depth")
    both = np.concatenate([np.linalg.svd(J, compute_uv=False) for J in J4])
    assert summary.loc[4, "mean_s2"] == pytest.approx(np.mean(both**2), rel=1e-12)
    assert summary.loc[4, "s_p95"] == pytest.approx(np.percentile(both, 95), rel=1e-12)


def test_a_product_that_overflows_stops_the_walk_and_says_where():
    config = RunConfig(width=32, depth=60, activation="identity", init="normal", init_scale=1e5).validate()
    model = build_mlp(config, N_IN, N_OUT, np.random.default_rng(0))
    spectrum = jac.spectrum(model, jac.first_hidden(model, np.ones((1, N_IN))), layers=range(2, 61), probes=1)
    assert spectrum.overflow_at is not None and 2 < spectrum.overflow_at <= 60
    assert np.isnan(spectrum.values[-1]).all() and np.isfinite(spectrum.values[0]).all()
    assert spectrum.summary()["depth"].max() < spectrum.overflow_at


def test_the_layers_shown_are_all_of_a_shallow_network_and_a_spread_of_a_deep_one():
    assert jac.spectrum_layers(1) == []
    assert jac.spectrum_layers(10) == list(range(2, 11))
    deep = jac.spectrum_layers(128)
    assert deep[0] == 2 and deep[-1] == 128 and 15 <= len(deep) <= 26
    assert deep == sorted(set(deep))


# the theory: the mean of s^2 is the product of chi, its normalized variance sum(mu2 / mu1^2 - 1 - s1)

NETWORKS = {  # activation, init, gain, bias std: each near chi = 1, so that a product of 9 stays O(1); a linear
    # or ReLU network at criticality has a fixed point q* only without a bias (every q is one)
    "tanh gaussian": ("tanh", "lecun_normal", 1.0, 0.1),
    "tanh orthogonal": ("tanh", "orthogonal", 1.0, 0.1),
    "relu gaussian": ("relu", "he_normal", 1.0, 0.0),
    "relu orthogonal": ("relu", "orthogonal", math.sqrt(2.0), 0.0),
    "linear gaussian": ("identity", "lecun_normal", 1.0, 0.0),
    "linear orthogonal": ("identity", "orthogonal", 1.0, 0.0),
}


def _measure(name, depth=10, width=128, seeds=range(6), inputs="fixed-point", bias_std=None):
    activation, init, gain, bias = NETWORKS[name]
    bias_std = bias if bias_std is None else bias_std
    config = RunConfig(width=width, depth=depth, activation=activation, init=init, gain=gain, bias_std=bias_std,
                       input_dim=width).validate()
    means, normalized = [], []
    for seed in seeds:
        model = build_mlp(config, width, N_OUT, np.random.default_rng(seed))
        rng = np.random.default_rng(100 + seed)
        if inputs == "fixed-point":
            h1 = jac.fixed_point_inputs(model, theory.q_star(config), 4, rng)
        else:
            h1 = jac.first_hidden(model, rng.standard_normal((4, width)))
        s = jac.spectrum(model, h1, layers=[depth], probes=4).values[0]
        means.append(np.mean(s**2))
        normalized.append(np.var(s**2) / np.mean(s**2) ** 2)
    return config, np.array(means), np.array(normalized)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_the_mean_of_s2_is_the_product_of_chi(name):
    config, means, _ = _measure(name)
    predicted = theory.predict(config, [10], [theory.q_star(config)]).iloc[0]
    # the product of chi over the 9 layers crossed, by hand from the mean-field module
    from lab.engine.activations import get_activation
    from lab.theory.meanfield import chi

    act = get_activation(config.activation)
    assert predicted.mean_s2 == pytest.approx(chi(act, theory.hidden_sigma_w2(config), theory.q_star(config)) ** 9,
                                              rel=1e-10)
    # the seeds' mean within 4 standard errors, plus 3% for the finite width
    error = means.std(ddof=1) / math.sqrt(len(means))
    assert abs(means.mean() - predicted.mean_s2) <= 4 * error + 0.03 * predicted.mean_s2, (means, predicted.mean_s2)


@pytest.mark.parametrize("name", ["tanh gaussian", "tanh orthogonal", "relu gaussian", "relu orthogonal",
                                  "linear gaussian"])
def test_the_normalized_variance_of_s2_grows_as_free_probability_says(name):
    config, _, normalized = _measure(name)
    predicted = theory.predict(config, [10], [theory.q_star(config)]).iloc[0].normalized_var
    assert normalized.mean() == pytest.approx(predicted, rel=0.3), (normalized, predicted)


def test_data_inputs_are_predicted_from_their_own_q1():
    config, means, _ = _measure("tanh gaussian", inputs="data", bias_std=0.0)
    rng_inputs = [np.random.default_rng(100 + s).standard_normal((4, 128)) for s in range(6)]
    q1 = theory.first_q(config, 128, np.concatenate([np.mean(x**2, axis=1) for x in rng_inputs]))
    predicted = theory.predict(config, [10], q1).iloc[0].mean_s2
    error = means.std(ddof=1) / math.sqrt(len(means))
    assert abs(means.mean() - predicted) <= 4 * error + 0.03 * predicted


def test_the_theory_covers_plain_networks_only():
    base = RunConfig(width=128, depth=10)
    assert theory.applicability(base).fit == "applies"
    assert theory.applicability(base.replace(residual=True)).reason == "cures"
    assert theory.applicability(base.replace(norm="layer")).fit == "does not apply"
    assert theory.applicability(base.replace(init="zeros")).fit == "does not apply"
    assert theory.applicability(base.replace(width=16)).fit == "approximate"
    assert theory.weight_kind(base.replace(init="orthogonal")) == "orthogonal"
    assert theory.weight_kind(base.replace(init="xavier_uniform")) == "i.i.d."


# dynamical isometry (Pennington et al. 2017): width 256, depth 128, each network at criticality

def _middle_90(activation, init, gain, seed, bias_std=0.0):
    config = RunConfig(width=256, depth=128, activation=activation, init=init, gain=gain, bias_std=bias_std,
                       input_dim=256).validate()
    model = build_mlp(config, 256, N_OUT, np.random.default_rng(seed))
    h1 = jac.fixed_point_inputs(model, theory.q_star(config), 1, np.random.default_rng(seed + 50))
    row = jac.spectrum(model, h1, layers=[128], probes=1).summary().iloc[0]
    return row.s_p95 / row.s_p5


# over seeds 0-4 the middle 90% spanned 3.8-4.2x for orthogonal tanh, 2e15-6e76x for the others
@pytest.mark.parametrize("seed", [0, 3])
def test_orthogonal_tanh_at_criticality_is_isometric_where_gaussian_weights_and_relu_are_not(seed):
    tanh_orthogonal = _middle_90("tanh", "orthogonal", math.sqrt(1.05), seed, bias_std=0.01)
    assert tanh_orthogonal < 10, tanh_orthogonal
    for spread in (_middle_90("tanh", "lecun_normal", math.sqrt(1.05), seed, bias_std=0.01),
                   _middle_90("relu", "orthogonal", math.sqrt(2.0), seed),
                   _middle_90("relu", "he_normal", 1.0, seed)):
        assert spread > 1e6, spread
