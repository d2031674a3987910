"""Phase diagram: where the error signal vanishes, survives or explodes, by weight scale and depth."""
import time

import streamlit as st

from lab.engine.activations import ACTIVATIONS
from lab.engine.settings import PHASE, PHASE_WIDTHS
from lab.report import charts, summaries
from lab.serving import gate
from lab.theory.phase import critical_sigma_w, sweep
from lab.theory.phase_grid import phase_counts, sweep_grid
from pages.ui import panels, router, running, state

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
    sigma_b = a.number_input("σ_b (bias std)", *PHASE["sigma_b"].range(), 0.0, step=PHASE["sigma_b"].step, key="p_sb")
    sw_range = b.slider("σ_w range", *PHASE["sigma_w"].range(), (0.5, 3.0), step=PHASE["sigma_w"].step, key="p_sw")
    max_depth = b.slider("largest depth", *PHASE["max_depth"].range(), 100, key="p_depth")
    cells = c.slider("cells per axis", *PHASE["cells"].range(), 20, key="p_cells")
    width = c.select_slider("width", PHASE_WIDTHS, value=128, key="p_width")
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


if go and running.admitted(gate.Work("phase", phase=gate.PhaseGrid(activation, sigma_b, sw_range, cells, max_depth,
                                                                   width))) is None:
    go = False
if go:
    sigma_ws, depths = sweep_grid(sw_range, cells, max_depth)
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
counts = phase_counts(phase["table"], phase["activation"], phase["sigma_b"], critical, charts.PHASE_COLOUR_LIMIT)
st.caption(summaries.phase_caption(counts, phase["width"], phase["seconds"], phase["activation"], phase["sigma_b"],
                                   charts.PHASE_COLOUR_LIMIT))
