"""Shared helpers for the engine tests.

``import lab`` works however pytest is started: pyproject.toml puts the repository root on
the path (``[tool.pytest.ini_options] pythonpath``).
"""
from __future__ import annotations

import contextlib
import os
import sys

import numpy as np
import pytest

# the app prices the machine in a background thread when the Train page first opens; in the tests (and the
# browser tests' server, which inherits this) that would only load the machine while other tests are timed
os.environ.setdefault("BACKPROP_LAB_WARM_PRICES", "0")


def central_difference(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d x by central differences, one entry at a time; x is perturbed in place and restored.

    Written here, independently of ``lab.engine.gradcheck``, so that the tests do not check
    the engine against itself.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, x), "central_difference needs a contiguous array"
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = float(f())
        flat[i] = old - eps
        down = float(f())
        flat[i] = old
        gflat[i] = (up - down) / (2.0 * eps)
    return grad


def rel_error(a, b) -> float:
    """||a - b|| / max(||a|| + ||b||, tiny): the usual gradient-check measure."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


@pytest.fixture
def numgrad():
    return central_difference


@pytest.fixture
def relerr():
    return rel_error


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@contextlib.contextmanager
def environment_kept():
    """Put os.environ back as it was: a Dask LocalCluster's nanny writes its workers' pre-spawn environment
    (MALLOC_TRIM_THRESHOLD_=65536) into this process's, which every subprocess started later would inherit."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _no_run_store(monkeypatch):
    """No test writes to the user's run store: it is off unless a test points BACKPROP_LAB_STORE or --store at a
    temporary file."""
    monkeypatch.setenv("BACKPROP_LAB_STORE", "off")


# The browser tests (test_browser*.py, test_sweep_browser.py, test_export_offline.py): tests/browser_kit.py has their
# helpers.  One server of the app per test process, for all the browser modules; one Chromium, for a run of browser
# tests.

@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The address of a ``streamlit run app.py`` with a run store of its own (browser_kit.SERVER: its pid and
    store)."""
    import browser_kit as kit

    running = kit.start_server(tmp_path_factory.mktemp("store") / "runs.sqlite")
    kit.SERVER.update(pid=running.pid, store=running.store, log=running.log)
    yield running.url
    running.stop()


@pytest.fixture
def browser():
    import browser_kit as kit

    return kit.chromium()


@pytest.fixture
def context(browser):
    """The wide (1400 x 1800) context that the tabs of every browser test share."""
    import browser_kit as kit

    return kit.shared_context()


@pytest.fixture
def page(context):
    pg = context.new_page()
    yield pg
    pg.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After the last of a run of browser tests, once its fixtures are gone: close Chromium and stop Playwright,
    whose sync API marks an asyncio loop as running in this thread for as long as it lives."""
    yield
    kit = sys.modules.get("browser_kit")
    if kit is not None and "browser" in item.fixturenames and (nextitem is None or "browser" not in nextitem.fixturenames):
        kit.close_chromium()


# pytest-xdist (pyproject.toml: -n 2 --dist loadgroup) keeps these modules in one test process, with one server and
# one Chromium, while the other process runs the rest: with the browser tests split over both cores (two servers, two
# Chromiums on 2 cores) a Play or a Step click was lost in two of four clean-clone CI runs
BROWSER_GROUPS = {name: "browser" for name in (
    "test_browser.py", "test_browser_injection.py", "test_export_offline.py", "test_browser_train_state.py",
    "test_browser_layout.py", "test_sweep_browser.py", "test_lessons_browser.py")}


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = BROWSER_GROUPS.get(item.path.name)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
