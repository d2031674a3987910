"""Sweeps on a Dask cluster: the same numbers as a local run, and a worker killed mid-sweep costs nothing.

One real ``distributed.LocalCluster`` (2 worker processes, 1 thread each) serves the module."""
from __future__ import annotations

import os
import signal
import sys
import time

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from conftest import environment_kept  # noqa: E402

from lab.cli.main import main  # noqa: E402
from lab.engine.config import RunConfig  # noqa: E402
from lab.experiments.sweep import COLUMNS, SCHEDULER_ENV, SweepSpec, map_on_dask, run_sweep  # noqa: E402

BASE = RunConfig(dataset="digits", samples=200, width=8, epochs=1, activation="tanh", init="lecun_normal",
                 batch_size=50).validate()
NUMBERS = [c for c in COLUMNS if c != "wall_s"]


@pytest.fixture(scope="module")
def cluster():
    with environment_kept(), distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                                      dashboard_address=None, worker_dashboard_address=None) as c:
        yield c


def _table(path):
    return pd.read_csv(path).sort_values(["depth", "sigma_w", "seed_index"]).reset_index(drop=True)


def test_a_sweep_on_the_cluster_gives_the_local_numbers(cluster, tmp_path, monkeypatch):
    spec = SweepSpec(BASE, ("sigma_w", (1.0, 3.0)), ("depth", (1, 2)))
    local = _table(run_sweep(spec, tmp_path / "local", workers=1))
    remote = _table(run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address))
    assert len(local) == 4 and local["final_loss"].notna().all()
    pd.testing.assert_frame_equal(local[NUMBERS], remote[NUMBERS])
    # the command line, with the address from the environment
    monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
    args = ["sweep", "--x", "sigma_w", "1.0", "3.0", "--y", "depth", "1", "2", "--dataset", "digits",
            "--samples", "200", "--width", "8", "--epochs", "1", "--activation", "tanh", "--init", "lecun_normal",
            "--batch-size", "50", "--quiet", "--out", str(tmp_path / "cli")]
    assert main(args) == 0
    pd.testing.assert_frame_equal(local[NUMBERS], _table(tmp_path / "cli" / "sweep.csv")[NUMBERS])
    assert main([*args[:-1], str(tmp_path / "cli2"), "--workers", "2"]) == 2  # local processes or the cluster


class SlowCell:
    """A cell that takes a while and says which process ran it."""

    def __init__(self, seconds=0.25):
        self.seconds = seconds

    def __call__(self, cell):
        time.sleep(self.seconds)
        return {"key": cell["key"], "pid": os.getpid()}


def spy_on_cancel(client) -> list:
    """The keyword arguments of every ``client.cancel`` call."""
    asked, cancel = [], client.cancel

    def spy(futures, **kwargs):
        asked.append(kwargs)
        return cancel(futures, **kwargs)

    client.cancel = spy
    return asked


def test_a_worker_killed_mid_sweep_costs_only_its_cells(cluster):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers need not import this file
    cells = [{"key": k} for k in range(8)]
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        rows, killed = [], None
        for row in map_on_dask(cells, client, SlowCell()):
            rows.append(row)
            if killed is None:
                busy = {w: keys for w, keys in client.processing().items() if keys}
                pids = client.run(os.getpid)  # {worker address: its process id}
                victim = next(w for w in busy if pids[w] != row["pid"])
                killed = pids[victim]
                os.kill(killed, signal.SIGKILL)  # it holds a cell that has started: that cell runs again
                after = len(rows)
    assert sorted(r["key"] for r in rows) == list(range(8))  # every cell, each once
    assert killed not in {r["pid"] for r in rows[after:]}


def test_stopping_a_sweep_on_the_cluster_cancels_the_cells_not_started(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        asked = spy_on_cancel(client)
        stream = map_on_dask([{"key": k} for k in range(20)], client, SlowCell())
        next(stream)
        stream.close()  # leaving the loop, as Stop does
        time.sleep(0.1)
        assert sum(len(keys) for keys in client.processing().values()) <= 2  # at most the cells running
        assert not client.futures or all(f.status in ("cancelled", "finished") for f in client.futures.values())
        assert asked == [{"force": True}]  # even a cell that another client of the cluster also asked for


class Stop(Exception):
    """What Streamlit raises in the page at a yield point after a Stop or a closed tab."""


def test_a_stop_reaches_the_page_while_every_cell_on_the_cluster_runs(cluster):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    calls = []

    def waiting():
        calls.append(time.perf_counter())
        if calls[-1] - calls[0] > 0.6:
            raise Stop

    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        asked = spy_on_cancel(client)
        with pytest.raises(Stop):
            for _ in map_on_dask([{"key": k} for k in range(4)], client, SlowCell(1.5), waiting):
                pass
        assert max(b - a for a, b in zip(calls, calls[1:])) < 0.5  # every WAIT_S, no cell having finished
        assert asked == [{"force": True}]
        time.sleep(0.1)
        assert all(f.status == "cancelled" for f in client.futures.values())

