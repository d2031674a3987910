"""Comparisons, the export format read back with pandas, shareable links and import validation."""
import io
import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest

from lab import RunConfig, train
from lab.experiments.compare import CompareSpec, epochs_to_threshold, mean_band, parse_values, summary_table, unique_name
from lab.serving.export import ImportFormatError, history_table, layers_table, load_runs, runs_json, runs_zip, write_run_dir
from lab.serving.share import config_to_params, params_to_config, params_to_spec, spec_to_params

BASE = RunConfig(samples=200, epochs=4, depth=4, width=8)


@pytest.fixture(scope="module")
def runs():
    spec = CompareSpec(BASE, "init", ("he_normal", "xavier_normal"), seeds=2)
    return spec, {name: train(config) for name, (_, config) in spec.configs().items()}


def test_spec_varies_one_setting_and_the_seed_only(runs):
    spec, results = runs
    configs = {name: c for name, (_, c) in spec.configs().items()}
    assert list(configs) == ["init=he_normal · seed 0", "init=he_normal · seed 1",
                             "init=xavier_normal · seed 0", "init=xavier_normal · seed 1"]
    for c in configs.values():
        assert c.replace(init="he_normal", seed=0) == BASE.replace(init="he_normal").validate()


def test_summary_columns_follow_their_definitions(runs):
    _, results = runs
    table = summary_table(results, threshold=0.69).set_index("run")
    for name, r in results.items():
        row = table.loc[name]
        assert row["final_loss"] == r.history["loss"].iloc[-1]
        at0 = r.layers[r.layers["epoch"] == 0].set_index("layer")["delta_rms"]
        assert row["delta_ratio_init"] == pytest.approx(at0.loc[1] / at0.loc[4])  # 4 hidden layers
        below = r.history[r.history["loss"] < 0.69]["epoch"]
        assert (math.isnan(row["epochs_to_loss_0.69"]) and below.empty) or row["epochs_to_loss_0.69"] == below.iloc[0]


def test_mean_band_is_mean_min_max_over_seeds(runs):
    spec, results = runs
    settings = {name: s for name, (s, _) in spec.configs().items()}
    band = mean_band(results, settings).set_index(["setting", "epoch"])
    a = results["init=he_normal · seed 0"].history.set_index("epoch")["loss"]
    b = results["init=he_normal · seed 1"].history.set_index("epoch")["loss"]
    for epoch in a.index:
        row = band.loc[("init=he_normal", epoch)]
        assert row["mean"] == pytest.approx((a[epoch] + b[epoch]) / 2)
        assert row["low"] == min(a[epoch], b[epoch]) and row["high"] == max(a[epoch], b[epoch])


def test_epochs_to_threshold_ignores_the_diverged_row():
    h = pd.DataFrame({"epoch": [0, 1, 2], "loss": [1.0, 0.5, np.nan], "diverged": [False, False, True]})
    assert epochs_to_threshold(h, 0.6) == 1
    assert math.isnan(epochs_to_threshold(h, 0.1))


def test_exported_csv_reads_back_equal_to_the_history(runs, tmp_path):
    _, results = runs
    csv = history_table(results, with_run=True, with_config=True).to_csv(index=False)
    back = pd.read_csv(io.StringIO(csv))
    assert list(back.columns[:3]) == ["run", "dataset", "samples"]
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "loss_function", "init"} <= set(back.columns)
    for name, r in results.items():
        mine = back[back["run"] == name].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine[list(r.history.columns)], r.history, check_dtype=False)
        assert (mine["init"] == r.config.init).all() and (mine["depth"] == 4).all()
    layers = pd.read_csv(io.StringIO(layers_table(results, with_run=True).to_csv(index=False)))
    for name, r in results.items():
        pd.testing.assert_frame_equal(layers[layers["run"] == name].drop(columns="run").reset_index(drop=True),
                                      r.layers, check_dtype=False)


def test_browser_and_cli_files_share_columns(runs, tmp_path):
    _, results = runs
    write_run_dir(tmp_path, results, with_run=True)
    cli = pd.read_csv(tmp_path / "history.csv")
    browser = history_table(results, with_run=True, with_config=True)
    assert [c for c in browser.columns if c in cli.columns] == list(cli.columns)
    assert list(pd.read_csv(tmp_path / "layers.csv").columns) == list(layers_table(results, True).columns)


def test_json_and_zip_round_trip(runs):
    _, results = runs
    for raw in (runs_json(results).encode(), runs_zip(results, {"loss": "<html></html>"})):
        back = load_runs(raw)
        assert list(back) == list(results)
        for name, r in results.items():
            pd.testing.assert_frame_equal(back[name].history, r.history, check_dtype=False)
            pd.testing.assert_frame_equal(back[name].layers, r.layers, check_dtype=False)
            assert back[name].config == r.config
    with zipfile.ZipFile(io.BytesIO(runs_zip(results, {"loss": "<html></html>"}))) as z:
        assert {"runs.json", "config.json", "history.csv", "layers.csv", "figures/loss.html"} <= set(z.namelist())


def test_json_export_is_strict_json_even_with_nan(runs):
    _, results = runs
    text = runs_json(results)
    assert "NaN" not in text
    doc = json.loads(text)
    assert doc["runs"][0]["layers"]["update_ratio"][0] is None  # no update before the first step


def _doc(**changes):
    doc = json.loads(runs_json({"a": train(BASE.replace(epochs=1))}))
    doc.update(changes)
    return doc


@pytest.mark.parametrize("raw, message", [
    (b"", "neither JSON nor a ZIP"),
    (b"\x00\x01\x02", "neither JSON nor a ZIP"),
    (b'{"hello": 1}', "not a Backprop Lab export"),
    (b"PK\x03\x04broken", "damaged"),
])
def test_foreign_files_are_rejected_with_a_reason(raw, message):
    with pytest.raises(ImportFormatError, match=message):
        load_runs(raw)


def test_damaged_exports_are_rejected_with_a_reason():
    doc = _doc()
    doc["runs"][0]["config"]["depth"] = -3
    with pytest.raises(ImportFormatError, match="invalid config"):
        load_runs(json.dumps(doc).encode())
    doc = _doc()
    del doc["runs"][0]["layers"]["delta_rms"]
    with pytest.raises(ImportFormatError, match="lacks delta_rms"):
        load_runs(json.dumps(doc).encode())
    doc = _doc()
    doc["runs"][0]["history"]["loss"][0] = "lots"
    with pytest.raises(ImportFormatError, match="not numeric"):
        load_runs(json.dumps(doc).encode())
    with pytest.raises(ImportFormatError, match="format"):
        load_runs(json.dumps(_doc(format=99)).encode())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("other.txt", "x")
    with pytest.raises(ImportFormatError, match="no runs.json"):
        load_runs(buf.getvalue())


def test_query_parameters_round_trip_a_config():
    defaults = RunConfig(samples=600)
    config = defaults.replace(activation="tanh", init="xavier_uniform", depth=17, lr=0.03, gain="auto",
                              standardize=False, dtype="float32").validate()
    params = config_to_params(config, defaults)
    assert params == {"activation": "tanh", "init": "xavier_uniform", "depth": "17", "lr": "0.03",
                      "gain": "auto", "standardize": "false", "dtype": "float32"}
    back, notices = params_to_config(params, defaults)
    assert back == config and notices == []


def test_bad_link_parameters_are_ignored_or_clamped_with_a_notice():
    defaults = RunConfig()
    config, notices = params_to_config({"depth": "7", "colour": "red", "lr": "fast", "activation": "swish",
                                        "width": "-4"}, defaults)
    assert config == defaults.replace(depth=7, width=2).validate()  # -4 clamped to the narrowest width offered
    assert len(notices) == 4
    assert any("colour" in n for n in notices) and any("lr" in n for n in notices)


def test_comparison_round_trips_through_a_link():
    spec = CompareSpec(BASE.validate(), "depth", (2, 5, 9), seeds=2)
    default = CompareSpec(RunConfig(), "init", ("he_normal",))
    back, notices = params_to_spec(spec_to_params(spec, RunConfig()), default)
    assert back == spec and notices == []
    broken, notices = params_to_spec({"vary": "colour", "values": "1,2"}, default)
    assert broken.axis == "init" and "vary: 'colour' is not one of" in notices[0]


def test_parse_values_types_and_dedups():
    assert parse_values("depth", ["3", " 5", "3", ""]) == (3, 5)
    assert parse_values("gain", ["auto", "1.5"]) == ("auto", 1.5)
    with pytest.raises(ValueError):
        parse_values("depth", ["three"])


def test_unique_name():
    assert unique_name("a", {"b"}) == "a"
    assert unique_name("a", {"a", "a (2)"}) == "a (3)"


def test_summary_of_a_run_that_overflowed_at_initialization():
    r = train(RunConfig(samples=200, epochs=3, depth=30, width=64, init="normal", init_scale=100.0, dtype="float32"))
    assert r.diverged_at == 0 and r.layers.empty
    row = summary_table({"boom": r}).iloc[0]
    assert math.isnan(row["final_loss"]) and row["diverged_at"] == 0


# ---------------------------------------------------------------- finite explosions (issue 9)

# as in test_train: issue 9's linear network at lr 3 (diverges at epoch 2), and normal(std 1)
# weights in 20 ReLU layers of 16 (loss 4.0e7 at initialization: diverged at epoch 0)
IDENTITY_LR3 = RunConfig(dataset="spirals", samples=600, val_fraction=0.0, depth=10, width=32, epochs=40, seed=5,
                         batch_size=600, activation="identity", init="xavier_normal", lr=3.0)
EXPLODED_AT_INIT = RunConfig(samples=200, depth=20, width=16, init="normal", init_scale=1.0, epochs=3)


@pytest.fixture(scope="module")
def exploded():
    return {"identity lr 3": train(IDENTITY_LR3), "normal std 1": train(EXPLODED_AT_INIT), "healthy": train(BASE)}


def test_summary_table_marks_finite_explosions_as_diverged(exploded):
    table = summary_table(exploded).set_index("run")
    assert table.loc["identity lr 3", "diverged_at"] == 2 and table.loc["normal std 1", "diverged_at"] == 0
    assert math.isnan(table.loc["healthy", "diverged_at"])
    # the final columns are the last record kept: epoch 1 for the linear run, initialization for the other
    assert table.loc["identity lr 3", "final_loss"] == exploded["identity lr 3"].history["loss"].iloc[1]
    normal = exploded["normal std 1"]
    assert table.loc["normal std 1", "final_loss"] == normal.history["loss"].iloc[0] > 1e4 * math.log(2)
    at0 = normal.layers.set_index("layer")["delta_rms"]
    assert table.loc["normal std 1", "delta_ratio_init"] == pytest.approx(at0.loc[1] / at0.loc[20])


def test_exports_keep_everything_before_a_finite_explosion(exploded, tmp_path):
    write_run_dir(tmp_path, exploded, with_run=True)
    results = {r["run"]: r["result"] for r in json.loads((tmp_path / "config.json").read_text())["runs"]}
    assert results["identity lr 3"]["diverged_at"] == 2
    assert "more than 10,000 times the chance-level loss (0.69)" in results["identity lr 3"]["diverge_reason"]
    assert results["normal std 1"]["diverged_at"] == 0
    assert results["normal std 1"]["diverge_reason"].startswith("the network exploded at initialization")
    assert results["healthy"]["diverged_at"] is None and results["healthy"]["diverge_reason"] == ""
    history, layers = pd.read_csv(tmp_path / "history.csv"), pd.read_csv(tmp_path / "layers.csv")
    linear, normal = history[history["run"] == "identity lr 3"], history[history["run"] == "normal std 1"]
    assert list(linear["epoch"]) == [0, 1, 2] and list(linear["diverged"]) == [False, False, True]
    assert list(normal["epoch"]) == [0, 0] and list(normal["diverged"]) == [False, True]
    assert normal["loss"].iloc[0] > 1e4 * math.log(2) and math.isnan(normal["loss"].iloc[1])
    assert set(layers[layers["run"] == "identity lr 3"]["epoch"]) == {0, 1}
    assert list(layers[layers["run"] == "normal std 1"]["layer"]) == list(range(1, 22))
    for raw in (runs_json(exploded).encode(), runs_zip(exploded)):
        back = load_runs(raw)
        for name, r in exploded.items():
            assert (back[name].diverged_at, back[name].diverge_reason) == (r.diverged_at, r.diverge_reason)
            pd.testing.assert_frame_equal(back[name].history, r.history, check_dtype=False)
            pd.testing.assert_frame_equal(back[name].layers, r.layers, check_dtype=False)
        pd.testing.assert_series_equal(summary_table(back)["diverged_at"], summary_table(exploded)["diverged_at"])
