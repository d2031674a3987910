"""The sweep's trust boundary (issue 21): Stop ends the cells running; a sweep's worker processes die
with the process that started them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lab.sweep import map_cells
from tests import sweep_procs
from tests.apptest import APP

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
