"""Sweep: which networks can learn at all.  Short training runs over a grid of two settings, drawn as
a heat map that fills in as the cells finish (lab.experiments.sweep runs them, on local worker processes or on the
Dask cluster the operator set up).  A sweep passes the one gate (lab.serving.gate) before any cell runs."""
import concurrent.futures
import contextlib
import logging
import math
import os
import time

import pandas as pd
import streamlit as st

from lab.data.datasets import DATASETS
from lab.engine.activations import ACTIVATIONS
from lab.engine.config import RunConfig
from lab.engine.init import INITIALIZERS
from lab.engine.optim import OPTIMIZERS
from lab.engine.settings import SEEDS, SETTINGS, ConfigError
from lab.experiments.sweep import (
    CONFIG_COLUMNS,
    SCHEDULER_ENV,
    SIGMA_W,
    SWEEP_AXES,
    SweepSpec,
    cell_key,
    cells,
    map_cells,
    parse_axis,
)
from lab.report import charts, summaries
from lab.serving import gate
from lab.theory.meanfield import depth_scale
from pages.ui import panels, router, running, state, widgets

router.use_router()

REDRAW_S = 0.5  # redraw the heat map at most twice a second
METRICS = ("final_val_accuracy", "final_loss", "epochs_to_threshold", "delta_ratio_init", "delta_ratio_end")
# the paper's experiment (Schoenholz et al. 2017) on digits, at a size that runs in about a minute here
PRESET = dict(s_x=SIGMA_W, s_xv="1:4:12", s_y="depth", s_yv="2:60:10", s_seeds=1, s_epochs=2, s_data="digits",
              s_act="tanh", s_init="lecun_normal", s_bias=round(math.sqrt(0.05), 4), s_width=64, s_opt="adam",
              s_lr=0.001, s_metric="final_val_accuracy")
# measured (python -m lab sweep with these settings, 120 cells): 43 s on 2 workers of a quiet 2-core machine,
# 136 s beside other work
PRESET_ESTIMATE = "about 45 s on 2 workers of an idle 2-core machine"


def workers() -> int:
    """Local worker processes: session state (tests), then LAB_SWEEP_WORKERS, then 2."""
    value = st.session_state.get(state.SWEEP_WORKERS) or os.environ.get("LAB_SWEEP_WORKERS") or 2
    return max(1, int(value))


def operator_scheduler() -> str | None:
    """The Dask scheduler the operator chose (BACKPROP_LAB_SCHEDULER in the server's environment, or in
    .streamlit/secrets.toml, which wins, as for the limits), or None: local worker processes.

    Never a visitor's: Dask's client unpickles what the cluster returns, so a cluster runs code in this
    server's process; no widget, link or session state names one."""
    value = os.environ.get(SCHEDULER_ENV)
    try:
        value = st.secrets.get(SCHEDULER_ENV, value)
    except Exception:  # noqa: BLE001 - no secrets file (or an unreadable one): the environment alone
        pass
    text = "" if value is None else str(value).strip()
    return text or None


def where(scheduler: str | None, n: int) -> str:
    if scheduler:
        return "Cells run on the Dask cluster that the operator of this server set up."
    return (f"Cells run on {n} local worker process{'es' if n > 1 else ''} of this server, "
            "as the operator of this server set up.")


def still_wanted() -> None:
    """map_cells's ``waiting``: a read of session state is one of Streamlit's yield points, where a Stop
    (a rerun) or a closed tab raises; leaving map_cells then ends the cells still running."""
    _ = state.SWEEP_RUN in st.session_state


st.title("Sweep: which networks can learn at all")
st.markdown(
    "Each cell is a short training run of one network; the map shows how it ended, for every pair of values "
    "of two settings. Mean-field theory says a network trains only when its depth is below a few times the "
    "depth scale ξ(σ_w), which diverges at the *edge of chaos*: sweep **sigma_w** × **depth** to see it "
    "(the white line). **Paper's experiment** sets up Schoenholz et al.'s (2017) figure on digits."
)

if st.button("Paper's experiment (tanh, σ_b² = 0.05, σ_w 1–4, depth 2–60)", key="s_preset",
             help=f"12 σ_w × 10 depths, 1 seed, 2 epochs on digits: {PRESET_ESTIMATE}. Press Run after."):
    for k, v in PRESET.items():
        st.session_state[k] = v
for k, v in PRESET.items():
    st.session_state.setdefault(k, v)

EPOCHS = SETTINGS["epochs"].range(ui=True)
with st.form("sweep"):
    a, b, c = st.columns(3)
    x_name = a.selectbox("x setting", SWEEP_AXES, key="s_x")
    x_text = a.text_input("x values", key="s_xv", help="a list (1, 2, 3 or relu tanh) or START:STOP:COUNT")
    y_name = a.selectbox("y setting", SWEEP_AXES, key="s_y")
    y_text = a.text_input("y values", key="s_yv", help="a list or START:STOP:COUNT")
    dataset = b.selectbox("dataset", [d for d in DATASETS], key="s_data")
    activation = b.selectbox("activation", list(ACTIVATIONS), key="s_act")
    init = b.selectbox("init", list(INITIALIZERS), key="s_init")
    bias_std = b.number_input("σ_b (bias std)", *SETTINGS["bias_std"].range(ui=True), step=0.05, format="%.4f",
                               key="s_bias")
    # the bounds of the browser's range (lab.engine.settings): the page cannot ask for what the gate would refuse
    width = b.number_input("width", *SETTINGS["width"].range(ui=True), key="s_width")
    optimizer = c.selectbox("optimizer", list(OPTIMIZERS), key="s_opt")
    lr = c.number_input("learning rate", *SETTINGS["lr"].range(ui=True), format="%.4g", key="s_lr")
    epochs = c.number_input("epochs", max(1, EPOCHS[0]), EPOCHS[1], key="s_epochs")
    seeds = c.number_input("seeds", *SEEDS.range(ui=True), key="s_seeds")
    metric = c.selectbox("colour by", METRICS, key="s_metric",
                         format_func=lambda m: charts.SWEEP_METRICS[m][0])
    go = st.form_submit_button("Run the sweep", type="primary")
scheduler = operator_scheduler()
st.caption(where(scheduler, workers()))


def split(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


def admitted_cells(spec: SweepSpec) -> list[dict] | None:
    """The sweep's cells when the gate admits them (the count before they are listed), or None after
    showing why not."""
    try:
        gate.check_seeds(spec.seeds)
        gate.check_count("sweep", len(spec.x[1]) * len(spec.y[1]) * spec.seeds)
    except gate.Refused as exc:
        st.error(gate.sentence(exc))
        return None
    todo = cells(spec)
    ticket = running.admitted(gate.Work("sweep", tuple(RunConfig.from_dict(c["config"]) for c in todo)))
    return None if ticket is None else todo


if go:
    try:
        base = RunConfig(dataset=dataset, activation=activation, init=init,
                         bias_std=float(bias_std), width=int(width), optimizer=optimizer, lr=float(lr),
                         epochs=int(epochs)).validate()
        spec = SweepSpec(base, (x_name, parse_axis(x_name, split(x_text))),
                         (y_name, parse_axis(y_name, split(y_text))), seeds=int(seeds))
        with st.spinner("Pricing the sweep…"):
            todo = admitted_cells(spec)
    except (ConfigError, ValueError) as exc:  # its words may quote the values typed: plain text
        panels.plain_notice("error", "Cannot run this sweep:", f"{exc}.")
        st.stop()
    if todo is None:
        st.stop()
    st.session_state[state.SWEEP_RUN] = dict(spec=spec, cells=todo, rows=[], running=True, seconds=0.0,
                                             workers=workers())

run = st.session_state.get(state.SWEEP_RUN)
if run is None:
    st.info(f"Choose two settings and press **Run the sweep**, or load the **Paper's experiment** "
            f"({PRESET_ESTIMATE}).")
    st.stop()

spec = run["spec"]
(xn, xv), (yn, yv) = spec.x, spec.y
metric_shown = metric if metric in METRICS else "final_val_accuracy"


@st.cache_resource(show_spinner=False)
def xi_lines() -> tuple[concurrent.futures.ThreadPoolExecutor, dict]:
    """The server's depth-scale lines, each computed once in a thread of their own: a tanh line takes seconds
    (the correlation map's fixed point at every chaotic sigma_w), which the live map must not wait for."""
    return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xi-line"), {}


XI_LINES_KEPT = 32


def xi_function(spec, wait: bool = True):
    """A function sigma_w grid -> xi for the sweep map, or None when the map is not sigma_w by depth.  With
    ``wait`` False it gives None while the line is still being computed (the live map goes on without it)."""
    if not (xn == SIGMA_W and yn == "depth"):
        return None
    act, sb = spec.base.activation, spec.base.bias_std
    pool, lines = xi_lines()

    def line(grid):
        key = (act, sb, tuple(float(g) for g in grid))
        if key not in lines:
            while len(lines) >= XI_LINES_KEPT:
                lines.pop(next(iter(lines)))
            lines[key] = pool.submit(depth_scale, act, list(key[2]), sb)
        future = lines[key]
        if not (wait or future.done()):
            return None
        return future.result()

    return line


def figure(rows, wait: bool = True):
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=[xn, yn, metric_shown])
    return charts.sweep_figure(table, xn, yn, metric_shown, depth_scale=xi_function(spec, wait), values=(xv, yv))


total = len(run["cells"])


def stop_sweep() -> None:
    """Stop's callback: it runs before the rerun its click asks for, so that rerun draws no Stop button.  The
    script run that drew the button is told to stop (Streamlit's fast reruns), and ends at its next yield
    point, where its cells are cancelled; until then it adds no row (``running`` is read before each)."""
    st.session_state[state.SWEEP_RUN]["running"] = False


if run["running"]:
    st.button("Stop", key="s_stop", type="secondary", on_click=stop_sweep)
    done_keys = {tuple(r["_key"]) for r in run["rows"]}
    todo = [c for c in run["cells"] if tuple(c["key"]) not in done_keys]
    bar = st.progress(len(run["rows"]) / total, text="starting the workers…")
    live = st.empty()
    with st.spinner("Running the sweep…"):
        seconds_before = run["seconds"]
        start = time.perf_counter() - seconds_before
        started_with = len(run["rows"])
        last = 0.0
        frame = 0
        finished = map_cells(todo, run["workers"], scheduler=scheduler, waiting=still_wanted)
        try:
            with contextlib.closing(finished):
                for row in finished:  # in any order: a row's key comes from the row itself
                    if not run["running"]:  # stopped: a row that comes after the Stop is not counted
                        break
                    row["_key"] = cell_key(row[xn], row[yn], row["seed_index"])
                    run["rows"].append(row)
                    run["seconds"] = time.perf_counter() - start
                    done = len(run["rows"])
                    rate = (run["seconds"] - seconds_before) / max(done - started_with, 1)
                    left = rate * (total - done)
                    bar.progress(done / total, text=f"{done} of {total} runs; about {left:.0f} s left")
                    now = time.perf_counter()
                    if now - last >= REDRAW_S or done == total:
                        frame += 1
                        live.plotly_chart(figure(run["rows"], wait=False), key=f"s_live_{frame}")
                        last = now
        except ConfigError as exc:  # a scheduler that does not answer, or workers that cannot import lab
            run["running"] = False
            logging.getLogger(__name__).error("sweep on the Dask cluster: %s", exc)  # the operator's address
            st.error("The Dask cluster that the operator set up did not answer, or its workers cannot run the "
                     "lab; the server's log says which. The runs that finished are kept.")
            st.stop()
    run["running"] = False
    st.rerun()

rows = list(run["rows"])  # one count for the warning, the map and the caption
if len(rows) < total:
    st.warning(f"Stopped after {len(rows)} of {total} runs; the grey cells did not run.")
    if st.button("Run the missing cells", key="s_resume"):
        run["running"] = True
        st.rerun()
event = st.plotly_chart(figure(rows), key="s_map", on_select="rerun", selection_mode="points")
label = charts.SWEEP_METRICS[metric_shown][0]
st.caption(summaries.sweep_caption(spec, label, len(rows), total, run["seconds"], run["workers"],
                                   charts.SWEEP_XI_MULTIPLES if xi_function(spec) else None))

def same(value, clicked) -> bool:
    """A cell's value and the browser's (a number comes back as 1 where the row holds 1.0)."""
    try:
        return math.isclose(float(value), float(clicked), rel_tol=1e-9)
    except (TypeError, ValueError):
        return str(value) == str(clicked)


points = (event or {}).get("selection", {}).get("points", []) if event else []
if points:
    px, py = points[0].get("x"), points[0].get("y")
    match = [r for r in rows if same(r[xn], px) and same(r[yn], py)]
    if match:
        first = min(match, key=lambda r: r["seed_index"])
        config = RunConfig.from_dict({k: first[k] for k in CONFIG_COLUMNS})
        widgets.train_now(config)

if rows:
    table = pd.DataFrame(rows).drop(columns="_key")
    st.download_button("Download the table (CSV)", table.to_csv(index=False).encode(), "sweep.csv", "text/csv",
                       key="s_csv")
    with st.expander("The table"):
        st.dataframe(table, hide_index=True)
