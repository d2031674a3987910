"""Mean-field theory against independent facts and against the engine's own measurement."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab import RunConfig, train
from lab.activations import get_activation
from lab.phase import critical_sigma_w, sweep
from lab.theory import caveat, chi, fixed_point, gaussian_expectation, measured_factor, predict, regime

ROOT = Path(__file__).resolve().parent.parent


def test_gaussian_expectations_of_known_moments():
    assert gaussian_expectation(lambda x: x**2, 2.5) == pytest.approx(2.5, rel=1e-12)
    assert gaussian_expectation(lambda x: x**4, 1.0) == pytest.approx(3.0, rel=1e-12)
    relu = get_activation("relu")
    # E[relu(sqrt(q) z)^2] = q / 2, and E[relu(sqrt(q) z)] = sqrt(q / (2 pi))
    assert gaussian_expectation(lambda x: relu.f(x) ** 2, 3.0, relu.kinks) == pytest.approx(1.5, rel=1e-10)
    assert gaussian_expectation(relu.f, 3.0, relu.kinks) == pytest.approx(math.sqrt(3.0 / (2 * math.pi)), rel=1e-10)


def test_split_quadrature_agrees_with_the_closed_forms():
    for name, slope in (("relu", 0.01), ("leaky_relu", 0.2)):
        act = get_activation(name, slope)
        by_quadrature = 2.0 * gaussian_expectation(lambda x: act.df(x, act.f(x)) ** 2, 1.7, act.kinks)
        assert by_quadrature == pytest.approx(chi(act, 2.0, 1.7), rel=1e-10)


def test_selu_with_lecun_normal_is_self_normalizing():
    """q* = 1 exactly; plain Gauss-Hermite over the kink would be off by about 1%."""
    assert fixed_point(get_activation("selu"), 1.0, 0.0) == pytest.approx(1.0, abs=1e-9)


def test_tanh_edge_of_chaos_at_sigma_w_one():
    assert critical_sigma_w("tanh", 0.0) == pytest.approx(1.0, abs=0.01)
    assert regime(get_activation("tanh"), 0.9, 0.0).chi_star < 1 < regime(get_activation("tanh"), 1.2, 0.0).chi_star
    # a bias pushes the edge to larger sigma_w
    assert critical_sigma_w("tanh", 0.1) > 1.05


@pytest.mark.parametrize("activation, init, gain", [
    ("relu", "he_normal", 1.0),
    ("leaky_relu", "he_normal", 1.0),
    ("identity", "lecun_normal", 1.0),
    ("tanh", "lecun_normal", 1.5),
    ("tanh", "lecun_normal", 2.5),
    ("selu", "lecun_normal", 1.0),
])
def test_measured_factor_matches_chi_at_width_256(activation, init, gain):
    config = RunConfig(dataset="random", input_dim=256, classes=10, width=256, depth=12, activation=activation,
                       init=init, gain=gain, epochs=0, samples=640)
    result = train(config)
    measured = measured_factor(result.layers)
    predicted = predict(config.validate(), 256, 10).set_index("layer")["chi"].reindex(measured.index)
    geo = lambda s: float(np.exp(np.log(s).mean()))  # noqa: E731
    assert geo(measured) == pytest.approx(geo(predicted), rel=0.04)


def test_predicted_profile_is_flat_for_relu_with_he_and_shrinks_for_sigmoid():
    flat = predict(RunConfig(depth=8, width=128).validate(), 128, 2)
    assert np.allclose(flat["predicted_delta_ratio"], 1.0)
    shrink = predict(RunConfig(depth=10, width=100, activation="sigmoid", init="xavier_normal").validate(), 100, 10)
    ratio = shrink["predicted_delta_ratio"]
    assert ratio.iloc[-1] == 1.0 and 1e-8 < ratio.iloc[0] < 1e-4 and (np.diff(ratio) > 0).all()


def test_caveats_name_the_cases_theory_does_not_cover():
    assert caveat(RunConfig(init="zeros")).startswith("Theory does not apply")
    assert "orthogonal" in caveat(RunConfig(init="orthogonal", width=128))
    assert "sqrt(width)" in caveat(RunConfig(init="normal", width=128))
    assert caveat(RunConfig(init="he_normal", width=128)) == ""


def test_cli_theory_writes_the_columns(tmp_path):
    out = tmp_path / "theory.csv"
    proc = subprocess.run([sys.executable, "-m", "lab", "theory", "--activation", "tanh", "--init", "lecun_normal",
                           "--gain", "1.5", "--depth", "6", "--width", "256", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["layer", "q", "chi", "predicted_delta_ratio"]
    assert len(table) == 6 and table["predicted_delta_ratio"].iloc[-1] == 1.0
    assert "chi*" in proc.stderr


def test_phase_sweep_orders_and_chaos():
    table = sweep("tanh", [0.5, 2.5], [2, 12], 0.0, width=64, n_probe=64, n_jobs=1)
    cell = table.set_index(["sigma_w", "depth"])["log10_ratio"]
    assert cell[(0.5, 12)] < -2  # ordered: the signal is lost with depth
    assert cell[(2.5, 12)] > 1  # chaotic: it grows
    assert abs(cell[(0.5, 12)]) > abs(cell[(0.5, 2)])


def test_against_measurement_overlays_where_theory_applies():
    from lab.theory import against_measurement

    run = train(RunConfig(dataset="random", input_dim=100, classes=10, width=100, depth=6, activation="sigmoid",
                          init="xavier_normal", epochs=0, samples=400))
    overlay, text = against_measurement(run)
    assert list(overlay["layer"]) == [1, 2, 3, 4, 5, 6]
    last = run.layers.set_index("layer")["delta_rms"].loc[6]
    assert overlay["delta_rms"].iloc[-1] == pytest.approx(last)  # anchored at the last hidden layer
    assert text.startswith("Theory (dashed) predicts")
    overlay, text = against_measurement(train(RunConfig(init="zeros", depth=3, width=8, epochs=0, samples=100)))
    assert overlay is None and text.startswith("Theory does not apply")
