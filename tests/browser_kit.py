"""What the browser tests share: a Streamlit server of the app, Debian's Chromium driven by Playwright, and the
helpers that open a page and wait for Streamlit to settle.

The server and the browser are started once per test process (tests/conftest.py: the session fixtures
``server``, ``browser`` and ``context``), not once per module: each start costs seconds, and a shared browser
context shares the HTTP cache, so that plotly.js (4.7 MB) is fetched and compiled once.  A module that needs a
server of its own (test_sweep_browser.py kills it) starts one with ``start_server``.

Importing this module skips the importing test module, saying why, when Playwright or Chromium is missing.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)


@dataclass
class Server:
    """A running ``streamlit run app.py``: its address, process, run store and log file."""

    url: str
    proc: subprocess.Popen
    store: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# the session's server (set by tests/conftest.py's ``server`` fixture): for tests that read its store or its CPU time
SERVER: dict = {}


def log_path() -> Path:
    """The server's log: tests/.streamlit-browser.log, one per test process when pytest-xdist runs several."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return ROOT / "tests" / (f".streamlit-browser-{worker}.log" if worker else ".streamlit-browser.log")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path, log: Path | None = None) -> Server:
    """``streamlit run app.py`` with a run store of its own (so that the browser's runs never reach the user's),
    once it answers its health check."""
    port = free_port()
    log = log or log_path()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "BACKPROP_LAB_STORE": str(store)},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("streamlit did not start within 60 s")
    return Server(url, proc, store, log)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_page(page, url: str, heading: str):
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=30_000)
    settle(page)


def settle(page, timeout_s: float = 60):
    """Wait until Streamlit has finished: no running script, no loading skeleton, and the number
    of elements on the page unchanged for 0.6 s."""
    deadline = time.time() + timeout_s
    last, stable_since = -1, time.time()
    while time.time() < deadline:
        busy = page.locator("[data-testid=stStatusWidget]").count() + page.locator("[data-testid=stSkeleton]").count()
        count = page.locator("[data-testid=stElementContainer]").count()
        if busy or count != last:
            last, stable_since = count, time.time()
        elif time.time() - stable_since > 0.6:
            return
        time.sleep(0.1)


def no_exception(page):
    assert page.locator("[data-testid=stException]").count() == 0, page.locator("[data-testid=stException]").first.inner_text()


def shot(page, name: str):
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# One Chromium per test process, started by the first browser test and closed after the last of a run of them
# (tests/conftest.py): while Playwright's sync API is alive it marks an asyncio loop as running in the main
# thread, which the tests that follow (AppTest, dask) must not inherit.
_CHROMIUM: dict = {}


def chromium():
    """The test process's Chromium, started if it is not running."""
    if "browser" not in _CHROMIUM:
        playwright = sync_api.sync_playwright().start()
        _CHROMIUM["playwright"] = playwright
        _CHROMIUM["browser"] = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _CHROMIUM["contexts"] = {}
    return _CHROMIUM["browser"]


def shared_context(width: int = 1400, height: int = 1800):
    """One browser context per viewport for all the tests' tabs, so that they share the HTTP cache: plotly.js
    (4.7 MB) is fetched and compiled once, not in every test (2-3 s each on these machines)."""
    contexts = _CHROMIUM.setdefault("contexts", {})
    if (width, height) not in contexts:
        contexts[width, height] = chromium().new_context(viewport={"width": width, "height": height})
    return contexts[width, height]


def close_chromium() -> None:
    """Close the process's Chromium and stop Playwright, if they run."""
    if "browser" not in _CHROMIUM:
        return
    browser, playwright, contexts = _CHROMIUM.pop("browser"), _CHROMIUM.pop("playwright"), _CHROMIUM.pop("contexts")
    try:
        for ctx in contexts.values():
            ctx.close()
        browser.close()
    finally:
        playwright.stop()
