"""Page paint times, the two default runs behind a button, and the Train page's default run, in a real browser.

Starts `streamlit run app.py` on a loopback port, opens every page in headless Chromium
(Playwright) and prints, for a cold load (fresh server, empty caches) and a warm one,
the seconds until the page's last piece is drawn.  Compare and Phase diagram are also
timed from pressing their button (the default comparison, the default sweep) until the
charts are drawn, first (cold) and again (warm).  Then it presses Train with the default
settings and reports the run's own wall time (from the engine) beside the time until
the charts are on screen, and the same run in a plain Python process as the baseline.

Last, what each page sends: the pages run once more in-process (Streamlit's AppTest), and
for each the script's own time, the number of plotly figures, their traces, and the size
of the figure JSON that goes over the websocket (the spec in each chart's message).

    python benchmarks/bench_pages.py            # needs playwright and /usr/bin/chromium
"""
from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.experiments.presets import CURES, PRESETS  # noqa: E402

HOME_BUTTONS = len(PRESETS) + sum(len(c.variants) for c in CURES.values())  # one "Open in Train" per line
# page -> (path, what is on screen when the page has painted completely: selector, count)
PAGES = {
    "Home": ("", ("button:has-text('Open in Train')", HOME_BUTTONS)),
    "Train": ("train", (".js-plotly-plot", 2)),  # the data beside the network, before anything trains
    "Init explorer": ("init_explorer", (".js-plotly-plot", 3)),
    "Compare": ("compare", ("text=Press Run comparison", 1)),
    "Phase diagram": ("phase_diagram", ("text=Press Run the sweep", 1)),
    "Chain rule": ("chain_rule", ("[data-testid=stGraphVizChart] svg", 1)),
    "Softmax with loss": ("softmax_loss", (".js-plotly-plot", 1)),
    "Gradient check": ("gradient_check", (".js-plotly-plot", 2)),
}
# (name, page path, button, what is on screen when its result has been drawn, target s)
PRESSES = [
    # the comparison's two charts and, under them, the session panel's two (the runs just made, overlaid)
    ("Compare default", "compare", "Run comparison", ((".js-plotly-plot", 4), ("text=Take it with you", 1)), 4.0),
    ("Phase diagram default", "phase_diagram", "Run the sweep", ((".js-plotly-plot", 1),), 5.0),
]
TARGET_COLD, TARGET_WARM = 2.5, 1.5
STATUS = re.compile(r"epochs? in ([0-9.]+) s")  # the Train page's status line: "..., 200 epochs in 1.23 s"
VIEWPORT = {"width": 1400, "height": 1000}
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


def painted(page, selector: str, count: int, timeout=120.0) -> None:
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


def open_page(browser, url: str, path: str, selector: str, count: int) -> tuple:
    """A new tab in a new browser context (an empty cache) at ``path``, and the seconds until ``count``
    elements match ``selector``."""
    page = browser.new_page(viewport=VIEWPORT)
    start = time.perf_counter()
    page.goto(f"{url}/{path}")
    painted(page, selector, count)
    return page, time.perf_counter() - start


def press(browser, url: str, path: str, button: str, done) -> float:
    """Seconds from pressing ``button`` on a freshly painted ``path`` until every (selector, count) in ``done``."""
    page, _ = open_page(browser, url, path, f"button:has-text('{button}')", 1)
    settle(page)
    start = time.perf_counter()
    page.get_by_role("button", name=button).first.click()
    for selector, count in done:
        painted(page, selector, count)
    seconds = time.perf_counter() - start
    page.close()
    return seconds


def _until_text(page, text: str, start: float, timeout=60.0) -> float:
    """Seconds from ``start`` until ``text`` is on the page."""
    page.get_by_text(text).first.wait_for(timeout=timeout * 1000)
    return time.perf_counter() - start


FIGURE_DATA = """(title) => {
  const plot = [...document.querySelectorAll('.js-plotly-plot')]
    .find(p => ((p.layout || {}).title || {}).text?.includes(title));
  return plot ? JSON.stringify(plot.data.map(d => d.y)) : null;
}"""


def slider_redraws(page) -> dict:
    """Seconds from one arrow-key step of the epoch and the snapshot sliders until their chart has new data
    (each section is a fragment: only it reruns)."""
    out = {}
    for name, index, title in (("epoch", 0, "Gradient profile at epoch"), ("snapshot", 1, "Activations per layer")):
        before = page.evaluate(FIGURE_DATA, title)
        thumb = page.locator("[data-testid=stMain]").get_by_role("slider").nth(index)
        thumb.focus()
        start = time.perf_counter()
        thumb.press("ArrowLeft")
        deadline = start + 30
        while time.perf_counter() < deadline and page.evaluate(FIGURE_DATA, title) == before:
            time.sleep(0.02)
        out[name] = time.perf_counter() - start
        settle(page)
    return out


def figure_stats() -> dict:
    """page -> (script seconds, figures, traces, bytes of figure JSON), each page run in-process by AppTest."""
    from streamlit.testing.v1 import AppTest

    def stats(at, seconds):
        figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        return seconds, len(figs), sum(len(f.get("data", [])) for f in figs), \
            sum(len(c.proto.spec) for c in at.get("plotly_chart"))

    out = {}
    for name, (path, _) in PAGES.items():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        start = time.perf_counter()
        at.run()  # Home, the default page
        if path:
            start = time.perf_counter()
            at.switch_page(f"pages/{path}.py").run()
        out[name] = stats(at, time.perf_counter() - start)
        if name == "Train":
            start = time.perf_counter()
            at.sidebar.form_submit_button[0].click().run()
            out["Train default run"] = stats(at, time.perf_counter() - start)
        for press_name, press_path, *_ in PRESSES:
            if press_path == path:
                start = time.perf_counter()
                at.form_submit_button[0].click().run()
                out[press_name] = stats(at, time.perf_counter() - start)
    return out


def main() -> None:
    from playwright.sync_api import sync_playwright

    from lab import train
    from pages.ui.widgets import ui_defaults

    rows = {}
    proc, url = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for name, (path, (selector, count)) in PAGES.items():
                page, cold = open_page(browser, url, path, selector, count)
                via = "Home" if name == "Train" else "Train"  # there and back by the sidebar, in the same tab
                page.locator("[data-testid=stSidebarNavLink]", has_text=via).first.click()
                painted(page, *PAGES[via][1])
                start = time.perf_counter()
                page.locator("[data-testid=stSidebarNavLink]", has_text=name).first.click()
                painted(page, selector, count)
                navigated = time.perf_counter() - start
                page.close()
                page, warm = open_page(browser, url, path, selector, count)
                page.close()
                rows[name] = (cold, warm, navigated, f"{TARGET_COLD:g} / {TARGET_WARM:g}")
            for name, path, button, done, target in PRESSES:
                rows[name] = (press(browser, url, path, button, done), press(browser, url, path, button, done),
                              math.nan, f"{target:g}")
            print("cold: the page's first visit since the server started, loaded afresh in a new browser;\n"
                  "warm: loaded afresh again in a new browser (the server's caches warm; plotly.js etc. parsed again);\n"
                  "back: from another page of the app by the sidebar, in the tab of the cold visit (no reload).\n"
                  "For a button: the first press and the second, each on a page loaded afresh.")
            print(f"{'page':<24}{'cold (s)':>10}{'warm (s)':>10}{'back (s)':>10}{'target (s)':>12}")
            for name, (cold, warm, back, target) in rows.items():
                print(f"{name:<24}{cold:>10.2f}{warm:>10.2f}{back:>10.2f}{target:>12}", flush=True)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/train")
            settle(page)
            start = time.perf_counter()
            page.get_by_role("button", name="Train").first.click()
            first_live = _until_text(page, "Loss so far", start)
            page.get_by_role("heading", name="Per-layer statistics").wait_for(timeout=120_000)
            settle(page)
            on_screen = time.perf_counter() - start - 0.3
            status = page.get_by_text(STATUS).first.inner_text(timeout=10_000)
            sliders = slider_redraws(page)
            page.close()
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/train?epochs=2000")
            painted(page, "text=What will be trained", 1)
            settle(page)
            start = time.perf_counter()
            page.locator("[data-testid=stSidebar]").get_by_role("button", name="Play").click()
            play_first = _until_text(page, "Loss so far", start)
            browser.close()
    finally:
        proc.terminate()
        proc.wait()
    engine_wall = float(STATUS.search(status).group(1))
    start = time.perf_counter()
    train(ui_defaults())
    baseline = time.perf_counter() - start
    print(f"\nTrain page default run ({ui_defaults().depth} layers of {ui_defaults().width}, "
          f"{ui_defaults().epochs} epochs, {ui_defaults().samples} spiral points, {ui_defaults().dtype}):")
    print(f"  in the browser: training {engine_wall:.2f} s (live charts included), "
          f"all charts on screen after {on_screen:.2f} s   (target: 2.5 s)")
    print(f"  baseline, the same run in a plain Python process: {baseline:.2f} s   (target: under 2 s)")
    print(f"  first live chart after pressing Train: {first_live:.2f} s; after pressing Play (2000 epochs): "
          f"{play_first:.2f} s   (target: 1 s)")
    for name, seconds in sliders.items():
        print(f"  moving the {name} slider one step: its chart redrawn after {seconds:.2f} s   (target: 0.5 s)")

    print("\nWhat each page sends (in-process, AppTest, a fresh process: its caches start empty):")
    print(f"{'page':<24}{'script (s)':>11}{'figures':>9}{'traces':>8}{'figure JSON (kB)':>18}")
    for name, (seconds, figs, traces, size) in figure_stats().items():
        print(f"{name:<24}{seconds:>11.2f}{figs:>9}{traces:>8}{size / 1000:>18.1f}")


if __name__ == "__main__":
    main()
