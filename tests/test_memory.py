"""Bounded memory: the run cache and a session's history stay within their budgets in bytes."""
import gc
import time
from pathlib import Path

import pytest

from lab import RunConfig, train
from lab.serving.runcache import RunCache, trim_history

MB = 2**20
# about 12.6 MB of float32 weights each, in few layers so that each page render is quick
LARGE = RunConfig(depth=12, width=512, samples=200, epochs=0, dtype="float32")  # width: the browser's largest
# for the page test: 3.7 MB of weights in three layers, so that each of its eleven page renders is quick
PAGE_RUN = RunConfig(dataset="random", input_dim=784, depth=3, width=512, samples=200, epochs=0, dtype="float32")


@pytest.fixture(scope="module")
def large():
    return train(LARGE)


def test_nbytes_counts_the_weights_and_slim_drops_them(large):
    weights = sum(W.nbytes + b.nbytes for W, b in large.weights)
    assert weights > 11 * MB and large.nbytes() >= weights
    slim = large.slim()
    assert slim.weights == [] and slim.nbytes() < MB
    assert large.weights  # the original is untouched
    pd_equal = slim.layers.equals(large.layers) and slim.history.equals(large.history)
    assert pd_equal


def test_cache_keeps_to_its_budget_and_evicts_the_least_recently_used(large):
    cache = RunCache(budget=70 * MB)
    for k in range(8):
        cache.put(k, large)
        assert cache.nbytes() <= 70 * MB
    assert cache.get(0) is None and cache.get(7) is not None
    assert len(cache) == 6  # 11.6 MB each
    cache.get(2)  # used: it outlives 3 and 4
    cache.put(8, large)
    cache.put(9, large)
    assert cache.get(2) is not None and cache.get(3) is None and cache.get(4) is None


def test_cache_hands_out_copies_whose_notes_are_their_own(large):
    cache = RunCache(budget=100 * MB)
    cache.put("k", large)
    one, two = cache.get("k"), cache.get("k")
    one.meta["source"] = "Train"
    assert "source" not in two.meta
    assert one.weights[0][0] is two.weights[0][0]  # arrays are shared, not copied


def test_a_run_larger_than_a_quarter_of_the_budget_is_not_cached(large):
    cache = RunCache(budget=4 * large.nbytes() - 1)
    cache.put("k", large)
    assert cache.get("k") is None


def test_history_keeps_full_arrays_of_the_newest_and_drops_the_oldest_past_its_budget(large):
    runs = {f"run {i}": large for i in range(10)}
    kept, dropped = trim_history(runs, keep_full=3, budget=45 * MB)
    assert dropped == [] and list(kept) == list(runs)
    assert [bool(r.weights) for r in kept.values()] == [False] * 7 + [True] * 3
    kept, dropped = trim_history(runs, keep_full=3, budget=30 * MB)
    assert dropped == ["run 0", "run 1", "run 2", "run 3", "run 4", "run 5", "run 6", "run 7"][: len(dropped)]
    assert sum(r.nbytes() for r in kept.values()) <= 30 * MB
    assert "run 9" in kept


def test_ten_large_runs_in_one_session_stay_within_the_budgets(monkeypatch):
    """Train pressed ten times with a new seed each time, in one AppTest session."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from pages.ui import running

    monkeypatch.setenv("BACKPROP_LAB_SESSION_MB", "10")
    monkeypatch.setenv("BACKPROP_LAB_CACHE_MB", "16")
    running._CACHE.clear()
    app = Path(__file__).resolve().parent.parent / "app.py"
    at = AppTest.from_file(app, default_timeout=60)
    at.session_state["train_settings"] = PAGE_RUN
    at.switch_page("pages/train.py").run()  # straight to the page, as a link does (tests/apptest.py)
    at.number_input(key="w_seed").set_value(99)
    at.sidebar.form_submit_button[0].click().run()  # the first run imports and calibrates: not counted
    gc.collect()
    try:
        for seed in range(10):
            at.number_input(key="w_seed").set_value(seed)
            at.sidebar.form_submit_button[0].click().run()
            assert not at.exception, [e.value for e in at.exception]
        gc.collect()
        held = _run_data_held()
    finally:
        running._CACHE.clear()
    session = sum(r.nbytes() for r in at.session_state["runs"].values())
    assert session <= 10 * MB
    assert len(at.session_state["runs"]) >= 2  # the newest runs are there (3.7 MB each, 10 MB budget)
    # each run holds about 8 MB: without the budgets ten would hold 80 MB in the session and as much
    # again in the cache; with them, the session, the cache and the page's current run stay within
    # without the budgets all ten runs stay (about 52 MB measured); with them, what the cache holds
    # (which shares the session's newest arrays), and the run on the page and the one before it
    one_run = train(PAGE_RUN).nbytes()
    assert held < 16 * MB + 3 * one_run, (held / MB, one_run / MB)


def _run_data_held() -> int:
    """Bytes of array data that live runs hold, anywhere in this process (each buffer once)."""
    import numpy as np

    from lab import RunResult

    seen, total = set(), 0
    for obj in gc.get_objects():
        if not isinstance(obj, RunResult):
            continue
        arrays = [a for pair in obj.weights for a in pair] + [obj.act_hist, obj.delta_hist]
        if obj.data is not None:
            arrays += [obj.data.X_train, obj.data.X_val]
        for a in arrays:
            base = a if a.base is None else a.base
            if isinstance(base, np.ndarray) and id(base) not in seen:
                seen.add(id(base))
                total += base.nbytes
    return total


# ------------------------------------------------------------- what a training step allocates

def _step_peak(config, warm_steps=3, steps=5):
    """Bytes of the largest excess over the starting allocation while ``steps`` optimizer steps
    run (after ``warm_steps``, which make the optimizer's moments and scratch), as tracemalloc
    sees numpy's allocations; and the bytes of the largest weight matrix."""
    import tracemalloc

    from lab.engine.training import Trainer

    trainer = Trainer(config)
    trainer.advance(steps=warm_steps)
    assert trainer.steps_per_epoch > warm_steps + steps  # no epoch boundary and no record point below
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        trainer.advance(steps=steps)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert trainer.step == warm_steps + steps and trainer.diverged_at is None
    largest = max(a.params["W"].nbytes for a in trainer.model.affines)
    return peak - before, largest


# width 512 and batch 8: one weight matrix is 2 MB in float64, a layer's activations 32 KB
STEP = RunConfig(dataset="random", input_dim=8, classes=4, samples=800, val_fraction=0.0, depth=2, width=512,
                 batch_size=8, epochs=1, lr=1e-4, probe_size=8)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "rmsprop", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_step_allocates_nothing_parameter_sized(optimizer, dtype):
    # optimizer, clipping, weight decay and batch selection all work in place or a piece at a time; the
    # whole-array forms they replaced made temporaries as large as all the parameters (Adam: five)
    excess, largest = _step_peak(STEP.replace(optimizer=optimizer, dtype=dtype, clip_norm=1e-3, weight_decay=1e-4))
    assert excess < largest / 4, f"{excess / MB:.2f} MB allocated in a step; a weight matrix is {largest / MB:.2f} MB"


def test_a_large_model_split_between_threads_allocates_nothing_parameter_sized():
    # 17 MB of float64 parameters: the optimizer's pieces are shared out between threads
    from lab.engine import pieces

    config = STEP.replace(width=1024, optimizer="adam", clip_norm=1e-3)
    assert 2 * 1024 * 1024 * 8 >= pieces.THREADS_FROM
    excess, largest = _step_peak(config)
    assert excess < largest / 4, f"{excess / MB:.2f} MB allocated in a step; a weight matrix is {largest / MB:.2f} MB"


# ------------------------------------------------------------- what stays alive, against what the budgets count

def _numpy_alive() -> int:
    """Bytes of numpy memory alive in this process, as tracemalloc sees numpy's own allocations."""
    import tracemalloc

    import numpy as np

    numpy_only = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    return sum(t.size for t in tracemalloc.take_snapshot().filter_traces(numpy_only).traces)


def _counted(at) -> int:
    """Bytes of the runs the budgets see (the run cache's and the session's, the run on screen among them), each
    array and table once: the cache hands out copies that share the arrays."""
    from pages.ui import running

    results = [*running.run_cache()._runs.values(), *at.session_state["runs"].values()]
    if "result" in at.session_state:
        results.append(at.session_state["result"])
    arrays, tables = {}, {}
    for r in results:
        for a in [r.hist_epochs, r.act_hist, r.act_zero_frac, r.act_edges, r.delta_hist, r.delta_edges,
                  *(a for pair in r.weights for a in pair), *(a for state in r.norm_state for a in state.values()),
                  *([] if r.data is None else [r.data.X_train, r.data.y_train, r.data.X_val, r.data.y_val])]:
            base = a if a.base is None else a.base
            arrays[id(base)] = base.nbytes
        for frame in (r.history, r.layers):
            tables[id(frame)] = int(frame.memory_usage(index=True).sum())
    return sum(arrays.values()) + sum(tables.values())


def test_what_stays_alive_is_what_the_budgets_count_and_a_leaving_browser_frees_the_rest(monkeypatch):
    """Train three times with new seeds: the numpy memory left alive is the runs the budgets count.  Step then
    leaves a paused trainer, which no budget counts (about three times the run's weights); when the browser
    leaves (Streamlit releases the session's resources on a disconnect), it is let go."""
    import tracemalloc

    from streamlit.runtime import caching
    from streamlit.testing.v1 import AppTest

    from pages.ui import running

    monkeypatch.setenv("BACKPROP_LAB_SESSION_MB", "10")
    monkeypatch.setenv("BACKPROP_LAB_CACHE_MB", "16")
    running._CACHE.clear()
    app = Path(__file__).resolve().parent.parent / "app.py"
    at = AppTest.from_file(app, default_timeout=60)
    at.session_state["train_settings"] = PAGE_RUN
    tracemalloc.start()
    try:
        at.switch_page("pages/train.py").run()  # straight to the page: the home page under tracemalloc costs seconds
        at.number_input(key="w_seed").set_value(99)
        at.sidebar.form_submit_button[0].click().run()  # imports, calibration and first-use caches: the baseline
        gc.collect()
        baseline = _numpy_alive() - _counted(at)
        for seed in range(3):
            at.number_input(key="w_seed").set_value(seed)
            at.sidebar.form_submit_button[0].click().run()
            assert not at.exception, [e.value for e in at.exception]
        gc.collect()
        weights = sum(W.nbytes + b.nbytes for W, b in at.session_state["result"].weights)
        assert abs(_numpy_alive() - _counted(at) - baseline) < weights / 4

        at.number_input(key="w_epochs").set_value(2)
        at.sidebar.form_submit_button[2].click().run()  # Step: the run paused after its first epoch
        trainer = at.session_state["trainer"]
        assert not trainer.done
        gc.collect()
        assert _numpy_alive() - _counted(at) - baseline > 2 * weights  # the trainer: weights, gradients, activations

        caching.clear_session_resource_cache("test session id")  # as a disconnect does (AppTest's one session id)
        for _ in range(600):  # the trainer is closed in a thread of its own
            if trainer.closed:
                break
            time.sleep(0.05)
        assert trainer.closed
        at.run()  # the browser comes back: the run is stopped, nothing paused
        assert not at.exception, [e.value for e in at.exception]
        assert "trainer" not in at.session_state
        gc.collect()
        assert abs(_numpy_alive() - _counted(at) - baseline) < weights / 4
    finally:
        tracemalloc.stop()
        running._CACHE.clear()
