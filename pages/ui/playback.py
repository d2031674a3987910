"""Play, Pause, Step and Reset: the Train page's run as a ``lab.Trainer`` kept in the session.

A run is described by its config.  Play, Step and Train go on with the session's trainer when it
was made from the same config and the same data, and start a new one at initialization otherwise:
changing a setting resets the run, as in TensorFlow Playground.  While playing, a fragment trains
for a slice of time, redraws the live charts in place, and goes on; each slice is at least four
times as long as the drawing took, so that drawing costs at most a fifth of the time, and trains
no further than the speed control's epochs per second allow (then waits for that time).  A click
(Pause, Reset, any setting) reruns the page at the next step; the trainer stays consistent, since
it is only ever interrupted between steps.
"""
from __future__ import annotations

import threading
import time

import streamlit as st

from lab import RunConfig, RunResult, Trainer
from lab.report import charts, diagram, summaries
from pages.ui import preview, run_history, state
from pages.ui.pace import Pace, play_speed, slice_of_training
from pages.ui.panels import chart
from pages.ui.running import digest, load_csv, refuse_if_too_costly, run_cache

SLICE_S = 0.5  # the least training time between two live redraws: the browser needs about that to draw a frame
FIRST_SLICE_S = 0.02  # the training before the first live frame
LIVE_BOUNDARY_RESOLUTION = 60  # grid points per side of the live decision boundary (the finished run's: up to 120)


def notice(text: str) -> None:
    """A message for the next run of the page (a click on the controls reruns it at once)."""
    st.session_state[state.TRAIN_NOTICE] = text


def show_notice() -> None:
    text = st.session_state.pop(state.TRAIN_NOTICE, None)
    slot = st.empty()  # written every time, so that an earlier notice never stays beside a live view
    if text:
        slot.info(text)


def _let_go(held: dict) -> None:
    """When a session's browser disconnects, Streamlit stops its script and releases its session-scoped
    resources, but keeps the session (and its state) a while for a reconnect (server.disconnectedSessionTTL,
    120 s; longer until another session disconnects).  Close its trainer then: its model, gradients and
    activations (about three times the run's weights) are counted by no budget.  In a thread of its own,
    since this runs on the server's event loop and ``close`` waits for a step in progress."""
    trainer = held.pop("trainer", None)
    if trainer is not None:
        threading.Thread(target=trainer.close, name="lab-let-go", daemon=True).start()


@st.cache_resource(scope="session", on_release=_let_go, show_spinner=False)
def _held() -> dict:
    """This session's trainer as the server knows it ("trainer"), so that a browser leaving lets go of it."""
    return {}


def _hold(trainer: Trainer) -> None:
    st.session_state[state.TRAINER] = trainer
    _held()["trainer"] = trainer


def session_trainer() -> Trainer | None:
    """The session's trainer; None, and forgotten, when its browser left since (a reconnect finds it closed)."""
    trainer = st.session_state.get(state.TRAINER)
    if trainer is not None and _held().get("trainer") is not trainer:
        forget()
        return None
    return trainer


def playing() -> bool:
    return bool(st.session_state.get(state.PLAYING)) and session_trainer() is not None


def set_playing(on: bool) -> None:
    st.session_state[state.PLAYING] = on
    if on:  # the first frame after a short slice, so that the first live chart comes at once
        st.session_state[state.LIVE_SLICE_S] = FIRST_SLICE_S


def forget() -> None:
    """Let go of the session's trainer (its model and optimizer) and stop playing."""
    trainer = st.session_state.pop(state.TRAINER, None)
    st.session_state.pop(state.TRAINER_DATA, None)
    if _held().get("trainer") is trainer:
        _held().pop("trainer", None)
    if trainer is not None:
        trainer.close()  # and the memory back to the system (lab.engine.threads)
    set_playing(False)


def trainer_for(config: RunConfig, csv_bytes: bytes | None) -> Trainer | None:
    """The session's trainer when it runs ``config`` on the same data, else a new one at initialization
    (None, after saying why, when the data cannot be loaded or the server's limits refuse the run)."""
    key = digest(csv_bytes)
    trainer = session_trainer()
    if trainer is not None and trainer.config == config and st.session_state.get(state.TRAINER_DATA) == key:
        return trainer
    forget()
    data = None
    if config.dataset == "csv":
        data = load_csv(csv_bytes, config)
        if data is None:
            return None
    if refuse_if_too_costly(config, data) is None:
        return None
    with st.spinner("Building the network…", show_time=True):
        trainer = Trainer(config, data)
    _hold(trainer)
    st.session_state[state.TRAINER_DATA] = key
    return trainer


def adopt(trainer: Trainer, csv_bytes: bytes | None) -> None:
    """Make ``trainer`` the session's (Train's run to the end, so that Stop leaves it paused)."""
    if session_trainer() is not trainer:
        forget()
    _hold(trainer)
    st.session_state[state.TRAINER_DATA] = digest(csv_bytes)


def shown(trainer: Trainer, result: RunResult | None = None) -> RunResult:
    """The trainer's run so far (``result`` when the caller has just taken it), made the run the page
    shows; a finished run is cached, and the trainer let go (Reset builds a new one from the config)."""
    result = result if result is not None else trainer.result()
    result.meta["trainer_step"] = trainer.step  # which point of the trainer's run this is (see ``refresh``)
    if trainer.done:
        if trainer.diverged_at is None and "made_from" not in result.meta:
            result.meta["made_from"] = (trainer.config, st.session_state.get(state.TRAINER_DATA, ""))
            run_cache().put(result.meta["made_from"], result)
        forget()
    state.show_run(result)
    return result


def refresh() -> None:
    """Show the session's trainer as far as it got, when the run on screen is an older point of it (a
    click stopped Train, or a live slice, between two records)."""
    trainer = session_trainer()
    shown_run = st.session_state.get(state.RESULT)
    if trainer is None or playing():
        return
    if shown_run is None or shown_run.config != trainer.config or shown_run.meta.get("trainer_step") != trainer.step:
        shown(trainer)


def starts_new_run(action: str, config: RunConfig) -> bool:
    """Whether ``action`` ("train", "play", "step", "reset") of the settings ``config`` replaces what is on screen
    with a run in training: Train, Play and Reset always do (a new run, or the paused one going on), Step does
    for other settings (for the same ones it adds one epoch to the run shown)."""
    shown_run = st.session_state.get(state.RESULT)
    return action != "step" or shown_run is None or shown_run.config != config


def is_paused(result: RunResult) -> bool:
    """Whether ``result`` is the session's trainer, stopped where it can go on."""
    trainer = session_trainer()
    return (trainer is not None and not trainer.done and result.config == trainer.config
            and result.meta.get("trainer_step") == trainer.step)


def position(trainer: Trainer | None, result: RunResult | None) -> str:
    """Where the run on screen stands, in one line."""
    if trainer is not None:
        where = (f"{summaries.epoch_of(trainer.epoch, trainer.config.epochs)} "
                 f"(step {trainer.step:,} of {trainer.total_steps:,})")
        if trainer.diverged_at is not None:
            return f"Diverged at epoch {trainer.diverged_at:g}: Reset starts again from initialization."
        return ("Playing: " if playing() else "Paused at ") + where
    if result is None:
        return ""
    if result.diverged_at is not None:
        return f"Diverged at epoch {result.diverged_at:g}: Reset starts again from initialization."
    if result.stopped:
        return "Stopped: Play or Step start this run again from initialization; so does Reset."
    return f"Finished all {result.config.epochs} epochs: Play or Reset start again from initialization."


def reset(config: RunConfig, csv_bytes: bytes | None) -> RunResult | None:
    """Back to initialization with the same seed: a new trainer, its record at step 0 shown."""
    forget()
    trainer = trainer_for(config, csv_bytes)
    return None if trainer is None else shown(trainer)


def step(config: RunConfig, csv_bytes: bytes | None) -> RunResult | None:
    """One more epoch of the run ``config`` describes (from initialization when it has no trainer)."""
    set_playing(False)
    trainer = trainer_for(config, csv_bytes)
    if trainer is None:
        return None
    if not trainer.done:
        with st.spinner("Training one epoch…", show_time=True):
            trainer.advance(epochs=1)
    return shown(trainer)


def live_view(name: str) -> None:
    """The live charts of the run being played: a fragment that trains a slice, redraws, and goes on
    until the run ends or a click (Pause, Reset, a setting) reruns the page."""
    st.fragment(_live_loop)(name)


def _live_loop(name: str) -> None:
    # One fragment run that redraws into the same places, rather than a fragment rerun per frame: with
    # reruns back to back (training fills the time between them) the browser kept the last frame's
    # charts beside the new ones.
    trainer = session_trainer()
    if trainer is None or not playing():
        return
    slots = LiveSlots()
    most = st.session_state.get(state.LIVE_FRAMES)  # None: until the run ends (a test asks for a few)
    frame, pace = 0, Pace(trainer, play_speed())
    while most is None or frame < most:
        slice_of_training(trainer, st.session_state.get(state.LIVE_SLICE_S, SLICE_S), pace)
        start = time.perf_counter()
        result = trainer.result()
        if trainer.done:
            shown(trainer, result)
            run_history.remember_run(name, result, source="Train")  # as Train keeps a run that diverged
            st.rerun()  # the whole page, with every result of the finished run
        slots.draw(trainer, result, frame)
        # drawing takes at most a fifth of the time: the next slice trains at least four times as long
        st.session_state[state.LIVE_SLICE_S] = max(SLICE_S, 4 * (time.perf_counter() - start))
        frame += 1


class LiveSlots:
    """The places of the live charts: the network beside the decision boundary (for 2-D data; else the
    heat map), the loss beside the gradient profile (at initialization in grey), the heat map below."""

    def __init__(self):
        self.caption = st.empty()
        left, right = st.columns([3, 2])  # the network wider: its columns of units and its colour bar need room
        self.network, self.boundary = left.empty(), right.empty()
        left, right = st.columns(2)
        self.loss, self.profile = left.empty(), right.empty()
        self.heat = st.empty()

    def draw(self, trainer: Trainer, result: RunResult, frame: int) -> None:
        """Frame ``frame``: the caption, the loss and the profile every time, and the heavier pictures (the
        network, the boundary, the heat map) in turn after the first frame, so that a frame stays light
        enough to come several times a second."""
        layers = result.layers
        latest = layers["epoch"].max()
        self.caption.caption(position(trainer, None) + f"; {summaries.fmt(result.history['loss'].iloc[-1])} "
                             "training loss at the last record. Units are coloured by the error signal their layer "
                             "receives (log scale).")
        _put(self.loss, charts.live_loss_figure(result.history, result.config.loss), f"live_loss_{frame}")
        _put(self.profile, charts.profile_figure(layers, latest), f"live_profile_{frame}")
        turn = None if frame == 0 else frame % 3
        two_d = result.data is not None and result.data.input_dim == 2
        if turn in (None, 0) and result.data is not None:
            with self.network.container():
                preview.show_network(result.config, result.data, weights=result.weights or None,
                                     delta_rms=diagram.delta_at(layers, latest), scale=diagram.delta_scale(layers),
                                     key=f"live_network_{frame}")
        if turn in (None, 1) and two_d:
            boundary = charts.boundary_figure(result, resolution=LIVE_BOUNDARY_RESOLUTION)
            if boundary is not None:
                _put(self.boundary, boundary, f"live_boundary_{frame}")
        if turn in (None, 2) and layers["epoch"].nunique() > 1:
            _put(self.heat if two_d else self.boundary, charts.heatmap_figure(layers, "delta_rms"), f"live_heat_{frame}")


def _put(slot, figure, key: str) -> None:
    with slot.container():
        chart(figure, key=key)
