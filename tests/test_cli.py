"""python -m lab: files, columns, exit statuses and one-line errors."""
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab.engine.probe import STAT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent


def lab(*args):
    """``python -m lab ARGS`` in this process (the same ``main``, without a new interpreter's
    second of imports): returncode, stdout and stderr as subprocess.run gives them."""
    from lab.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's --help
            code = exc.code or 0
    return subprocess.CompletedProcess(["python", "-m", "lab", *args], code, out.getvalue(), err.getvalue())


def test_help_shows_examples():
    # the real entry point once, as a user types it
    proc = subprocess.run([sys.executable, "-m", "lab", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "examples:" in proc.stdout and "python -m lab compare --init" in proc.stdout
    assert "--record-every" in lab("train", "--help").stdout


@pytest.mark.parametrize("args", [
    ["train", "--depth", "abc", "--out", "x"],
    ["train", "--lr", "-1", "--out", "x"],
    ["train", "--activation", "swish", "--out", "x"],
    ["train", "--data", "/no/such.csv", "--label", "y", "--out", "x"],
    ["compare", "--init", "he_normal", "--out", "x"],
    ["compare", "--init", "he_normal", "xavier_normal", "--depth", "2", "3", "--out", "x"],
    ["bogus"],
])
def test_bad_arguments_get_one_line_and_status_2(args, capsys):
    from lab.cli.main import main  # in process: the same code as `python -m lab`, without a new interpreter

    code = main(args)
    out = capsys.readouterr()
    assert code == 2
    assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err
    assert out.out == ""


def test_train_writes_config_history_and_layers(tmp_path):
    proc = lab("train", "--depth", "3", "--width", "8", "--epochs", "4", "--samples", "200", "--activation", "tanh",
               "--init", "glorot_uniform", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns[:6]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "elapsed_s"]
    assert list(history["epoch"]) == [0, 1, 2, 3, 4] and not history["diverged"].any()
    layers = pd.read_csv(tmp_path / "layers.csv")
    assert list(layers.columns[:2]) == ["epoch", "layer"] and set(STAT_COLUMNS) <= set(layers.columns)
    assert len(layers) == 5 * 4
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["config"]["init"] == "xavier_uniform" and doc["config"]["activation"] == "tanh"
    # config.json is enough to rerun: the same numbers come back
    again = tmp_path / "again"
    assert lab("train", "--config", str(tmp_path / "config.json"), "--out", str(again)).returncode == 0
    pd.testing.assert_frame_equal(pd.read_csv(again / "history.csv").drop(columns="elapsed_s"),
                                  history.drop(columns="elapsed_s"))


def test_epochs_zero_records_only_the_initialization(tmp_path):
    assert lab("train", "--epochs", "0", "--depth", "2", "--width", "4", "--out", str(tmp_path)).returncode == 0
    assert list(pd.read_csv(tmp_path / "history.csv")["epoch"]) == [0]


def test_compare_adds_a_run_column(tmp_path):
    # normal(std 1) in 20 ReLU layers of 16 starts at a loss of 4.0e7: exploded at initialization
    proc = lab("compare", "--init", "xavier_normal", "he_normal", "normal", "--depth", "20", "--width", "16",
               "--epochs", "2", "--samples", "200", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    history = pd.read_csv(tmp_path / "history.csv")
    assert history.columns[0] == "run"
    assert list(dict.fromkeys(history["run"])) == ["init=xavier_normal", "init=he_normal", "init=normal"]
    layers = pd.read_csv(tmp_path / "layers.csv")
    assert layers.columns[0] == "run"
    runs = json.loads((tmp_path / "config.json").read_text())["runs"]
    assert [r["config"]["init"] for r in runs] == ["xavier_normal", "he_normal", "normal"]
    assert [r["result"]["diverged_at"] for r in runs] == [None, None, 0]
    assert "init=normal: 1 record in" in proc.stdout and "diverged at epoch 0: the network exploded" in proc.stdout
    # its record at initialization is kept, with every layer's statistics
    normal = history[history["run"] == "init=normal"]
    assert list(normal["epoch"]) == [0, 0] and list(normal["diverged"]) == [False, True]
    assert normal["loss"].iloc[0] > 1e4 * np.log(2)
    assert list(layers[layers["run"] == "init=normal"]["layer"]) == list(range(1, 22))


def test_diverging_run_is_reported_not_raised(tmp_path):
    # issue 9's command: the loss climbs from 0.66 to 1.5e12 at step 2 and 1e19-1e21 later, all finite.
    # (A loss that becomes inf or NaN takes the same path from train() on; tests/test_train.py has those.)
    proc = lab("train", "--dataset", "spirals", "--samples", "600", "--val-fraction", "0", "--depth", "10",
               "--width", "32", "--epochs", "40", "--seed", "5", "--batch-size", "600", "--activation", "identity",
               "--init", "xavier_normal", "--lr", "3", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr
    assert "run: 2 records in" in proc.stdout
    assert "diverged at epoch 2: the training loss reached 1.5e12 at step 2, more than 10,000 times " \
           "the chance-level loss (0.69)" in proc.stdout
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2] and list(history["diverged"]) == [False, False, True]
    assert np.isfinite(history["loss"].iloc[:2]).all()
    assert set(pd.read_csv(tmp_path / "layers.csv")["epoch"]) == {0, 1}
    result = json.loads((tmp_path / "config.json").read_text())["result"]
    assert result["diverged_at"] == 2 and result["diverge_reason"] in proc.stdout


def test_gradcheck_passes_and_reports_per_layer():
    proc = lab("gradcheck", "--activation", "gelu", "--loss", "mse")
    assert proc.returncode == 0 and "PASS" in proc.stdout
    assert sum(line.strip().startswith(tuple("1234")) for line in proc.stdout.splitlines()) == 4


def test_gradients_npz_matches_an_independent_numpy_computation(tmp_path):
    out = tmp_path / "g.npz"
    assert lab("gradients", "--depth", "2", "--width", "6", "--activation", "tanh", "--samples", "100",
               "--out", str(out)).returncode == 0
    d = np.load(out, allow_pickle=False)
    X, y = d["X"], d["y"]
    assert y.dtype.kind == "i" and {f"W{l}" for l in (1, 2, 3)} <= set(d.files)

    def loss(Ws, bs):
        h = X
        for W, b in zip(Ws[:-1], bs[:-1]):
            h = np.tanh(h @ W + b)
        z = h @ Ws[-1] + bs[-1]
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y].mean()

    Ws = [d[f"W{l}"].copy() for l in (1, 2, 3)]
    bs = [d[f"b{l}"].copy() for l in (1, 2, 3)]
    assert loss(Ws, bs) == pytest.approx(float(d["loss"]), rel=1e-12)
    eps = 1e-6
    for l in range(3):
        for idx in [(0, 0), (1, 1), (Ws[l].shape[0] - 1, Ws[l].shape[1] - 1)]:
            Ws[l][idx] += eps
            up = loss(Ws, bs)
            Ws[l][idx] -= 2 * eps
            down = loss(Ws, bs)
            Ws[l][idx] += eps
            assert (up - down) / (2 * eps) == pytest.approx(d[f"dW{l + 1}"][idx], rel=1e-5, abs=1e-10)


# the run store: train and compare write to it, `runs` reads it

STORE_FAST = ["--depth", "2", "--width", "4", "--epochs", "2", "--samples", "60", "--quiet"]


def test_train_and_compare_write_to_the_store_and_runs_reads_it(tmp_path):
    db = tmp_path / "store" / "runs.sqlite"
    assert lab("train", *STORE_FAST, "--out", str(tmp_path / "one"), "--store", str(db)).returncode == 0
    proc = lab("compare", *STORE_FAST, "--lr", "0.1", "0.01", "--out", str(tmp_path / "pair"), "--store", str(db))
    assert proc.returncode == 0 and "stored as group" in proc.stdout
    assert lab("train", *STORE_FAST, "--out", str(tmp_path / "skipped"), "--store", str(db), "--no-store").returncode == 0
    from lab.store.runstore import open_store

    with open_store(db) as s:
        table = s.runs()
    assert list(table["name"]) == ["lr=0.01", "lr=0.1", "one"] and set(table["source"]) == {"cli"}
    assert list(table["group"].iloc[:2]) == ["pair", "pair"]
    listed = lab("runs", "list", "--store", str(db))
    assert listed.returncode == 0 and "lr=0.01" in listed.stdout and "3 runs" in listed.stdout
    filtered = lab("runs", "list", "--store", str(db), "--filter", "lr=0.1", "--filter", "depth=2")
    assert "lr=0.1" in filtered.stdout and "lr=0.01" not in filtered.stdout and "1 run in" in filtered.stdout
    assert "no stored runs match" in lab("runs", "list", "--store", str(db), "--search", "zzz").stdout
    shown = lab("runs", "show", "one", "--store", str(db))
    assert shown.returncode == 0 and "activation: relu" in shown.stdout and "final_loss:" in shown.stdout
    # export gives the files train --out wrote (the same config document and tables)
    out = tmp_path / "exported"
    assert lab("runs", "export", "one", "--out", str(out), "--store", str(db)).returncode == 0
    for name in ("config.json", "history.csv", "layers.csv"):
        original, exported = (tmp_path / "one" / name).read_text(), (out / name).read_text()
        if name == "config.json":
            assert json.loads(original) == json.loads(exported)
        else:
            pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "one" / name).drop(columns="elapsed_s", errors="ignore"),
                                          pd.read_csv(out / name).drop(columns="elapsed_s", errors="ignore"))
    both = tmp_path / "both"
    assert lab("runs", "export", "lr=0.1", str(table["id"].iloc[0]), "--out", str(both), "--store", str(db)).returncode == 0
    assert set(pd.read_csv(both / "history.csv")["run"]) == {"lr=0.1", "lr=0.01"}
    deleted = lab("runs", "delete", "one", "--store", str(db))
    assert deleted.returncode == 0 and "undelete" in deleted.stdout
    assert "one" not in lab("runs", "list", "--store", str(db)).stdout.split()
    run_id = deleted.stdout.split("(")[1].split(")")[0]
    assert lab("runs", "undelete", run_id, "--store", str(db)).returncode == 0
    assert "one" in lab("runs", "list", "--store", str(db)).stdout.split()


def test_runs_errors_are_one_line(tmp_path):
    db = tmp_path / "runs.sqlite"
    for _ in range(2):
        assert lab("train", *STORE_FAST, "--out", str(tmp_path / "same"), "--force", "--store", str(db)).returncode == 0
    for args, words in [
        (["runs", "show", "same"], "2 stored runs are named 'same'"),
        (["runs", "show", "nothing"], "no stored run"),
        (["runs", "list", "--filter", "colour=red"], "unknown setting"),
        (["runs", "list", "--filter", "depth"], "KEY=VALUE"),
    ]:
        proc = lab(*args, "--store", str(db))
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    proc = lab("runs", "list", "--store", str(text))
    assert proc.returncode == 2 and "not a SQLite database" in proc.stderr
    proc = lab("train", *STORE_FAST, "--out", str(tmp_path / "x"), "--store", str(text))
    assert proc.returncode == 2 and not (tmp_path / "x").exists()  # refused before training
    assert text.read_text() == "not a database"
    assert "turned off" in lab("runs", "list").stderr  # conftest turns the default store off


def test_the_default_store_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_STORE", str(tmp_path / "env.sqlite"))
    assert lab("train", *STORE_FAST, "--out", str(tmp_path / "a")).returncode == 0
    assert "1 run in" in lab("runs", "list").stdout
    # a bad default store does not stop a run: a warning, and the files are written
    monkeypatch.setenv("BACKPROP_LAB_STORE", str(tmp_path))
    proc = lab("train", *STORE_FAST, "--out", str(tmp_path / "b"))
    assert proc.returncode == 0 and "warning" in proc.stderr and (tmp_path / "b" / "config.json").exists()


@pytest.mark.parametrize("extra, rows", [([], 1797), (["--samples", "500"], 500)])
def test_train_on_digits_uses_all_its_rows_unless_samples_is_given(tmp_path, extra, rows):
    proc = lab("train", "--dataset", "digits", "--depth", "1", "--width", "4", "--epochs", "0", "--quiet",
               "--no-store", "--out", str(tmp_path / "run"), *extra)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    assert doc["result"]["n_train"] + doc["result"]["n_val"] == rows
