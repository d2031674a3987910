"""What one user can cost the server: memory after many large runs, and the time Stop takes.

Starts `streamlit run app.py` on a loopback port and drives it in headless Chromium:

1. **Memory**: opens `/train?depth=100&width=512&epochs=0` (the audit's case), then presses
   Train ten times (RUNS=N for another number) with a new seed each time, and prints the server's resident memory after
   each run beside the idle server's (the baseline), and again after the tab is closed.
2. **Stop**: starts a long run (depth 100 x width 512, batch 8, records only at the start and
   the end), presses Stop, and prints how long the server's CPU stays busy afterwards.
3. **Import bomb**: a ZIP of about 190 KB whose runs.json would expand to 189 MB, loaded in
   this process: the seconds and the peak memory until it is refused.

    python benchmarks/bench_server.py           # needs playwright and /usr/bin/chromium
"""
from __future__ import annotations

import io
import os
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

from bench_pages import ARGS, start_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MB = 2**20
RUNS = int(os.environ.get("RUNS", "10"))  # large runs in one session


def resident(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(page, timeout=120.0) -> None:
    deadline = time.time() + timeout
    last, since = -1, time.time()
    while time.time() < deadline:
        busy = page.locator("[data-testid=stStatusWidget]").count()
        count = page.locator("[data-testid=stElementContainer]").count()
        if busy or count != last:
            last, since = count, time.time()
        elif time.time() - since > 1.0:
            return
        time.sleep(0.1)


def memory(browser, url, pid) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + "/train?depth=100&width=512&epochs=0")
    page.get_by_role("button", name="Train").first.wait_for(timeout=60_000)
    settle(page)
    idle = resident(pid)
    print(f"idle server, Train page open: {idle:7.0f} MB (baseline)")
    for seed in range(1, RUNS + 1):
        box = page.get_by_label("seed")
        box.fill(str(seed))
        page.get_by_role("button", name="Train").first.click()
        page.get_by_text("initialization only").first.wait_for(timeout=120_000)
        settle(page)
        print(f"after run {seed:2d}:                 {resident(pid):7.0f} MB  (+{resident(pid) - idle:.0f} MB)")
    page.close()
    time.sleep(5)
    print(f"5 s after the tab closed:      {resident(pid):7.0f} MB  (+{resident(pid) - idle:.0f} MB)")


def stop(browser, url, pid) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + "/train?depth=100&width=512&samples=400&epochs=20&batch_size=8&record_every=100000&optimizer=sgd&lr=0.0001")
    page.get_by_role("button", name="Train").first.click()
    page.get_by_text("of 20, loss").first.wait_for(timeout=60_000)
    time.sleep(2.0)
    before = cpu_seconds(pid)
    time.sleep(1.0)
    print(f"training: the server uses {cpu_seconds(pid) - before:.2f} s of CPU per second (baseline)")
    clicked = time.perf_counter()
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Stopped at epoch").first.wait_for(timeout=60_000)
    print(f"Stop pressed: 'Stopped at epoch' on screen after {time.perf_counter() - clicked:.2f} s")
    settle(page)
    before = cpu_seconds(pid)
    time.sleep(1.0)
    print(f"after the page settled: {cpu_seconds(pid) - before:.2f} s of CPU per second")
    page.close()


def bomb() -> None:
    from lab.serving.export import ImportFormatError, load_runs

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("runs.json", b" " * (189 * MB))
    raw = buf.getvalue()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        load_runs(raw)
        outcome = "loaded (!)"
    except ImportFormatError as exc:
        outcome = f"refused: {exc}"
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"import bomb of {len(raw) / 1024:.0f} KB: {outcome}; {seconds * 1000:.1f} ms, peak {peak / MB:.1f} MB "
          "(audit before the change: 40 s and 2.7 GB)")


def main() -> None:
    from playwright.sync_api import sync_playwright

    bomb()
    proc, url = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            memory(browser, url, proc.pid)
            stop(browser, url, proc.pid)
            browser.close()
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
