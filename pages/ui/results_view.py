"""The Train page's results, one fragment per section with a control of its own: moving the epoch
slider, the snapshot slider, the heat map's colour or the log toggle redraws that section only."""
from __future__ import annotations

import streamlit as st

from lab import RunResult
from lab.report import charts, diagram, figures, summaries, tables
from lab.serving import gate
from lab.theory import spectrum
from pages.ui import panels, preview, running, spectrum_view, state


@st.fragment
def learning_curves(result: RunResult, paused: bool = False) -> None:
    """The loss curves and their verdict; ``paused``: the run can go on from where it stopped."""
    st.subheader("1. Learning curves")
    log_y = st.toggle("log-scale loss", value=False)
    panels.chart(figures.curves(result, log_y), key="loss", filename="learning_curves")
    st.caption(" ".join(filter(None, [summaries.loss_caption(result, paused), summaries.clipping_caption(result)])))


@st.fragment
def gradient_profile(result: RunResult) -> None:
    """The profile at the chosen epoch beside the verdicts, the network coloured by it, and the per-layer table."""
    epochs = panels.record_epochs(result)
    st.subheader("2. The gradient profile: how much error signal reaches each layer")
    epoch = st.select_slider("epoch", epochs, value=epochs[-1], key=state.shown_key("profile_epoch"),
                             help="0 = at initialization, before any update") if len(epochs) > 1 else epochs[0]
    # the verdict at initialization, where vanishing and exploding are plainest, beside the chosen epoch's
    then, now = st.columns(2)
    then.markdown(summaries.flow_line(result.layers, epochs[0], result.config.residual))
    if epoch != epochs[0]:
        now.markdown(summaries.flow_line(result.layers, epoch, result.config.residual))
    elif len(epochs) > 1:
        now.markdown("Move the slider to see a later epoch beside it.")
    st.caption(" ".join(filter(None, [summaries.flow_rule(),
                                      summaries.residual_note(result.config, result.layers, epoch)])))
    panels.show_profile(result, epoch, key="profile")
    if result.data is not None:
        with st.expander("The error signal on the network itself", expanded=True):
            network, _ = st.columns([3, 2])  # as wide as it is in the live view: a full-width diagram is too tall
            with network:
                preview.show_network(result.config, result.data, weights=result.weights or None,
                                     delta_rms=diagram.delta_at(result.layers, epoch),
                                     scale=diagram.delta_scale(result.layers), initial=False)
            narrow = max(diagram.layer_sizes(result.config, result.data)) <= diagram.MAX_UNITS  # weights drawn
            kept = ("" if not narrow else "The weights drawn are the run's last." if result.weights
                    else "This run's weights were not kept.")
            st.caption(f"Each unit coloured by the error signal its layer receives at epoch {epoch:g} (delta_rms, "
                       "log scale, the heat map's colours): vanishing shows as a fade to dark from the output back to "
                       f"layer 1. {kept}".rstrip())
    st.subheader("Per-layer statistics")
    at = result.layers[result.layers["epoch"] == epoch].drop(columns=["epoch", "step"])
    # two tabs of at most six columns, so that the table fits beside the sidebar without a scroll bar
    signal, weights = st.tabs(["error signal and gradients", "weights and activations"])
    for tab, columns in ((signal, ["delta_rms", "grad_norm", "grad_mean_abs", "update_ratio"]),
                         (weights, ["weight_norm", "act_mean", "act_std", "saturated_frac", "dead_frac"])):
        tab.dataframe(tables.styled(at[["layer", *columns]]), hide_index=True, width="stretch",
                      height=tables.height(len(at)))
    st.caption(f"At epoch {epoch:g}, the epoch chosen above. Column meanings are in the README's export section.")


@st.fragment
def flow_over_time(result: RunResult) -> None:
    st.subheader("3. How the flow changes while the network learns")
    which = st.radio("colour by", ["delta_rms", "update_ratio", "grad_norm"], horizontal=True, key="heat_col",
                     help="update_ratio: size of each step relative to the weights (around 1e-3 is healthy)")
    if len(panels.record_epochs(result)) > 1:
        panels.chart(figures.heatmap(result, which), key="heat", filename=f"heatmap_{which}")
    st.caption(summaries.heatmap_caption(result, which))


@st.fragment
def histograms(result: RunResult) -> None:
    st.subheader("4. Activations and errors per layer")
    if not (result.act_hist.shape[0] and result.act_hist.shape[1]):
        return
    snaps = list(range(result.act_hist.shape[0]))
    labels = [f"epoch {e:g}" for e in result.hist_epochs]  # not a closure over the run: the widget outlives it
    snap = st.select_slider("snapshot", snaps, value=snaps[-1], key=state.shown_key("hist_snap"),
                            format_func=labels.__getitem__)
    n_layers = result.delta_hist.shape[1]
    shown = panels.layer_picker(n_layers, key="hist_layers")
    panels.chart(figures.histograms(result, snap, shown), key="hists", filename="activation_histograms")
    snap_epoch = result.layers["epoch"].dtype.type(result.hist_epochs[snap])
    st.caption(summaries.saturation_caption(result.layers, snap_epoch))
    panels.chart(figures.error_histograms(result, snap, shown), key="delta_hists", filename="error_histograms")
    st.caption(summaries.delta_hist_caption(result.layers, snap_epoch, result.config.residual))


def _no_spectrum(result: RunResult) -> str:
    """Why the run's Jacobian spectrum cannot be measured ("" when it can)."""
    if result.config.depth < 2:
        return "A Jacobian between hidden layers needs at least 2 hidden layers; this network has 1."
    if not result.weights:
        return "This run's final weights were not kept, so its trained spectrum cannot be measured."
    if result.data is None:
        return "This run's data was not kept, so its spectrum cannot be measured on it."
    if result.diverged_at is not None:
        return "This run diverged: its final weights are no trained network to measure."
    return ""


@st.fragment
def jacobian_spectrum(result: RunResult) -> None:
    """The singular values of J_l = dh_l/dh_1 at initialization and after training, on a button: the page's
    normal render does not pay for them.  Kept for the run on screen until another run is shown."""
    with st.expander("Jacobian spectrum: at initialization and after training", expanded=False):
        why = _no_spectrum(result)
        if why:
            st.caption(why)
            return
        shown = st.session_state.get(state.RESULT_SHOWN, 0)
        kept = st.session_state.get(state.TRAIN_SPECTRA)
        spectra = kept[1] if kept is not None and kept[0] == shown else None
        st.markdown(spectrum_view.INTRO)
        button = st.empty()  # emptied once pressed: the spectra are drawn as every later rerun draws them
        if spectra is None and button.button("Compute the spectrum", icon=":material/equalizer:",
                                             help="the singular values of the network's Jacobian at a few training "
                                                  "examples, at initialization and with the final weights"):
            button.empty()
            spectra = _measure_both(result)
            if spectra is not None:
                state.replace(state.TRAIN_SPECTRA, (shown, spectra))
        if spectra is None:
            return
        spectrum_view.show(spectra, {INIT_NAME: charts.INIT_COLOR, TRAINED_NAME: charts.DELTA_COLOR},
                           key="train_jacobian")
        batch = (" Batch norm uses the statistics of the first training examples, at which both are measured."
                 if result.config.norm == "batch" else "")
        if TRAINED_NAME in spectra:
            where = summaries.epoch_of(summaries.stop_point(result), result.config.epochs)
            st.caption(f"The trained spectrum is that of the weights at {where}, the run's last: a run keeps only its "
                       "final weights, not those of the epochs before." + batch)
        else:
            st.caption("This run has not trained yet (no optimizer step): its weights are those of initialization, "
                       "so the spectrum at initialization is all there is." + batch)


INIT_NAME, TRAINED_NAME = "at initialization", "after training"


def _measure_both(result: RunResult) -> dict | None:
    """{name: Measured} at initialization and with the run's final weights (not for a run that took no step: they
    are the initial ones), or None after the gate's refusal."""
    config, data = result.config, result.data
    shape = (gate.DataShape(len(data.X_train) + len(data.X_val), data.input_dim, data.classes)
             if config.dataset == "csv" else None)
    if running.admitted(gate.Work("jacobian", (config, config), shape)) is None:
        return None
    with st.spinner("Taking the singular values of the network's Jacobian…"):
        spectra = {INIT_NAME: spectrum.measure(config, data=data)}
        if summaries.stop_point(result) > 0:
            spectra[TRAINED_NAME] = spectrum.measure(config, model=result.eval_model(), data=data, inputs="data")
        return spectra
