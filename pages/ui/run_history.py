"""The session's runs: the run history, its colours, its downloads and the "Runs of this session" panel."""
from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from lab import RunResult
from lab.engine.threads import return_free_memory
from lab.experiments.compare import describe, unique_name
from lab.report import charts, tables
from lab.serving import export, gate, torch_export
from lab.serving.limits import SESSION_FULL_RUNS
from lab.serving.runcache import trim_history
from pages.ui import state, store_view
from pages.ui.panels import chart, plain_notice
from pages.ui.running import server_limits


def remember_run(name: str, result: RunResult, source: str, store: bool = True) -> str:
    """Add a finished run to the session's run history under a unique name, and (``store``) write it to
    the run store; return the name.

    A run that is already there (the same object, or a complete run of the same config on the
    same data, which the cache returns as a copy) is not added again: its name is returned."""
    runs = st.session_state.setdefault(state.RUNS, {})
    made_from = result.meta.get("made_from")
    for existing, r in runs.items():
        if r is result or (made_from is not None and r.meta.get("made_from") == made_from):
            return existing
    name = unique_name(name, runs)
    result.meta.setdefault("source", source)
    runs[name] = result
    if store:
        store_view.save_run(result, name, source)
    # a bounded session: weights and data of the newest runs only, and the oldest let go past the budget
    kept, dropped = trim_history(runs, SESSION_FULL_RUNS, int(server_limits().session_mb * 2**20))
    state.replace(state.RUNS, kept)  # the dict it replaces would keep the runs let go until the next rerun
    return_free_memory()
    if dropped:
        st.session_state[state.DROPPED_RUNS] = [*st.session_state.get(state.DROPPED_RUNS, []), *dropped][-20:]
    return name



def run_colours(runs: dict[str, RunResult], groups: dict[str, str] | None = None) -> dict[str, str]:
    """A colour per group of runs (default: per run), kept with the runs so that a run has the same
    colour on every chart of the session; a new group gets the colour least in use by the session's runs."""
    groups = groups if groups is not None else {n: n for n in runs}
    out: dict[str, str] = {}
    for name, group in groups.items():
        if group not in out and "colour" in runs[name].meta:
            out[group] = runs[name].meta["colour"]
    in_use = Counter(r.meta["colour"] for r in st.session_state.get(state.RUNS, {}).values() if "colour" in r.meta)
    in_use.update(out.values())
    for group in dict.fromkeys(groups.values()):
        if group not in out:
            out[group] = min(charts.PALETTE, key=lambda c: (in_use[c], charts.PALETTE.index(c)))
            in_use[out[group]] += 1
    for name, group in groups.items():
        runs[name].meta["colour"] = out[group]
    return out


def export_buttons(runs: dict, figures: dict, prefix: str) -> None:
    """Downloads of the runs (CSV, JSON, ZIP) and of each figure (HTML).  The files are made only
    when a button is pressed (callables), and pressing one does not rerun the page."""
    runs = dict(runs)
    files = [
        ("loss curves (CSV)", lambda: export.csv_text(export.history_table(runs, True, True)),
         f"{prefix}_history.csv", "text/csv"),
        ("per-layer statistics (CSV)", lambda: export.csv_text(export.layers_table(runs, True)),
         f"{prefix}_layers.csv", "text/csv"),
        ("configs and histories (JSON)", lambda: export.runs_json(runs), f"{prefix}.json", "application/json"),
        ("everything (ZIP)", lambda: export.runs_zip(runs, *charts.zip_figures(figures)),
         f"{prefix}.zip", "application/zip"),
    ]
    files += [(f"{name.replace('_', ' ')} (HTML)", (lambda f=fig: charts.figure_html(f)), f"{prefix}_{name}.html",
               "text/html")
              for name, fig in figures.items()]
    cols = st.columns(2)  # two a row: four truncate their labels in a 1000-pixel window
    for i, (label, make, file_name, mime) in enumerate(files):
        cols[i % 2].download_button(label, make, file_name, mime, on_click="ignore", key=f"{prefix}_dl_{i}")


def torch_button(result: RunResult, prefix: str) -> None:
    """The run in plain PyTorch: a ZIP of train_torch.py and the .npz it loads, made when the button is pressed
    (``lab.serving.torch_export``, as ``python -m lab export-torch``); a caption says why when it cannot be."""
    # a run loaded back from a file has no data here, and making it again may be far beyond the page's bounds
    problem = ("it was loaded back from a file without its data: python -m lab export-torch FILE exports it"
               if result.data is None else torch_export.export_problem(result.config, result.data))
    if problem is None:  # made in this server's memory: the gate prices it against the limit on one run's
        shape = gate.DataShape(len(result.data.X_train) + len(result.data.X_val), result.data.input_dim,
                               result.data.classes)
        try:
            gate.admit(gate.Work("export", (result.config,), shape), server_limits())
        except gate.Refused as exc:
            problem = str(exc)
    if problem is not None:
        st.caption(f"No PyTorch script for this run: {problem}.")
        return
    st.download_button("PyTorch script (ZIP)", lambda: torch_export.torch_export_zip(result.config, result.data),
                       f"{prefix}_torch.zip", "application/zip", on_click="ignore", key=f"{prefix}_dl_torch",
                       help="train_torch.py and the data and initial weights it loads: the same network, trained "
                            "with the same optimizer and batch order in PyTorch (needs torch and numpy)")


def session_runs_panel() -> None:
    """The session's run history: overlay, rename, delete, and import exported files."""
    st.divider()
    st.header("Runs of this session")
    runs = st.session_state.setdefault(state.RUNS, {})
    upload = st.file_uploader("load an exported JSON or ZIP", type=["json", "zip"], key="import_file")
    if upload is not None and st.session_state.get(state.IMPORTED_ID) != upload.file_id:
        st.session_state[state.IMPORTED_ID] = upload.file_id
        try:
            loaded = export.load_runs(upload.getvalue())
        except export.ImportFormatError as exc:
            plain_notice("error", "This file cannot be loaded. Nothing in this session was changed.",
                         f"{upload.name}: {exc}.")
        else:
            added = [remember_run(name, r, source=f"imported from {upload.name}") for name, r in loaded.items()]
            st.session_state[state.RUNS_OVERLAY] = added
            plain_notice("success", f"Loaded {len(added)} run{'' if len(added) == 1 else 's'}:",
                         "\n".join([f"from {upload.name}:", *(f"• {n}" for n in added)]))
    dropped = st.session_state.pop(state.DROPPED_RUNS, None)
    if dropped:
        plain_notice("info", f"This session keeps at most {server_limits().session_mb:g} MB of runs, so the oldest "
                     "were let go (download the runs you want to keep):", "\n".join(f"• {n}" for n in dropped))
    if not runs:
        st.caption("Runs from the Train and Compare pages, and loaded files, are listed here.")
        return
    stored = store_view.session_rows()  # this session's runs as the store has them now (None: no store)
    table = [{"run": n, "settings": describe(r.config),
              "epochs": r.history["epoch"].iloc[-1], "final loss": r.history["loss"].dropna().iloc[-1]
              if r.history["loss"].notna().any() else None,
              "diverged at": r.diverged_at} for n, r in runs.items()]
    if stored is not None:
        for row in table:
            record = stored.get(row["run"])
            row["in the store"] = "not saved" if record is None else f"#{record['id']} {record['name']}" \
                if record["deleted_at"] is None else "deleted"
    colours = run_colours(runs)  # every run keeps its colour, here and on the page's charts above
    narrow = {c: st.column_config.Column(width="small") for c in ("epochs", "final loss", "diverged at")}
    st.dataframe(tables.styled(pd.DataFrame(table), colours), hide_index=True, width="stretch",
                 height=tables.height(len(table), 12), column_config=narrow)
    st.caption(store_view.where_to_find() + " Every stored run, from any session, is on the **Runs** page.")
    default = [n for n in st.session_state.get(state.RUNS_OVERLAY, []) if n in runs] or list(runs)[-3:]
    picked = st.multiselect("overlay these runs", list(runs), default=default, key="overlay_pick")
    if picked:
        chosen = {n: runs[n] for n in picked}
        chart(charts.compare_loss_figure({n: r.history for n, r in chosen.items()}, {n: n for n in picked},
                                         colours=colours),
              key="overlay_loss", filename="session_runs_loss")
        chart(charts.profiles_grid({n: r.layers for n, r in chosen.items()}, {n: n for n in picked}, colours=colours),
              key="overlay_profiles", filename="session_runs_profiles")
        export_buttons(chosen, {}, prefix="runs")
    with st.expander("rename or delete runs"):
        with st.form("rename"):
            old = st.selectbox("run", list(runs), key="rename_old")
            new = st.text_input("new name", key="rename_new")
            if st.form_submit_button("Rename"):
                new = new.strip()
                if not new:
                    st.error("Give the run a name.")
                elif new in runs and new != old:
                    plain_notice("error", "There is already a run with that name:", new)
                else:
                    st.session_state[state.RUNS] = {new if n == old else n: r for n, r in runs.items()}
                    store_view.rename_session_run(old, new)
                    st.rerun()
        with st.form("delete"):
            gone = st.multiselect("runs to delete", list(runs), key="delete_pick")
            if st.form_submit_button("Delete") and gone:
                state.replace(state.RUNS, {n: r for n, r in runs.items() if n not in gone})
                store_view.delete_session_runs(gone)
                st.rerun()

