"""Activation functions against independent formulas, central differences and their limits.

Every test is parametrized over ``ACTIVATIONS``, so a new activation is tested the day
it is added; the reference formulas below are written with ``math`` one scalar at a
time, not with the vectorized code under test.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lab.engine.activations import ACTIVATIONS, get_activation

NAMES = sorted(ACTIVATIONS)
SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. (2017), eq. 14
SELU_LAMBDA = 1.0507009873554804934193349852946
SLOPE = 0.2  # a leaky slope far from the default, so a hard-coded 0.01 would show


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


# scalar reference formulas, valid for |x| <= 30
REFERENCE = {
    "identity": lambda x: x,
    "sigmoid": _sigmoid,
    "tanh": math.tanh,
    "relu": lambda x: x if x > 0 else 0.0,
    "leaky_relu": lambda x: x if x > 0 else SLOPE * x,
    "elu": lambda x: x if x > 0 else math.exp(x) - 1.0,
    "selu": lambda x: SELU_LAMBDA * (x if x > 0 else SELU_ALPHA * (math.exp(x) - 1.0)),
    "gelu": lambda x: 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))),
    "softplus": lambda x: math.log1p(math.exp(x)),
    "silu": lambda x: x * _sigmoid(x),
}

# f(x) for x -> +inf and x -> -inf, as functions of x (the asymptote, not the value of f)
LIMITS = {
    "identity": (lambda x: x, lambda x: x),
    "sigmoid": (lambda x: 1.0, lambda x: 0.0),
    "tanh": (lambda x: 1.0, lambda x: -1.0),
    "relu": (lambda x: x, lambda x: 0.0),
    "leaky_relu": (lambda x: x, lambda x: SLOPE * x),
    "elu": (lambda x: x, lambda x: -1.0),
    "selu": (lambda x: SELU_LAMBDA * x, lambda x: -SELU_LAMBDA * SELU_ALPHA),
    "gelu": (lambda x: x, lambda x: 0.0),
    "softplus": (lambda x: x, lambda x: 0.0),
    "silu": (lambda x: x, lambda x: 0.0),
}


def make(name):
    return get_activation(name, SLOPE)


def away_from_kinks(x, kinks, margin=1e-3):
    """Move points within ``margin`` of a kink out of the way (central differences straddle kinks)."""
    x = x.copy()
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + np.where(x[near] >= k, 1.0, -1.0) * 10 * margin
    return x


def test_registry_and_lookup():
    assert get_activation("linear").name == "identity"
    for name in NAMES:
        assert make(name).name == name
    with pytest.raises(KeyError, match="unknown activation 'swish2'"):
        get_activation("swish2")


@pytest.mark.parametrize("name", NAMES)
def test_f_matches_reference_formula(name):
    assert name in REFERENCE, f"no reference formula for {name!r}: add one to REFERENCE in {__file__}"
    act = make(name)
    x = np.concatenate([np.linspace(-8.0, 8.0, 161), [-30.0, -0.3, 0.3, 30.0]])
    expected = np.array([REFERENCE[name](float(v)) for v in x])
    np.testing.assert_allclose(act.f(x), expected, rtol=1e-12, atol=1e-14)


def test_leaky_relu_uses_its_slope():
    for slope in (0.01, 0.3):
        act = get_activation("leaky_relu", slope)
        np.testing.assert_allclose(act.f(np.array([-2.0, 3.0])), [-2.0 * slope, 3.0])
        np.testing.assert_allclose(act.df(np.array([-2.0, 3.0]), None), [slope, 1.0])


@pytest.mark.parametrize("name", NAMES)
def test_df_matches_central_differences(name):
    act = make(name)
    x = away_from_kinks(np.linspace(-4.0, 4.0, 801), act.kinks)
    eps = 1e-6
    numeric = (act.f(x + eps) - act.f(x - eps)) / (2 * eps)
    np.testing.assert_allclose(act.df(x, act.f(x)), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype, big", [(np.float64, 1000.0), (np.float32, 100.0)])
def test_large_inputs_are_finite_without_warnings(name, dtype, big):
    act = make(name)
    x = np.array([-big, -big / 2, big / 2, big], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # underflow to 0 (exp(-big)) is the right answer and numpy ignores it by default;
        # overflow, 0/0 and inf - inf are the failures that matter
        with np.errstate(all="raise", under="ignore"):
            y = act.f(x)
            d = act.df(x, y)
    assert np.isfinite(y).all() and np.isfinite(d).all()
    hi, lo = LIMITS[name]
    for xi, yi in zip(x.astype(np.float64), y.astype(np.float64)):
        limit = hi(xi) if xi > 0 else lo(xi)
        assert yi == pytest.approx(limit, rel=1e-5, abs=1e-5), (name, xi, yi)


@pytest.mark.parametrize("name", NAMES)
def test_max_deriv_is_sup_of_abs_derivative(name):
    act = make(name)
    x = np.linspace(-20.0, 20.0, 400_001)  # step 1e-4
    h = 1e-5
    slope = np.abs(act.f(x + h) - act.f(x - h)) / (2 * h)  # from f alone, not from df
    assert act.max_deriv == pytest.approx(slope.max(), abs=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    act = make(name)
    x = np.linspace(-3.0, 3.0, 13, dtype=np.float32)
    y = act.f(x)
    assert y.dtype == np.float32
    assert act.df(x, y).dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_f_and_df_leave_input_alone(name):
    act = make(name)
    x = np.linspace(-3.0, 3.0, 13)
    x_before = x.copy()
    y = act.f(x)
    y_before = y.copy()
    act.df(x, y)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)


@pytest.mark.parametrize("name", NAMES)
def test_saturating_flag_means_derivative_vanishes_on_both_sides(name):
    act = make(name)
    x = np.array([-40.0, 40.0])
    vanishes = bool(np.all(np.abs(act.df(x, act.f(x))) < 1e-6))
    assert act.saturating == vanishes
