"""Phase diagram: where the error signal vanishes, survives or explodes, by weight scale and depth."""
import time

import numpy as np
import streamlit as st

from lab import charts, theory
from lab.activations import ACTIVATIONS, get_activation
from lab.phase import critical_sigma_w, sweep
from pages.ui import panels, router, state

router.use_router()

st.title("Phase diagram: depth against weight scale")
st.markdown(
    "Each cell is an untrained network whose weights have std σ_w / √fan_in (lecun_normal with gain σ_w) "
    "and biases std σ_b, fed N(0, 1) random inputs. Its colour is log10 of the error signal (`delta_rms`) "
    "in the first hidden layer over that in the last one: **blue** cells lose the signal with depth "
    "(ordered phase), **red** ones amplify it (chaotic phase). Mean-field theory puts the boundary, "
    "the *edge of chaos*, where χ = 1: the dashed line."
)

with st.form("phase"):
    a, b, c = st.columns(3)
    activation = a.selectbox("activation", list(ACTIVATIONS), index=list(ACTIVATIONS).index("tanh"), key="p_act")
    sigma_b = a.number_input("σ_b (bias std)", 0.0, 2.0, 0.0, step=0.05, key="p_sb")
    sw_range = b.slider("σ_w range", 0.1, 5.0, (0.5, 3.0), step=0.1, key="p_sw")
    max_depth = b.slider("largest depth", 5, 100, 100, key="p_depth")
    cells = c.slider("cells per axis", 5, 30, 20, key="p_cells")
    width = c.select_slider("width", [32, 64, 128, 256], value=128, key="p_width")
    go = st.form_submit_button("Run the sweep", type="primary")


@st.cache_data(max_entries=16, show_spinner=False)
def finished_sweep(activation, sigma_b, sigma_ws, depths, width, _done=None):
    """The cache of finished sweeps, (table, seconds it took): without ``_done`` a lookup (a miss raises
    LookupError, which is not stored), with it a store.  The sweep runs outside, so that its progress
    bar is not replayed from the cache (a second identical sweep used to fail on exactly that)."""
    if _done is None:
        raise LookupError(activation)
    return _done


@st.cache_data(max_entries=64, show_spinner=False)
def edge_of_chaos(activation, sigma_b):
    return critical_sigma_w(activation, sigma_b)


if go:
    sigma_ws = tuple(np.round(np.linspace(*sw_range, cells), 4))
    depths = tuple(int(d) for d in np.unique(np.linspace(2, max_depth, cells).round().astype(int)))
    key = (activation, sigma_b, sigma_ws, depths, width)
    try:
        table, seconds = finished_sweep(*key)
    except LookupError:
        bar = st.progress(0.0, text="sweeping…")
        start = time.perf_counter()
        table = sweep(activation, sigma_ws, depths, sigma_b, width=width, n_probe=256,
                      progress=lambda done, total: bar.progress(done / total, text=f"σ_w column {done} of {total}"))
        seconds = time.perf_counter() - start
        finished_sweep(*key, _done=(table, seconds))
        bar.empty()
    st.session_state[state.PHASE_RESULT] = dict(table=table, activation=activation, sigma_b=sigma_b, width=width,
                                            seconds=seconds)

phase = st.session_state.get(state.PHASE_RESULT)
if phase is None:
    st.info("Press **Run the sweep**: the default 20 × 20 cells take about two seconds; "
            "the largest setting (30 × 30 cells of width 256) 10 to 20 seconds.")
    st.stop()

critical = edge_of_chaos(phase["activation"], phase["sigma_b"])
fig = charts.phase_figure(phase["table"], critical)
panels.chart(fig, key="phase", filename="phase_diagram")
act = get_activation(phase["activation"])
values = phase["table"]["log10_ratio"]
summary = (f"{len(phase['table'])} networks of width {phase['width']} measured in {phase['seconds']:.1f} s. ")
underflow, missing = int(np.isneginf(values).sum()), int(values.isna().sum())
if underflow:
    summary += (f"In {underflow} of them the error signal became exactly zero on its way back "
                "(every unit's derivative 0): drawn darkest blue. ")
if missing:
    summary += (f"{missing} cells have no value (the signal overflowed, or none reached the last hidden layer): "
                "drawn grey. ")
beyond = int((values.abs() > charts.PHASE_COLOUR_LIMIT).sum() - underflow)
if beyond > 0:
    summary += (f"{beyond} cells lie beyond ±{charts.PHASE_COLOUR_LIMIT:g} decades, where the colours stop; "
                "hover over a cell for its value. ")
if critical is None:
    summary += (f"For {phase['activation']} with σ_b = {phase['sigma_b']:g}, χ never crosses 1 in this range: "
                "theory predicts no edge of chaos here.")
else:
    r_lo = theory.regime(act, 0.8 * critical, phase["sigma_b"])
    summary += (f"Theory puts the edge of chaos at σ_w = {critical:.3g}: left of it the squared signal shrinks "
                f"by a factor χ < 1 per layer (at σ_w = {0.8 * critical:.2g}, χ = {r_lo.chi_star:.3g}); right of "
                "it it grows. Along the boundary the signal survives at every depth.")
st.caption(summary)
