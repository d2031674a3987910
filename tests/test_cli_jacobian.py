"""python -m lab jacobian: the CSV of singular values of J_l = dh_l/dh_1, the summary it prints, and its errors."""
import numpy as np
import pandas as pd
import pytest
from test_cli import lab

from lab.engine.config import RunConfig
from lab.engine.jacobian import ALL_LAYERS_UP_TO, FLOOR_EPS, PROBE_INPUTS, PROBE_VALUES, SPREAD_LAYERS
from lab.formats import number
from lab.theory.spectrum import measure

TANH = ["--depth", "5", "--width", "16", "--activation", "tanh", "--init", "orthogonal", "--samples", "100"]
TANH_CONFIG = RunConfig(depth=5, width=16, activation="tanh", init="orthogonal", samples=100)


def printed_rows(stdout: str) -> dict[int, list[str]]:
    """The per-depth lines of the summary, by depth: their other fields as printed."""
    rows = {}
    for line in stdout.splitlines():
        fields = line.split()
        if fields and fields[0].isdigit():
            rows[int(fields[0])] = fields[1:]
    return rows


def test_the_csv_has_one_row_per_depth_probe_and_singular_value(tmp_path):
    out = tmp_path / "spectrum.csv"
    proc = lab("jacobian", *TANH, "--probes", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["depth", "example", "index", "singular_value"]
    assert len(table) == 4 * 3 * 16  # hidden layers 2..5, 3 probe inputs, width 16
    assert sorted(table["depth"].unique()) == [2, 3, 4, 5]
    for (_, _), group in table.groupby(["depth", "example"]):
        assert list(group["index"]) == list(range(16))
        assert (np.diff(group["singular_value"]) <= 0).all()  # index 0 the largest
    # the same numbers as the library's own measure on the same config
    expected = measure(TANH_CONFIG, probes=3).spectrum.frame()
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-15)
    assert f"wrote {out}: 192 singular values" in proc.stdout


def test_the_summary_is_the_csv_s_per_depth(tmp_path):
    out = tmp_path / "spectrum.csv"
    proc = lab("jacobian", *TANH, "--depths", "2", "5", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    rows = printed_rows(proc.stdout)
    assert sorted(rows) == [2, 5] == sorted(table["depth"].unique())
    theory = measure(TANH_CONFIG, layers=[2, 5]).theory.set_index("depth")["mean_s2"]
    for depth, s in table.groupby("depth")["singular_value"]:
        p5, p95 = np.percentile(s, [5, 95])
        mean_s2, printed_p5, printed_p95, printed_theory = rows[depth][:4]
        assert mean_s2 == number((s**2).mean(), 3)
        assert (printed_p5, printed_p95) == (number(p5, 3), number(p95, 3))
        assert printed_theory == number(theory[depth], 3)
    assert "theory: approximate (width 16 is narrow" in proc.stdout  # below the theory's wide-layer width


def test_singular_values_float64_cannot_resolve_are_counted(tmp_path):
    # ReLU after 2-d inputs: about half of h_1's units are off, so J_l has about half its singular values at 0
    out = tmp_path / "relu.csv"
    proc = lab("jacobian", "--depth", "3", "--width", "16", "--samples", "100", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    largest = table.groupby(["depth", "example"])["singular_value"].transform("max")
    zero = (table["singular_value"] < FLOOR_EPS * largest).groupby(table["depth"]).mean()
    rows = printed_rows(proc.stdout)
    for depth, share in zero.items():
        assert share > 0.2
        assert f"({number(100 * share, 2)}% numerically zero)" in " ".join(rows[depth])
        assert rows[depth][1] == "~0"  # its 5th percentile is no number float64 can tell from 0
    assert "numerically zero (~0): below 1e-13" in proc.stdout


def test_fixed_point_inputs_for_tanh_and_a_clear_error_without_a_fixed_point(tmp_path):
    out = tmp_path / "fixed.csv"
    proc = lab("jacobian", *TANH, "--bias-std", "0.1", "--inputs", "fixed-point", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    measured = measure(TANH_CONFIG.replace(bias_std=0.1), inputs="fixed-point")
    assert f"4 inputs at the fixed point q* = {number(measured.q_star, 3)}" in proc.stdout
    pd.testing.assert_frame_equal(pd.read_csv(out), measured.spectrum.frame(), check_dtype=False, rtol=1e-15)
    # a residual network has no fixed point to start from: one line, status 2, nothing written
    residual = tmp_path / "residual.csv"
    proc = lab("jacobian", *TANH, "--residual", "--inputs", "fixed-point", "--out", str(residual))
    assert proc.returncode == 2 and proc.stdout == "" and not residual.exists()
    assert proc.stderr.count("\n") == 1 and "no fixed point" in proc.stderr and "Traceback" not in proc.stderr
    # from the data it works, and says the theory does not cover it
    proc = lab("jacobian", *TANH, "--residual", "--out", str(residual))
    assert proc.returncode == 0 and "theory: does not apply (normalization and shortcuts" in proc.stdout
    assert "theory mean s^2" not in proc.stdout


@pytest.mark.parametrize("args, words", [
    (["--depths", "1", "3", "6"], "--depths 1 6: the hidden layers l of J_l = dh_l/dh_1 are 2..5"),
    (["--depths", "two"], "invalid int value: 'two'"),
    (["--depth", "1"], "needs at least 2 of them (--depth 1)"),
    (["--inputs", "zero"], "--inputs must be one of data, fixed-point, not 'zero'"),
    (["--probes", "0"], "--probes must be from 1 to 256"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path, args, words):
    out = tmp_path / "spectrum.csv"
    proc = lab("jacobian", *TANH, *args, "--out", str(out))
    assert proc.returncode == 2 and proc.stdout == "" and not out.exists()
    assert proc.stderr.count("\n") == 1 and words in proc.stderr and "Traceback" not in proc.stderr


def test_an_unwritable_out_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr("lab.theory.spectrum.measure", lambda *a, **k: pytest.fail("measured before --out was checked"))
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    for out, words in [(tmp_path, "is a directory, not a file"), (a_file / "x.csv", "is a file"),
                       (" ", "--out needs a file name")]:
        proc = lab("jacobian", *TANH, "--out", str(out))
        assert proc.returncode == 2 and words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert a_file.read_text() == "keep me"


def test_a_spectrum_larger_than_the_machine_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("lab.cli.commands.machine_free_bytes", lambda: 2**30)  # a machine with 1 GB free
    out = tmp_path / "big.csv"
    proc = lab("jacobian", "--width", "2048", "--depth", "20", "--probes", "64", "--out", str(out))
    assert proc.returncode == 2 and "of memory and this machine has 1.0 GB free" in proc.stderr
    assert not out.exists()


def test_the_help_states_the_engine_s_defaults():
    text = " ".join(lab("jacobian", "--help").stdout.split())
    assert f"(default {PROBE_INPUTS}, fewer in networks wider than {PROBE_VALUES // PROBE_INPUTS}: about {PROBE_VALUES}" in text
    assert f"up to {ALL_LAYERS_UP_TO} hidden layers, about {SPREAD_LAYERS} spaced" in text
    assert "python -m lab jacobian" in lab("--help").stdout
