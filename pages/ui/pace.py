"""Play's pace: the speed control (epochs per second) and the slices of training between two live frames.

A slice trains for about the time it is given (the live loop makes it at least four times as long as the last
redraw), no further than the epoch the speed makes due at its end, then waits for the time that epoch is due;
meanwhile it asks Streamlit every STOP_CHECK_S whether a click is waiting, so that Pause answers at once.
"""
from __future__ import annotations

import math
import time

import streamlit as st

from lab import Trainer
from pages.ui import state

STOP_CHECK_S = 0.05  # how often a slice asks Streamlit whether a click is waiting
# Play's speeds in epochs per second (inf: as fast as the machine trains, the speed before there was a choice).
# At the default, the default run of 200 epochs plays in 10 s, about 20 frames 10 epochs apart: slow enough to
# watch the decision boundary change (as fast as it trains, that run was over in about 2 s).
PLAY_SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, math.inf)
DEFAULT_PLAY_SPEED = 20


def speed_control() -> None:
    """Play's speed, in epochs per second: outside the settings' form, so that a change applies at once,
    also to a run that is playing."""
    if state.PLAY_SPEED not in st.session_state:  # set here rather than as the widget's value, so a test may set it
        st.session_state[state.PLAY_SPEED] = DEFAULT_PLAY_SPEED
    st.select_slider("Play speed (epochs per second)", PLAY_SPEEDS, key=state.PLAY_SPEED,
                     format_func=lambda v: "fastest" if math.isinf(v) else f"{v:g}")  # no help: its button
    # would be one more "Play" button in the sidebar for those who find the buttons by name (and the tests)


def play_speed() -> float:
    return st.session_state.get(state.PLAY_SPEED, DEFAULT_PLAY_SPEED)


class Pace:
    """Play at ``speed`` epochs per second from now: epoch ``e0 + speed * t`` is due at ``t`` seconds."""

    def __init__(self, trainer: Trainer, speed: float):
        self.start, self.first_epoch, self.speed = time.perf_counter(), trainer.epoch, speed

    def epoch_due(self, at: float) -> float:
        return self.first_epoch + self.speed * (at - self.start)

    def time_due(self, epoch: float) -> float:
        return self.start + (epoch - self.first_epoch) / self.speed


def _answer_clicks(check: dict) -> None:
    now = time.perf_counter()
    if now >= check.get("at", 0.0):
        check["at"] = now + STOP_CHECK_S
        _ = state.TRAINER in st.session_state  # a yield point: a waiting click reruns the page here


def slice_of_training(trainer: Trainer, seconds: float, pace: Pace | None = None) -> None:
    """Train for about ``seconds`` (at least one step), answering clicks at once; with ``pace``, no further
    than the epoch due at the slice's end, and then wait for the time that epoch is due (within the slice)."""
    deadline = time.perf_counter() + seconds
    target = math.inf if pace is None else pace.epoch_due(deadline)
    check: dict = {}

    def enough(*_) -> bool:
        _answer_clicks(check)
        return time.perf_counter() >= deadline or trainer.epoch >= target

    trainer.advance(callback=enough, should_stop=enough)
    if pace is None or math.isinf(pace.speed):
        return
    until = min(deadline, pace.time_due(trainer.epoch))
    while (now := time.perf_counter()) < until:
        time.sleep(min(STOP_CHECK_S, until - now))
        _answer_clicks(check)
