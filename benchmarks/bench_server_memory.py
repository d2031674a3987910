#!/usr/bin/env python
"""A server's resident memory through ten large runs in one browser session, and after the tab closes (issue 21).

Starts `streamlit run app.py` on a free loopback port (no run store, no background pricing), opens the Train
page's link for a large run (depth 100, width 512, 5,000 samples, 2 epochs, batch 512, SGD, seed 1) in headless
Chromium, presses Train and waits for the run's results; then sets the seed to 2, 3, ... and presses Train
again, ``--runs`` times in all in the same session (``--reload``: opens each run's link afresh, a new session
each time).  With ``--close-during-run`` it then starts one run more and closes the tab while it trains.  It reads
the resident memory (VmRSS) of the server and its child processes at the start, after each run and every 0.2 s
in between (the peak), 2 s after the tab closed, and ``--wait`` seconds later, and prints them side by side for

  before   the tree at ``--before`` (default 850ecc9, the commit before issue 21's fix), unpacked with git archive
  no trim  this tree with BACKPROP_LAB_HEAP_TRIM=0: the engine's heap setting with nothing handing memory back
  after    this tree

with the budget the README states (see "Running it for others"): no run in progress, at most the idle server
(the start) + BACKPROP_LAB_CACHE_MB + BACKPROP_LAB_SESSION_MB + 100 MB; and as much 60 s after the tab closed.

    python benchmarks/bench_server_memory.py                        # before and after: about 20 min on 2 cores
    python benchmarks/bench_server_memory.py --columns after --runs 3 --wait 10
    python benchmarks/bench_server_memory.py --columns before,no-trim,after --close-during-run
    python benchmarks/bench_server_memory.py --columns after --inspect    # + what holds the memory, at each point

``--inspect`` runs the server under benchmarks/server_inspect.py, which reports at each point what holds the
memory (glibc's heap, the run cache, the sessions and their runs, runs held elsewhere with the chain of objects
that keeps them, the largest numpy arrays; ``--tracemalloc N``: the lines that allocated what is alive).
Never fails on a figure: one over the budget is printed as OVER.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20
LINK = "/train?depth=100&width=512&samples=5000&epochs=2&batch_size=512&optimizer=sgd&lr=0.0001"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SLACK_MB = 100  # the README's allowance for the heap beyond the two budgets (measured: 30 MB after the runs)
BEFORE = "850ecc9"  # the commit before issue 21's fix


def resident_mb(pid: int) -> float:
    """VmRSS of ``pid`` and every process under it, in MB (0 for a process that has gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


class PeakWatch:
    """The largest resident memory seen, sampled every ``every`` seconds in a thread."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, resident_mb(self.pid))
            self._stop.wait(self.every)

    def close(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def start_server(tree: Path, env: dict, inspect_dir: str | None, frames: int):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["app.py", "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
            "--browser.gatherUsageStats", "false"]
    if inspect_dir:
        cmd = [sys.executable, str(Path(__file__).with_name("server_inspect.py")), inspect_dir,
               "--tracemalloc", str(frames), "--", *args]
    else:
        cmd = [sys.executable, "-m", "streamlit", "run", *args]
    log = open(Path(tempfile.gettempdir()) / f"bench_server_memory_{port}.log", "w")
    proc = subprocess.Popen(cmd, cwd=tree, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("streamlit did not start")


def settle(page, timeout=120.0) -> None:
    """Until the number of elements on the page has stayed the same for 1 s."""
    deadline = time.time() + timeout
    last, since = -1, time.time()
    while time.time() < deadline:
        count = page.locator("[data-testid=stElementContainer]").count()
        if count != last:
            last, since = count, time.time()
        elif time.time() - since > 1.0:
            return
        time.sleep(0.1)


def press_train(page, url: str, seed: int, reload: bool) -> None:
    """Open the link (the first run, or every run with ``reload``) or change the seed, and press Train."""
    if reload or seed == 1:
        page.goto(f"{url}{LINK}&seed={seed}")
        page.get_by_role("button", name="Train").first.wait_for(timeout=60_000)
        settle(page)
    else:
        box = page.get_by_label("seed")
        box.fill(str(seed))
        box.press("Tab")
    page.locator("[data-testid=stSidebar]").get_by_role("button", name="Train").click()
    # the progress bar is on screen while the run trains (the last run's results stay there meanwhile)
    page.locator("[data-testid=stProgress]").first.wait_for(timeout=600_000)


def sequence(label: str, tree: Path, env: dict, opts) -> dict:
    """The sequence on a fresh server; the resident memory at each point, in MB."""
    from playwright.sync_api import sync_playwright

    inspect_dir = tempfile.mkdtemp(prefix="bench_mem_") if opts.inspect else None
    proc, url = start_server(tree, {"BACKPROP_LAB_STORE": "off", "BACKPROP_LAB_WARM_PRICES": "0", **env},
                             inspect_dir, opts.tracemalloc)
    reports, figures = [], {"runs": []}

    def report(point: str) -> None:
        if inspect_dir:
            path = Path(inspect_dir) / f"report-{len(reports)}.txt"
            os.kill(proc.pid, signal.SIGUSR1)
            for _ in range(1200):
                if path.exists() and path.read_text().endswith("END\n"):
                    break
                time.sleep(0.1)
            reports.append((point, path.read_text() if path.exists() else "(no report)"))

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url + "/train")
            page.get_by_role("button", name="Train").first.wait_for(timeout=60_000)
            settle(page)
            figures["start"] = resident_mb(proc.pid)
            report("start")
            watch = PeakWatch(proc.pid)
            for seed in range(1, opts.runs + 1):
                began = time.time()
                press_train(page, url, seed, opts.reload)
                page.locator("[data-testid=stProgress]").first.wait_for(state="detached", timeout=3_600_000)
                page.get_by_text("Finished all 2 epochs").first.wait_for(timeout=60_000)
                settle(page)
                figures["runs"].append(resident_mb(proc.pid))
                print(f"  {label}: run {seed:2d} in {time.time() - began:5.1f} s, {figures['runs'][-1]:6.0f} MB",
                      flush=True)
                report(f"after run {seed}")
            if opts.close_during_run:
                press_train(page, url, opts.runs + 1, opts.reload)
                page.get_by_text("of 2, loss").first.wait_for(timeout=600_000)  # a record taken: it is training
            page.close()
            browser.close()
        time.sleep(2.0)  # the websocket's close reaches the server
        figures["closed"] = resident_mb(proc.pid)
        report("tab closed")
        time.sleep(max(0.0, opts.wait - 2.0))
        figures["later"] = resident_mb(proc.pid)
        figures["peak"] = max(watch.close(), figures["later"])
        report(f"{opts.wait:g} s after")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    for point, text in reports:
        print(f"\n===== {label}: {point} =====\n{text}", end="")
    return figures


def unpack(rev: str) -> Path:
    """The tree at ``rev``, in a temporary folder (git archive: nothing in this repository changes)."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench_mem_{rev}_"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def budget_mb() -> tuple[float, float]:
    """The README's budget beyond the idle server: (the session's and the cache's budgets, the slack), in MB."""
    sys.path.insert(0, str(ROOT))
    from lab.serving.limits import Limits

    limits = Limits.from_env()
    return limits.session_mb + limits.cache_mb, SLACK_MB


def table(results: dict[str, dict], opts) -> None:
    runs = max(len(r["runs"]) for r in results.values())
    rows = [("start (idle, Train open)", lambda r: r["start"])]
    rows += [(f"after run {i + 1}", lambda r, i=i: r["runs"][i] if i < len(r["runs"]) else float("nan"))
             for i in range(runs)]
    rows += [("peak", lambda r: r["peak"]), ("2 s after the tab closed", lambda r: r["closed"]),
             (f"{opts.wait:g} s after the tab closed", lambda r: r["later"])]
    print(f"\nresident memory, MB: {runs} runs of {LINK}&seed=1..{runs}, "
          + ("each link opened afresh" if opts.reload else "one session")
          + ("; the tab closed while one more run trained" if opts.close_during_run else ""))
    print(f"{'':<28}" + "".join(f"{label:>10}" for label in results))
    for name, get in rows:
        print(f"{name:<28}" + "".join(f"{get(r):10.0f}" for r in results.values()))
    budgets, slack = budget_mb()
    print(f"\nbudget (README): the start + BACKPROP_LAB_SESSION_MB + BACKPROP_LAB_CACHE_MB ({budgets:.0f} MB here) "
          f"+ {slack:.0f} MB, after any run and {opts.wait:g} s after the tab closed (one session)")
    for label, r in results.items():
        limit = r["start"] + budgets + slack
        worst = max([*r["runs"], r["later"]])
        print(f"  {label:>8}: highest after a run or {opts.wait:g} s after the close {worst:6.0f} MB, limit "
              f"{limit:6.0f} MB: {'within' if worst <= limit else 'OVER'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds after the tab closes")
    parser.add_argument("--columns", default="before,after", help="any of before, no-trim, after")
    parser.add_argument("--before", default=BEFORE, help="the commit the 'before' column runs")
    parser.add_argument("--reload", action="store_true", help="open each run's link afresh (a new session each run)")
    parser.add_argument("--close-during-run", action="store_true", help="close the tab while one more run trains")
    parser.add_argument("--inspect", action="store_true", help="report what holds the memory at each point")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                        help="with --inspect: trace allocations, FRAMES deep (slow)")
    opts = parser.parse_args()
    columns = {"before": lambda: (unpack(opts.before), {}), "no-trim": lambda: (ROOT, {"BACKPROP_LAB_HEAP_TRIM": "0"}),
               "after": lambda: (ROOT, {})}
    results = {}
    for label in opts.columns.split(","):
        tree, env = columns[label]()
        try:
            results[label] = sequence(label, tree, env, opts)
        finally:
            if tree != ROOT:
                shutil.rmtree(tree, ignore_errors=True)
    table(results, opts)


if __name__ == "__main__":
    main()
