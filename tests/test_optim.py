"""Optimizers: steps computed here by hand, element by element, from the documented formulas.

Defaults under test (from the docstrings): momentum 0.9; AdaGrad eps 1e-7;
RMSProp rho 0.99, eps 1e-7; Adam beta1 0.9, beta2 0.999, eps 1e-8, bias-corrected,
eps added to sqrt(v_hat) (PyTorch's form).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from lab.engine.optim import OPTIMIZERS, SGD, AdaGrad, Adam, Momentum, RMSProp

LR = 0.1
P0 = [1.0, -2.0, 0.5, 3.0]
G1 = [0.2, -0.5, 0.0, 4.0]
G2 = [-0.1, -0.5, 0.3, 1.0]


def hand_sgd(p, grads):
    for g in grads:
        p = [pi - LR * gi for pi, gi in zip(p, g)]
    return p


def hand_momentum(p, grads, mu=0.9):
    v = [0.0] * len(p)
    for g in grads:
        v = [mu * vi - LR * gi for vi, gi in zip(v, g)]
        p = [pi + vi for pi, vi in zip(p, v)]
    return p


def hand_adagrad(p, grads, eps=1e-7):
    h = [0.0] * len(p)
    for g in grads:
        h = [hi + gi * gi for hi, gi in zip(h, g)]
        p = [pi - LR * gi / (math.sqrt(hi) + eps) for pi, gi, hi in zip(p, g, h)]
    return p


def hand_rmsprop(p, grads, rho=0.99, eps=1e-7):
    h = [0.0] * len(p)
    for g in grads:
        h = [rho * hi + (1 - rho) * gi * gi for hi, gi in zip(h, g)]
        p = [pi - LR * gi / (math.sqrt(hi) + eps) for pi, gi, hi in zip(p, g, h)]
    return p


def hand_adam(p, grads, b1=0.9, b2=0.999, eps=1e-8):
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t, g in enumerate(grads, start=1):
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        p = [pi - LR * (mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps) for pi, mi, vi in zip(p, m, v)]
    return p


HAND = {"sgd": hand_sgd, "momentum": hand_momentum, "adagrad": hand_adagrad, "rmsprop": hand_rmsprop, "adam": hand_adam}


def test_registry():
    expected = {"sgd": SGD, "momentum": Momentum, "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam}
    assert all(OPTIMIZERS[name] is cls for name, cls in expected.items())
    # a new optimizer needs its hand computation here before it is tested
    assert set(HAND) == set(OPTIMIZERS)


def test_first_steps_by_hand():
    # the first steps written out as numbers, for the two optimizers whose state matters most
    p = np.array([1.0]), np.array([1.0])
    mom, adam = Momentum(0.1), Adam(0.1)
    mom.step([p[0]], [np.array([2.0])])  # v = -0.2
    mom.step([p[0]], [np.array([2.0])])  # v = 0.9 * -0.2 - 0.2 = -0.38
    assert p[0][0] == pytest.approx(1.0 - 0.2 - 0.38, rel=1e-14)
    adam.step([p[1]], [np.array([2.0])])  # m_hat = 2, v_hat = 4: a step of -lr
    assert p[1][0] == pytest.approx(1.0 - 0.1 * 2.0 / (2.0 + 1e-8), rel=1e-14)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_two_steps_match_hand_computation(name):
    p = np.array(P0)
    opt = OPTIMIZERS[name](LR)
    opt.step([p], [np.array(G1)])
    np.testing.assert_allclose(p, HAND[name](P0, [G1]), rtol=1e-13, atol=1e-15)
    opt.step([p], [np.array(G2)])
    np.testing.assert_allclose(p, HAND[name](P0, [G1, G2]), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_is_in_place_and_last_update_is_the_change(name):
    buffer = np.array([9.0, *P0, 9.0])
    p = buffer[1:-1]  # a view, as the model's layers hold views of its flat buffer
    g = np.array(G1)
    g0 = g.copy()
    opt = OPTIMIZERS[name](LR)
    for grad in (g, np.array(G2)):
        before = buffer.copy()
        opt.step([p], [grad])
        assert len(opt.last_update) == 1
        np.testing.assert_allclose(opt.last_update[0], buffer[1:-1] - before[1:-1], rtol=1e-12, atol=1e-15)
        assert buffer[0] == 9.0 and buffer[-1] == 9.0
    assert not np.array_equal(buffer[1:-1], P0)
    np.testing.assert_array_equal(g, g0)  # the gradient is not consumed


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_is_kept_per_array(name):
    a, b = np.array(P0[:2]), np.array(P0[2:])
    opt = OPTIMIZERS[name](LR)
    opt.step([a, b], [np.array(G1[:2]), np.array(G1[2:])])
    opt.step([a, b], [np.array(G2[:2]), np.array(G2[2:])])
    np.testing.assert_allclose(np.r_[a, b], HAND[name](P0, [G1, G2]), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_params_stay_float32(name):
    p = np.array(P0, dtype=np.float32)
    opt = OPTIMIZERS[name](LR)
    for g in (G1, G2):
        opt.step([p], [np.array(g, dtype=np.float32)])
        # p += delta would silently cast a float64 delta back; the delta itself must be float32
        assert opt.last_update[0].dtype == np.float32
    assert p.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt.state.values())
    np.testing.assert_allclose(p, HAND[name](P0, [G1, G2]), rtol=1e-5, atol=1e-6)


def test_adagrad_first_step_is_lr_times_sign():
    # h = g^2 after one step, so the update is -lr * g / |g| whatever the gradient's size
    p = np.zeros(3)
    AdaGrad(0.1).step([p], [np.array([1e-3, -50.0, 7.0])])
    np.testing.assert_allclose(p, [-0.1, 0.1, -0.1], rtol=1e-3)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_matrix_steps_as_its_flat_view_and_a_strided_one_is_refused(name):
    W = np.array(P0).reshape(2, 2)
    opt = OPTIMIZERS[name](LR)
    opt.step([W], [np.array(G1).reshape(2, 2)])
    opt.step([W], [np.array(G2).reshape(2, 2)])
    np.testing.assert_allclose(W.ravel(), HAND[name](P0, [G1, G2]), rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="contiguous"):
        opt.step([W.T], [np.array(G1).reshape(2, 2)])  # W.T's flat view would be a copy: the step would be lost
