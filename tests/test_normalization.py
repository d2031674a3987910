"""BatchNorm, LayerNorm and Dropout: backward against central differences, forward against formulas."""
from __future__ import annotations

import numpy as np
import pytest

from lab.engine.normalization import BatchNorm, Dropout, LayerNorm

N, D = 6, 5


def _check_layer(layer, x, numgrad, relerr, **forward_kw):
    """Backward of L = sum(y * r) against central differences in x, gamma and beta."""
    r = np.random.default_rng(7).standard_normal((N, D))

    def loss():
        return float((layer.forward(x, **forward_kw) * r).sum())

    loss()
    dout = r.copy()
    dx = layer.backward(dout)
    assert np.array_equal(dout, r), "backward wrote into its input"
    analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}
    arrays = {"x": x, **layer.params}
    for name, arr in arrays.items():
        err = relerr(analytic[name], numgrad(loss, arr))
        assert err < 1e-6, (name, err)


def _shifted_input(rng):
    return rng.standard_normal((N, D)) * 3.0 + rng.standard_normal(D)


def _random_gamma_beta(layer, rng):
    layer.params["gamma"][...] = rng.standard_normal(D) + 1.0
    layer.params["beta"][...] = rng.standard_normal(D)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradient(training, rng, numgrad, relerr):
    bn = BatchNorm(D)
    _random_gamma_beta(bn, rng)
    bn.running_mean[...] = rng.standard_normal(D)
    bn.running_var[...] = rng.random(D) + 0.5
    _check_layer(bn, _shifted_input(rng), numgrad, relerr, training=training, track=False)


def test_layernorm_gradient(rng, numgrad, relerr):
    ln = LayerNorm(D)
    _random_gamma_beta(ln, rng)
    _check_layer(ln, _shifted_input(rng), numgrad, relerr)


def test_dropout_gradient_with_fixed_mask(rng, numgrad, relerr):
    drop = Dropout(0.4, np.random.default_rng(1))
    x = rng.standard_normal((N, D))
    drop.forward(x)
    drop.freeze()
    _check_layer(drop, x, numgrad, relerr)


def test_batchnorm_output_per_unit_mean0_var1(rng):
    bn = BatchNorm(D)
    y = bn.forward(_shifted_input(rng))
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    # biased variance; eps shrinks it by var / (var + eps)
    np.testing.assert_allclose(y.var(axis=0), 1.0, atol=1e-4)
    _random_gamma_beta(bn, rng)
    x = _shifted_input(rng)
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) * bn.params["gamma"] + bn.params["beta"]
    np.testing.assert_allclose(bn.forward(x), expected, rtol=1e-12, atol=1e-12)


def test_layernorm_output_per_example_mean0_var1(rng):
    y = LayerNorm(D).forward(_shifted_input(rng))
    np.testing.assert_allclose(y.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1), 1.0, atol=1e-4)


def test_batchnorm_running_statistics_follow_torch_recursion(rng):
    bn = BatchNorm(D, momentum=0.1)
    mean, var = np.zeros(D), np.ones(D)
    batches = [_shifted_input(rng) for _ in range(4)]
    for x in batches:
        bn.forward(x)
        mean = 0.9 * mean + 0.1 * x.mean(0)
        var = 0.9 * var + 0.1 * x.var(0, ddof=1)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-12)
    # track=False (the probe pass) leaves them alone; evaluation uses them
    bn.forward(batches[0], track=False)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-12)
    x = batches[1]
    np.testing.assert_allclose(bn.forward(x, training=False), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-12)


def test_dropout_inverted_and_identity_in_evaluation(rng):
    p = 0.25
    drop = Dropout(p, np.random.default_rng(3))
    x = np.ones((400, 50))
    y = drop.forward(x)
    assert set(np.unique(y)) <= {0.0, 1.0 / (1 - p)}
    assert abs((y == 0).mean() - p) < 0.01
    assert abs(y.mean() - 1.0) < 0.02  # inverted: the expectation is unchanged
    assert drop.forward(x, training=False) is x
    assert drop.backward(x) is x


@pytest.mark.parametrize("make", [lambda: BatchNorm(D, dtype=np.float32), lambda: LayerNorm(D, dtype=np.float32),
                                  lambda: Dropout(0.5, np.random.default_rng(0))])
def test_float32_stays_float32(make, rng):
    layer = make()
    x = _shifted_input(rng).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    if isinstance(layer, BatchNorm):
        assert layer.forward(x, training=False).dtype == np.float32
        assert layer.running_var.dtype == np.float32


@pytest.mark.parametrize("make, training", [(lambda: BatchNorm(D), True), (lambda: BatchNorm(D), False),
                                            (lambda: LayerNorm(D), True)])
def test_forward_writes_into_x_only_when_allowed(make, training, rng):
    """The model lets a norm layer reuse its input's memory (``overwrite_x``); nobody else is surprised."""
    x = _shifted_input(rng)
    layer = make()
    layer.params["gamma"][...] = rng.standard_normal(D) + 1.0
    if isinstance(layer, BatchNorm):
        layer.running_mean[...] = rng.standard_normal(D)
    kept = x.copy()
    y = layer.forward(x, training=training, track=False)
    assert np.array_equal(x, kept)
    dx = layer.backward(np.ones_like(y) + x)
    y_over = layer.forward(x.copy(), training=training, track=False, overwrite_x=True)
    assert np.array_equal(y, y_over)
    assert np.array_equal(dx, layer.backward(np.ones_like(y) + x))
