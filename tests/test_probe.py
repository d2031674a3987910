"""The record pass's histograms and its cheaper ways to the same numbers: against numpy's own
histogram, the bins of NaN and the infinities, dead units whose column sums cancel, the update ratio
of every optimizer against the change of the weights, and work arrays reused between records."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from lab.data.datasets import make_dataset
from lab.engine.config import RunConfig
from lab.engine.model import build_mlp
from lab.engine.probe import DELTA_EDGES, Work, _dead_frac, _index, _layer_hists, act_edges, probe
from lab.engine.training import train

SMALL = RunConfig(dataset="blobs", samples=120, input_dim=4, classes=3, depth=3, width=7, epochs=0,
                  batch_size=32, probe_size=50, seed=3)


def _reference_hist(values, edges):
    """numpy's histogram, values outside the edges counted in the first or last bin."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_histograms_are_numpy_histograms_of_nonzero_activations_and_log_errors(activation, dtype):
    config = SMALL.replace(activation=activation, dtype=dtype, width=16).validate()
    data = make_dataset(config)
    model = build_mlp(config, data.input_dim, data.classes, np.random.default_rng(0))
    X, t = data.X_train.astype(dtype), data.y_train
    keep, deltas = [], []
    model.loss_layer.forward(model.forward(X, keep, mode="probe"), t)
    model.backward(deltas)
    hs, ds = [h.copy() for _, h in keep], [d.copy() for d in reversed(deltas)]
    _, _, act_hist, act_zero, delta_hist = probe(model, X, t, None, True)
    edges, n = act_edges(model), len(X)
    for l, h in enumerate(hs):
        np.testing.assert_array_equal(act_hist[l], _reference_hist(h[h != 0], edges), err_msg=f"layer {l + 1}")
        assert act_zero[l] == pytest.approx(np.mean(h == 0))
    if activation == "relu":
        assert act_zero.max() > 0.2  # zeros were there to be taken out
    for l, d in enumerate(ds):
        with np.errstate(divide="ignore"):
            log_error = np.log10(np.abs(d) * n)  # in d's dtype, as the probe does
        np.testing.assert_array_equal(delta_hist[l], _reference_hist(log_error, DELTA_EDGES), err_msg=f"layer {l + 1}")


def test_nan_and_infinities_fall_into_the_end_bins():
    edges = np.linspace(0.0, 4.0, 41)
    values = np.array([np.nan, -np.inf, np.inf, -1.0, 0.0, 0.05, 0.1, 3.95, 4.0, 1e300])
    index = _index(values - edges[0], edges, np.empty(values.shape, np.intp))
    np.testing.assert_array_equal(index, [0, 0, 39, 0, 0, 0, 1, 39, 39, 39])


def test_a_layer_whose_activations_hold_nan_still_gets_a_histogram():
    h = np.array([[np.nan, 0.5], [0.0, 2.0]])
    d = np.array([[np.nan, 1e-3], [0.0, 1.0]])
    act, zero_frac, delta = _layer_hists(h, d, 2, np.linspace(0.0, 4.0, 41), 0, Work(), False, False)
    assert act.sum() == 3 and act[0] == 1  # NaN counted in the first bin, the zero taken out
    assert zero_frac == 0.25
    assert delta.sum() == 4 and delta[0] == 2  # NaN and log10(0) in the first bin


def test_dead_units_are_all_zero_columns_not_columns_that_sum_to_zero():
    h = np.array([[1.0, 0.0, 0.0, 2.0], [-1.0, 0.0, 0.0, 3.0]])  # column 0 sums to 0 but lives
    assert _dead_frac(h, h.sum(axis=0)) == 0.5


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_update_ratio_is_the_norm_of_the_change_of_w_over_the_norm_of_w(optimizer):
    config = SMALL.replace(optimizer=optimizer, lr=0.01, batch_size=1000, probe_size=1000, activation="tanh")
    before = train(config.replace(epochs=0))
    after = train(config.replace(epochs=2))
    first = train(config.replace(epochs=1))
    layers = after.layers.set_index(["step", "layer"])
    for l, ((W1, _), (W2, _)) in enumerate(zip(first.weights, after.weights), start=1):
        expected = np.linalg.norm(W2 - W1) / np.linalg.norm(W2)
        assert layers.loc[(2, l), "update_ratio"] == pytest.approx(expected, rel=1e-6), l
    assert before.layers["update_ratio"].isna().all()  # no step before the first record


def test_a_record_reuses_its_work_arrays():
    config = SMALL.replace(activation="relu", width=64, probe_size=100).validate()
    data = make_dataset(config)
    model = build_mlp(config, data.input_dim, data.classes, np.random.default_rng(0))
    X, t = data.X_train[:100], data.y_train[:100]
    keep, deltas = [], []
    model.loss_layer.forward(model.forward(X, keep, mode="probe"), t)
    model.backward(deltas)
    h, d, edges, work = keep[0][1], deltas[-1], act_edges(model), Work()
    _layer_hists(h, d, len(X), edges, 0, work, True, True)  # the first call makes the work arrays
    tracemalloc.start()
    _layer_hists(h, d, len(X), edges, 0, work, True, True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < h.nbytes / 2, peak  # the joint counts (40 x 48 int64, 15 kB), not h-sized arrays (51 kB)
