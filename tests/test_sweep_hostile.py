"""The sweep's trust boundary (issue 21): only the operator names a Dask cluster; a sweep passes the
one gate before any cell runs; Stop ends the cells running; a sweep's worker processes die with the
process that started them.  The Sweep page runs under AppTest with ``map_cells`` replaced, so that
nothing trains; the processes are real."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

import lab.experiments.sweep as sweep
from lab.engine.settings import SEEDS, SETTINGS
from lab.experiments.sweep import SCHEDULER_ENV, map_cells
from lab.serving.gate import MAX_RUNS
from tests import sweep_procs
from tests.apptest import APP
from tests.test_sweep_page import sweep_app

PAGES = sorted(f"pages/{p.name}" for p in (APP.parent / "pages").glob("*.py") if p.name != "__init__.py")
VISITOR = "tcp://203.0.113.9:8786"  # a cluster of the visitor's own (TEST-NET-3: nothing answers there)
OPERATOR = "tcp://127.0.0.1:8786"


@pytest.fixture
def ran(monkeypatch):
    """``map_cells`` replaced by a recorder: where each sweep was sent, and how many cells; nothing runs."""
    calls = []

    def record(todo, workers=1, fn=None, executor=None, scheduler=None, waiting=None):
        calls.append({"cells": len(todo), "scheduler": scheduler})
        return (row for row in ())  # a generator, as map_cells is

    monkeypatch.setattr(sweep, "map_cells", record)
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    return calls


@pytest.fixture
def listed(monkeypatch):
    """How many times the page listed a sweep's cells."""
    calls = []
    cells = sweep.cells

    def counting(spec):
        calls.append(spec)
        return cells(spec)

    monkeypatch.setattr(sweep, "cells", counting)
    return calls


def test_no_page_takes_a_scheduler_address():
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["sweep_workers"] = 1
    at.run()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        for box in [*at.text_input, *at.text_area]:
            words = " ".join(str(w) for w in (box.label, box.key, box.placeholder, box.help)).lower()
            assert not any(w in words for w in ("sched", "dask", "tcp://", "address")), (page, words)


def test_the_sweep_runs_where_the_operator_says_and_nowhere_a_visitor_asks(ran, monkeypatch):
    at = sweep_app()
    at.session_state["s_sched"] = VISITOR  # the old text box's key
    at.query_params.update({"scheduler": VISITOR, "s_sched": VISITOR})
    at.button[-1].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert ran == [{"cells": 4, "scheduler": None}]  # local worker processes
    assert any("local worker process" in c.value and "operator" in c.value for c in at.caption)

    monkeypatch.setenv(SCHEDULER_ENV, OPERATOR)  # the server's environment
    at.button[-1].click().run()
    assert ran[-1]["scheduler"] == OPERATOR
    assert any("Dask cluster that the operator" in c.value for c in at.caption)
    assert not any(OPERATOR in c.value for c in at.caption)  # who chose it, not where it is

    at.secrets[SCHEDULER_ENV] = "tcp://10.0.0.5:8786"  # .streamlit/secrets.toml wins, as for the limits
    at.button[-1].click().run()
    assert ran[-1]["scheduler"] == "tcp://10.0.0.5:8786"
    assert all(call["scheduler"] != VISITOR for call in ran)


def _refused(at) -> str:
    assert not at.exception, [e.value for e in at.exception]
    (error,) = [e.value for e in at.error]
    assert error.startswith("Not started: ")
    assert "sweep_run" not in at.session_state
    return error


def test_a_sweep_of_cells_that_train_refuses_is_not_started(ran):
    # each cell trains a depth-100 network of width 512 for 5,000 epochs on digits: hours; Train says no
    at = sweep_app(x="depth", xv="90 100", y="lr", yv="0.01")
    at.session_state["s_data"], at.session_state["s_width"] = "digits", SETTINGS["width"].range(ui=True)[1]
    at.session_state["s_epochs"] = SETTINGS["epochs"].range(ui=True)[1]
    at.button[-1].click().run()
    error = _refused(at)
    assert "one of its 2 runs cannot run: this run would" in error and "limit on this server" in error
    assert ran == []


def test_a_sweep_over_the_servers_sweep_limit_is_not_started(ran, monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_MAX_SWEEP_SECONDS", "5")
    at = sweep_app()
    at.button(key="s_preset").click().run()  # the paper's experiment: 120 cells, about 30 s of work
    at.button[-1].click().run()
    error = _refused(at)
    assert "the 120 runs of this sweep would take about" in error and "the limit on this server is 5 s" in error
    assert ran == []


def test_a_sweep_of_10000_values_is_refused_before_its_cells_are_listed(ran, listed):
    at = sweep_app(x="sigma_w", xv="1:4:10000", y="depth", yv="2 3")
    at.button[-1].click().run()
    error = _refused(at)
    assert f"20,000 cells (values × values × seeds), and at most {MAX_RUNS['sweep']:,}" in error
    assert ran == [] and listed == []


def test_values_outside_the_browsers_range_are_refused(ran):
    at = sweep_app(x="depth", xv="2 500")  # the engine takes depth 500, the server offers at most 100
    at.button[-1].click().run()
    assert "depth must be between 1 and 100" in _refused(at)
    assert ran == []


def test_the_widgets_cannot_ask_for_more_than_the_server_offers():
    at = sweep_app()
    bounds = {box.key: (box.min, box.max) for box in at.number_input}
    assert bounds["s_seeds"] == SEEDS.range(ui=True)
    assert bounds["s_width"] == SETTINGS["width"].range(ui=True)
    assert bounds["s_epochs"][1] == SETTINGS["epochs"].range(ui=True)[1]
    assert bounds["s_lr"] == SETTINGS["lr"].range(ui=True)


# Stop, a closed tab, a dead parent: the processes.  A cell here is time.sleep(seconds): long, and no CPU.
LONG_S = 20.0  # before issue 21 a stopped sweep waited for its running cells: this long


def test_leaving_a_sweep_ends_its_running_cells_within_2_s():
    rows = map_cells([0.0, LONG_S, LONG_S, LONG_S], workers=2, fn=time.sleep)
    assert next(rows) is None  # time.sleep(0.0) is done; the two workers now sleep
    workers = sweep_procs.wait_for_workers(os.getpid(), 2)
    try:
        stopped = time.perf_counter()
        rows.close()  # what a Stop does to the page's loop
        gone = sweep_procs.seconds_until_gone(workers, stopped)
        assert gone <= 2.0, f"the workers ran {gone:.1f} s after the sweep was left"
    finally:
        sweep_procs.kill_all(workers)


class Stop(Exception):
    """What Streamlit raises in the script at a yield point after a Stop or a closed tab."""


def test_a_sweep_gives_the_page_a_yield_point_every_fifth_of_a_second_and_stops_there():
    calls, workers = [], []
    started = time.perf_counter()

    def waiting():
        calls.append(time.perf_counter())
        if len(workers) < 2:
            workers[:] = sweep_procs.pool_workers(os.getpid())
        elif calls[-1] - started > 1.5:
            raise Stop

    rows = map_cells([LONG_S] * 4, workers=2, fn=time.sleep, waiting=waiting)
    try:
        with pytest.raises(Stop):
            for _ in rows:
                pass
        stopped = calls[-1]
        assert len(workers) == 2
        gone = sweep_procs.seconds_until_gone(workers, stopped)
        assert gone <= 2.0, f"the workers ran {gone:.1f} s after the stop"
        gaps = [b - a for a, b in zip(calls, calls[1:])]
        assert len(calls) >= 5 and max(gaps) < 0.5, gaps  # every WAIT_S (0.2 s), with room for a busy machine
    finally:
        sweep_procs.kill_all(workers)


def test_a_killed_sweep_command_takes_its_workers_and_forkserver_with_it(tmp_path):
    # cells of 100,000 epochs: they would run for hours
    cmd = [sys.executable, "-m", "lab", "sweep", "--x", "depth", "1", "2", "3", "--y", "width", "16",
           "--epochs", "100000", "--samples", "200", "--workers", "2", "--quiet", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, cwd=APP.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = []
    try:
        sweep_procs.wait_for_workers(proc.pid, 2)
        started = sweep_procs.descendants(proc.pid)  # the forkserver, its workers, the resource tracker
        os.kill(proc.pid, signal.SIGKILL)
        gone = sweep_procs.seconds_until_gone(started, sweep_procs.dead(proc.pid), limit=10.0)
        assert gone <= 5.0, f"{sweep_procs.alive(started)} outlived the command by {gone:.1f} s"
    finally:
        proc.kill()
        proc.wait()
        sweep_procs.kill_all(started)
