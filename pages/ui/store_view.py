"""The app's run store: where the pages write their runs and the Runs page reads them.

``$BACKPROP_LAB_STORE`` names the file (``off``: no store; unset: the per-user default, see lab/store/runstore.py).
A SQLite connection belongs to the thread that made it, and Streamlit runs each script run in a thread of
its own, so every call here opens the store, does one thing and closes it (about a millisecond).
Nothing here raises into a page: a store that cannot be opened is reported once per session, as plain text,
and the page goes on without it; a write that fails is a warning, and the run stays on screen and in the session.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
import streamlit as st

from lab import RunResult
from lab.store.runstore import ENV_VAR, StoreError, default_path, open_store
from pages.ui import state
from pages.ui.panels import plain_notice

# the source a page names a run by, as the store records it
SOURCES = {"Train": "train", "Compare": "compare", "Init explorer": "explorer"}


def path() -> Path | None:
    """The store's file, or None when ``$BACKPROP_LAB_STORE`` turns it off."""
    return default_path()


def _report(exc: Exception) -> None:
    """Say once per session (and per message) that the store cannot be used."""
    text = str(exc)
    shown = st.session_state.setdefault(state.STORE_ERRORS, [])
    if text not in shown:
        shown.append(text)
        plain_notice("warning", "The run store cannot be used, so runs are kept for this session only:", text)


@contextlib.contextmanager
def opened():
    """The store, open for one use (None when it is off or cannot be opened; the latter said once)."""
    where = path()
    if where is None:
        yield None
        return
    try:
        store = open_store(where)
    except StoreError as exc:
        _report(exc)
        yield None
        return
    try:
        yield store
    finally:
        store.close()


def available() -> bool:
    """Whether the store can be used now (checked by opening it)."""
    with opened() as store:
        return store is not None


def _write(what: str, write):
    """``write(store)``'s value, or None after a warning when the store is off or the write fails."""
    try:
        with opened() as store:
            return None if store is None else write(store)
    except (StoreError, OSError, ValueError) as exc:
        plain_notice("warning", f"This {what} is on screen and in this session, but it could not be saved "
                     "to the run store:", str(exc))
        return None


def _remember(names_to_ids: dict[str, int]) -> None:
    """The session's stored runs: its name for a run -> the run's id in the store."""
    st.session_state.setdefault(state.STORED_IDS, {}).update(names_to_ids)


def store_source(source: str) -> str:
    """A page's source label ("Train", "imported from x.zip") as the store's ("train", "import")."""
    return "import" if source.startswith("imported") else SOURCES.get(source, source.lower())


def save_run(result: RunResult, name: str, source: str) -> int | None:
    """Write one finished run to the store; its id, or None (off, or the write failed: said on the page)."""
    run_id = _write("run", lambda store: store.save(result, name, store_source(source)))
    if run_id is not None:
        _remember({name: run_id})
    return run_id


def save_group(results: dict[str, RunResult], name: str, source: str, spec: dict | None = None) -> int | None:
    """Write a comparison as a group of runs, keyed by the names the session keeps them under."""
    def write(store):
        group = store.save_group(results, name, store_source(source), spec)
        frame = store.runs()
        members = frame[frame["group_id"] == group]
        return group, dict(zip(members["name"], members["id"]))

    got = _write("comparison", write)
    if got is None:
        return None
    _remember({n: int(i) for n, i in got[1].items() if n in results})
    return got[0]


def save_progress(learner: str, lesson: str, step: int, done) -> None:
    """Keep a learner's place in a lesson in the store (a warning on the page when it cannot be written)."""
    _write("lesson's progress", lambda store: store.save_progress(learner, lesson, step, done))


def session_rows() -> dict[str, dict] | None:
    """This session's stored runs as the store has them now (renamed, tagged or deleted on the Runs page):
    the session's name -> the stored row; None when there is no store."""
    ids = st.session_state.get(state.STORED_IDS, {})
    try:
        with opened() as store:
            if store is None:
                return None
            frame = store.runs(include_deleted=True).set_index("id", drop=False) if ids else None
    except StoreError as exc:
        _report(exc)
        return None
    if frame is None:
        return {}
    return {name: frame.loc[i].to_dict() for name, i in ids.items() if i in frame.index}


def rename_session_run(old: str, new: str) -> None:
    """The session's rename of one of its runs, in the store too."""
    ids = st.session_state.get(state.STORED_IDS, {})
    if old in ids:
        ids[new] = ids.pop(old)
        edit("rename", ids[new], new)


def delete_session_runs(names) -> None:
    """The session's delete, in the store too (a soft delete: the Runs page can bring them back)."""
    ids = st.session_state.get(state.STORED_IDS, {})
    gone = [ids.pop(n) for n in names if n in ids]
    if gone:
        edit("delete", gone)


def listing(filters: dict | None = None, tag: str | None = None, search: str | None = None) -> pd.DataFrame | None:
    """The stored runs, newest first (lab.store.runstore.Store.runs), or None when there is no store to read."""
    try:
        with opened() as store:
            return None if store is None else store.runs(filters=filters, tag=tag, search=search)
    except StoreError as exc:
        _report(exc)
        return None


def edit(action: str, *args) -> bool:
    """One edit of the store (``rename``, ``set_tags``, ``set_notes``, ``delete``, ``undelete``); False after
    saying why when it failed."""
    try:
        with opened() as store:
            if store is None:
                return False
            getattr(store, action)(*args)
            return True
    except (StoreError, KeyError) as exc:
        plain_notice("error", "The run store could not be changed:", str(exc))
        return False


def load(run_id: int, with_data: bool = True) -> RunResult | None:
    """One stored run rebuilt (``with_data``: a built-in dataset made again, for the decision boundary)."""
    try:
        with opened() as store:
            return None if store is None else store.load(run_id, with_data=with_data)
    except (StoreError, KeyError) as exc:
        plain_notice("error", "This run could not be read from the store:", str(exc))
        return None


def where_to_find() -> str:
    """Words for a page: where the store is, or how to turn it on."""
    where = path()
    if where is None:
        return (f"The run store is off (${ENV_VAR} is `off`). Unset it, or set it to a file path, and restart the "
                "app to keep every run.")
    return f"Runs are kept in `{where}`; set ${ENV_VAR} to another file to move it, or to `off` to turn it off."
