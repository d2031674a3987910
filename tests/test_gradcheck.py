"""The gradient check passes for every activation and loss, and catches a planted bug."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lab.engine.activations import ACTIVATIONS, Tanh, get_activation
from lab.engine.config import RunConfig
from lab.engine.gradcheck import PASS_THRESHOLD, gradient_check, numerical_gradient, relative_error
from lab.engine.layers import LOSSES, ActivationLayer
from lab.engine.model import build_mlp, mlp_from_weights

COLUMNS = ["layer", "rel_error_W", "rel_error_b", "rel_error", "max_abs_diff", "passed", "backprop_s", "numerical_s"]


def small_model(activation, loss, seed=0):
    config = RunConfig(activation=activation, loss=loss, depth=2, width=5, init="xavier_normal",
                       bias_std=0.1, leaky_slope=0.2).validate()
    rng = np.random.default_rng(seed)
    model = build_mlp(config, 3, 4, rng)
    X = rng.normal(size=(6, 3))
    t = rng.integers(0, 4, size=6)
    return model, X, t


def distance_to_kinks(model, X, kinks):
    keep = []
    model.forward(X, keep)
    return min((np.abs(z - k).min() for z, _ in keep for k in kinks), default=math.inf)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradient_check_passes(activation, loss):
    model, X, t = small_model(activation, loss)
    # central differences with eps 1e-6 straddle a kink only if a pre-activation is that close to it
    assert distance_to_kinks(model, X, model.activation.kinks) > 1e-4
    params = model.flat_params.copy()
    table = gradient_check(model, X, t)
    assert list(table.columns) == COLUMNS
    assert list(table["layer"]) == [1, 2, 3]
    assert (table["rel_error"] < 1e-6).all(), table[["layer", "rel_error", "max_abs_diff"]]
    assert table["passed"].all()
    np.testing.assert_array_equal(model.flat_params, params)  # every perturbation was undone


class WrongTanh(Tanh):
    """A planted bug: d tanh / dx written as 1 - y instead of 1 - y^2."""

    def df(self, x, y):
        return 1.0 - y


class HalfSigmoidDerivative(type(get_activation("sigmoid"))):
    """A subtler planted bug: the derivative off by a constant factor."""

    def df(self, x, y):
        return 0.5 * y * (1.0 - y)


@pytest.mark.parametrize("wrong, base", [(WrongTanh, "tanh"), (HalfSigmoidDerivative, "sigmoid")])
def test_gradient_check_fails_for_a_wrong_derivative(wrong, base):
    model, X, t = small_model(base, "cross_entropy")
    model.acts = [ActivationLayer(wrong()) for _ in model.acts]
    table = gradient_check(model, X, t)
    assert not table["passed"].all()
    # the output layer sees no activation derivative; the layers below it do
    assert table.set_index("layer").loc[3, "passed"]
    assert table.set_index("layer").loc[1, "rel_error"] > 1e-3
    assert not table.set_index("layer").loc[1, "passed"]


def test_gradient_check_fails_for_a_wrong_loss_gradient():
    model, X, t = small_model("tanh", "mse")

    class DoubledMSE(type(model.loss_layer)):
        def backward(self, dout=1.0):
            return 2.0 * super().backward(dout)

    model.loss_layer = DoubledMSE()
    table = gradient_check(model, X, t)
    assert not table["passed"].any()
    # every gradient is exactly doubled: ||2g - g|| / (||2g|| + ||g||) = 1/3
    np.testing.assert_allclose(table["rel_error"], 1 / 3, rtol=1e-4)


def test_gradient_check_on_rebuilt_model():
    model, X, t = small_model("gelu", "cross_entropy")
    rebuilt = mlp_from_weights(model.weights(), get_activation("gelu"), "cross_entropy")
    assert (gradient_check(rebuilt, X, t)["rel_error"] < 1e-6).all()


def test_numerical_gradient_of_a_known_function():
    p = np.array([[1.0, -2.0], [0.5, 3.0]])
    c = np.array([[2.0, 1.0], [-1.0, 0.5]])
    g = numerical_gradient(lambda: float((c * p**3).sum()), p)
    np.testing.assert_allclose(g, 3 * c * np.array([[1.0, -2.0], [0.5, 3.0]]) ** 2, rtol=1e-8)
    np.testing.assert_array_equal(p, [[1.0, -2.0], [0.5, 3.0]])  # restored


def test_relative_error():
    assert relative_error(np.array([3.0, 4.0]), np.zeros(2)) == pytest.approx(1.0)
    assert relative_error(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(math.sqrt(2) / 2)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert PASS_THRESHOLD == 1e-6
