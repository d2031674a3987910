"""The exported figures are standalone: they draw in Chromium with the network off (plotly.js inside
the HTML, or beside it in the ZIP), not a blank page waiting for a CDN."""
from __future__ import annotations

import io
import zipfile

import pytest
from browser_kit import sync_api

from lab import RunConfig, train
from lab.report import charts
from lab.serving import export


@pytest.fixture
def offline(browser):
    """A browser context with the network off: every http(s) request is refused (in the Chromium of the browser
    tests, tests/conftest.py)."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_offline(True)
    refused = []
    context.route("http*://**", lambda route: (refused.append(route.request.url), route.abort()))
    yield context, refused
    context.close()


def draws(context, path) -> bool:
    page = context.new_page()
    try:
        page.goto(path.as_uri())
        page.wait_for_timeout(300)
        try:
            page.locator(".main-svg").first.wait_for(timeout=10_000)
        except sync_api.TimeoutError:
            return False
        return page.locator(".gtitle").count() > 0 and page.locator(".scatterlayer .trace").count() > 0
    finally:
        page.close()


@pytest.fixture(scope="module")
def run():
    return train(RunConfig(samples=100, epochs=2, depth=3, width=8, dtype="float32"))


def test_a_figure_downloaded_as_html_draws_offline(offline, run, tmp_path):
    context, refused = offline
    path = tmp_path / "loss.html"
    path.write_text(charts.figure_html(charts.loss_figure(run.history)), encoding="utf-8")
    assert draws(context, path), f"blank offline; it asked the network for {refused}"


def test_the_zip_s_figures_draw_offline(offline, run, tmp_path):
    context, refused = offline
    figures = {"loss": charts.loss_figure(run.history), "profile": charts.profile_figure(run.layers, 2)}
    raw = export.runs_zip({"r": run}, *charts.zip_figures(figures))
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        z.extractall(tmp_path)
    for name in figures:
        assert draws(context, tmp_path / "figures" / f"{name}.html"), f"{name}: blank offline ({refused})"
