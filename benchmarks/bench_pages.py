"""Page paint times and the Train page's default run, in a real browser.

Starts `streamlit run app.py` on a loopback port, opens every page in headless Chromium
(Playwright) and prints, for a cold load (fresh server, empty caches) and a warm one,
the seconds until the page has finished running and nothing is left loading.  Then it
presses Train with the default settings and reports the run's own wall time (from the
engine) beside the time until the charts are on screen, and the same run in a plain
Python process as the baseline.

    python benchmarks/bench_pages.py            # needs playwright and /usr/bin/chromium
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# page -> (path, what is on screen when the page has painted completely: selector, count)
PAGES = {
    "Home": ("", ("text=Measured: layer 1 gets", 8)),
    "Train": ("train", ("text=Press Train in the sidebar", 1)),
    "Init explorer": ("init_explorer", (".js-plotly-plot", 3)),
    "Compare": ("compare", ("text=Press Run comparison", 1)),
    "Phase diagram": ("phase_diagram", ("text=Press Run the sweep", 1)),
    "Chain rule": ("chain_rule", ("[data-testid=stGraphVizChart] svg", 1)),
    "Softmax with loss": ("softmax_loss", (".js-plotly-plot", 1)),
    "Gradient check": ("gradient_check", (".js-plotly-plot", 2)),
}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def start_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("streamlit did not start")


def painted(page, selector: str, count: int, timeout=60.0) -> None:
    """Until ``count`` elements match ``selector`` (the page's last piece is drawn)."""
    deadline = time.time() + timeout
    while time.time() < deadline and page.locator(selector).count() < count:
        time.sleep(0.02)


def settle(page, timeout=120.0) -> None:
    """Until the script has finished and no element is still a loading skeleton."""
    deadline = time.time() + timeout
    page.wait_for_selector("[data-testid=stApp]", timeout=timeout * 1000)
    quiet_since = None
    while time.time() < deadline:
        busy = page.locator("[data-testid=stStatusWidget]").count() + page.locator("[data-testid=stSkeleton]").count()
        if busy == 0:
            quiet_since = quiet_since or time.time()
            if time.time() - quiet_since > 0.3:
                return
        else:
            quiet_since = None
        time.sleep(0.05)


def main() -> None:
    from playwright.sync_api import sync_playwright

    from lab import train
    from pages.ui.widgets import ui_defaults

    proc, url = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            print(f"{'page':<20}{'title (s)':>12}{'cold load (s)':>15}{'warm load (s)':>15}")
            for name, (path, (selector, count)) in PAGES.items():
                times, title = [], 0.0
                for _ in range(2):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    start = time.perf_counter()
                    page.goto(f"{url}/{path}")
                    page.locator("h1").first.wait_for(timeout=60_000)
                    title = time.perf_counter() - start
                    painted(page, selector, count)
                    times.append(time.perf_counter() - start)
                    page.close()
                print(f"{name:<20}{title:>12.2f}{times[0]:>15.2f}{times[1]:>15.2f}")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/train")
            settle(page)
            start = time.perf_counter()
            page.get_by_role("button", name="Train").first.click()
            page.get_by_role("heading", name="Per-layer statistics").wait_for(timeout=120_000)
            settle(page)
            on_screen = time.perf_counter() - start - 0.3
            status = page.get_by_text("records in").first.inner_text()
            browser.close()
        engine_wall = float(status.split("records in")[1].split("s")[0])
        start = time.perf_counter()
        train(ui_defaults())
        baseline = time.perf_counter() - start
        print(f"\nTrain page default run ({ui_defaults().depth} layers of {ui_defaults().width}, "
              f"{ui_defaults().epochs} epochs, {ui_defaults().samples} spiral points, {ui_defaults().dtype}):")
        print(f"  in the browser: training {engine_wall:.2f} s (live charts included), "
              f"all charts on screen after {on_screen:.2f} s")
        print(f"  baseline, the same run in a plain Python process: {baseline:.2f} s   (target: under 2 s)")
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
