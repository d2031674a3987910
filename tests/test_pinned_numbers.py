"""``python -m lab train`` gives the numbers it gave before the engine moved into packages (issue 23), for a fixed seed,
in float64 and float32, with and without the cures.

The expected values were written by ``python -m lab train`` at commit 1f24020, the last one with the flat ``lab/``
folder and the model's backward over four parallel lists; any change to the engine's arithmetic moves them by far
more than the tolerances (float64: 1e-9 relative, float32: 1e-5, room for a BLAS that rounds differently).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent

SMALL = ["--depth", "4", "--width", "16", "--samples", "300", "--epochs", "5", "--seed", "7"]
CURED = ["--depth", "5", "--width", "12", "--samples", "300", "--epochs", "5", "--seed", "3", "--residual"]
CASES = {
    "float64": SMALL,
    "float32": [*SMALL, "--dtype", "float32", "--activation", "tanh"],
    "float64-cures": [*CURED, "--norm", "batch", "--residual-scale", "0.5", "--dropout", "0.1", "--clip-norm", "1",
                      "--weight-decay", "0.001", "--optimizer", "adam"],
    "float32-cures": [*CURED, "--dtype", "float32", "--norm", "layer", "--dropout", "0.2", "--optimizer", "momentum"],
}

EXPECTED = {
    "float64": {
        "final_loss": 0.7019617152443524,
        "final_val_accuracy": 0.6,
        "delta_rms_layer1_init": 0.9107320310043326,
        "delta_rms_layer1_last": 0.5232987394119873,
        "grad_norm_last_layer_last": 0.4860544428540183
    },
    "float32": {
        "final_loss": 0.6567227164904277,
        "final_val_accuracy": 0.6166666666666667,
        "delta_rms_layer1_init": 0.6164539695299261,
        "delta_rms_layer1_last": 0.4489884087912582,
        "grad_norm_last_layer_last": 0.08635737461623345
    },
    "float64-cures": {
        "final_loss": 0.7617930373022397,
        "final_val_accuracy": 0.6333333333333333,
        "delta_rms_layer1_init": 1.6095122350730973,
        "delta_rms_layer1_last": 1.0906231765100962,
        "grad_norm_last_layer_last": 0.13068582344503105
    },
    "float32-cures": {
        "final_loss": 0.9731546600659688,
        "final_val_accuracy": 0.4666666666666667,
        "delta_rms_layer1_init": 1.8782374547406557,
        "delta_rms_layer1_last": 1.2851376830192698,
        "grad_norm_last_layer_last": 0.7648662043783864
    }
}


def measured(out) -> dict[str, float]:
    history, layers = pd.read_csv(out / "history.csv"), pd.read_csv(out / "layers.csv")
    first, last, deepest = layers["epoch"].min(), layers["epoch"].max(), layers["layer"].max()

    def at(epoch, layer, column):
        return float(layers.loc[(layers["epoch"] == epoch) & (layers["layer"] == layer), column].iloc[0])

    return {"final_loss": float(history["loss"].iloc[-1]), "final_val_accuracy": float(history["val_accuracy"].iloc[-1]),
            "delta_rms_layer1_init": at(first, 1, "delta_rms"), "delta_rms_layer1_last": at(last, 1, "delta_rms"),
            "grad_norm_last_layer_last": at(last, deepest, "grad_norm")}


@pytest.mark.parametrize("case", list(CASES))
def test_train_gives_the_numbers_it_gave_before(case, tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "lab", "train", *CASES[case], "--out", str(out), "--no-store", "--quiet"],
                   cwd=ROOT, check=True, capture_output=True)
    rtol = 1e-5 if "float32" in case else 1e-9
    got = measured(out)
    for name, value in EXPECTED[case].items():
        assert got[name] == pytest.approx(value, rel=rtol), (name, got[name], value)
