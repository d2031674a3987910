"""Runs: every run kept in the run store, from this session and earlier ones; filter, overlay, open, edit."""
import pandas as pd
import streamlit as st

from lab.report import charts, tables
from lab.store.runstore import LISTED_COLUMNS
from pages.ui import panels, playback, router, run_history, state, store_view, widgets

router.use_router()

MAX_ROWS = 1000  # rows the table shows (newest first); the filters reach the rest
MAX_OVERLAY = 12  # runs overlaid at once: more lines than colours are unreadable
ANY = "(any)"
# what each run came to first, then its settings: a table wider than the page scrolls, and the outcome
# must not be the part out of sight
SHOWN = {"name": "name", "created": "when (UTC)", "final_loss": "final loss", "final_accuracy": "final accuracy",
         "diverged_at": "diverged at", "n_epochs": "epochs", "source": "source", **{c: c for c in LISTED_COLUMNS},
         "group": "group", "tags": "tags"}

st.title("Runs")
st.markdown("Every run trained in the lab (Train, Compare, the Init explorer, loaded files and the command line) "
            "is kept in the run store, so it outlives the browser tab and the server. Filter them, pick some to "
            "overlay, open one on the Train page, or rename, tag and delete them.")

notice = st.session_state.pop(state.RUNS_NOTICE, None)
if notice:
    st.success(notice)
deleted = st.session_state.get(state.RUNS_DELETED)
if deleted:
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.info(f"Deleted {len(deleted)} run{'' if len(deleted) == 1 else 's'}.")
    if right.button("Undo", icon=":material/undo:", key="runs_undo"):
        if store_view.edit("undelete", deleted):
            st.session_state.pop(state.RUNS_DELETED, None)
            st.session_state[state.RUNS_NOTICE] = f"Brought back {len(deleted)} run{'' if len(deleted) == 1 else 's'}."
            st.rerun()

every = store_view.listing()
if every is None:
    st.info(store_view.where_to_find())
    st.stop()
st.caption(store_view.where_to_find())
if every.empty:
    st.info("No runs stored yet: train one on the Train page, or run a comparison.")
    st.stop()

# filters: a selectbox per main setting, from the values present, then tag and name
with st.expander("filter", expanded=True):
    search = st.text_input("name contains", key="runs_search")
    cols = st.columns(4)  # six to a row cut the choices off in a 1000 px window
    chosen = {}
    for i, column in enumerate(("source", *LISTED_COLUMNS, "tags")):
        values = every[column].dropna()
        if column == "tags":
            values = pd.Series([t for text in values for t in text.split(",") if t])
        options = [ANY, *sorted(values.unique().tolist(), key=str)]
        pick = cols[i % len(cols)].selectbox(column if column != "tags" else "tag", options, key=f"runs_f_{column}")
        if pick != ANY:
            chosen[column] = pick
rows = every
for column, value in chosen.items():
    rows = rows[rows[column].fillna("").str.split(",").apply(lambda tags, v=value: v in tags)] \
        if column == "tags" else rows[rows[column] == value]
if search:
    rows = rows[rows["name"].str.contains(search, case=False, regex=False)]

st.caption(f"{len(rows)} of {len(every)} stored runs" + (f"; the newest {MAX_ROWS} shown" if len(rows) > MAX_ROWS
                                                         else "") + ". Click a column's header to sort.")
table = rows.head(MAX_ROWS).loc[:, list(SHOWN)].rename(columns=SHOWN)
table["when (UTC)"] = table["when (UTC)"].str.slice(0, 16).str.replace("T", " ")
table["seed"] = table["seed"].astype(str)  # an identifier: every digit, not a rounded number
st.dataframe(tables.styled(table, key="name"), hide_index=True, width="stretch", height=tables.height(len(table), 12),
             key="runs_table")

keep = st.session_state.pop(state.RUNS_PICK_AGAIN, None)
if keep is not None:  # a rename changes the option's label, which would clear the selection
    st.session_state["runs_pick"] = keep
stored = set(every["id"].tolist())
if any(i not in stored for i in st.session_state.get("runs_pick", [])):  # deleted elsewhere: another tab, Compare
    st.session_state["runs_pick"] = [i for i in st.session_state["runs_pick"] if i in stored]
labels = dict(zip(rows["id"].head(MAX_ROWS).tolist(), rows["name"].head(MAX_ROWS).tolist()))
picked = st.multiselect("select runs", list(labels), format_func=lambda i: f"{labels[i]} · #{i}", key="runs_pick",
                        max_selections=MAX_OVERLAY, help=f"overlay up to {MAX_OVERLAY} runs; open or edit one")
if not picked:
    st.caption("Select runs to overlay their loss curves and gradient profiles, export them, open one on the Train "
               "page, or edit or delete them.")
    st.stop()



def delete_picked(run_ids: list[int]) -> None:
    """Delete's callback: it runs before the rerun, so the selection is emptied before its widget is drawn
    (the chips of deleted runs go with them)."""
    if store_view.edit("delete", run_ids):
        st.session_state[state.RUNS_DELETED] = list(run_ids)
        st.session_state["runs_pick"] = []


st.button(f"Delete {len(picked)} selected", icon=":material/delete:", key="runs_delete", on_click=delete_picked,
          args=(list(picked),))

if len(picked) == 1:
    run_id = picked[0]
    record = rows[rows["id"] == run_id].iloc[0]
    if st.button("Open in Train", type="primary", icon=":material/monitoring:", key="runs_open",
                 help="show this run on the Train page with all its charts, without training it again"):
        result = store_view.load(run_id, with_data=False)  # widgets.open_run makes its data within the bounds only
        if result is not None:
            playback.forget()  # a paused run of other settings would take the Train page's place
            widgets.open_run(result)
            st.switch_page("pages/train.py")
    with st.form("runs_edit"):
        name = st.text_input("name", value=record["name"], key=f"runs_name_{run_id}")
        tags = st.text_input("tags (comma-separated)", value=record["tags"], key=f"runs_tags_{run_id}")
        notes = st.text_area("notes", value=record["notes"], key=f"runs_notes_{run_id}")
        if st.form_submit_button("Save"):
            name, tag_list = name.strip(), sorted({t.strip() for t in tags.split(",") if t.strip()})
            if not name:
                st.error("Give the run a name.")
            elif (store_view.edit("rename", run_id, name) and store_view.edit("set_tags", run_id, tag_list)
                  and store_view.edit("set_notes", run_id, notes)):
                st.session_state[state.RUNS_NOTICE] = "Saved."
                st.session_state[state.RUNS_PICK_AGAIN] = [run_id]
                st.rerun()

loaded = {}
for run_id in picked:
    result = store_view.load(run_id, with_data=False)
    if result is not None:
        loaded[f"{labels[run_id]} · #{run_id}"] = result
if loaded:
    colours = run_history.run_colours(loaded)
    same = {n: n for n in loaded}
    loss_fig = charts.compare_loss_figure({n: r.history for n, r in loaded.items()}, same, colours=colours)
    panels.chart(loss_fig, key="runs_loss", filename="runs_loss")
    prof_fig = charts.profiles_grid({n: r.layers for n, r in loaded.items()}, same, colours=colours)
    panels.chart(prof_fig, key="runs_profiles", filename="runs_profiles")
    st.subheader("Take them with you")
    run_history.export_buttons(loaded, {"loss_curves": loss_fig, "gradient_profiles": prof_fig}, prefix="runs")
