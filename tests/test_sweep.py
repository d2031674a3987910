"""Sweeps: a cell's numbers do not depend on where or when it ran; interrupted sweeps finish."""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

import lab.experiments.sweep as sweep
from lab.cli.main import main
from lab.engine.config import RunConfig
from lab.engine.settings import ConfigError
from lab.experiments.sweep import COLUMNS, SweepSpec, cell_seed, cells, parse_axis, run_cell, run_sweep

BASE = RunConfig(dataset="digits", samples=200, width=8, epochs=2, activation="tanh", init="lecun_normal",
                 batch_size=50, probe_size=64).validate()
NUMBERS = [c for c in COLUMNS if c != "wall_s"]  # everything but the wall time is reproducible


def spec(xs=(1.0, 3.0), ys=(1, 2), seeds=1):
    return SweepSpec(BASE, ("sigma_w", tuple(xs)), ("depth", tuple(ys)), seeds=seeds)


def _table(path):
    return pd.read_csv(path).sort_values(["depth", "sigma_w", "seed_index"]).reset_index(drop=True)


def test_a_cell_alone_equals_it_inside_sweeps_on_one_and_two_workers(tmp_path):
    one = _table(run_sweep(spec(), tmp_path / "one", workers=1))
    two = _table(run_sweep(spec(), tmp_path / "two", workers=2))
    assert len(one) == 4 and list(one.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(one[NUMBERS], two[NUMBERS])
    # the same cell alone, from a grid that has other values: the same numbers
    (alone,) = [c for c in cells(spec(xs=(3.0, 2.0), ys=(7, 2))) if c["coordinates"] == {"sigma_w": 3.0, "depth": 2}]
    row = run_cell(alone)
    row = pd.read_csv(io.StringIO(",".join(COLUMNS) + "\n" + ",".join(sweep._text(row[c]) for c in COLUMNS)))
    expected = one[(one["sigma_w"] == 3.0) & (one["depth"] == 2)].reset_index(drop=True)
    pd.testing.assert_frame_equal(row[NUMBERS], expected[NUMBERS], check_dtype=False)
    assert one["final_loss"].notna().all() and one["seed"].nunique() == 4  # every cell its own seed


def test_an_interrupted_sweep_runs_only_the_missing_cells(tmp_path, monkeypatch):
    ran = []

    def counting(cell):
        ran.append(cell["key"])
        return run_cell(cell)

    monkeypatch.setattr(sweep, "run_cell", counting)

    class Interrupt(Exception):
        pass

    def stop_after_two(row, done, total):
        if done == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_sweep(spec(seeds=2), tmp_path, on_row=stop_after_two)
    assert len(ran) == 2
    with open(tmp_path / "sweep.csv", "a") as fh:  # a line cut off by a kill mid-write
        fh.write("digits,,,200,2")
    first = set(ran)
    run_sweep(spec(seeds=2), tmp_path)
    assert len(ran) == 8 and first.isdisjoint(ran[2:])  # 8 cells in all, none twice
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert len(table) == 8 and not table.duplicated(["sigma_w", "depth", "seed_index"]).any()
    run_sweep(spec(seeds=2), tmp_path)  # complete: nothing runs
    assert len(ran) == 8
    with pytest.raises(ConfigError, match="another sweep"):
        run_sweep(spec(xs=(1.0, 2.0), seeds=2), tmp_path)


def test_a_cells_seed_comes_from_its_coordinates_and_the_base_seed_only():
    a = {c["key"]: c["config"]["seed"] for c in cells(spec(xs=(1.0, 3.0)))}
    b = {c["key"]: c["config"]["seed"] for c in cells(spec(xs=(3.0, 2.0, 1.0)))}
    assert all(b[k] == v for k, v in a.items())
    assert cell_seed(0, 0, {"depth": 2, "sigma_w": 1.0}) == cell_seed(0, 0, {"sigma_w": 1.0, "depth": 2})
    assert len({cell_seed(s, k, {"depth": 2}) for s in (0, 1) for k in (0, 1)}) == 4
    # below 2**31, the Train page's largest seed, so that a cell opened there is the same run
    from lab.engine.settings import SETTINGS
    assert all(SETTINGS["seed"].contains(cell_seed(s, 0, {"depth": d}), ui=True) for s in range(20) for d in range(20))


@pytest.mark.parametrize("init, gain", [("lecun_normal", 2.0), ("xavier_normal", 2.0), ("he_normal", math.sqrt(2.0))])
def test_sigma_w_sets_the_gain_of_the_init(init, gain):
    from lab.theory.meanfield import sigma_w

    s = SweepSpec(BASE.replace(init=init), ("sigma_w", (2.0,)), ("depth", (2,)))
    (cell,) = cells(s)
    assert cell["config"]["gain"] == pytest.approx(gain)
    assert sigma_w(RunConfig.from_dict(cell["config"])) == pytest.approx(2.0)


def test_sigma_w_refuses_an_init_that_gain_does_not_scale():
    with pytest.raises(ConfigError, match="does not scale"):
        cells(SweepSpec(BASE.replace(init="zeros"), ("sigma_w", (2.0,)), ("depth", (2,))))


def test_parse_axis_ranges_and_lists():
    assert parse_axis("depth", ["2:10:5"]) == (2, 4, 6, 8, 10)
    assert parse_axis("sigma_w", ["1:2:3", "2"]) == (1.0, 1.5, 2.0)
    assert parse_axis("init", ["kaiming_normal", "lecun_normal"]) == ("kaiming_normal", "lecun_normal")
    with pytest.raises(ConfigError):
        parse_axis("depth", ["two"])
    with pytest.raises(ConfigError):
        parse_axis("seedless", ["1"])
    with pytest.raises(ConfigError):
        parse_axis("seedless", [])


def test_parse_axis_drops_duplicates_as_numbers_in_a_long_range():
    assert parse_axis("lr", ["0.1", "1", "1.0", "0.1:1:2"]) == (0.1, 1.0)
    assert parse_axis("sigma_w", ["2", "2.0", "1:2:3"]) == (2.0, 1.0, 1.5)
    assert parse_axis("gain", ["auto", "1", "auto"]) == ("auto", 1.0)
    assert len(parse_axis("sigma_w", ["1:4:10000"])) == len(parse_axis("lr", ["0.001:1:10000"])) == 10_000


def test_an_alias_is_a_cell_the_restart_recognizes(tmp_path):
    s = SweepSpec(BASE, ("init", ("kaiming_normal", "lecun_normal")), ("depth", (1,)))
    run_sweep(s, tmp_path)
    assert set(pd.read_csv(tmp_path / "sweep.csv")["init"]) == {"he_normal", "lecun_normal"}
    assert sweep.done_keys(tmp_path / "sweep.csv", ("init", "depth")) == {c["key"] for c in cells(s)}


def test_cli_sweep_writes_the_csv_and_refuses_bad_axes(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["sweep", "--x", "lr", "0.001", "0.01", "--y", "depth", "1", "--samples", "150", "--width", "4",
            "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    table = pd.read_csv(out / "sweep.csv")
    assert list(table.columns) == list(COLUMNS) and len(table) == 2
    assert set(table["dataset"]) == {"digits"} and set(table["epochs"]) == {1}
    assert np.allclose(table["loss_threshold"], 0.5 * np.log(10))
    assert main(["sweep", "--x", "depth", "--y", "lr", "0.1", "--out", str(tmp_path / "t")]) == 2
    assert main(["sweep", "--x", "colour", "1", "--y", "lr", "0.1", "--out", str(tmp_path / "t")]) == 2
    assert "cannot" in capsys.readouterr().err


# ---------------------------------------------------------------- theory.depth_scale, for the overlay

def test_depth_scale_in_the_ordered_phase_is_the_regimes_and_diverges_at_the_edge():
    from lab.engine.activations import get_activation
    from lab.theory.meanfield import depth_scale, regime

    tanh = get_activation("tanh")
    r = regime(tanh, 1.0, 0.05)
    assert r.chi_star < 1 and depth_scale("tanh", 1.0, 0.05) == pytest.approx(r.depth_scale)
    # Schoenholz et al.'s Fig. 1: with sigma_b^2 = 0.05 the edge of chaos is at sigma_w^2 of about 1.76
    grid = np.linspace(1.2, 1.45, 21)
    xi = depth_scale(tanh, grid, math.sqrt(0.05))
    assert xi.shape == grid.shape and grid[np.argmax(xi)] ** 2 == pytest.approx(1.76, abs=0.03)
    ends = depth_scale(tanh, [1.0, 2.0], math.sqrt(0.05))
    assert (ends < 0.3 * xi.max()).all()  # large only near the edge, on both sides


def test_depth_scale_in_the_chaotic_phase_uses_the_correlation_fixed_point():
    from lab.engine.activations import get_activation
    from lab.theory.meanfield import _correlation_fixed_point, _pair_expectation, chi, regime

    tanh, sw, sb = get_activation("tanh"), 3.0, 0.05
    q = regime(tanh, sw, sb).q_star
    dphi = lambda x: tanh.df(x, tanh.f(x))  # noqa: E731
    # at c = 1 the pair expectation is the single one the length map uses
    assert sw**2 * _pair_expectation(dphi, q, 1.0) == pytest.approx(chi(tanh, sw**2, q), rel=1e-6)
    c = _correlation_fixed_point(tanh, sw**2, sb**2, q)
    assert 0 <= c < 0.5
    assert (sw**2 * _pair_expectation(tanh.f, q, c) + sb**2) / q == pytest.approx(c, abs=1e-9)


def test_at_the_edge_of_chaos_networks_train_deeper_than_at_sigma_w_4():
    """Schoenholz et al.'s experiment in small, on digits: tanh, sigma_b^2 = 0.05, 2 epochs of Adam at 1e-3.
    Measured over base seeds 0-3, validation accuracy at the edge (sigma_w 1.33) is 0.89-0.92 at depth 10 and
    0.73-0.83 at depth 30; at sigma_w 4 it is 0.11-0.17 at depth 10 and 0.07-0.10 at depth 30 (chance is 0.1).
    "Trains" is taken as 0.5, five times chance: the margin is wide on both sides."""
    from lab.theory.phase import critical_sigma_w

    edge = critical_sigma_w("tanh", math.sqrt(0.05))
    assert edge == pytest.approx(math.sqrt(1.76), abs=0.01)  # the paper's sigma_w^2 at the edge
    base = RunConfig(dataset="digits", samples=1797, activation="tanh", init="lecun_normal",
                     bias_std=math.sqrt(0.05), width=64, epochs=2, lr=1e-3, dtype="float32")
    rows = [run_cell(c) for c in cells(SweepSpec(base, ("sigma_w", (edge, 4.0)), ("depth", (10, 30))))]
    accuracy = {(round(r["sigma_w"], 2), r["depth"]): r["final_val_accuracy"] for r in rows}
    assert accuracy[(round(edge, 2), 10)] > 0.5 and accuracy[(round(edge, 2), 30)] > 0.5, accuracy
    assert accuracy[(4.0, 10)] < 0.5 and accuracy[(4.0, 30)] < 0.5, accuracy


def _modules_of_a_worker(cell):
    import sys

    return {"cell": cell, "mp_main": getattr(sys.modules.get("__mp_main__"), "__file__", None),
            "streamlit": "streamlit" in sys.modules}


def test_local_workers_never_run_the_parents_main_script(tmp_path, monkeypatch):
    # In a Streamlit server, __main__ is the app's script while a page runs (Streamlit swaps it in); a worker
    # that ran it again would draw the app outside any session: one "missing ScriptRunContext" warning
    # in the server's log per st call, and a second of start-up per worker.
    import sys
    import types

    marker = tmp_path / "ran"
    script = tmp_path / "app_like.py"
    script.write_text(f"open({str(marker)!r}, 'a').write('ran\\n')\nimport streamlit\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    found = list(sweep.map_cells([1, 2, 3, 4], workers=2, fn=_modules_of_a_worker))
    assert sorted(r["cell"] for r in found) == [1, 2, 3, 4]
    assert not marker.exists(), "a worker ran the parent's __main__ script"
    assert not any(r["streamlit"] for r in found) and all(r["mp_main"] is None for r in found)


def test_a_sweep_on_a_bundled_dataset_uses_all_its_rows_and_its_rows_say_so(tmp_path):
    assert main(["sweep", "--dataset", "iris", "--x", "depth", "1", "--y", "width", "2", "--epochs", "1",
                 "--out", str(tmp_path / "s.csv"), "--quiet"]) == 0
    table = pd.read_csv(next(p for p in tmp_path.rglob("*.csv") if p.is_file()))
    assert list(table["samples"]) == [150]
