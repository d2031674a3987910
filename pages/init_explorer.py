"""Init explorer: push random data through two untrained networks and compare, instantly."""
import streamlit as st

from lab.engine.jacobian import INPUT_KINDS
from lab.engine.settings import SETTINGS
from lab.engine.training import train
from lab.report import charts, summaries
from lab.serving import gate
from lab.store.runstore import WEIGHTS_CAP_BYTES
from lab.theory import spectrum
from pages.ui import panels, router, running, spectrum_view, state, store_view, widgets

router.use_router()

st.title("Init explorer: two initializations side by side")
st.markdown(
    "No training: one batch of N(0, 1) random inputs goes forward through each untrained network, "
    "and one backward pass measures the error signal at every layer. This is the classic "
    "activation-histogram experiment of the initialization papers, made interactive."
)

SIDES = {
    "A": widgets.ui_defaults().replace(activation="sigmoid", init="xavier_normal", width=100),
    "B": widgets.ui_defaults().replace(activation="relu", init="he_normal", width=100),
}

with st.form("explore"):
    input_dim = st.slider("input dimension", *SETTINGS["input_dim"].range(ui=True), 100, key="x_input_dim")
    cols = st.columns(2)
    values = {}
    for col, (side, base) in zip(cols, SIDES.items()):
        with col:
            st.subheader(f"Setting {side}")
            values[side] = widgets.network_widgets(base, prefix=state.explorer_widgets(side))
    st.form_submit_button("Compare", type="primary")


@st.cache_data(max_entries=16, show_spinner="Pushing the batch through the network and back…")
def probe_at_init(config):
    # without the weights once they are too large for the store to keep (nothing here draws them): the cache is
    # the server's, counted by no budget, and a probe of 100 layers of 512 holds 200 MB of them
    result = train(config)
    return result.slim() if sum(W.nbytes + b.nbytes for W, b in result.weights) >= WEIGHTS_CAP_BYTES else result


results, names, configs = {}, {}, {}
for side, base in SIDES.items():
    config, message = widgets.build_config(
        base, dict(values[side], dataset="random", input_dim=input_dim, classes=10, samples=640,
                   val_fraction=0.2, epochs=0, dtype="float64"))
    if config is None:
        st.error(f"Setting {side} cannot run: {message}.")
        continue
    configs[side] = config
if configs and running.admitted(gate.Work("explore", tuple(configs.values()))) is None:
    configs = {}
for side, config in configs.items():
    results[side] = probe_at_init(config)
    names[side] = f"{side}: {summaries.network_label(config)}"
    saved = st.session_state.setdefault(state.EXPLORER_SAVED, set())
    if config not in saved:  # each probe once per session, not at every rerun
        saved.add(config)
        store_view.save_run(results[side], names[side], "Init explorer")

for side, r in list(results.items()):
    if r.layers.empty:
        st.error(f"{names[side]}: the signal overflowed at initialization ({r.diverge_reason}); nothing to draw.")
        del results[side]

COLOURS = {"A": charts.PALETTE[0], "B": charts.PALETTE[1]}  # each side keeps its colour on every chart

if results:
    against = {side: summaries.theory_comparison(r) for side, r in results.items()}
    predicted = {names[side]: overlay for side, (overlay, _) in against.items() if overlay is not None}
    panels.chart(charts.profiles_overlay({names[s]: r.layers for s, r in results.items()}, predicted=predicted,
                                         colours={names[s]: COLOURS[s] for s in results}),
                 key="overlay", filename="init_profiles")
    for side, r in results.items():
        st.caption(f"{names[side]}: " + summaries.profile_caption(r.layers, 0, residual=r.config.residual))
        if against[side][1]:
            st.caption(f"{names[side]}: {against[side][1]}")
    cols = st.columns(2)
    for col, (side, r) in zip(cols, results.items()):
        with col:
            st.markdown(f"**{names[side]}**")
            picker = state.widget_key(state.explorer_widgets(side), "hist_layers")
            shown = panels.layer_picker(r.act_hist.shape[1], key=picker)
            panels.chart(charts.histogram_grid(r, 0, shown, cols=2, colour=COLOURS[side]), key=f"hist_{side}",
                         filename=f"init_histograms_{side}")
            st.caption(summaries.saturation_caption(r.layers, 0))


@st.cache_data(max_entries=16, show_spinner="Taking the singular values of each network's Jacobian…")
def spectrum_at_init(config, inputs):
    # a ValueError (fewer than 2 hidden layers, no fixed point) is raised before any work, and not cached
    return spectrum.measure(config, inputs=inputs)


INPUT_WORDS = {"data": "from the data", "fixed-point": "at the fixed point q*"}
INPUTS_KEY = "x_jacobian_inputs"
# the pair of Pennington, Schoenholz & Ganguli (2017): the same mean of s² per layer, not the same spread
ISOMETRY_PAIR = {"A": dict(activation="tanh", init="orthogonal", gain_auto=False, gain=1.0, depth=50),
                 "B": dict(activation="tanh", init="lecun_normal", gain_auto=False, gain=1.0, depth=50)}


def try_isometry_pair() -> None:
    """Set both sides to ISOMETRY_PAIR and the probe inputs to the fixed point (a callback: before the widgets)."""
    for side, settings in ISOMETRY_PAIR.items():
        for name, value in settings.items():
            st.session_state[state.widget_key(state.explorer_widgets(side), name)] = value
    st.session_state[INPUTS_KEY] = "fixed-point"


st.subheader("Jacobian spectrum")
st.markdown(spectrum_view.INTRO)
st.button("Try A: tanh, orthogonal, gain 1, depth 50 against B: tanh, lecun_normal, depth 50",
          on_click=try_isometry_pair, icon=":material/compare_arrows:",
          help="the pair of Pennington et al. (2017), probed at the fixed point q*")
inputs = st.segmented_control("probe inputs", INPUT_KINDS, format_func=INPUT_WORDS.get, default="data",
                              required=True, key=INPUTS_KEY)
if inputs == "fixed-point":
    st.caption("The theory is stated at the fixed point q* of the length map: inputs there keep every layer's "
               "pre-activation variance at q*.")
spectra, labels = {}, {side: f"{side}: {summaries.network_label(c)}" for side, c in configs.items()}
if configs and running.admitted(gate.Work("jacobian", tuple(configs.values()))) is not None:
    for side, config in configs.items():
        try:
            spectra[labels[side]] = spectrum_at_init(config, inputs)
        except ValueError as exc:  # the measure's own sentence: no fixed point, too shallow
            st.info(f"{labels[side]}: {exc}.", icon=":material/info:")
spectrum_view.show(spectra, {labels[s]: COLOURS[s] for s in configs}, key="init_jacobian")
