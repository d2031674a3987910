"""Every layout holds at 1000 px: no text cut off (clipped, cut with an ellipsis or behind a scroll bar)
and no chart title outside its chart or on top of another, found in the DOM of a real browser.

The check is tests/layout_check.js: a text element is cut when its scrollWidth exceeds its clientWidth
(where it hides what overflows); chart titles are plotly's .gtitle and annotation texts, compared by
bounding box.  Screenshots land in tests/screenshots/ (look at them).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from browser_kit import SERVER, shared_context, sync_api
from browser_kit import no_exception as _no_exception
from browser_kit import open_page as _open
from browser_kit import settle as _settle
from browser_kit import shot as _shot

CHECK = (Path(__file__).parent / "layout_check.js").read_text()


@pytest.fixture
def narrow(browser):
    """A context of 1000 x 1200 px, shared by the module's tabs (and their HTTP cache)."""
    return shared_context(1000, 1200)


@pytest.fixture
def page(narrow):
    pg = narrow.new_page()
    yield pg
    pg.close()


AT_THE_BOTTOM = """() => {
  const main = document.querySelector('[data-testid=stMain]');  // the page's scroll container
  return main.scrollTop + main.clientHeight >= main.scrollHeight - 2;
}"""


def problems(page) -> list[dict]:
    """What layout_check.js finds, after a scroll through the page: Streamlit draws some elements (the
    equations, the charts) only once they come into view.  It scrolls by less than the viewport's height, so
    that every element is in view at some point, until it is at the bottom twice in a row (an element drawn
    on the way may lengthen the page), at most 12,000 px."""
    page.mouse.move(600, 600)
    bottom = 0
    for _ in range(12):
        page.mouse.wheel(0, 1000)
        page.wait_for_timeout(150)
        bottom = bottom + 1 if page.evaluate(AT_THE_BOTTOM) else 0
        if bottom == 2:
            break
    page.mouse.wheel(0, -30_000)
    _settle(page)
    page.wait_for_timeout(500)
    return page.evaluate(CHECK)


def test_softmax_with_loss_holds_at_1000_px(server, page):
    _open(page, f"{server}/softmax_loss", "Softmax with loss")
    sync_api.expect(page.locator(".js-plotly-plot")).not_to_have_count(0, timeout=30_000)
    _no_exception(page)
    assert problems(page) == []
    # six classes: the widest vectors and the 6 x 6 Jacobian
    slider = page.get_by_role("slider").first
    slider.focus()
    slider.press("End")
    page.get_by_text("logit a5").wait_for(timeout=30_000)
    _settle(page)
    _shot(page, "softmax_loss_1000")
    assert problems(page) == []


def test_gradient_check_holds_at_1000_px(server, page):
    _open(page, f"{server}/gradient_check", "Gradient check")
    sync_api.expect(page.locator(".js-plotly-plot")).not_to_have_count(0, timeout=30_000)
    _no_exception(page)
    _shot(page, "gradient_check_1000")
    assert problems(page) == []


def test_train_holds_at_1000_px(server, page):
    """The preview, the results of a 50-layer run (its network diagram draws every third layer) and
    the live view while it plays."""
    _open(page, f"{server}/train?depth=50&epochs=20", "Train a network and watch its gradients")
    _no_exception(page)
    assert problems(page) == []  # what will be trained: the data and the network
    sidebar = page.locator("[data-testid=stSidebar]")
    sidebar.get_by_role("button", name="Train", exact=True).click()
    page.get_by_role("heading", name="1. Learning curves").wait_for(timeout=240_000)
    _settle(page)
    _no_exception(page)
    _shot(page, "train_depth50_1000")
    assert problems(page) == []
    sidebar.get_by_role("button", name="Play").click()
    page.get_by_role("button", name="Pause").wait_for(timeout=60_000)
    page.wait_for_timeout(2000)
    assert page.evaluate(CHECK) == []  # the live view, as it plays


def test_a_one_run_overlay_on_runs_holds_at_1000_px(server, page):
    """One stored run with a long name, overlaid: its name once wrapped into the figure's title."""
    from lab import RunConfig, train
    from lab.store.runstore import open_store

    with open_store(SERVER["store"]) as store:
        store.save(train(RunConfig(depth=30, width=16, epochs=5, samples=200)), "relu/he_normal 30×16 (layout)", "cli")
    _open(page, f"{server}/runs", "Runs")
    option = page.get_by_role("option", name="relu/he_normal 30×16 (layout)", exact=False).first
    page.get_by_role("combobox", name="select runs").click()
    try:
        option.wait_for(timeout=10_000)
    except sync_api.TimeoutError:
        # once, with both cores busy (load 10), no option showed within 30 s; the cause is not established (a click
        # lost while the page still draws its table, as Train's can be: test_browser._start_long_run); open it again
        page.keyboard.press("Escape")
        _settle(page)
        page.get_by_role("combobox", name="select runs").click()
    option.click()
    page.keyboard.press("Escape")
    sync_api.expect(page.locator(".js-plotly-plot")).to_have_count(2, timeout=30_000)
    _settle(page)
    _no_exception(page)
    _shot(page, "runs_one_1000")
    assert problems(page) == []
