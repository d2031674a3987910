"""The phase diagram's sweep: its batched backward pass against the lab's own probe, and the
cells at the extremes that used to come out blank (0/0 after a float32 underflow)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lab.engine.activations import get_activation
from lab.engine.model import mlp_from_weights
from lab.engine.probe import STAT_COLUMNS, probe
from lab.theory.phase import CLASSES, draw_networks, log10_delta_ratios, sweep, sweep_row

DELTA = STAT_COLUMNS.index("delta_rms")


@pytest.mark.parametrize("activation, sigma_w, sigma_b", [
    ("tanh", 0.9, 0.0), ("relu", 2.5, 0.3), ("sigmoid", 4.0, 0.5), ("selu", 1.0, 0.0), ("gelu", 1.7, 0.1), ("silu", 2.0, 0.0),
])
def test_nested_networks_match_one_probe_per_depth(activation, sigma_w, sigma_b):
    """Each depth's ratio equals what lab.engine.probe (float64, checked against central differences
    elsewhere) measures on that depth's network built on its own."""
    rng = np.random.default_rng(3)
    depths = [1, 2, 5, 12]
    hidden, outputs = draw_networks(sigma_w, sigma_b, depths, 16, rng)
    X, y = rng.standard_normal((24, 16)), rng.integers(0, CLASSES, 24)
    act = get_activation(activation)
    got = log10_delta_ratios(act, hidden, outputs, X, y)
    for d in depths:
        _, stats, *_ = probe(mlp_from_weights(hidden[:d] + [outputs[d]], act, "cross_entropy"), X, y, None,
                             with_hist=False)
        assert got[d] == pytest.approx(math.log10(stats[0, DELTA] / stats[d - 1, DELTA]), abs=1e-5), d


@pytest.mark.parametrize("activation, sigma_w, per_layer", [
    # relu: the squared signal shrinks by chi = sigma_w^2 / 2 per layer at any scale of the activations
    ("relu", 0.5, 0.5 * math.log10(0.5**2 / 2)),
    # tanh near 0 is the identity: chi = sigma_w^2, a ratio near 1e-99 over 100 layers
    ("tanh", 0.1, math.log10(0.1)),
    # exploding: 1e54 over 100 layers, beyond float32
    ("relu", 5.0, 0.5 * math.log10(5.0**2 / 2)),
])
def test_extreme_cells_are_measured_not_blank(activation, sigma_w, per_layer):
    """relu at sigma_w 0.5 and depth 100 has activations near 1e-45: in float32 they became
    exact zeros and the ratio 0/0 (a blank cell).  Now every such cell has its value."""
    (value,) = sweep_row(activation, sigma_w, 0.0, [100], width=64, n_probe=64, seed=0)
    assert math.isfinite(value)
    assert value == pytest.approx(99 * per_layer, abs=0.05 * abs(99 * per_layer) + 1)


def test_a_forward_pass_that_overflows_is_nan_without_warnings():
    with np.errstate(all="raise"):
        table = sweep("identity", [1e30], [12, 40], width=8, n_probe=8, n_jobs=1)
    assert table["log10_ratio"].isna().all()


def test_sweep_is_tidy_and_repeatable():
    args = ("tanh", [0.5, 1.0, 2.5], [2, 7, 12])
    a = sweep(*args, width=32, n_probe=32, n_jobs=2)
    b = sweep(*args, width=32, n_probe=32, n_jobs=1)
    assert list(a.columns) == ["sigma_w", "depth", "log10_ratio"] and len(a) == 9
    assert a.equals(b)  # the same cells whichever worker ran them
    cell = a.set_index(["sigma_w", "depth"])["log10_ratio"]
    assert cell[(0.5, 12)] < cell[(0.5, 7)] < 0 < cell[(2.5, 7)] < cell[(2.5, 12)]


def test_a_depth_whose_error_dies_does_not_disturb_the_depths_beside_it():
    """relu with every unit of layer 3 switched off: depth 3 has no error at its own last layer (NaN), the
    error of depths 4 and 6 becomes exactly 0 there (-inf), and depth 2, rescaled in the same stacked
    arrays as they are, keeps the value it has alone."""
    rng = np.random.default_rng(5)
    depths = [2, 3, 4, 6]
    hidden, outputs = draw_networks(1.5, 0.5, depths, 16, rng)  # biases: the layers above 3 still carry a signal
    hidden[2] = (hidden[2][0], np.full(16, -1e3))  # z_3 < 0 everywhere: relu' = 0
    X, y = rng.standard_normal((24, 16)), rng.integers(0, CLASSES, 24)
    act = get_activation("relu")
    with np.errstate(all="ignore"):
        together = log10_delta_ratios(act, hidden, outputs, X, y)
        alone = log10_delta_ratios(act, hidden[:2], {2: outputs[2]}, X, y)[2]
    assert math.isfinite(alone) and together[2] == pytest.approx(alone, rel=1e-6, abs=1e-9)
    assert math.isnan(together[3])
    assert together[4] == together[6] == -math.inf
