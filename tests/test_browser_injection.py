"""Issue 21, finding 4: every string of an imported run reaches the pages as plain text, in a real browser.

An export plants Markdown and HTML in each of its runs' string fields (name, a CSV run's file and label
column, diverge_reason, fields the loader ignores) and the upload's file name; two more files plant them
where the loader refuses them (a setting, a history cell).  The runs are loaded on Compare (the session
panel), listed on Runs and one is opened on Train.  Every page's DOM is checked for what the Markdown or
HTML would have made (an image or a link to the planted host, a javascript: link, bold text), and a small
HTTP server on the planted port counts the requests that reached it: none may.  Skips, as
the other browser tests do (tests/browser_kit.py), when Playwright or Chromium is missing.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from browser_kit import SERVER
from browser_kit import free_port as _free_port
from browser_kit import no_exception as _no_exception
from browser_kit import open_page as _open
from browser_kit import settle as _settle

from lab import RunConfig, train
from lab.serving.export import runs_json

FOUND = """(host) => {
  const found = [];
  for (const img of document.querySelectorAll('img')) {
    const src = img.getAttribute('src') || '';
    if (src.includes(host) || src.includes('pixel')) found.push('img ' + src);
  }
  for (const a of document.querySelectorAll('a')) {  // HTML and SVG (plotly) links
    const href = (a.getAttribute('href') || a.getAttribute('xlink:href') || '').trim().toLowerCase();
    if (href.includes(host) || href.startsWith('javascript')) found.push('a ' + href);
  }
  for (const el of document.querySelectorAll('strong, b, em, i')) {
    if (el.textContent.includes('planted')) found.push(el.tagName + ' ' + el.textContent);
  }
  return found;
}"""


@pytest.fixture(scope="module")
def pixel_server():
    """A server on the planted port that answers every request with an image and keeps its path."""
    hits: list[str] = []

    class Pixel(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", _free_port()), Pixel)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def _payloads(host: str) -> list[str]:
    """Markdown and HTML that would fetch from or link to ``host``, or show bold text, if interpreted."""
    return [f"![planted](http://{host}/pixel.png) **planted bold**",
            f"<img src=http://{host}/pixel.png> <b>planted b</b>",
            f"[planted link](javascript:alert(1)) [planted](http://{host}/a) <a href=http://{host}/b>planted</a>",
            f"http://{host}/bare *planted em* <script>fetch('http://{host}/s')</script>"]


def _export(host: str) -> tuple[bytes, bytes, bytes, str]:
    """A loadable export with every string field planted, two that the loader refuses, and the name of the
    run to open on Train (diverged, so that its reason is shown)."""
    first, second, third, fourth = _payloads(host)
    small = train(RunConfig(samples=80, epochs=2, depth=2, width=4))
    diverged = train(RunConfig(samples=80, epochs=5, depth=2, width=4, optimizer="sgd", lr=1e4, init="normal",
                               init_scale=10.0))
    assert diverged.diverged_at is not None
    doc = json.loads(runs_json({first: small, second: small, third: diverged}))
    for entry in doc["runs"]:
        entry["meta"] = {"note": fourth}  # ignored by the loader, but planted all the same
        entry["result"]["comment"] = fourth
    opened = doc["runs"][2]
    opened["config"].update(dataset="csv", data_path=f"{fourth}.csv", label=first)
    opened["result"]["diverge_reason"] = " ".join(_payloads(host))
    good = json.dumps(doc).encode()
    bad_setting = json.loads(good)
    bad_setting["runs"][0]["config"]["activation"] = second  # refused: its words quoted as plain text
    bad_cell = json.loads(good)
    bad_cell["runs"][0]["history"]["loss"][0] = first  # refused: a history cell that is not a number
    return good, json.dumps(bad_setting).encode(), json.dumps(bad_cell).encode(), third


def _clean(page, host: str, where: str) -> None:
    _no_exception(page)
    found = page.evaluate(FOUND, host)
    assert not found, f"{where}: {found}"


def _upload(page, name: str, raw: bytes) -> None:
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(
        files=[{"name": name, "mimeType": "application/json", "buffer": raw}])


def test_planted_markdown_and_html_stay_plain_text_on_every_page(server, context, pixel_server):
    from lab.store.runstore import open_store

    host, hits = pixel_server
    good, bad_setting, bad_cell, opened = _export(host)
    page = context.new_page()
    try:
        _open(page, server + "/compare", "Compare initializations side by side")
        _upload(page, f"![planted](http://{host}/file.png).json", good)
        page.get_by_text("Loaded 3 runs:").wait_for(timeout=30_000)
        _settle(page)
        assert page.get_by_text(f"![planted](http://{host}/pixel.png) **planted bold**").count() >= 1  # as text
        _clean(page, host, "Compare, three runs loaded")
        for name, raw in (("setting.json", bad_setting), ("cell.json", bad_cell)):
            _upload(page, name, raw)
            page.get_by_text(f"{name}: run").wait_for(timeout=30_000)
            _settle(page)
            _clean(page, host, f"Compare, {name} refused")

        with open_store(SERVER["store"]) as store:
            stored = store.runs()
        (run_id,) = stored.loc[stored["name"] == opened, "id"]
        page.locator("[data-testid=stSidebarNav]").get_by_text("Runs", exact=True).click()  # the same session
        page.get_by_role("heading", name="Runs").first.wait_for(timeout=30_000)
        _settle(page)
        _clean(page, host, "Runs")
        page.locator("[data-testid=stMultiSelect]").first.click()
        page.get_by_role("option").filter(has_text=f"· #{run_id}").first.click()
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Open in Train").wait_for(timeout=30_000)
        _settle(page)
        _clean(page, host, "Runs, the planted run selected")
        page.get_by_role("button", name="Open in Train").click()
        page.get_by_role("heading", name="1. Learning curves").wait_for(timeout=60_000)
        _settle(page)
        _clean(page, host, "Train, the planted run opened")
        assert page.get_by_text(f"<img src=http://{host}/pixel.png>", exact=False).count() >= 1  # the reason
        page.get_by_text("go beyond what this page offers").first.wait_for(timeout=10_000)  # dataset=csv: left out
    finally:
        page.close()
    assert hits == [], f"the browser fetched {hits} from the planted host"
