"""Every layer's backward against central differences, in float64.

A layer's output y is turned into a scalar with a fixed random weighting G,
s = sum(y * G), so ds/dy = G is the upstream gradient handed to ``backward`` and
ds/dx is what it must return.  Each backward must also leave alone the array it was
given and the layer's weights.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from lab.engine.activations import ACTIVATIONS, get_activation
from lab.engine.layers import (
    LOSSES,
    ActivationLayer,
    AddLayer,
    Affine,
    MSELoss,
    MulLayer,
    SoftmaxWithLoss,
    log_softmax,
    one_hot,
    softmax,
)

TOL = 1e-7  # relative error of backprop vs central differences in float64


def away_from_kinks(x, kinks, margin=0.05):
    x = x.copy()
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + np.where(x[near] >= k, 1.0, -1.0) * 2 * margin
    return x


# ---------------------------------------------------------------- Affine

def test_affine_forward_is_xW_plus_b(rng):
    x, W, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=2)
    expected = np.array([[sum(x[n, i] * W[i, j] for i in range(4)) + b[j] for j in range(2)] for n in range(3)])
    np.testing.assert_allclose(Affine(W, b).forward(x), expected, rtol=1e-12)


def test_affine_backward_matches_central_differences(rng, numgrad, relerr):
    x, W, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    G = rng.normal(size=(5, 3))
    layer = Affine(W, b)

    def s():
        return np.sum(layer.forward(x) * G)

    layer.forward(x)
    W0, b0, G0 = W.copy(), b.copy(), G.copy()
    dx = layer.backward(G)
    dW, db = layer.grads["W"].copy(), layer.grads["b"].copy()
    # nothing the backward was given or holds as a weight may change
    np.testing.assert_array_equal(G, G0)
    np.testing.assert_array_equal(layer.params["W"], W0)
    np.testing.assert_array_equal(layer.params["b"], b0)

    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == b.shape
    assert relerr(dx, numgrad(s, x)) < TOL
    assert relerr(dW, numgrad(s, W)) < TOL
    assert relerr(db, numgrad(s, b)) < TOL
    # the closed forms, for good measure
    np.testing.assert_allclose(dW, x.T @ G0, rtol=1e-12)
    np.testing.assert_allclose(db, G0.sum(axis=0), rtol=1e-12)


def test_affine_need_dx_false_still_gives_weight_gradients(rng):
    x, W, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    G = rng.normal(size=(5, 3))
    layer = Affine(W, b, need_dx=False)
    layer.forward(x)
    assert layer.backward(G) is None
    np.testing.assert_allclose(layer.grads["W"], x.T @ G, rtol=1e-12)


def test_affine_writes_into_preallocated_gradient_buffers(rng):
    x, W, b = rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    layer = Affine(W, b, dW=dW, db=db)
    layer.forward(x)
    layer.backward(np.ones((5, 3)))
    assert layer.grads["W"] is dW and layer.grads["b"] is db
    np.testing.assert_allclose(dW, np.repeat(x.sum(axis=0)[:, None], 3, axis=1), rtol=1e-12)
    np.testing.assert_allclose(db, [5.0, 5.0, 5.0])


# ---------------------------------------------------------------- activation layers

@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layer_backward_matches_central_differences(name, rng, numgrad, relerr):
    fn = get_activation(name, 0.2)
    z = away_from_kinks(rng.uniform(-3.0, 3.0, size=(4, 6)), fn.kinks)
    G = rng.normal(size=z.shape)
    layer = ActivationLayer(fn)

    def s():
        return np.sum(layer.forward(z) * G)

    layer.forward(z)
    z0, G0 = z.copy(), G.copy()
    dz = layer.backward(G)
    np.testing.assert_array_equal(G, G0)
    np.testing.assert_array_equal(z, z0)
    assert dz.shape == z.shape
    assert relerr(dz, numgrad(s, z)) < TOL


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_layer_backward_does_not_touch_forward_output(name, rng):
    layer = ActivationLayer(get_activation(name))
    z = rng.uniform(-3.0, 3.0, size=(3, 5))
    h = layer.forward(z)
    h0 = h.copy()
    layer.backward(rng.normal(size=z.shape))
    np.testing.assert_array_equal(h, h0)


# ---------------------------------------------------------------- losses

def _reference_cross_entropy(a, labels):
    """Mean -log softmax(a)[label], one row at a time with math.exp/log."""
    total = 0.0
    for row, k in zip(a, labels):
        m = max(row)
        log_z = m + math.log(sum(math.exp(v - m) for v in row))
        total += log_z - row[k]
    return total / len(labels)


def test_softmax_and_log_softmax_against_formula(rng):
    a = rng.normal(size=(4, 5)) * 3
    expected = np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax(a), expected, rtol=1e-12)
    np.testing.assert_allclose(log_softmax(a), np.log(expected), rtol=1e-12)
    # huge logits: the max-subtraction keeps this finite
    big = np.array([[1000.0, 0.0, -1000.0]])
    with np.errstate(all="raise", under="ignore"):
        np.testing.assert_allclose(softmax(big), [[1.0, 0.0, 0.0]])
        np.testing.assert_allclose(log_softmax(big), [[0.0, -1000.0, -2000.0]])


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0, 1]), 4), [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])


@pytest.mark.parametrize("label_form", ["integer", "one_hot"])
def test_softmax_with_loss(label_form, rng, numgrad, relerr):
    N, K = 6, 4
    a = rng.normal(size=(N, K)) * 2
    labels = rng.integers(0, K, size=N)
    t = labels if label_form == "integer" else np.eye(K)[labels]
    t0 = t.copy()
    layer = SoftmaxWithLoss()

    loss = layer.forward(a, t)
    assert loss == pytest.approx(_reference_cross_entropy(a, labels), rel=1e-12)
    da = layer.backward()
    # (y - t) / N with y and t built here, not taken from the layer
    y = np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(da, (y - np.eye(K)[labels]) / N, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(layer.per_example, [-np.log(y[n, labels[n]]) for n in range(N)], rtol=1e-12)
    assert relerr(da, numgrad(lambda: layer.forward(a, t), a)) < TOL
    np.testing.assert_array_equal(t, t0)


def test_softmax_with_loss_integer_and_one_hot_agree(rng):
    a = rng.normal(size=(5, 3))
    labels = rng.integers(0, 3, size=5)
    l1, l2 = SoftmaxWithLoss(), SoftmaxWithLoss()
    assert l1.forward(a, labels) == pytest.approx(l2.forward(a, np.eye(3)[labels]), rel=1e-14)
    np.testing.assert_allclose(l1.backward(), l2.backward(), rtol=1e-14)


def test_softmax_with_loss_backward_scales_with_dout(rng):
    a = rng.normal(size=(5, 3))
    labels = rng.integers(0, 3, size=5)
    layer = SoftmaxWithLoss()
    layer.forward(a, labels)
    np.testing.assert_allclose(layer.backward(2.5), 2.5 * layer.backward(1.0), rtol=1e-14)


@pytest.mark.parametrize("label_form", ["integer", "one_hot"])
def test_mse_loss(label_form, rng, numgrad, relerr):
    N, K = 6, 3
    a = rng.normal(size=(N, K))
    labels = rng.integers(0, K, size=N)
    t = labels if label_form == "integer" else np.eye(K)[labels]
    target = np.eye(K)[labels]
    layer = MSELoss()
    loss = layer.forward(a, t)
    expected = sum(0.5 * sum((a[n, k] - target[n, k]) ** 2 for k in range(K)) for n in range(N)) / N
    assert loss == pytest.approx(expected, rel=1e-12)
    da = layer.backward()
    np.testing.assert_allclose(da, (a - target) / N, rtol=1e-12)
    assert relerr(da, numgrad(lambda: layer.forward(a, t), a)) < TOL


def test_losses_registry():
    assert LOSSES["cross_entropy"] is SoftmaxWithLoss and LOSSES["mse"] is MSELoss


# ---------------------------------------------------------------- computational-graph nodes

def test_mul_layer(rng, numgrad, relerr):
    x, y, G = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    layer = MulLayer()

    def s():
        return np.sum(layer.forward(x, y) * G)

    np.testing.assert_allclose(layer.forward(x, y), x * y)
    G0 = G.copy()
    dx, dy = layer.backward(G)
    np.testing.assert_array_equal(G, G0)
    assert relerr(dx, numgrad(s, x)) < TOL
    assert relerr(dy, numgrad(s, y)) < TOL


def test_mul_layer_fruit_shop():
    # the source text's example: 2 apples at 100 each, 10% tax -> 220; d price / d apple = 2.2
    apple, n, tax = 100.0, 2.0, 1.1
    mul_apple, mul_tax = MulLayer(), MulLayer()
    price = mul_tax.forward(mul_apple.forward(apple, n), tax)
    assert price == pytest.approx(220.0)
    d_apple_price, d_tax = mul_tax.backward(1.0)
    d_apple, d_n = mul_apple.backward(d_apple_price)
    assert (d_apple, d_n, d_tax) == (pytest.approx(2.2), pytest.approx(110.0), pytest.approx(200.0))


def test_add_layer(rng, numgrad, relerr):
    x, y, G = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    layer = AddLayer()

    def s():
        return np.sum(layer.forward(x, y) * G)

    np.testing.assert_allclose(layer.forward(x, y), x + y)
    G0 = G.copy()
    dx, dy = layer.backward(G)
    np.testing.assert_array_equal(G, G0)
    assert dx is not G and dy is not G  # a later in-place change of dx must not reach dy
    assert relerr(dx, numgrad(s, x)) < TOL
    assert relerr(dy, numgrad(s, y)) < TOL
