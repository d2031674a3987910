"""Runs outside the server's process (issue 27, the executor): the same numbers in a worker process and on a Dask
cluster as in-process, Stop within 2 s, a killed worker and a run beyond its memory reported without touching
another session's run, fair turns between sessions, and a full queue refused."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pandas as pd
import pytest
from conftest import environment_kept

from lab.engine.config import RunConfig
from lab.engine.training import train
from lab.serving.executor import CANCELLED, DONE, FAILED, RUNNING, Executor, Full, Task, resolve

SMALL = RunConfig(dataset="moons", samples=200, depth=3, width=16, epochs=5, seed=4)
LONG = SMALL.replace(epochs=5000, samples=2000, width=64)  # minutes: it only ever ends by Stop


def _train(config, seconds=0.1, memory_bytes=None):
    return Task("lab.serving.executor:train_task", (config,), seconds=seconds, memory_bytes=memory_bytes)


@pytest.fixture
def executor():
    ex = Executor(slots=1)
    yield ex
    ex.close()


def _same_run(a, b):
    pd.testing.assert_frame_equal(a.history.drop(columns=["elapsed_s"]),
                                  b.history.drop(columns=["elapsed_s"]))
    pd.testing.assert_frame_equal(a.layers, b.layers)
    for (Wa, ba), (Wb, bb) in zip(a.weights, b.weights, strict=True):
        assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb)


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_run_in_a_worker_process_gives_the_in_process_numbers_bit_for_bit_and_reports_its_records(executor):
    handle = executor.submit("s1", _train(SMALL))
    assert handle.wait(60) and handle.state == DONE, handle.error
    _same_run(handle.result, train(SMALL))
    assert handle.reports >= 1  # the first record at once, then at most every PROGRESS_S
    first = handle.progress["history"]
    assert 1 <= len(first) <= len(handle.result.history) and first[0] == handle.result.history.iloc[0].to_dict()
    assert handle.pid is not None and handle.pid != os.getpid()


def test_stop_ends_the_run_where_it_executes_within_2_s_and_frees_the_worker(executor):
    handle = executor.submit("s1", _train(LONG, seconds=600))
    assert _wait_for(lambda: handle.reports > 0), "the long run never reported"
    pid = handle.pid
    asked = time.monotonic()
    handle.cancel()
    assert handle.wait(5) and handle.state == CANCELLED
    assert _wait_for(lambda: not _alive(pid), 2.0), "its worker was still alive 2 s after Stop"
    assert time.monotonic() - asked < 2.5
    kept = handle.result  # the run stopped itself and kept what it had recorded
    assert kept is not None and kept.stopped and 1 <= len(kept.history) < LONG.epochs
    after = executor.submit("s2", _train(SMALL))
    assert after.wait(60) and after.state == DONE  # the slot is free again


def test_a_closed_tab_cancels_what_its_session_has_queued_and_running(executor):
    running = executor.submit("tab", _train(LONG, seconds=600))
    queued = executor.submit("tab", _train(SMALL))
    assert _wait_for(lambda: running.state == RUNNING and running.pid)
    executor.cancel_session("tab")
    assert running.wait(5) and queued.wait(5)
    assert running.state == CANCELLED and queued.state == CANCELLED


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_a_killed_worker_fails_its_run_with_the_reason_and_another_session_s_run_goes_on():
    executor = Executor(slots=2)
    try:
        victim = executor.submit("a", _train(LONG, seconds=600))
        other = executor.submit("b", _train(SMALL.replace(epochs=40)))
        assert _wait_for(lambda: victim.pid is not None and victim.reports > 0)
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(10) and victim.state == FAILED
        assert "SIGKILL" in victim.error, victim.error
        assert other.wait(60) and other.state == DONE, other.error
        _same_run(other.result, train(SMALL.replace(epochs=40)))
        again = executor.submit("a", _train(SMALL))  # the session, and the pool, go on
        assert again.wait(60) and again.state == DONE
    finally:
        executor.close()


def test_a_run_beyond_its_memory_fails_with_a_clear_message(executor):
    big = SMALL.replace(width=3000, depth=4, samples=4000, epochs=1)  # a few hundred MB of weights and moments
    handle = executor.submit("s1", _train(big, memory_bytes=50 * 2**20))
    assert handle.wait(60) and handle.state == FAILED
    assert "exceeded its memory limit (50 MB)" in handle.error, handle.error
    fine = executor.submit("s1", _train(SMALL, memory_bytes=500 * 2**20))  # the same limit's shape, room enough
    assert fine.wait(60) and fine.state == DONE, fine.error


def test_sessions_take_turns_a_ten_run_comparison_does_not_push_a_single_run_back_ten_places(executor):
    many = [executor.submit("compare", _train(SMALL.replace(seed=s))) for s in range(10)]
    time.sleep(0.05)
    single = executor.submit("single", _train(SMALL))
    assert single.place()[0] <= 1
    assert single.wait(120) and all(h.wait(120) for h in many)
    before = sum(h.started < single.started for h in many)
    assert before <= 2, before  # the one running when it came, and at most one more
    assert all(h.state == DONE for h in [*many, single])


def test_the_queue_says_each_task_s_place_and_wait_and_refuses_beyond_its_length():
    executor = Executor(slots=1, max_queued=3)
    try:
        first = executor.submit("a", _train(LONG, seconds=100))
        assert _wait_for(lambda: first.state == RUNNING)
        waiting = [executor.submit(s, _train(SMALL, seconds=10)) for s in ("b", "c", "d")]
        places = [h.place() for h in waiting]
        assert [p[0] for p in places] == [0, 1, 2]
        assert places[0][1] > 50 and places[2][1] > places[1][1] > places[0][1]  # the running task's rest, then 10 s each
        with pytest.raises(Full, match="the server is saturated"):
            executor.submit("e", _train(SMALL))
    finally:
        executor.close()


def test_a_task_is_the_lab_s_own_code_never_a_name_from_elsewhere():
    assert resolve("lab.serving.executor:train_task").__name__ == "train_task"
    for name in ("os:system", "subprocess:run", "lab", "builtins:eval", "labx.y:z"):
        with pytest.raises(ValueError, match="the lab's own functions"):
            resolve(name)


def test_the_same_numbers_on_a_dask_cluster():
    distributed = pytest.importorskip("distributed")
    with environment_kept(), \
            distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None,
                                     worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        executor = Executor(slots=1, client=client)
        try:
            handle = executor.submit("s1", _train(SMALL))
            assert handle.wait(120) and handle.state == DONE, handle.error
            _same_run(handle.result, train(SMALL))
            assert handle.reports >= 1
            stopped = executor.submit("s1", _train(LONG, seconds=600))
            assert _wait_for(lambda: stopped.reports > 0, 60)
            stopped.cancel()
            assert stopped.wait(5) and stopped.state == CANCELLED
        finally:
            executor.close()
