"""Gradient check: back-propagation against central differences, with a bug you can plant."""
import streamlit as st

from lab import RunConfig
from lab.engine.gradcheck import (
    BUG_KINDS,
    PASS_THRESHOLD,
    check_problem,
    compare_gradients,
    parameter_count,
    planted_bug,
)
from lab.engine.settings import SETTINGS
from lab.report import charts
from lab.serving import gate
from pages.ui import panels, router, running, state, widgets

router.use_router()

N_INPUTS, N_CLASSES, N_SAMPLES = 4, 3, 8
THRESHOLDS = [1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3]
BASE = RunConfig(depth=2, width=8, activation="tanh", init="xavier_normal", bias_std=0.1, dtype="float64")

st.title("Gradient check")
st.markdown(
    "Back-propagation is fast but easy to get subtly wrong; the numerical derivative is slow but hard to get "
    "wrong. Nudge one weight up and down by ε, recompute the loss both times, and the difference quotient is "
    "that weight's gradient. Doing this for every weight and comparing with backprop is the **gradient check**: "
    "if the two disagree, there is a bug in the backward code (or in the check)."
)
# two lines: side by side the two formulas ran past the page at 1000 pixels
st.latex(r"\frac{\partial L}{\partial w} \approx \frac{L(w + \varepsilon) - L(w - \varepsilon)}{2\varepsilon}")
st.latex(r"\text{relative error} = \frac{\lVert g_{\text{num}} - g_{\text{backprop}}\rVert}"
         r"{\lVert g_{\text{num}}\rVert + \lVert g_{\text{backprop}}\rVert}")

with st.sidebar.form("gradcheck"):
    st.subheader("Network")
    values = widgets.network_widgets(BASE, prefix=state.GRADCHECK_WIDGETS)
    seed = st.number_input("seed (weights and data)", *SETTINGS["seed"].range(ui=True), BASE.seed, key="g_seed")
    threshold = st.select_slider("pass if relative error is below", THRESHOLDS, value=PASS_THRESHOLD,
                                 format_func=lambda v: f"{v:g}", key="g_threshold")
    st.subheader("Plant a bug")
    bug = st.checkbox("swap one activation's derivative for a wrong one", key="g_bug")
    bug_layer = st.number_input("in hidden layer", *SETTINGS["depth"].range(ui=True), 1, key="g_bug_layer")
    bug_kind = st.selectbox("wrong how", list(BUG_KINDS), key="g_bug_kind",
                            help="; ".join(f"{k}: {v}" for k, v in BUG_KINDS.items()))
    st.form_submit_button("Run the check", type="primary")

config, message = widgets.build_config(BASE, dict(values, seed=int(seed)))
if config is None:
    st.error(f"This network cannot be built: {message}.")
    st.stop()
if bug and bug_layer > config.depth:
    st.error(f"The network has {config.depth} hidden layer(s); plant the bug in layer 1 to {config.depth}.")
    st.stop()

n_params = parameter_count(config, N_INPUTS, N_CLASSES)
st.markdown(
    f"**{config.activation}**, {config.init} init, {config.depth} hidden layer(s) of {config.width}: "
    f"{n_params:,} weights and biases, on a batch of {N_SAMPLES} random examples with {N_INPUTS} inputs and "
    f"{N_CLASSES} classes (cross-entropy loss, float64, ε = 1e-6)."
)
try:
    gate.admit(gate.Work("gradcheck", (config,)), running.server_limits())
except gate.Refused as exc:
    st.warning(f"Not checked: {exc}.")  # the gate's words and numbers only
    st.stop()


@st.cache_data(max_entries=32, show_spinner="Nudging every weight…")
def run_check(config: RunConfig, bug_layer: int | None, bug_kind: str, threshold: float):
    model, X, t = check_problem(config, N_INPUTS, N_CLASSES, N_SAMPLES)
    if bug_layer is not None:
        planted_bug(model, bug_layer, bug_kind)
    return compare_gradients(model, X, t, threshold=threshold)


result = run_check(config, int(bug_layer) if bug else None, bug_kind, threshold)
table = result.table
failed = table.loc[~table["passed"], "layer"].tolist()
L = len(table)

if not failed:
    st.success(f"All {L} layers pass: backprop agrees with central differences "
               f"(largest relative error {table['rel_error'].max():.1e}).")
    if bug:
        st.info(f"The planted bug changed nothing here: for {config.activation}, '{bug_kind}' gives the same "
                "derivative as the correct one, so there is no bug to catch.")
else:
    st.error(f"Layers {', '.join(map(str, failed))} of {L} fail: backprop disagrees with central differences "
             f"(largest relative error {table['rel_error'].max():.2g}).")
    if bug:
        below = "layer 1" if bug_layer == 1 else f"layers 1 to {int(bug_layer)}"
        st.markdown(
            f"The planted bug: {BUG_KINDS[bug_kind]}, in hidden layer {int(bug_layer)}. Back-propagation passes "
            f"through it on the way to {below}, so those gradients are wrong; the layers above it get their "
            "gradients before the signal reaches the bug, and still pass. The highest failing layer points at the bug."
        )

# two to a row: four side by side cut their labels and values off ("0.042 …") at 1000 pixels
cols = st.columns(2)
cols[0].metric("numerical (all central differences)", f"{result.numerical_s * 1e3:,.1f} ms")
cols[1].metric("backprop (one forward + backward)", f"{result.backprop_s * 1e3:,.3f} ms")
cols = st.columns(2)
cols[0].metric("backprop is faster by", f"{result.speedup:,.0f}×")
cols[1].metric("forward passes needed", f"{2 * n_params:,} vs 1",
               help="numerical: two per parameter; backprop: one forward and one backward pass")
st.caption("Backprop time is the median of 21 passes; numerical time is one sweep over every parameter. "
           "The factor grows with the number of parameters, since the numerical way needs two forward passes "
           "for each one.")

panels.chart(charts.gradcheck_figure(table, threshold), key="gc_layers", filename="gradient_check")
shown = table.rename(columns={"n_params": "parameters", "numerical_norm": "||numerical||",
                              "backprop_norm": "||backprop||", "rel_error": "relative error",
                              "max_abs_diff": "largest |difference|", "numerical_s": "numerical time (s)"})
st.dataframe(
    shown[["layer", "parameters", "||numerical||", "||backprop||", "relative error", "largest |difference|",
           "passed", "numerical time (s)"]].style.format(
        {"||numerical||": "{:.6g}", "||backprop||": "{:.6g}", "relative error": "{:.2e}",
         "largest |difference|": "{:.2e}", "numerical time (s)": "{:.4f}"}),
    hide_index=True, width="stretch",
)
st.caption("A layer also passes when its largest difference is below 1e-9: when its gradient has vanished to "
           "that size, the relative error only measures rounding noise.")
panels.chart(charts.gradcheck_scatter(result.entries, table), key="gc_entries", filename="gradient_check_entries")
st.caption("A correct layer puts every point on the diagonal. A halved derivative tilts the cloud to slope 1/2; "
           "a flipped sign mirrors it to slope −1. ReLU-type activations have a kink at 0: if a pre-activation "
           "happened to lie within ε of it, the numerical derivative would straddle the kink and disagree.")
