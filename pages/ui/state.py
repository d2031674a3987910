"""Every st.session_state key the pages use, named once, with the type of what it holds.

Widgets also keep their values in session state under their ``key=``; those written or read
outside the widget (or swept as a group) are built here with ``widget_key`` from a page's prefix.
"""
from __future__ import annotations

from typing import Final

import streamlit as st

# the session's runs (app.py and pages/ui/run_history.py)
RUNS: Final = "runs"  # dict[str, RunResult]: every finished run of this session, by name
DROPPED_RUNS: Final = "dropped_runs"  # list[str]: names let go past the session's budget, not yet reported
IMPORTED_ID: Final = "imported_id"  # str: file_id of the last exported file loaded, so it loads once
RUNS_OVERLAY: Final = "runs_overlay"  # list[str]: the runs just loaded, overlaid by default

# the run store (pages/ui/store_view.py) and the Runs page
STORED_IDS: Final = "stored_ids"  # dict[str, int]: this session's runs written to the store, name -> stored id
STORE_ERRORS: Final = "store_errors"  # list[str]: the store's errors already shown in this session
EXPLORER_SAVED: Final = "explorer_saved"  # set[RunConfig]: the Init explorer's probes already stored
RUNS_DELETED: Final = "runs_deleted"  # list[int]: the ids the Runs page deleted last (its Undo brings them back)
RUNS_NOTICE: Final = "runs_notice"  # str: what the Runs page's last click did
RUNS_PICK_AGAIN: Final = "runs_pick_again"  # list[int]: the runs to select again after an edit renamed one

# Train
TRAIN_SETTINGS: Final = "train_settings"  # RunConfig: the settings the Train page's widgets start from
SETTINGS_NOTICES: Final = "settings_notices"  # list[str]: what set_settings held to the browser's bounds, not yet shown
TRAIN_AUTORUN: Final = "train_autorun"  # bool: train as soon as the Train page opens (a Home preset)
RESULT: Final = "result"  # RunResult: the run the Train page shows
PARTIAL: Final = "partial"  # (RunConfig, Progress): the last record of a run still training, or stopped by a click
LAST_UPLOAD: Final = "last_upload"  # str: file_id of the CSV last uploaded on Train
TRAIN_LINK_SEEN: Final = "train_link_seen"  # dict[str, str]: the Train link already applied
TRAINER: Final = "trainer"  # lab.Trainer: the run being played, paused or stepped (pages/ui/playback.py)
TRAINER_DATA: Final = "trainer_data"  # str: digest of the uploaded data the trainer runs on ("" for built-in data)
PLAYING: Final = "playing"  # bool: the trainer advances in the live fragment
TRAIN_NOTICE: Final = "train_notice"  # str: a message from the last click on the run's controls
LIVE_FRAMES: Final = "live_frames"  # int: stop the live loop after this many frames (tests; unset: to the end)
LIVE_SLICE_S: Final = "live_slice_s"  # float: seconds of training per live redraw (four times the last redraw)
PLAY_SPEED: Final = "play_speed"  # float: the speed control's epochs per second while playing (inf: as fast as it trains)
TRAIN_SPECTRA: Final = "train_spectra"  # (int, dict[str, Measured]): the Jacobian spectra of the run on screen, by RESULT_SHOWN

# Compare
COMPARE_SPEC: Final = "compare_spec"  # CompareSpec: the settings the Compare page's widgets start from
COMPARISON: Final = "comparison"  # dict: spec, run names and the names they are kept under in RUNS
COMPARE_LINK_SEEN: Final = "compare_link_seen"  # dict[str, str]: the Compare link already applied

# Lessons
LEARNER: Final = "learner"  # str: the name a learner typed on a shared server (keys their progress)
LESSON_PROGRESS: Final = "lesson_progress"  # dict[str, (int, frozenset[int])]: lesson id -> (step on, steps done)
LESSON_RUNS: Final = "lesson_runs"  # dict[tuple, StepRun]: each step's run, made once per session
LESSON_LINK_SEEN: Final = "lesson_link_seen"  # dict[str, str]: the Lessons link already applied

# Phase diagram
PHASE_RESULT: Final = "phase_result"  # dict: the last sweep's table and the settings it ran with

# Sweep
SWEEP_RUN: Final = "sweep_run"  # dict: spec, cells, finished rows (list of dicts), running flag, seconds, workers
SWEEP_WORKERS: Final = "sweep_workers"  # int: local worker processes for the Sweep page (tests: 1; default 2)

# prefixes of the settings widgets' keys, one per page that shows them
TRAIN_WIDGETS: Final = "w_"
COMPARE_WIDGETS: Final = "c_"
GRADCHECK_WIDGETS: Final = "g_"


def explorer_widgets(side: str) -> str:
    """The prefix of the Init explorer's widgets for setting ``side`` ("A" or "B")."""
    return f"x{side}_"


def widget_key(prefix: str, name: str) -> str:
    """The session-state key of setting ``name``'s widget on the page with ``prefix``."""
    return f"{prefix}{name}"


def forget_widgets(prefix: str) -> None:
    """Drop every widget value under ``prefix``, so the widgets start again from their settings."""
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[key]


def replace(key: str, value) -> None:
    """Set ``key`` to ``value`` and let go of the value it held at once.  Streamlit keeps a value that a script
    run replaces until the session's next rerun (it compacts its state then), and a session that is not rerun (a
    closed tab's) for as long as it is kept: for runs, their arrays, which no budget counts."""
    st.session_state.pop(key, None)
    st.session_state[key] = value


RUN_SLIDERS: Final = ("profile_epoch", "hist_snap")  # the Train page's epoch sliders, which belong to the run shown
RESULT_SHOWN: Final = "result_shown"  # int: how many runs the Train page has been given (picks its sliders' keys)


def show_run(result) -> None:
    """Make ``result`` the run the Train page shows, with fresh epoch sliders that open at its last record: a
    slider that kept its key would keep the epoch chosen on an earlier run (an "At epoch 1" under a run of 200),
    since the browser keeps a widget's value for as long as its key is on screen, so each run shown gets keys of
    its own (``shown_key``).  Streamlit may keep a gone widget's metadata, its options and labels, a few KB: the
    sliders hold no closure over the run, which would keep the run itself alive."""
    for name in RUN_SLIDERS:
        st.session_state.pop(shown_key(name), None)
    replace(RESULT, result)
    st.session_state[RESULT_SHOWN] = st.session_state.get(RESULT_SHOWN, 0) + 1


def shown_key(name: str) -> str:
    """The key of the Train page's slider ``name`` for the run on screen (see ``show_run``)."""
    return f"{name}_{st.session_state.get(RESULT_SHOWN, 0)}"
