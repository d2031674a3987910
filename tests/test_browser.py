"""Every page in a real browser: streamlit run app.py, driven by Playwright in Debian's Chromium.

Screenshots land in tests/screenshots/ (look at them).  Skips, saying why, when
Playwright or Chromium is missing.
"""
from __future__ import annotations

import re
import time
import zipfile

from browser_kit import SERVER, cpu_seconds, no_exception, open_page, settle, shot, sync_api

# the fixtures server, browser, context and page are tests/conftest.py's: one server and one Chromium for all the
# browser modules
_open, _settle, _no_exception, _shot, _cpu_seconds = open_page, settle, no_exception, shot, cpu_seconds


def test_home_page_and_a_preset_that_opens_train_with_its_settings(server, page):
    _open(page, server, "Backprop Lab")
    from lab.experiments.presets import CURES, PRESETS

    variants = [c for c in CURES.values() for _ in c.variants]
    sync_api.expect(page.get_by_role("button", name="Open in Train")).to_have_count(len(PRESETS) + len(variants),
                                                                                   timeout=60_000)
    measured_at_init = len(PRESETS) + sum(not c.trained for c in variants)
    sync_api.expect(page.get_by_text("Measured: ")).to_have_count(measured_at_init, timeout=60_000)
    _no_exception(page)
    _shot(page, "home")
    page.get_by_role("button", name="Open in Train").first.click()
    page.get_by_role("heading", name="Train a network and watch its gradients").wait_for(timeout=30_000)
    activation = page.locator("[data-testid=stSidebar]").get_by_role("combobox", name="activation")
    sync_api.expect(activation).to_match_aria_snapshot('- combobox "activation": sigmoid', timeout=30_000)
    page.get_by_role("heading", name="Per-layer statistics").wait_for(timeout=120_000)  # it trained at once
    _settle(page)
    _no_exception(page)
    assert page.get_by_text("At initialization: vanishing.").count() >= 1
    _shot(page, "preset_sigmoid_xavier")


def test_init_explorer_page(server, page):
    _open(page, server + "/init_explorer", "Init explorer: two initializations side by side")
    page.get_by_text("Error signal per layer at initialization").first.wait_for(timeout=30_000)
    _no_exception(page)
    _shot(page, "init_explorer")


def test_compare_page_from_a_link_and_a_download(server, page, tmp_path):
    link = "/compare?vary=init&values=xavier_normal,he_normal,normal&depth=6&epochs=8"
    _open(page, server + link, "Compare initializations side by side")
    page.get_by_role("button", name="Run comparison").click()  # a link fills in the comparison and waits
    page.get_by_role("heading", name="Take it with you").wait_for(timeout=120_000)
    _settle(page)
    _no_exception(page)
    assert page.get_by_role("heading", name="Gradient profiles at initialization and later").count() == 1
    sync_api.expect(page.locator(".js-plotly-plot")).not_to_have_count(0, timeout=30_000)
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="loss curves (CSV)").first.click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    import pandas as pd

    table = pd.read_csv(path)
    assert set(table["run"]) == {"init=xavier_normal", "init=he_normal", "init=normal"}
    assert {"epoch", "loss", "val_loss", "init", "depth"} <= set(table.columns)
    assert (table["depth"] == 6).all()
    _shot(page, "compare")


def test_textbook_pages(server, page):
    """The three worked examples, reached one after the other by the sidebar, as a reader moves through them
    (one tab: the first page pays for loading the app, the others are drawn in place)."""
    _open(page, f"{server}/chain_rule", "Chain rule: the fruit shop")
    for link, heading, plots in (("Chain rule", "Chain rule: the fruit shop", False),
                                 ("Softmax with loss", "Softmax with loss", True),
                                 ("Gradient check", "Gradient check", True)):
        page.locator("[data-testid=stSidebarNav]").get_by_text(link, exact=True).click()
        page.get_by_role("heading", name=heading).first.wait_for(timeout=30_000)
        if plots:
            sync_api.expect(page.locator(".js-plotly-plot")).not_to_have_count(0, timeout=30_000)
        _settle(page)
        _no_exception(page)
        _shot(page, link.lower().replace(" ", "_"))


def test_phase_diagram_page(server, page):
    _open(page, f"{server}/phase_diagram", "Phase diagram: depth against weight scale")
    page.get_by_role("button", name="Run the sweep").click()
    page.get_by_text("networks of width").first.wait_for(timeout=120_000)
    _settle(page)
    _no_exception(page)
    _shot(page, "phase_diagram")


LONG_RUN = "/train?depth=20&width=128&samples=400&epochs=2000&batch_size=8&record_every=100000&optimizer=sgd&lr=0.0001"
# depth 20 x width 128 in batches of 8, 2000 epochs, with records only at the start and the end:
# about 80 s of training in which nothing but the per-step check can notice Stop or a closed tab


def _server_cpu_in(seconds: float) -> float:
    before = _cpu_seconds(SERVER["pid"])
    time.sleep(seconds)
    return _cpu_seconds(SERVER["pid"]) - before


def _seconds_until_server_used(cpu: float, limit: float) -> float:
    """Seconds until the server has used ``cpu`` seconds of CPU from now (``limit`` if it has not by then)."""
    start, before = time.perf_counter(), _cpu_seconds(SERVER["pid"])
    while _cpu_seconds(SERVER["pid"]) - before < cpu and time.perf_counter() - start < limit:
        time.sleep(0.05)
    return time.perf_counter() - start


def _start_long_run(page, server):
    _open(page, server + LONG_RUN, "Train a network and watch its gradients")
    page.get_by_role("button", name="Train").first.click()
    progress = page.get_by_text("of 2000, loss").first
    try:
        progress.wait_for(timeout=20_000)
    except sync_api.TimeoutError:
        # once in a full CI run the click was lost (the run never started, no error on the page): a click that
        # lands while Streamlit is still redrawing the sidebar's form can be dropped; the second one must start it
        _settle(page)
        page.get_by_role("button", name="Train").first.click()
        progress.wait_for(timeout=60_000)
    time.sleep(0.5)


def test_stop_pauses_the_run_and_frees_the_server_and_so_does_closing_the_tab(server, context):
    page = context.new_page()
    _start_long_run(page, server)
    clicked = time.perf_counter()
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Paused at epoch").first.wait_for(timeout=60_000)
    shown = time.perf_counter() - clicked
    _settle(page)
    assert shown < 5.0, f"the page said it stopped {shown:.1f} s after Stop"
    busy = _server_cpu_in(0.5)
    assert busy < 0.15, f"the server still used {busy:.2f} s of CPU in half a second after stopping"
    _no_exception(page)
    assert page.get_by_role("heading", name="2. The gradient profile: how much error signal reaches each layer").count() == 1
    # Train again with the same settings: the paused run goes on; closing the tab then frees the server
    page.get_by_role("button", name="Train").first.click()
    page.get_by_text("training… (estimated").first.wait_for(timeout=60_000)  # no record until its end
    time.sleep(0.5)
    # it is training: 0.5 s of CPU within 10 s.  Idle with the page open it used 0.02-0.04 s in 5 s (measured); a
    # training server used 0.3 s in 0.5 s on a quiet machine, but with both cores shared by a second test process
    # and other work (load 8-12) it once got only 0.2 s in 0.5 s, and once less than 0.3 s in 2 s
    used = _seconds_until_server_used(0.5, limit=10.0)
    assert used < 10.0, "the server used less than 0.5 s of CPU in 10 s after Train: not training"
    page.close()
    time.sleep(1.0)
    busy = _server_cpu_in(0.5)  # from 1 to 1.5 s after closing
    assert busy < 0.15, f"the server still used {busy:.2f} s of CPU in half a second, a second after the tab closed"


BOUNDARY_Z = """() => {
  const plot = [...document.querySelectorAll('.js-plotly-plot')]
    .find(p => ((p.layout || {}).title || {}).text?.includes("Decision boundary"));
  return plot ? JSON.stringify(plot.data[0].z) : null;
}"""


def test_play_changes_the_boundary_live_then_pause_step_and_reset(server, page):
    link = "/train?epochs=5000&depth=8&width=8&activation=tanh"  # long enough to pause: 250 s at 20 epochs a second
    _open(page, server + link, "Train a network and watch its gradients")
    page.get_by_text("What will be trained").first.wait_for(timeout=30_000)
    page.locator("[data-testid=stSidebar]").get_by_role("button", name="Play").click()
    page.get_by_role("button", name="Pause").wait_for(timeout=30_000)
    deadline, first = time.time() + 30, None
    while time.time() < deadline and first is None:
        first = page.evaluate(BOUNDARY_Z)
        time.sleep(0.1)
    assert first is not None, "no live decision boundary"
    deadline, later = time.time() + 30, first
    while time.time() < deadline and later == first:
        time.sleep(0.3)
        later = page.evaluate(BOUNDARY_Z) or first
    assert later != first, "the boundary did not change while playing"
    _shot(page, "train_playing")
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("Paused at epoch").first.wait_for(timeout=30_000)
    _settle(page)
    paused = page.get_by_text("(step ").first.inner_text()
    step = page.locator("[data-testid=stMain]").get_by_role("button", name="Step")
    step.click()
    start, clicked_again = time.time(), False
    while time.time() < start + 30 and page.get_by_text("(step ").first.inner_text() == paused:
        if not clicked_again and time.time() > start + 10:  # a click lost while the page redrew (seen once at
            step.click()  # load 4-6 in a clean-clone CI run): clicked once more; the test asks only that Step moves
            clicked_again = True
        time.sleep(0.2)
    assert page.get_by_text("(step ").first.inner_text() != paused, "Step did not move the run"
    page.get_by_role("button", name="Reset", exact=True).click()
    page.get_by_text("Paused at epoch 0 of 5,000 (step 0 of").first.wait_for(timeout=30_000)
    _settle(page)
    _no_exception(page)
    _shot(page, "train_reset")


def _stored(**filters):
    from lab.store.runstore import open_store

    with open_store(SERVER["store"]) as store:
        return store.runs(filters=filters)


def test_a_deleted_runs_chip_leaves_the_selection(server, page):
    from lab import RunConfig, train
    from lab.store.runstore import open_store

    small = RunConfig(samples=100, epochs=1, depth=2, width=4, seed=777)
    with open_store(SERVER["store"]) as store:
        ids = [store.save(train(small.replace(epochs=e)), f"chip run {e}", "cli") for e in (1, 2)]
    _open(page, server + "/runs", "Runs")
    for run_id in ids:
        page.locator("[data-testid=stMultiSelect]").first.click()
        page.get_by_role("option").filter(has_text=f"· #{run_id}").first.click()
        page.keyboard.press("Escape")
        _settle(page)
    chips = page.get_by_role("button", name=re.compile(r"^Remove chip run"))  # each chip's remove button
    assert chips.count() == 2
    with open_store(SERVER["store"]) as store:  # deleted elsewhere: in another tab, or Compare's session panel
        store.delete([ids[0]])
    page.get_by_label("name contains").fill("chip run")  # any rerun of the page
    page.keyboard.press("Enter")
    _settle(page)
    _no_exception(page)
    assert chips.count() == 1
    page.get_by_role("button", name="Delete 1 selected").click()
    page.get_by_text("Deleted 1 run.").wait_for(timeout=30_000)
    _settle(page)
    _no_exception(page)
    assert chips.count() == 0, chips.all_inner_texts()


def test_train_page_trains_and_the_runs_page_lists_renames_deletes_and_undoes(server, page, tmp_path):
    _open(page, server + "/train?seed=4242", "Train a network and watch its gradients")  # the default run
    page.locator("[data-testid=stSidebar]").get_by_role("button", name="Train").click()
    page.get_by_role("heading", name="Per-layer statistics").wait_for(timeout=120_000)
    page.get_by_text("Gradient profile at epoch 200").first.wait_for(timeout=30_000)
    _settle(page)
    _no_exception(page)
    assert page.locator(".js-plotly-plot").count() >= 5
    _shot(page, "train")
    with page.expect_download(timeout=30_000) as info:  # the run in PyTorch: the script and the arrays it loads
        page.get_by_role("button", name="PyTorch script (ZIP)").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["train_torch.npz", "train_torch.py"]
        compile(z.read("train_torch.py"), "train_torch.py", "exec")
    [run_id] = _stored(seed=4242)["id"]
    _open(page, server + "/runs", "Runs")
    page.locator("[data-testid=stMultiSelect]").first.click()
    page.get_by_role("option").filter(has_text=f"· #{run_id}").first.click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Open in Train").wait_for(timeout=30_000)
    _settle(page)
    page.get_by_label("name", exact=True).fill("browser run")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for(timeout=30_000)
    assert list(_stored(seed=4242)["name"]) == ["browser run"]
    page.get_by_text(f"browser run · #{run_id}").first.wait_for(timeout=30_000)  # still selected, renamed
    page.get_by_role("button", name="Delete 1 selected").click()
    page.get_by_text("Deleted 1 run.").wait_for(timeout=30_000)
    assert _stored(seed=4242).empty
    page.get_by_role("button", name="Undo").click()
    page.get_by_text("Brought back 1 run.").wait_for(timeout=30_000)
    assert list(_stored(seed=4242)["name"]) == ["browser run"]
    _settle(page)
    _no_exception(page)
    _shot(page, "runs")
