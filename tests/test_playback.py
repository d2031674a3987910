"""Play, Pause, Step and Reset on the Train page (pages/ui/playback.py), through Streamlit's AppTest."""
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from lab import RunConfig, train  # noqa: E402

APP = Path(__file__).resolve().parent.parent / "app.py"
# 160 training examples in batches of 64: 3 steps an epoch, 600 steps in all
RUN = RunConfig(samples=200, epochs=200, depth=3, width=8, dtype="float64")


def train_page(settings=RUN):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["train_settings"] = settings
    at.session_state["live_slice_s"] = 0.005  # a live slice of a few steps, so that Play does not finish the run
    at.session_state["live_frames"] = 1  # and one frame: the test clicks as if between two frames
    at.session_state["play_speed"] = math.inf  # a slice as long as it says, whatever the speed control's default
    at.switch_page("pages/train.py").run()  # straight to the page, as a link does (tests/apptest.py)
    return at


def press(at, label, sidebar=False):
    buttons = at.sidebar.button if sidebar else at.main.button
    next(b for b in buttons if b.label == label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_play_pause_step_reset_and_the_same_numbers_as_one_piece():
    at = press(train_page(), "Play", sidebar=True)
    trainer = at.session_state["trainer"]
    assert at.session_state["playing"] and 0 < trainer.step < trainer.total_steps
    live = {c.key.rsplit("_", 1)[0] for c in at.get("plotly_chart") if c.key and c.key.startswith("live_")}
    assert {"live_network", "live_boundary", "live_loss", "live_profile"} <= live  # (and the heat map from 2 records)
    assert "Pause" in [b.label for b in at.main.button]

    press(at, "Pause")
    paused_at = trainer.step
    assert not at.session_state["playing"]
    assert at.session_state["result"].meta["trainer_step"] == paused_at and at.session_state["result"].stopped
    assert any("Paused at epoch" in i.value for i in at.info)

    press(at, "Step")  # after a pause: to the end of the epoch in progress, or one whole epoch from a boundary
    stepped = at.session_state["trainer"].step
    assert stepped > paused_at and stepped % 3 == 0 and stepped - paused_at <= 3
    press(at, "Step")
    assert at.session_state["trainer"].step == stepped + 3

    press(at, "Train", sidebar=True)  # the rest of the same run, to its end
    result = at.session_state["result"]
    assert "trainer" not in at.session_state and not result.stopped
    whole = train(RUN)  # the same run in one piece: the same numbers, bit for bit
    pd.testing.assert_frame_equal(result.history.drop(columns="elapsed_s"), whole.history.drop(columns="elapsed_s"))
    pd.testing.assert_frame_equal(result.layers, whole.layers)
    for (W, b), (W1, b1) in zip(result.weights, whole.weights):
        np.testing.assert_array_equal(W, W1)
        np.testing.assert_array_equal(b, b1)

    press(at, "Reset")  # after a finished run: back to initialization, same seed
    reset = at.session_state["result"]
    assert at.session_state["trainer"].step == 0 and len(reset.history) == 1
    pd.testing.assert_frame_equal(reset.layers, whole.layers[whole.layers["epoch"] == 0])


def test_a_changed_setting_starts_a_new_run_and_step_from_nothing_trains_one_epoch():
    at = press(train_page(), "Step", sidebar=True)
    first = at.session_state["trainer"]
    assert first.step == 3 and not at.session_state["playing"]
    at.select_slider(key="w_width").set_value(16)
    press(at, "Step", sidebar=True)
    second = at.session_state["trainer"]
    assert second is not first and second.config.width == 16 and second.step == 3
    assert first.model is None  # the old run's model and optimizer were let go


def test_step_on_a_finished_run_says_so():
    at = press(train_page(RUN.replace(epochs=2)), "Train", sidebar=True)
    assert not at.session_state["result"].stopped
    press(at, "Step")
    assert any("reached its last epoch" in i.value for i in at.info)


def test_step_on_a_diverged_run_says_it_diverged_and_reset_starts_again():
    at = press(train_page(RUN.replace(optimizer="sgd", lr=1.0, depth=10, width=64)), "Play", sidebar=True)
    result = at.session_state["result"]
    assert result.diverged_at is not None and "trainer" not in at.session_state
    assert result in at.session_state["runs"].values()  # kept, as a run that diverged under Train is
    press(at, "Step")
    assert any(f"diverged at epoch {result.diverged_at:g}" in i.value for i in at.info)
    press(at, "Reset")
    assert at.session_state["trainer"].step == 0 and at.session_state["result"].diverged_at is None


def _slider(at, label):
    return next(s for s in at.select_slider if s.label == label)


def _opens_at_the_last_record(at):
    """The profile's epoch slider and the histograms' snapshot slider at the run's last record, and the
    verdict beside the one at initialization said for that epoch."""
    result = at.session_state["result"]
    last = result.layers["epoch"].max()
    assert _slider(at, "epoch").value == last
    assert _slider(at, "snapshot").value == len(result.hist_epochs) - 1
    assert any(f"At epoch {last:g}" in m.value for m in at.markdown)


def test_step_then_train_opens_the_charts_at_the_new_runs_last_record():
    at = press(train_page(), "Step", sidebar=True)
    assert _slider(at, "epoch").value == 1  # the stepped run's last record
    press(at, "Train", sidebar=True)
    assert not at.session_state["result"].stopped and at.session_state["result"].config.epochs == 200
    _opens_at_the_last_record(at)


def test_a_paused_run_then_a_new_run_opens_at_the_new_runs_last_record():
    at = press(train_page(RUN.replace(epochs=50)), "Step", sidebar=True)
    press(at, "Step")
    press(at, "Step")
    assert _slider(at, "epoch").value == 3 and any("Paused at epoch 3" in i.value for i in at.info)
    at.number_input(key="w_epochs").set_value(20)  # another run: 20 epochs
    press(at, "Train", sidebar=True)
    assert at.session_state["result"].config.epochs == 20 and not at.session_state["result"].stopped
    _opens_at_the_last_record(at)


def test_a_run_moved_to_an_earlier_epoch_opens_again_at_the_last_record_when_replaced():
    at = press(train_page(RUN.replace(epochs=10)), "Train", sidebar=True)
    _slider(at, "epoch").set_value(2).run()
    assert _slider(at, "epoch").value == 2
    press(at, "Reset")  # a new run on screen (at initialization), then trained again to its end
    press(at, "Train", sidebar=True)
    _opens_at_the_last_record(at)


def _positions(at) -> list[tuple[str, float, str]]:
    """Every "paused/stopped at epoch N of M" on the page: (word, N, M)."""
    import re

    texts = [e.value for kind in ("info", "warning", "caption", "markdown") for e in getattr(at, kind)]
    found = [m.groups() for t in texts for m in re.finditer(r"(paused|stopped) at epoch ([\d,.]+)( of [\d,]+)?",
                                                             t, re.IGNORECASE)]
    return [(word.lower(), float(n.replace(",", "")), of) for word, n, of in found]


def test_a_run_paused_mid_epoch_is_at_one_epoch_in_every_text():
    # 1,600 training examples in batches of 64: 25 steps an epoch
    at = press(train_page(RUN.replace(samples=2000)), "Step", sidebar=True)
    trainer = at.session_state["trainer"]
    trainer.advance(steps=10)  # as a live slice that a Pause ended within the second epoch (at 1.4 epochs)
    at.run()  # the page shows the trainer as far as it got
    assert trainer.step == 35 and trainer.steps_per_epoch == 25
    done = trainer.step / trainer.steps_per_epoch  # epochs of training done, as the trainer counts them
    positions = _positions(at)
    assert len(positions) >= 3, positions  # the control bar, the status, the learning curve's caption
    assert {word for word, _, _ in positions} == {"paused"}, positions
    assert {of for _, _, of in positions} == {" of 200"}, positions
    [n] = {n for _, n, _ in positions}
    assert done - 0.1 < n <= done, (n, done)  # where the run is, to a tenth of an epoch, never ahead of it


def _seconds_to_play(speed) -> float:
    """Play a run of 10 short epochs to its end at ``speed`` (epochs per second), in seconds."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["train_settings"] = RUN.replace(epochs=10)
    at.switch_page("pages/train.py").run()
    next(s for s in at.sidebar.select_slider if s.label.startswith("Play speed")).set_value(speed).run()
    start = time.perf_counter()
    press(at, "Play", sidebar=True)
    seconds = time.perf_counter() - start
    result = at.session_state["result"]
    assert not result.stopped and result.config.epochs == 10 and not at.session_state["playing"]
    return seconds


def test_the_speed_control_sets_how_long_play_takes():
    slow = _seconds_to_play(2)  # 10 epochs at 2 a second: 5 s
    fast = _seconds_to_play(math.inf)  # as fast as it trains: a few hundredths of a second for these epochs
    assert slow >= 5.0, slow
    assert fast < slow - 2.5, (fast, slow)  # both pay the same drawing
