"""The command line says the verdict the pages say: train, compare and runs show print the flow of the
error signal at initialization and at the last record, in the pages' words."""
from __future__ import annotations

import pandas as pd
import pytest
from test_cli import lab

from lab.report.summaries import fmt

SMALL = ["--depth", "8", "--width", "32", "--samples", "120", "--epochs", "1", "--quiet"]
CASES = {  # (flags, the verdict at initialization)
    "vanishing": (["--activation", "sigmoid", "--init", "xavier_normal"], "vanishing"),
    "exploding": (["--activation", "tanh", "--init", "normal", "--init-scale", "1"], "exploding"),
    "healthy": (["--activation", "relu", "--init", "he_normal"], "healthy"),
}


def ratio(layers: pd.DataFrame, epoch) -> float:
    """delta_rms of layer 1 over that of the last hidden layer (8 here; layer 9 is the output)."""
    at = layers[layers["epoch"] == epoch].set_index("layer")["delta_rms"]
    return at.loc[1] / at.loc[at.index.max() - 1]


def ratio_from_csv(path, epoch) -> float:
    return ratio(pd.read_csv(path), epoch)


@pytest.mark.parametrize("case", list(CASES))
def test_train_prints_the_verdict_at_initialization_and_at_the_end(tmp_path, case):
    flags, word = CASES[case]
    proc = lab("train", *SMALL, *flags, "--out", str(tmp_path / "run"), "--no-store")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    init = [line for line in lines if "At initialization:" in line]
    assert len(init) == 1
    at_init = ratio_from_csv(tmp_path / "run" / "layers.csv", 0)
    assert f"At initialization: {word}." in init[0]
    assert f"Layer 1 gets {fmt(at_init)}× layer 8's error signal" in init[0]
    end = [line for line in lines if "At epoch 1:" in line]
    assert len(end) == 1 and f"{fmt(ratio_from_csv(tmp_path / 'run' / 'layers.csv', 1))}× layer 8's" in end[0]
    assert "**" not in proc.stdout  # plain text, not the pages' Markdown


def test_compare_and_runs_show_print_the_verdict(tmp_path):
    db = tmp_path / "runs.sqlite"
    proc = lab("compare", *SMALL, "--activation", "tanh", "--init", "normal", "--init-scale", "0.05", "1",
               "--out", str(tmp_path / "pair"), "--store", str(db))
    assert proc.returncode == 0, proc.stderr
    by_run = {}
    for line in proc.stdout.splitlines():
        if "At initialization:" in line:
            by_run[line.split("]")[0].strip(" [")] = line
    assert set(by_run) == {"init_scale=0.05", "init_scale=1.0"}
    assert "vanishing" in by_run["init_scale=0.05"] and "exploding" in by_run["init_scale=1.0"]
    shown = lab("runs", "show", "init_scale=1.0", "--store", str(db))
    assert shown.returncode == 0, shown.stderr
    layers = pd.read_csv(tmp_path / "pair" / "layers.csv")
    exploding = ratio(layers[layers["run"] == "init_scale=1.0"], 0)
    assert f"At initialization: exploding. Layer 1 gets {fmt(exploding)}× layer 8's error signal" in shown.stdout
    assert "At epoch 1:" in shown.stdout
