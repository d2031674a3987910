"""Train: choose init, activation and depth, train, and watch the error signal at every layer."""
import streamlit as st

from lab.data.datasets import MAX_CSV_BYTES, DataError
from lab.data.datasets import csv_columns as read_csv_columns
from lab.experiments.compare import describe
from lab.report import figures, summaries
from lab.serving import gate
from lab.serving.limits import SESSION_FULL_RUNS
from lab.serving.share import config_to_params, params_to_config
from lab.store.runstore import WEIGHTS_CAP_BYTES
from pages.ui import links, pace, panels, playback, preview, results_view, router, run_history, running, state, widgets

DATASET_WIDGET = state.widget_key(state.TRAIN_WIDGETS, "dataset")

router.use_router()

st.title("Train a network and watch its gradients")
st.markdown(
    "Pick the settings in the sidebar and press **Train**. The charts show how large the "
    "back-propagated error signal is at every layer: where it dies, where it explodes, and what that does to learning."
)

# a shared link restores its settings once per distinct link, and waits for Train (as on Compare)
link = links.new_link(state.TRAIN_LINK_SEEN)
if link:
    linked, notices = params_to_config(link, widgets.ui_defaults())
    links.show_link_notices(notices)
    widgets.set_settings(linked)
    st.session_state.pop(state.RESULT, None)  # an older result would not match the settings shown
    links.set_address(config_to_params(linked, widgets.ui_defaults()), state.TRAIN_LINK_SEEN)  # what the page uses

widgets.show_settings_notices()  # a run opened from the Runs page, a preset or a sweep cell, held to the bounds
settings = widgets.current_settings()
running.warm_prices()

with st.sidebar:
    upload = st.file_uploader("your own data (CSV: numeric features + one label column)", type=["csv"],
                              help=f"up to {MAX_CSV_BYTES // 2**20} MB; the label column may hold names or numbers")
    csv_bytes, csv_columns = None, None
    if upload is not None:
        csv_bytes = upload.getvalue()
        if st.session_state.get(state.LAST_UPLOAD) != upload.file_id:
            st.session_state[state.LAST_UPLOAD] = upload.file_id
            st.session_state[DATASET_WIDGET] = "csv"  # a new upload is what the user wants to train on
        try:
            csv_columns = read_csv_columns(csv_bytes)
        except DataError as exc:
            st.error(f"Your CSV cannot be used: {exc}.")
    if csv_columns is None and st.session_state.get(DATASET_WIDGET) == "csv":
        st.session_state[DATASET_WIDGET] = "spirals"  # the file was removed: back to a built-in set
    pace.speed_control()
    with st.form("settings"):
        submitted = st.form_submit_button("Train", type="primary", width="stretch",
                                          help="apply the settings and train to the last epoch")
        play_col, step_col = st.columns(2)
        play_pressed = play_col.form_submit_button("Play", icon=":material/play_arrow:", width="stretch",
                                                   help="apply the settings and watch the network learn, live")
        step_pressed = step_col.form_submit_button("Step", icon=":material/skip_next:", width="stretch",
                                                   help="apply the settings and train one epoch")
        st.subheader("Network")
        values = widgets.network_widgets(settings)
        st.subheader("Training")
        values |= widgets.training_widgets(settings)
        st.subheader("Cures")
        values |= widgets.cure_widgets(settings)
        st.subheader("Data")
        values |= widgets.data_widgets(settings, csv_columns)
    if values.get("dataset") == "csv" and upload is not None:
        values["data_path"] = upload.name

action = ("train" if submitted or st.session_state.pop(state.TRAIN_AUTORUN, False)
          else "play" if play_pressed else "step" if step_pressed else None)
config = None
if action:
    config, message = widgets.build_config(settings, values)
    if config is None:
        st.error(f"These settings cannot run: {message}.")
        action = None
    else:
        st.session_state[state.TRAIN_SETTINGS] = config

bar_slot = st.empty()  # the controls of the run on screen, drawn once the settings' action is done
# the live view while playing, else the picture of what will be trained or the results: each in a place of its
# own, the other emptied, so that nothing of one stays below the other (a live loop never ends its script run,
# so Streamlit would not clear them; and an empty() followed at once by a container in the same place is sent
# as the container alone, which keeps the elements it held)
live_slot, body = st.empty(), st.empty()


def act(action: str | None, config) -> None:
    """Train (to the end), play, pause, step or reset the run of ``config`` (pages/ui/playback.py)."""
    trainer, shown_run = playback.session_trainer(), st.session_state.get(state.RESULT)
    if action == "train":
        playback.set_playing(False)
        result = running.run_cache().get((config, running.digest(csv_bytes)))  # the numbers training would give
        if result is not None:
            playback.forget()
        else:
            trainer = playback.trainer_for(config, csv_bytes)
            if trainer is None:
                return
            stop = st.empty()
            stop.button("Stop", help="stop training and keep what has been recorded; Play or Step go on from there")
            result = running.run_with_progress(config, csv_bytes, trainer=trainer)
            stop.empty()
            if result is not None:
                result = playback.shown(trainer, result)
        if result is not None:
            state.show_run(result)
            run_history.remember_run(describe(config), result, source="Train")
    elif action == "play":
        if playback.trainer_for(config, csv_bytes) is not None:
            playback.set_playing(True)
    elif action == "pause":
        playback.set_playing(False)
        if trainer is not None:
            playback.shown(trainer)
    elif action == "step":
        if trainer is None and shown_run is not None and not shown_run.stopped and shown_run.config == config:
            ended = (f"diverged at epoch {shown_run.diverged_at:g}" if shown_run.diverged_at is not None
                     else "has reached its last epoch")
            playback.notice(f"This run {ended}: **Reset** starts it again from initialization.")
            return
        result = playback.step(config, csv_bytes)
        if result is not None and not result.stopped:
            run_history.remember_run(describe(config), result, source="Train")
    elif action == "reset":
        playback.reset(config, csv_bytes)
    else:
        playback.refresh()  # a run that Stop paused, shown as far as it got
        partial = running.recover_partial()
        if partial is not None and playback.session_trainer() is None:
            state.show_run(partial)


def control_bar() -> tuple[str | None, object]:
    """Play or Pause, Step and Reset for the run on screen, and where it stands; the button pressed."""
    trainer, shown_run = playback.session_trainer(), st.session_state.get(state.RESULT)
    run_config = trainer.config if trainer is not None else shown_run.config if shown_run is not None else None
    if run_config is None:
        return None, None
    pressed = None
    # buttons as wide as their labels, in a row that wraps: fixed columns cut the labels off in a narrow window
    bar = st.container(horizontal=True, vertical_alignment="center")
    if playback.playing():
        if bar.button("Pause", icon=":material/pause:", help="stop here; Play or Step go on from here"):
            pressed = "pause"
    elif bar.button("Play", icon=":material/play_arrow:", help="go on training, live"):
        pressed = "play"
    if bar.button("Step", icon=":material/skip_next:", help="one more epoch"):
        pressed = "step"
    if bar.button("Reset", icon=":material/restart_alt:", help="back to initialization, same seed"):
        pressed = "reset"
    where = bar.empty()  # written every time: the paused position would stay beside a live view
    if not playback.playing():  # while playing, the live view says where the run is
        where.caption(playback.position(trainer, shown_run))
    return pressed, run_config


if action is not None and playback.starts_new_run(action, config):
    # the screen never shows two runs as one: the run on screen goes before the new one trains (Streamlit
    # would leave it, faded, until the script run ends, and a live view's never does)
    body.empty()
    bar_slot.caption("Training the settings in the sidebar: their results come here, live or when training ends.")
act(action, config)
with bar_slot.container():
    pressed, run_config = control_bar()
    playback.show_notice()
if pressed:
    try:  # a run opened from the store may go beyond the browser's bounds: say so, where the rerun keeps it
        if pressed != "pause":
            gate.check_bounds(run_config, csv=csv_bytes is not None)
    except gate.Refused as exc:
        playback.notice(f"{gate.sentence(exc)} Press **Train** to run the settings in the sidebar.")
    else:
        act(pressed, run_config)
    st.rerun()  # the controls and the charts as the click left them

if playback.playing():
    body.empty()
    with live_slot.container():
        playback.live_view(describe(playback.session_trainer().config))
    st.stop()  # while playing, the live charts are the page; the rest comes back on Pause or at the end
live_slot.empty()
with body.container():
    result = st.session_state.get(state.RESULT)
    if result is None:
        st.info("The link's settings are in the sidebar: press **Train** to run them." if link else
                "Press **Train** (to the last epoch) or **Play** (live) in the sidebar, or pick a classic case on "
                "the Home page.")
        st.subheader("What will be trained")
        plan = running.planned_data(settings, csv_bytes)
        if plan is not None:
            preview.show_plan(settings, plan)
            st.caption("Left, the training data; right, the network, columns of units from the input to the output. "
                       "Narrow networks show every weight (blue positive, orange negative, thicker for larger); wide ones "
                       "one block per layer. Once it trains, each unit is shaded by the error signal it receives.")
        st.stop()
    # the address carries the settings of the run shown, also after a visit to another page
    links.set_address(config_to_params(result.config, widgets.ui_defaults()), state.TRAIN_LINK_SEEN)

    paused = playback.is_paused(result)
    panels.status_line(result, paused=paused)
    if result.layers.empty:
        st.stop()  # it overflowed at initialization: the message above is all there is

    # each section with a control of its own is a fragment: moving its slider redraws that section only
    results_view.learning_curves(result, paused)
    results_view.gradient_profile(result)
    results_view.flow_over_time(result)
    results_view.histograms(result)
    boundary, gap = figures.boundary(result), result.boundary_gap()
    if boundary is not None or gap is not None:
        st.subheader("5. Decision boundary")
    if boundary is not None:
        panels.chart(boundary, key="boundary", filename="decision_boundary")
    elif gap is not None:  # where the boundary would be, why it is not
        st.info(summaries.boundary_note(gap, SESSION_FULL_RUNS, WEIGHTS_CAP_BYTES), icon=":material/info:")
    results_view.jacobian_spectrum(result)

    st.subheader("Take it with you")
    name = next((n for n, r in st.session_state.get(state.RUNS, {}).items() if r is result), "run")
    run_history.export_buttons({name: result}, {}, prefix="run")
    run_history.torch_button(result, prefix="run")
    if result.config.dataset == "csv":
        st.caption("This run trained on your uploaded file, which a link cannot carry: this page's address holds "
                   "every other setting. Whoever opens it gets a notice and these network and training settings on "
                   "built-in data; to reproduce the run, they upload the same file, choose the same label column and "
                   "press Train. Each chart's camera icon saves a PNG at 2x scale.")
    else:
        st.caption("This page's address carries the settings: share it and the link reproduces the run "
                   "(same seed, same numbers) once Train is pressed. Each chart's camera icon saves a PNG at 2x scale.")
