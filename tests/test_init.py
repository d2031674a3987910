"""Initializers against their published formulas, with fan_in != fan_out so a swap shows.

Weights are stored (fan_in, fan_out).  A (400, 250) matrix has 100,000 entries, so the
sample variance is within about 0.5% (normal) of the true one: 3% is a 6-sigma band.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from lab.engine.activations import get_activation
from lab.engine.config import RunConfig
from lab.engine.init import (
    ALIASES,
    INITIALIZERS,
    calculate_gain,
    canonical_init,
    init_weight,
    resolve_gain,
)
from lab.engine.model import build_mlp

SHAPES = [(400, 250), (250, 400)]


def expected_variance(name, shape, gain=1.0, scale=1.0):
    """Var of one weight, from the papers (fan_in = shape[0]); U(-a, a) has variance a^2 / 3."""
    fan_in, fan_out = shape
    return {
        "zeros": 0.0,
        "normal": (gain * scale) ** 2,
        "uniform": (gain * scale) ** 2 / 3,
        "xavier_normal": gain**2 * 2.0 / (fan_in + fan_out),
        "xavier_uniform": (gain * math.sqrt(6.0 / (fan_in + fan_out))) ** 2 / 3,
        "he_normal": gain**2 * 2.0 / fan_in,
        "he_uniform": (gain * math.sqrt(6.0 / fan_in)) ** 2 / 3,
        "lecun_normal": gain**2 / fan_in,
        "lecun_uniform": (gain * math.sqrt(3.0 / fan_in)) ** 2 / 3,
        # orthonormal columns (or rows): the squares sum to min(shape), spread over rows * cols entries
        "orthogonal": gain**2 / max(fan_in, fan_out),
    }[name]


def test_every_initializer_has_a_formula_here():
    missing = []
    for name in INITIALIZERS:
        try:
            expected_variance(name, (3, 4))
        except KeyError:
            missing.append(name)
    assert missing == [], f"initializers without a formula from their paper in this test: {missing}"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_variance_matches_formula(name, shape):
    W = INITIALIZERS[name](shape, np.random.default_rng(1), gain=1.0, scale=0.7)
    assert W.shape == shape and W.dtype == np.float64
    var = expected_variance(name, shape, scale=0.7)
    if var == 0.0:
        assert not W.any()
        return
    assert W.var() == pytest.approx(var, rel=0.03)
    assert abs(W.mean()) < 5 * math.sqrt(var / W.size)


@pytest.mark.parametrize("name", ["he_normal", "he_uniform", "lecun_normal", "lecun_uniform"])
def test_fan_in_is_the_first_dimension(name):
    rng = np.random.default_rng(2)
    var_tall = INITIALIZERS[name]((400, 250), rng).var()
    var_wide = INITIALIZERS[name]((250, 400), rng).var()
    assert var_wide / var_tall == pytest.approx(400 / 250, rel=0.05)


@pytest.mark.parametrize("name", ["uniform", "xavier_uniform", "he_uniform", "lecun_uniform"])
def test_uniform_bounds(name):
    shape = (400, 250)
    W = INITIALIZERS[name](shape, np.random.default_rng(3), gain=1.3, scale=0.5)
    a = math.sqrt(3 * expected_variance(name, shape, gain=1.3, scale=0.5))
    assert np.abs(W).max() <= a
    assert np.abs(W).max() > 0.999 * a


@pytest.mark.parametrize("name", sorted(set(INITIALIZERS) - {"zeros"}))
def test_gain_multiplies_the_std(name):
    shape = (40, 25)
    W1 = INITIALIZERS[name](shape, np.random.default_rng(4), gain=1.0)
    W3 = INITIALIZERS[name](shape, np.random.default_rng(4), gain=2.5)
    np.testing.assert_allclose(W3, 2.5 * W1, rtol=1e-12)
    assert W1.std() > 0


@pytest.mark.parametrize("name", ["normal", "uniform"])
def test_normal_and_uniform_use_the_absolute_scale(name):
    # the same std whatever the shape: no fan in the formula
    for shape in SHAPES:
        W = INITIALIZERS[name](shape, np.random.default_rng(5), scale=0.01)
        assert W.std() == pytest.approx(0.01 if name == "normal" else 0.01 / math.sqrt(3), rel=0.03)


@pytest.mark.parametrize("name", sorted(set(INITIALIZERS) - {"normal", "uniform"}))
def test_fan_based_schemes_ignore_scale(name):
    W1 = INITIALIZERS[name]((30, 20), np.random.default_rng(6), scale=1.0)
    W2 = INITIALIZERS[name]((30, 20), np.random.default_rng(6), scale=50.0)
    np.testing.assert_array_equal(W1, W2)


def test_zeros():
    W = INITIALIZERS["zeros"]((7, 3), np.random.default_rng(0), gain=5.0, scale=3.0)
    assert W.shape == (7, 3)
    np.testing.assert_array_equal(W, np.zeros((7, 3)))


@pytest.mark.parametrize("shape", [(400, 250), (250, 400), (64, 64)])
def test_orthogonal_is_orthonormal(shape):
    gain = 1.7
    Q = INITIALIZERS["orthogonal"](shape, np.random.default_rng(7), gain=gain)
    assert Q.shape == shape
    k = min(shape)
    gram = Q.T @ Q if shape[0] >= shape[1] else Q @ Q.T  # columns when tall, rows when wide
    np.testing.assert_allclose(gram, gain**2 * np.eye(k), atol=1e-10)


def test_aliases_resolve():
    required = {
        "glorot_normal": "xavier_normal",
        "glorot_uniform": "xavier_uniform",
        "kaiming_normal": "he_normal",
        "kaiming_uniform": "he_uniform",
    }
    assert {alias: ALIASES.get(alias) for alias in required} == required
    for alias, name in ALIASES.items():
        assert canonical_init(alias) == name
        a = init_weight(alias, (30, 20), np.random.default_rng(8), 1.0, 1.0)
        b = INITIALIZERS[name]((30, 20), np.random.default_rng(8))
        np.testing.assert_array_equal(a, b)
    for name in INITIALIZERS:
        assert canonical_init(name) == name
    with pytest.raises(KeyError, match="unknown init 'xavier'"):
        canonical_init("xavier")


# torch.nn.init.calculate_gain, PyTorch 2.x
TORCH_GAINS = {
    "identity": 1.0,  # 'linear'
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": 1.4142135623730951,
    "selu": 0.75,
}


@pytest.mark.parametrize("name, gain", sorted(TORCH_GAINS.items()))
def test_calculate_gain_matches_pytorch(name, gain):
    assert calculate_gain(get_activation(name)) == pytest.approx(gain, rel=1e-15)


@pytest.mark.parametrize("slope, gain", [(0.01, 1.4141428569978354), (0.2, 1.3867504905630728), (1.0, 1.0)])
def test_calculate_gain_leaky_relu(slope, gain):
    # calculate_gain('leaky_relu', slope) = sqrt(2 / (1 + slope^2)), not sqrt(2 / 1 + slope^2)
    assert calculate_gain(get_activation("leaky_relu", slope)) == pytest.approx(gain, rel=1e-12)


def test_resolve_gain_number_passes_through():
    tanh = get_activation("tanh")
    assert resolve_gain("he_normal", 0.5, tanh) == 0.5
    assert resolve_gain("xavier_normal", "2", tanh) == 2.0


@pytest.mark.parametrize("init", ["xavier_normal", "xavier_uniform", "lecun_normal", "orthogonal", "normal"])
def test_resolve_gain_auto_multiplies_other_schemes(init):
    assert resolve_gain(init, "auto", get_activation("tanh")) == pytest.approx(5.0 / 3.0)
    assert resolve_gain(init, "auto", get_activation("relu")) == pytest.approx(math.sqrt(2.0))


@pytest.mark.parametrize("init", ["he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform"])
def test_resolve_gain_auto_replaces_kaimings_sqrt2(init):
    # kaiming_normal_(w, nonlinearity=...) has std gain / sqrt(fan_in): relu's gain sqrt(2) is built in
    assert resolve_gain(init, "auto", get_activation("relu")) == pytest.approx(1.0)
    assert resolve_gain(init, "auto", get_activation("tanh")) == pytest.approx((5.0 / 3.0) / math.sqrt(2.0))


@pytest.mark.parametrize("init", ["he_normal", "kaiming_uniform"])
def test_he_auto_for_tanh_through_the_model_builder(init):
    fan_in, fan_out = 400, 250
    config = RunConfig(dataset="random", input_dim=fan_in, width=fan_out, depth=1, classes=3,
                       activation="tanh", init=init, gain="auto").validate()
    model = build_mlp(config, fan_in, 3, np.random.default_rng(9))
    W = model.affines[0].params["W"]
    assert W.shape == (fan_in, fan_out)
    # PyTorch: kaiming_*_(w, nonlinearity='tanh') gives std (5/3) / sqrt(fan_in)
    assert W.std() == pytest.approx((5.0 / 3.0) / math.sqrt(fan_in), rel=0.03)


def test_initializers_are_deterministic_from_the_generator():
    for name, fn in INITIALIZERS.items():
        a = fn((20, 10), np.random.default_rng(10))
        b = fn((20, 10), np.random.default_rng(10))
        np.testing.assert_array_equal(a, b)
        if name != "zeros":
            assert not np.array_equal(a, fn((20, 10), np.random.default_rng(11)))
