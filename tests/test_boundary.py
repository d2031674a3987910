"""The decision boundary: its cost is bounded for any network, and CSV labels stay text."""
import dataclasses

import numpy as np
import pytest

from lab import RunConfig, make_dataset, train
from lab.engine.model import BOUNDARY_FLOPS, boundary_resolution
from lab.report.charts import boundary_figure


def _weights(depth, width):
    return [(np.zeros((2 if l == 0 else width, width)), np.zeros(width)) for l in range(depth)]


def test_grid_shrinks_with_the_network_so_its_cost_is_bounded():
    assert boundary_resolution(_weights(2, 16)) == 120
    for depth, width in [(10, 256), (100, 128), (100, 512)]:
        side = boundary_resolution(_weights(depth, width))
        flops = side**2 * 2 * (2 * width + (depth - 1) * width * width)
        assert side == 24 or flops <= BOUNDARY_FLOPS * 1.01, (depth, width, side)
    assert boundary_resolution(_weights(100, 512)) == 24


def test_csv_labels_are_escaped_in_the_legend(tmp_path):
    path = tmp_path / "d.csv"
    link, bold = '<a href=""http://x"">click</a>', "**b**"  # CSV-quoted below
    rows = [f'{x},{y},"{link if x * y > 0 else bold}"' for x, y in np.random.default_rng(0).uniform(-1, 1, (60, 2))]
    path.write_text("x1,x2,label\n" + "\n".join(rows) + "\n")
    config = RunConfig(dataset="csv", data_path=str(path), label="label", epochs=1, depth=2, width=4)
    result = train(config, data=make_dataset(config))
    names = [t.name for t in boundary_figure(result).data if t.name]
    assert any("&lt;a href=" in n for n in names)
    assert not any("<a" in n for n in names)


def test_run_names_are_escaped_in_comparison_charts():
    from lab.report.charts import compare_loss_figure, profiles_grid

    result = train(RunConfig(samples=64, epochs=2, depth=2, width=4))
    name = '<a href="http://x">run</a> <img src=x>'
    loss = compare_loss_figure({name: result.history}, {name: name})
    grid = profiles_grid({name: result.layers}, {name: name})
    texts = [t.name or "" for t in loss.data + grid.data] + [a.text or "" for a in grid.layout.annotations]
    assert any("&lt;a href=" in t for t in texts)
    assert not any("<a " in t or "<img" in t for t in texts)


def test_decision_grid_is_the_models_prediction_over_the_plane():
    from lab.engine.activations import get_activation
    from lab.engine.model import decision_grid, mlp_from_weights

    result = train(RunConfig(samples=200, epochs=2, depth=2, width=8))
    X = result.data.X_train
    xs, ys, pred = decision_grid(result.eval_model(), X, resolution=30)
    assert xs.shape == ys.shape == (30,) and pred.shape == (30, 30)
    assert xs[0] == X[:, 0].min() - 0.3 and ys[-1] == X[:, 1].max() + 0.3
    model = mlp_from_weights(result.weights, get_activation("relu"), "cross_entropy")
    for i, j in [(0, 0), (3, 17), (29, 29)]:
        assert pred[i, j] == model.predict(np.array([[xs[j], ys[i]]]))[0]


# --- networks with the cures: rebuilt from a run's saved state, evaluated as trained ---------------

CURES = [("none", False, 0.0), ("none", True, 0.2), ("batch", False, 0.2), ("batch", True, 0.0),
         ("layer", False, 0.0), ("layer", True, 0.2)]
CURED = RunConfig(samples=200, epochs=2, depth=3, width=8, batch_size=32, optimizer="adam", lr=0.02, dtype="float32")


def _trained_model(norm, residual, dropout, steps=12):
    """A network of CURED with these cures after a few training steps (running stats, gamma, beta moved)."""
    from lab import seeds
    from lab.engine.model import build_mlp
    from lab.engine.optim import OPTIMIZERS

    config = CURED.replace(norm=norm, residual=residual, residual_scale=0.7, dropout=dropout).validate()
    data = make_dataset(config)
    model = build_mlp(config, 2, data.classes, seeds.stream(config.seed, "init"))
    opt = OPTIMIZERS[config.optimizer](config.lr)
    rng = np.random.default_rng(1)
    for _ in range(steps):
        idx = rng.choice(len(data.X_train), config.batch_size, replace=False)
        model.loss_and_grads(data.X_train[idx].astype(np.float32), data.y_train[idx])
        opt.step([model.flat_params], [model.flat_grads])
    return config, data, model


@pytest.mark.parametrize("norm,residual,dropout", CURES)
def test_rebuilt_network_predicts_exactly_as_the_trained_one(norm, residual, dropout):
    from lab.engine.model import mlp_from_config

    config, data, model = _trained_model(norm, residual, dropout)
    state = model.norm_state()
    rebuilt = mlp_from_config(config, model.weights(), state)
    X = data.X_val.astype(np.float32)
    expected = model.forward(X, mode="eval")
    got = rebuilt.forward(X, mode="eval")
    assert got.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    if norm == "none":
        assert state == [{}, {}, {}]
        return
    keys = {"gamma", "beta"} | ({"running_mean", "running_var"} if norm == "batch" else set())
    assert all(set(s) == keys and all(a.dtype == np.float32 for a in s.values()) for s in state)
    # the saved state has moved from its start, and the rebuilt network depends on it: reset any part
    # to its start and the outputs change
    start = {"gamma": 1.0, "beta": 0.0, "running_mean": 0.0, "running_var": 1.0}
    for key in keys:
        assert all(not np.all(s[key] == start[key]) for s in state), key
        reset = [{**s, key: np.full_like(s[key], start[key])} for s in state]
        assert not np.array_equal(mlp_from_config(config, model.weights(), reset).forward(X, mode="eval"), expected), key


def test_batch_norm_rebuilt_uses_running_statistics_not_the_batch():
    from lab.engine.model import mlp_from_config

    config, data, model = _trained_model("batch", False, 0.0)
    rebuilt = mlp_from_config(config, model.weights(), model.norm_state())
    X = data.X_val[:40].astype(np.float32)
    # each example alone gives the same answer as in the batch: no batch statistics in evaluation
    one_by_one = np.concatenate([rebuilt.forward(X[i : i + 1], mode="eval") for i in range(len(X))])
    np.testing.assert_allclose(one_by_one, rebuilt.forward(X, mode="eval"), rtol=1e-5, atol=1e-6)
    assert not np.allclose(rebuilt.forward(X, mode="probe"), rebuilt.forward(X, mode="eval"), atol=1e-3)


def test_a_normalized_network_cannot_be_rebuilt_without_its_state():
    from lab.engine.model import mlp_from_config

    config, _, model = _trained_model("layer", False, 0.0, steps=1)
    with pytest.raises(ValueError, match="norm layers"):
        mlp_from_config(config, model.weights())


@pytest.fixture(scope="module")
def cured_runs():
    return {cure: train(CURED.replace(norm=cure[0], residual=cure[1], dropout=cure[2])) for cure in CURES}


def test_a_runs_saved_state_reproduces_its_last_validation_record(cured_runs):
    """train() keeps the final weights and norm state: the rebuilt network's validation loss is the
    one the run recorded at its last step, to the bit (same function, same chunks)."""
    from lab.engine.training import evaluate

    for cure, result in cured_runs.items():
        last = result.history.iloc[-1]
        loss, acc = evaluate(result.eval_model(), result.data.X_val.astype(np.float32), result.data.y_val)
        assert (loss, acc) == (last["val_loss"], last["val_accuracy"]), cure


def test_boundary_draws_for_every_cure_and_is_the_eval_prediction(cured_runs):
    from lab.engine.model import decision_grid

    for cure, result in cured_runs.items():
        fig = boundary_figure(result, resolution=20)
        assert fig is not None, cure
        _, _, pred = decision_grid(result.eval_model(), result.data.X_train, resolution=20)
        np.testing.assert_array_equal(np.asarray(fig.data[0].z), pred)


def test_norm_state_is_counted_and_slimmed_away(cured_runs):
    result = cured_runs[("batch", False, 0.2)]
    state_bytes = sum(a.nbytes for s in result.norm_state for a in s.values())
    assert state_bytes == 3 * 4 * 8 * 4  # 3 hidden layers x 4 arrays x width 8 x float32
    assert result.nbytes() - state_bytes == dataclasses.replace(result, norm_state=[]).nbytes()
    slim = result.slim()
    assert slim.norm_state == [] and slim.eval_model() is None and boundary_figure(slim) is None


def test_batch_norm_before_any_step_draws_no_boundary():
    """Its running averages are still 0 and 1: the evaluation network is no network the run trained."""
    untrained = train(CURED.replace(norm="batch", epochs=0))
    assert untrained.eval_model() is not None and boundary_figure(untrained) is None
    assert boundary_figure(train(CURED.replace(norm="layer", epochs=0))) is not None


# ---------------------------------------------------------------- why a run draws no boundary

SMALL_2D = RunConfig(samples=120, epochs=2, depth=2, width=4)


def test_a_run_with_its_weights_has_no_gap_and_one_without_says_why(tmp_path, monkeypatch):
    from lab.engine.results import BoundaryGap
    from lab.report import summaries
    from lab.serving.limits import SESSION_FULL_RUNS
    from lab.store import runstore as store_module

    def boundary_note(gap):
        return summaries.boundary_note(gap, SESSION_FULL_RUNS, store_module.WEIGHTS_CAP_BYTES)

    full = train(SMALL_2D)
    assert boundary_figure(full) is not None and full.boundary_gap() is None
    slim = full.slim()
    assert boundary_figure(slim) is None and slim.boundary_gap() is BoundaryGap.SESSION
    note = boundary_note(slim.boundary_gap())
    assert "newest 3 runs" in note and "weights" in note

    assert "less than 2 MB" in boundary_note(BoundaryGap.STORE)
    monkeypatch.setattr(store_module, "WEIGHTS_CAP_BYTES", 0)  # a network too large to keep
    with store_module.open_store(tmp_path / "runs.sqlite") as store:
        loaded = store.load(store.save(full, "big", "cli"))
    assert loaded.boundary_gap() is BoundaryGap.STORE

    tables = type(full).from_tables(full.config, full.history, full.layers, {})
    assert tables.boundary_gap() is BoundaryGap.TABLES
    assert len({boundary_note(kind) for kind in BoundaryGap}) == len(BoundaryGap)


def test_a_run_whose_data_is_not_two_dimensional_has_no_gap_to_explain():
    digits = train(RunConfig(dataset="iris", epochs=1, depth=2, width=4))
    assert boundary_figure(digits) is None and digits.slim().boundary_gap() is None
