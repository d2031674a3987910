"""The Train page's state follows the run, in a real browser (issue 22): a new run's charts open at its last
record, and no element of an earlier run is on screen while a new one trains or plays.

Uses the browser tests' server, browser and helpers (tests/browser_kit.py); skips as they do without Playwright or
Chromium.
"""
from __future__ import annotations

import time

from browser_kit import no_exception as _no_exception
from browser_kit import open_page as _open
from browser_kit import settle as _settle
from browser_kit import shot as _shot
from browser_kit import sync_api

TRAIN = "Train a network and watch its gradients"
# texts that only a finished run's results show: none of them may be on screen while another run trains
RESULTS_ONLY = ("Finished all", "1. Learning curves", "Per-layer statistics", "Take it with you", "At epoch 200")


def _sidebar(page):
    return page.locator("[data-testid=stSidebar]")


def _main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text()


def _at_the_last_epoch(page, last: int = 200):
    """The profile, its verdict and the histograms at the run's last record."""
    page.get_by_role("heading", name="Per-layer statistics").wait_for(timeout=120_000)
    _settle(page)
    _no_exception(page)
    text = _main_text(page)
    assert f"At epoch {last}:" in text and "At epoch 1:" not in text
    assert page.get_by_text(f"Gradient profile at epoch {last}").count() >= 1
    snapshot = page.get_by_role("slider", name="snapshot")  # the histograms' select slider
    assert snapshot.get_attribute("aria-valuetext") == f"epoch {last}", snapshot.get_attribute("aria-valuetext")


def test_step_then_train_opens_the_charts_at_the_last_epoch(server, page):
    _open(page, server + "/train?seed=31", TRAIN)
    _sidebar(page).get_by_role("button", name="Step").click()
    page.get_by_text("Paused at epoch 1 of 200").first.wait_for(timeout=60_000)
    _settle(page)
    _sidebar(page).get_by_role("button", name="Train").click()
    page.get_by_text("Finished all 200 epochs").first.wait_for(timeout=120_000)
    _at_the_last_epoch(page)
    _shot(page, "train_step_then_train")


def test_stop_then_a_new_run_opens_at_its_last_epoch(server, page):
    _open(page, server + "/train?seed=32&epochs=2000&samples=4000&depth=6&width=32", TRAIN)
    _sidebar(page).get_by_role("button", name="Train").click()
    page.get_by_text("of 2000, loss").first.wait_for(timeout=60_000)
    time.sleep(1.0)  # a few epochs recorded
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Paused at epoch").first.wait_for(timeout=60_000)
    _settle(page)
    assert "At epoch 200" not in _main_text(page)
    _sidebar(page).get_by_label("epochs (0 = only the record at initialization)").fill("200")  # a new run
    _sidebar(page).get_by_role("button", name="Train").click()
    page.get_by_text("Finished all 200 epochs").first.wait_for(timeout=120_000)
    _at_the_last_epoch(page)


def _no_earlier_run(page):
    text = _main_text(page)
    left = [t for t in RESULTS_ONLY if t in text]
    assert not left, f"the earlier run's {left} still on screen during a new run"


def test_no_element_of_an_earlier_run_is_on_screen_during_a_new_one(server, page):
    _open(page, server + "/train?seed=33&activation=relu&depth=10&samples=200", TRAIN)
    _sidebar(page).get_by_role("button", name="Train").click()
    page.get_by_text("Finished all 200 epochs").first.wait_for(timeout=120_000)
    _settle(page)
    # a tanh network of 40 layers, for 150 epochs of 200 examples: long enough (several seconds) to look at the page
    # while it trains
    _sidebar(page).get_by_role("combobox", name="activation").click()
    page.get_by_role("option", name="tanh", exact=True).click()
    depth = _sidebar(page).get_by_role("slider", name="depth (hidden layers)")
    depth.focus()
    for _ in range(30):
        depth.press("ArrowRight")
    sync_api.expect(depth).to_have_value("40", timeout=10_000)  # key presses may take a moment on a busy machine
    _sidebar(page).get_by_label("epochs (0 = only the record at initialization)").fill("150")
    _sidebar(page).get_by_role("button", name="Train").click()
    page.get_by_text("of 150, loss").first.wait_for(timeout=60_000)
    time.sleep(0.5)
    _no_earlier_run(page)
    assert "Training" in _main_text(page)  # the status says what is happening now
    page.get_by_text("Finished all 150 epochs").first.wait_for(timeout=180_000)
    _settle(page)
    # Play after a finished run: the same settings again from initialization, live
    _sidebar(page).get_by_role("button", name="Play").click()
    page.get_by_role("button", name="Pause").wait_for(timeout=60_000)
    page.get_by_text("Playing: epoch").first.wait_for(timeout=60_000)
    time.sleep(1.0)
    _no_earlier_run(page)
    _shot(page, "train_new_run_playing")
    clicked = time.perf_counter()
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("Paused at epoch").first.wait_for(timeout=30_000)
    answered = time.perf_counter() - clicked
    assert answered <= 3.0, f"the page said it paused {answered:.1f} s after Pause"
    _settle(page)
    page.get_by_role("heading", name="Per-layer statistics").wait_for(timeout=30_000)  # the paused run's results
    # Play again from the control bar: while it plays, the live charts are the page, the paused results gone
    page.locator("[data-testid=stMain]").get_by_role("button", name="Play").click()
    page.get_by_text("Playing: epoch").first.wait_for(timeout=60_000)
    time.sleep(1.0)
    left = [t for t in ("1. Learning curves", "Per-layer statistics", "Paused at") if t in _main_text(page)]
    assert not left, f"the paused results' {left} still on screen while the run plays"
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("Paused at epoch").first.wait_for(timeout=30_000)
    _settle(page)
    _no_exception(page)


def test_play_at_the_default_speed_takes_long_enough_to_watch(server, page):
    """The default run (200 epochs) at the speed control's default, 20 epochs a second: still playing after
    4 s, where as fast as it trains it was over in about 2 s; and its position moves on meanwhile."""
    _open(page, server + "/train?seed=34", TRAIN)
    speed = _sidebar(page).get_by_role("slider", name="Play speed (epochs per second)")
    assert speed.get_attribute("aria-valuetext") == "20", speed.get_attribute("aria-valuetext")
    _sidebar(page).get_by_role("button", name="Play").click()
    page.get_by_text("Playing: epoch").first.wait_for(timeout=60_000)
    started = time.perf_counter()
    first = page.get_by_text("Playing: epoch").first.inner_text()
    time.sleep(max(0.0, 4.0 - (time.perf_counter() - started)))
    try:  # the control bar is drawn again with every frame: at a busy moment the button may be gone for a while
        page.get_by_role("button", name="Pause").wait_for(timeout=5_000)
    except sync_api.TimeoutError:
        raise AssertionError(f"the default run finished within 4 s of Play: {_main_text(page)[:300]!r}") from None
    later = page.get_by_text("Playing: epoch").first.inner_text()
    assert later != first, "the run did not move on while playing"
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("Paused at epoch").first.wait_for(timeout=30_000)
    _settle(page)
    _no_exception(page)
