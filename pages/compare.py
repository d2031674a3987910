"""Compare: vary one setting, keep everything else fixed, and see which networks learn and why."""
import streamlit as st

from lab.engine.settings import SEEDS, SETTINGS
from lab.experiments.compare import AXES, CompareSpec, mean_band, parse_values, summary_table
from lab.report import charts, summaries, tables
from lab.serving import gate
from lab.serving.share import params_to_spec, spec_to_params
from pages.ui import links, panels, router, run_history, running, state, store_view, widgets

router.use_router()

st.title("Compare initializations side by side")
st.markdown(
    "Vary **one** setting (the init scheme, the activation, the depth, ...) and keep everything else "
    "fixed: same data, same seed, same optimizer. Every run is trained, then drawn in the same colour on every chart."
)

# the choice axes' options, from the one declaration of settings (lab.engine.settings)
CHOICES = {axis: list(SETTINGS[axis].choices(ui=True)) for axis in ("init", "activation", "optimizer", "loss", "norm")}
DEFAULT = CompareSpec(widgets.ui_defaults().replace(depth=20, epochs=60, activation="relu"), "init",
                      ("xavier_normal", "he_normal", "lecun_normal", "orthogonal", "normal"))

# a shared link restores the comparison once per distinct link, and waits for the button (as on Train)
link = links.new_link(state.COMPARE_LINK_SEEN)
if link:
    linked, notices = params_to_spec(link, DEFAULT)
    links.show_link_notices(notices)
    st.session_state[state.COMPARE_SPEC] = linked
    st.session_state.pop(state.COMPARISON, None)  # an older comparison would not match the settings shown
    state.forget_widgets(state.COMPARE_WIDGETS)
    links.set_address(spec_to_params(linked, DEFAULT.base), state.COMPARE_LINK_SEEN)

spec0: CompareSpec = st.session_state.get(state.COMPARE_SPEC, DEFAULT)

# outside the form, so that choosing another setting shows the right kind of values box at once
axis = st.selectbox("setting to vary", AXES, index=AXES.index(spec0.axis), key="c_axis")
with st.form("compare"):
    # the values over the whole width, then the fixed settings in two columns: three columns side by side cut
    # the values' names and the checkboxes' labels at 1000 px
    st.subheader(f"Values of {axis}")
    if axis in CHOICES:
        default = [v for v in spec0.values if v in CHOICES[axis]] if axis == spec0.axis else CHOICES[axis][:3]
        values = st.multiselect("values (one run each)", CHOICES[axis], default=default, key=f"c_values_{axis}")
    else:
        text = ", ".join(map(str, spec0.values)) if axis == spec0.axis else ""
        values = st.text_input("values, comma-separated (e.g. 5, 10, 20)", value=text, key=f"c_text_{axis}").split(",")
    left, right = st.columns(2)
    seeds = left.slider("seeds per value (mean with a band)", *SEEDS.range(ui=True), SEEDS.clamp(spec0.seeds),
                        key="c_seeds")
    threshold = right.number_input("loss threshold for 'epochs to reach'", 0.0001, 10.0, 0.1, format="%.4f",
                                   key="c_threshold")
    with st.container():
        st.subheader("Everything else (fixed)")
        a, b = st.columns(2)
        with a:
            fixed = widgets.network_widgets(spec0.base, prefix=state.COMPARE_WIDGETS)
        with b:
            fixed |= widgets.training_widgets(spec0.base, prefix=state.COMPARE_WIDGETS)
            fixed |= widgets.cure_widgets(spec0.base, prefix=state.COMPARE_WIDGETS)
    run_clicked = st.form_submit_button("Run comparison", type="primary")

if run_clicked:
    base, message = widgets.build_config(spec0.base, fixed)
    try:
        typed = parse_values(axis, values)
        for v in typed:  # the browser's range, as for a link, so that this comparison's link opens as it ran
            SETTINGS[axis].check(axis, v, ui=True)
    except ValueError as exc:
        typed, message = (), f"the values cannot be read: {exc}"
    if base is None or not typed:
        st.error(f"This comparison cannot run: {message or 'choose at least one value'}.")
    else:
        spec = CompareSpec(base, axis, typed, seeds)
        try:
            planned = spec.configs()
        except Exception as exc:  # noqa: BLE001 - a ConfigError from one value, shown as a message
            st.error(f"This comparison cannot run: {exc}.")
            planned = None
        if planned and running.admitted(gate.Work("compare", tuple(c for _, c in planned.values()))) is None:
            planned = None
        if planned:
            st.session_state[state.COMPARE_SPEC] = spec
            runs = {}
            status = st.empty()
            for i, (name, (_, config)) in enumerate(planned.items(), start=1):
                status.markdown(f"Run {i} of {len(planned)}: **{name}**")
                result = running.run_with_progress(config, live=False)
                # the name it is kept under; the comparison goes to the store as one group, below
                runs[name] = run_history.remember_run(name, result, source="Compare", store=False)
            status.empty()
            session_runs = st.session_state.get(state.RUNS, {})
            store_view.save_group({kept: session_runs[kept] for kept in runs.values() if kept in session_runs},
                                  f"{axis}: {', '.join(map(str, typed))}", "Compare",
                                  {"axis": axis, "values": list(typed), "seeds": seeds, "base": base.to_dict()})
            st.session_state[state.COMPARISON] = {"spec": spec, "runs": list(runs), "kept_as": runs}

comparison = st.session_state.get(state.COMPARISON)
session_runs = st.session_state.get(state.RUNS, {})
if comparison:
    spec = comparison["spec"]
    kept_as = comparison.get("kept_as", {})
    names = [n for n in comparison["runs"] if kept_as.get(n, n) in session_runs]
    runs = {n: session_runs[kept_as.get(n, n)] for n in names}
    # the address carries the comparison shown, also after a visit to another page
    links.set_address(spec_to_params(spec, DEFAULT.base), state.COMPARE_LINK_SEEN)
    settings = {n: spec.configs()[n][0] if n in spec.configs() else n for n in names}
else:
    runs, settings = {}, {}
colours = run_history.run_colours(runs, settings)  # one colour per setting, the same in the session panel below

if not runs:
    st.info("The link's comparison is set up above: press **Run comparison** to run it." if link else
            "Press **Run comparison** (the defaults compare five init schemes on a 20-layer ReLU network), "
            "or load an exported file below.")
else:
    st.subheader("Loss curves")
    log_y = st.toggle("log-scale loss", value=True, key="cmp_log")
    band = mean_band(runs, settings) if spec.seeds > 1 else None
    loss_fig = charts.compare_loss_figure({n: r.history for n, r in runs.items()}, settings, log_y, band,
                                          spec.base.loss, colours=colours)
    panels.chart(loss_fig, key="cmp_loss", filename="loss_curves")
    table = summary_table(runs, threshold)
    st.caption(summaries.comparison_loss_caption(table))

    st.subheader("Gradient profiles at initialization and later")
    # every epoch any run recorded: a run that diverged early shows its last record (and says so)
    recorded = [set(r.layers["epoch"].unique()) for r in runs.values() if not r.layers.empty]
    epochs = sorted(set.union(*recorded)) if recorded else [0]
    at = st.select_slider("epoch for the coloured profile", epochs, value=epochs[-1], key="cmp_epoch") \
        if len(epochs) > 1 else epochs[0]
    prof_fig = charts.profiles_grid({n: r.layers for n, r in runs.items()}, settings, at, colours=colours)
    panels.chart(prof_fig, key="cmp_profiles", filename="gradient_profiles")
    st.caption(summaries.comparison_signal_caption(table))

    st.subheader("Summary")
    # two narrow tables rather than one wide one, so that nothing is cut off at 1000 pixels
    run_colour = {n: colours[settings[n]] for n in runs}
    steps = [c for c in table.columns if c.startswith("epochs_to_loss_")]
    labels = {
        "final_loss": ("loss", "final_loss: training loss at the last record (before divergence, if any)"),
        "final_accuracy": ("accuracy", "final_accuracy: training accuracy at the last record"),
        "final_val_loss": ("val loss", "final_val_loss: validation loss at the last record"),
        "final_val_accuracy": ("val accuracy", "final_val_accuracy: validation accuracy at the last record"),
        **{c: (f"epochs to < {threshold:g}", f"{c}: first epoch whose training loss is below {threshold:g}")
           for c in steps},
        "delta_ratio_init": ("δ ratio, init", ("delta_ratio_init: delta_rms of layer 1 over that of the last "
                                               "hidden layer, at initialization")),
        "delta_ratio_end": ("δ ratio, end", "delta_ratio_end: the same at the last record"),
        "diverged_at": ("diverged at", "diverged_at: the epoch at which the run diverged (empty: it did not)"),
        "wall_s": ("seconds", "wall_s: seconds the run took"),
    }
    config = {c: st.column_config.Column(label, help=help_text, alignment="right")
              for c, (label, help_text) in labels.items()}
    for title, columns in (("At the last record", ["final_loss", "final_accuracy", "final_val_loss",
                                                   "final_val_accuracy", "wall_s"]),
                           ("Speed, error signal, divergence", [*steps, "delta_ratio_init", "delta_ratio_end",
                                                                "diverged_at"])):
        part = table[["run", *columns]]
        st.markdown(f"**{title}**")
        st.dataframe(tables.styled(part, run_colour), hide_index=True, width="content", column_config=config,
                     height=tables.height(len(part), 12))

    st.subheader("Take it with you")
    run_history.export_buttons(runs, {"loss_curves": loss_fig, "gradient_profiles": prof_fig}, prefix="comparison")
    st.caption("Share this comparison: the page's address now carries it (copy it from the browser's address bar). "
               "PNG: the camera icon on each chart saves it at 2x scale.")

run_history.session_runs_panel()
