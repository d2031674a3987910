"""Running and caching: the process's run cache, the server's limits and the live training loop."""
from __future__ import annotations

import hashlib
import os
import threading
import time

import streamlit as st

from lab import DataError, RunConfig, RunResult, Trainer, make_dataset
from lab.engine.training import train  # the engine's: a server shows no progress bar
from lab.report import charts
from lab.serving import cost, gate
from lab.serving.cost import Cost
from lab.serving.limits import Limits
from lab.serving.runcache import RunCache
from pages.ui import state
from pages.ui.panels import PLOT_CONFIG, plain_notice

STOP_CHECK_S = 0.05  # how often a running training asks Streamlit whether to stop
LIVE_INTERVAL_S = 0.5  # redraw live charts at most twice a second: the browser needs about that to draw them
# (at four a second it fell behind, and the results of a finished run waited seconds behind the queue)

_CACHE: dict = {}  # the process's RunCache, made on first use with the deployer's budget


def warm_prices() -> None:
    """Price this machine's numpy (``cost.calibrate``) once per process, in the background, while the user
    is still choosing settings: the first cost check of a long run would otherwise wait about a second for
    it.  BACKPROP_LAB_WARM_PRICES=0 turns this off (the tests do, so as not to load the machine)."""
    if os.environ.get("BACKPROP_LAB_WARM_PRICES", "1") == "0" or "warming" in _CACHE:
        return
    _CACHE["warming"] = threading.Thread(target=lambda: [cost.calibrate(d) for d in ("float32", "float64")],
                                         name="warm-prices", daemon=True)
    _CACHE["warming"].start()


def run_cache() -> RunCache:
    """Finished runs by (config, uploaded data's digest), shared by every session of this server
    process within a budget in bytes (BACKPROP_LAB_CACHE_MB)."""
    if "cache" not in _CACHE:
        _CACHE["cache"] = RunCache(int(server_limits().cache_mb * 2**20))
    return _CACHE["cache"]


def digest(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data else ""


def load_csv(data: bytes, config: RunConfig):
    """Dataset from uploaded bytes, or None after saying why (the file's words as plain text)."""
    try:
        return make_dataset(config, csv_source=data)
    except DataError as exc:
        plain_notice("error", "Your CSV cannot be used:", f"{exc}.")
        return None


# the preview's data, shared by every session and counted by no budget: up to 31 MB each (5,000 examples of 784
# features, the browser's largest), keyed by the whole config; a few are enough
@st.cache_resource(max_entries=4, show_spinner=False)
def _built_in_data(config: RunConfig):
    return make_dataset(config)


def planned_data(config: RunConfig, csv_bytes: bytes | None):
    """The data a run of ``config`` would train on (None, after saying why, when an upload cannot be used),
    without training: for the picture of what will be trained."""
    if config.dataset != "csv":
        return _built_in_data(config)
    if csv_bytes is None:
        return None
    return load_csv(csv_bytes, config)


def server_limits() -> Limits:
    """The deployer's limits: the environment, overridden by the same names in .streamlit/secrets.toml."""
    values = dict(os.environ)
    try:
        values |= {k: str(v) for k, v in st.secrets.items() if k.startswith("BACKPROP_LAB_")}
    except Exception:  # noqa: BLE001 - no secrets file (or an unreadable one): the environment alone
        pass
    return Limits.from_env(values)


def admitted(work: gate.Work) -> gate.Ticket | None:
    """``work``'s ticket from the one gate (lab.serving.gate), or None after showing why it is refused."""
    try:
        return gate.admit(work, server_limits())
    except gate.Refused as exc:
        st.error(gate.sentence(exc))  # the gate's words and numbers only, never a visitor's text
        return None


def refuse_if_too_costly(config: RunConfig, data=None) -> Cost | None:
    """The run's estimated cost, or None after showing why the gate refuses it."""
    shape = None if data is None else gate.DataShape(len(data.X_train) + len(data.X_val), data.input_dim,
                                                      data.classes)
    ticket = admitted(gate.Work("train", (config,), shape))
    return None if ticket is None else ticket.costs[0]


def run_with_progress(config: RunConfig, csv_bytes: bytes | None = None, live: bool = True,
                      trainer: Trainer | None = None) -> RunResult | None:
    """A finished run from the cache, or train now with a progress bar and live charts: a new run,
    or ``trainer`` (made from ``config``, checked against the server's limits) to its end.

    Returns None (after showing why) when the data cannot be loaded or the run costs more than
    the server allows.  A run interrupted by the user (any click reruns the page) is kept in
    session state under ``state.PARTIAL`` (and ``trainer``, when given, is left paused there).
    """
    key = digest(csv_bytes)
    cached = run_cache().get((config, key))
    if cached is not None:
        return cached
    data = None if trainer is None else trainer.data
    if config.dataset == "csv" and trainer is None:
        data = load_csv(csv_bytes, config)
        if data is None:
            return None
    estimated = refuse_if_too_costly(config, data)
    if estimated is None:
        return None
    expect = f"estimated {cost.describe(estimated)}"
    bar = st.progress(0.0, text=f"training… ({expect})")
    live_cols = st.columns(2) if live else None
    slots = [c.empty() for c in live_cols] if live else []
    pace = {"next": 0.0, "n": 0, "check": 0.0}

    def callback(progress):
        st.session_state[state.PARTIAL] = (config, progress)
        start = time.perf_counter()
        if start < pace["next"] and progress.step < progress.total_steps:
            return False
        pace["n"] += 1
        row = progress.history[-1]
        bar.progress(min(progress.fraction, 1.0),
                     text=f"epoch {row['epoch']:g} of {config.epochs}, loss {row['loss']:.4g} ({expect})")
        if live and progress.layer_stats[-1] is not None:
            slots[0].plotly_chart(charts.live_loss_figure(progress.history_frame(), config.loss),
                                  key=f"live_loss_{pace['n']}", config=PLOT_CONFIG)
            layers = progress.layers_frame()
            slots[1].plotly_chart(charts.profile_figure(layers, layers["epoch"].max()), key=f"live_prof_{pace['n']}",
                                  config=PLOT_CONFIG)
        # at most four redraws a second, and drawing takes at most a fifth of the run
        done = time.perf_counter()
        pace["next"] = done + max(LIVE_INTERVAL_S, 4 * (done - start))
        return False

    def stop_requested() -> bool:
        # Any read of session state is one of Streamlit's yield points: there a pending Stop, rerun
        # or closed tab raises and ends the script (the last record is kept as "partial").
        now = time.perf_counter()
        if now >= pace["check"]:
            pace["check"] = now + STOP_CHECK_S
            _ = state.PARTIAL in st.session_state
        return False

    if trainer is None:
        result = train(config, data=data, callback=callback, should_stop=stop_requested)
    else:
        trainer.advance(callback=callback, should_stop=stop_requested)
        result = trainer.result()
    st.session_state.pop(state.PARTIAL, None)
    bar.empty()
    for slot in slots:
        slot.empty()
    if not result.stopped:
        # the cache hands back copies, so a run is known again by what made it (see remember_run)
        result.meta["made_from"] = (config, key)
        run_cache().put((config, key), result)
    return result


def recover_partial() -> RunResult | None:
    """The part of a run that a click interrupted, as a stopped RunResult (or None)."""
    got = st.session_state.pop(state.PARTIAL, None)
    if got is None:
        return None
    _, progress = got
    return progress.snapshot() if progress.snapshot else None

