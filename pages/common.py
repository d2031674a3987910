"""Streamlit helpers shared by the pages: settings widgets, cached runs, chart blocks.

Widgets read into a RunConfig; runs go through ``run_with_progress``; drawing takes a
RunResult.  No math here: statistics come from ``lab``.
"""
from __future__ import annotations

import hashlib
import time
from collections import Counter

import pandas as pd
import streamlit as st

from lab import ConfigError, DataError, RunConfig, RunResult, charts, export, make_dataset, summaries, tables, theory, train
from lab.activations import ACTIVATIONS
from lab.compare import describe, unique_name
from lab.data import DATASETS
from lab.init import INITIALIZERS
from lab.optim import OPTIMIZERS

SETTINGS_KEY = "train_settings"
WIDTHS = [2, 4, 8, 16, 32, 64, 100, 128, 256, 512]
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
BATCHES = [8, 16, 32, 64, 128, 256, 512]
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
LIVE_INTERVAL_S = 0.25  # redraw live charts at most four times a second


def use_router(rerun: bool = True) -> None:
    """Make sure the page runs under app.py's st.navigation.

    Streamlit keeps a v1 multipage mode for apps that have a ``pages/`` folder: until
    app.py has run once in this server process, a first request for /train would run
    pages/train.py on its own (no router, no wide layout, every file listed as a page).
    app.py switches that mode off (``rerun=False``); a page that still finds it on was
    reached without app.py, and reruns so that app.py routes the request, unless app.py
    already ran in this session (then a rerun would only drop the click that got here).
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the v1 mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if rerun and "runs" not in st.session_state:
            st.rerun()


def ui_defaults() -> RunConfig:
    """The Train page's default run: small enough to finish in about a second."""
    return RunConfig(samples=400, epochs=200, dtype="float32")


def current_settings() -> RunConfig:
    return st.session_state.get(SETTINGS_KEY) or ui_defaults()


def set_settings(config: RunConfig) -> None:
    """Make ``config`` the Train page's settings (the widgets pick them up on next render)."""
    st.session_state[SETTINGS_KEY] = config
    for key in [k for k in st.session_state if str(k).startswith("w_")]:
        del st.session_state[key]


def _init(key, value):
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def _closest(options, value):
    return min(options, key=lambda o: abs(o - value))


def network_widgets(c: RunConfig, prefix: str = "w_") -> dict:
    """Depth, width, activation, init, gain, scale, bias: the architecture at initialization."""
    k = lambda name: f"{prefix}{name}"  # noqa: E731
    out = {}
    out["depth"] = st.slider("depth (hidden layers)", 1, 100, key=_init(k("depth"), c.depth))
    out["width"] = st.select_slider("width (units per layer)", WIDTHS, key=_init(k("width"), _closest(WIDTHS, c.width)))
    acts = list(ACTIVATIONS)
    out["activation"] = st.selectbox("activation", acts, key=_init(k("activation"), c.activation))
    inits = list(INITIALIZERS)
    out["init"] = st.selectbox("weight init", inits, key=_init(k("init"), c.init),
                               help="xavier = glorot, he = kaiming. normal/uniform use the absolute scale below.")
    auto = st.checkbox("gain auto (PyTorch's calculate_gain)", key=_init(k("gain_auto"), c.gain == "auto"))
    gain = st.number_input("gain (multiplier on the init's formula)", 0.0, 100.0, step=0.1, format="%.3f",
                           key=_init(k("gain"), 1.0 if c.gain == "auto" else float(c.gain)), disabled=False)
    out["gain"] = "auto" if auto else gain
    out["init_scale"] = st.number_input("init scale (std of normal, half-width of uniform)", 0.0, 1000.0,
                                        format="%.4f", step=0.01, key=_init(k("init_scale"), float(c.init_scale)))
    out["bias_std"] = st.number_input("bias std (0 = zero biases)", 0.0, 100.0, format="%.3f", step=0.1,
                                      key=_init(k("bias_std"), float(c.bias_std)))
    return out


def training_widgets(c: RunConfig, prefix: str = "w_") -> dict:
    k = lambda name: f"{prefix}{name}"  # noqa: E731
    out = {}
    out["loss"] = st.selectbox("loss", ["cross_entropy", "mse"], key=_init(k("loss"), c.loss))
    out["optimizer"] = st.selectbox("optimizer", list(OPTIMIZERS), key=_init(k("optimizer"), c.optimizer))
    out["lr"] = st.select_slider("learning rate", LRS, key=_init(k("lr"), _closest(LRS, c.lr)),
                                 format_func=lambda v: f"{v:g}")
    out["epochs"] = st.number_input("epochs (0 = only the record at initialization)", 0, 5000,
                                    key=_init(k("epochs"), c.epochs))
    out["batch_size"] = st.select_slider("batch size", BATCHES, key=_init(k("batch_size"), _closest(BATCHES, c.batch_size)))
    out["seed"] = st.number_input("seed", 0, 2**31 - 1, key=_init(k("seed"), c.seed))
    out["record_every"] = st.number_input("record every k steps (0 = every epoch)", 0, 100_000,
                                          key=_init(k("record_every"), c.record_every))
    out["dtype"] = st.radio("precision", ["float32", "float64"], horizontal=True, key=_init(k("dtype"), c.dtype))
    return out


def data_widgets(c: RunConfig, csv_columns: list[str] | None, prefix: str = "w_") -> dict:
    k = lambda name: f"{prefix}{name}"  # noqa: E731
    out = {}
    names = list(DATASETS) + (["csv"] if csv_columns else [])
    default = c.dataset if c.dataset in names else "spirals"
    out["dataset"] = st.selectbox("dataset", names, key=_init(k("dataset"), default),
                                  format_func=lambda n: "uploaded CSV" if n == "csv" else n)
    if csv_columns:
        out["label"] = st.selectbox("label column of the CSV", csv_columns,
                                    key=_init(k("label"), c.label if c.label in csv_columns else csv_columns[-1]))
    out["samples"] = st.slider("samples (generated data)", 100, 5000, step=100, key=_init(k("samples"), c.samples))
    out["classes"] = st.slider("classes (spirals, blobs, random)", 2, 10, key=_init(k("classes"), c.classes))
    out["input_dim"] = st.slider("input dimension (blobs, random)", 2, 784, key=_init(k("input_dim"), c.input_dim))
    out["val_fraction"] = st.slider("validation fraction", 0.0, 0.5, step=0.05, key=_init(k("val_fraction"), c.val_fraction))
    return out


def build_config(base: RunConfig, values: dict) -> tuple[RunConfig | None, str]:
    """(config, "") or (None, a message for the user)."""
    try:
        return base.replace(**values).validate(), ""
    except (ConfigError, TypeError) as exc:
        return None, str(exc)


@st.cache_data(max_entries=64, show_spinner=False)
def _finished_run(config: RunConfig, data_digest: str, _result: RunResult | None = None) -> RunResult:
    """The cache of finished runs, keyed by config (and the uploaded data's digest).

    Called without ``_result`` it only looks up (a miss raises LookupError, which
    st.cache_data does not store); called with it, it stores.  Training itself runs
    outside so that it can draw live progress.
    """
    if _result is None:
        raise LookupError(config)
    return _result


def digest(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data else ""


def load_csv(data: bytes, config: RunConfig):
    """Dataset from uploaded bytes, or (None, message)."""
    try:
        return make_dataset(config, csv_source=data), ""
    except DataError as exc:
        return None, f"Your CSV cannot be used: {exc}."


def run_with_progress(config: RunConfig, csv_bytes: bytes | None = None, live: bool = True) -> RunResult | None:
    """A finished run from the cache, or train now with a progress bar and live charts.

    Returns None (after showing why) when the data cannot be loaded.  A run interrupted
    by the user (any click reruns the page) is kept in session state as ``partial``.
    """
    key = digest(csv_bytes)
    try:
        return _finished_run(config, key)
    except LookupError:
        pass
    data = None
    if config.dataset == "csv":
        data, message = load_csv(csv_bytes, config)
        if data is None:
            st.error(message)
            return None
    bar = st.progress(0.0, text="training…")
    live_cols = st.columns(2) if live else None
    slots = [c.empty() for c in live_cols] if live else []
    state = {"next": 0.0, "n": 0}

    def callback(progress):
        st.session_state["partial"] = (config, progress)
        start = time.perf_counter()
        if start < state["next"] and progress.step < progress.total_steps:
            return False
        state["n"] += 1
        row = progress.history[-1]
        bar.progress(min(progress.fraction, 1.0), text=f"epoch {row['epoch']:g} of {config.epochs}, loss {row['loss']:.4g}")
        if live and progress.layer_stats[-1] is not None:
            slots[0].plotly_chart(charts.live_loss_figure(progress.history_frame(), config.loss),
                                  key=f"live_loss_{state['n']}", config=PLOT_CONFIG)
            layers = progress.layers_frame()
            slots[1].plotly_chart(charts.profile_figure(layers, layers["epoch"].max()), key=f"live_prof_{state['n']}",
                                  config=PLOT_CONFIG)
        # at most four redraws a second, and drawing takes at most a fifth of the run
        done = time.perf_counter()
        state["next"] = done + max(LIVE_INTERVAL_S, 4 * (done - start))
        return False

    result = train(config, data=data, callback=callback)
    st.session_state.pop("partial", None)
    bar.empty()
    for slot in slots:
        slot.empty()
    if not result.stopped:
        _finished_run(config, key, _result=result)
    return result


def recover_partial() -> RunResult | None:
    """The part of a run that a click interrupted, as a stopped RunResult (or None)."""
    got = st.session_state.pop("partial", None)
    if got is None:
        return None
    _, progress = got
    return progress.snapshot() if progress.snapshot else None


def chart(fig, key=None, filename: str | None = None):
    """A plotly chart; its camera button saves a PNG at 2x scale named ``filename``."""
    config = PLOT_CONFIG
    if filename:
        config = {**PLOT_CONFIG, "toImageButtonOptions": {**PLOT_CONFIG["toImageButtonOptions"], "filename": filename}}
    st.plotly_chart(fig, key=key, config=config)


def remember_run(name: str, result: RunResult, source: str) -> str:
    """Add a finished run to the session's run history under a unique name; return the name."""
    runs = st.session_state.setdefault("runs", {})
    for existing, r in runs.items():
        if r is result:
            return existing
    name = unique_name(name, runs)
    result.meta.setdefault("source", source)
    runs[name] = result
    return name


def layer_picker(n_layers: int, key: str, label: str = "layers to show in the histograms") -> list[int] | None:
    """All layers when the grids can show them all (None); beyond that, a choice that starts evenly spaced."""
    if n_layers <= charts.HIST_ALL_LAYERS_UP_TO:
        return None
    options = list(range(1, n_layers + 1))
    picked = st.multiselect(label, options, default=charts.pick_layers(n_layers), key=f"{key}_{n_layers}",
                            help=f"{n_layers} layers are too many to draw at once; add or remove any of them. "
                                 f"The last one is the output layer (error histograms only).")
    return sorted(picked) or None


def run_colours(runs: dict[str, RunResult], groups: dict[str, str] | None = None) -> dict[str, str]:
    """A colour per group of runs (default: per run), kept with the runs so that a run has the same
    colour on every chart of the session; a new group gets the colour least in use by the session's runs."""
    groups = groups if groups is not None else {n: n for n in runs}
    out: dict[str, str] = {}
    for name, group in groups.items():
        if group not in out and "colour" in runs[name].meta:
            out[group] = runs[name].meta["colour"]
    in_use = Counter(r.meta["colour"] for r in st.session_state.get("runs", {}).values() if "colour" in r.meta)
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
    html = lambda fig: fig.to_html(include_plotlyjs="cdn", full_html=True)  # noqa: E731
    files = [
        ("loss curves (CSV)", lambda: export.history_table(runs, True, True).to_csv(index=False),
         f"{prefix}_history.csv", "text/csv"),
        ("per-layer statistics (CSV)", lambda: export.layers_table(runs, True).to_csv(index=False),
         f"{prefix}_layers.csv", "text/csv"),
        ("configs and histories (JSON)", lambda: export.runs_json(runs), f"{prefix}.json", "application/json"),
        ("everything (ZIP)", lambda: export.runs_zip(runs, {n: html(f) for n, f in figures.items()}),
         f"{prefix}.zip", "application/zip"),
    ]
    files += [(f"{name.replace('_', ' ')} (HTML)", (lambda f=fig: html(f)), f"{prefix}_{name}.html", "text/html")
              for name, fig in figures.items()]
    cols = st.columns(4)
    for i, (label, make, file_name, mime) in enumerate(files):
        cols[i % 4].download_button(label, make, file_name, mime, on_click="ignore", key=f"{prefix}_dl_{i}")


def session_runs_panel() -> None:
    """The session's run history: overlay, rename, delete, and import exported files."""
    st.divider()
    st.header("Runs of this session")
    runs = st.session_state.setdefault("runs", {})
    upload = st.file_uploader("load an exported JSON or ZIP", type=["json", "zip"], key="import_file")
    if upload is not None and st.session_state.get("imported_id") != upload.file_id:
        st.session_state["imported_id"] = upload.file_id
        try:
            loaded = export.load_runs(upload.getvalue())
        except export.ImportFormatError as exc:
            st.error(f"{upload.name} cannot be loaded: {exc}. Nothing in this session was changed.")
        else:
            added = [remember_run(name, r, source=f"imported from {upload.name}") for name, r in loaded.items()]
            st.session_state["runs_overlay"] = added
            st.success(f"Loaded {len(added)} run(s) from {upload.name}: {', '.join(added)}.")
    if not runs:
        st.caption("Runs from the Train and Compare pages, and loaded files, are listed here.")
        return
    table = [{"run": n, "source": r.meta.get("source", ""), "settings": describe(r.config),
              "epochs": r.history["epoch"].iloc[-1], "final loss": r.history["loss"].dropna().iloc[-1]
              if r.history["loss"].notna().any() else None,
              "diverged at": r.diverged_at} for n, r in runs.items()]
    colours = run_colours(runs)  # every run keeps its colour, here and on the page's charts above
    st.dataframe(tables.styled(pd.DataFrame(table), colours), hide_index=True, width="stretch",
                 height=tables.height(len(table), 12))
    default = [n for n in st.session_state.get("runs_overlay", []) if n in runs] or list(runs)[-3:]
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
                    st.error(f"There is already a run named {new!r}.")
                else:
                    st.session_state["runs"] = {new if n == old else n: r for n, r in runs.items()}
                    st.rerun()
        with st.form("delete"):
            gone = st.multiselect("runs to delete", list(runs), key="delete_pick")
            if st.form_submit_button("Delete") and gone:
                st.session_state["runs"] = {n: r for n, r in runs.items() if n not in gone}
                st.rerun()


def status_line(result: RunResult) -> None:
    c = result.config
    text = (f"**{c.activation}**, **{c.init}** init (gain {c.gain}), {c.depth} hidden layers of {c.width}, "
            f"{c.optimizer} lr {c.lr:g}, {c.dataset}: {len(result.history) - 1} records in {result.wall_s:.2f} s")
    if result.diverged_at is not None:
        st.error(f"Diverged at epoch {result.diverged_at:g}: {result.diverge_reason}. "
                 "Everything recorded before that is shown below.")
    elif result.stopped:
        st.warning(f"Stopped at epoch {result.history['epoch'].iloc[-1]:g}; what was recorded is shown below.")
    st.markdown(text)


def new_link(seen_key: str) -> dict | None:
    """The page's query parameters if they differ from the link already applied (remembered
    under ``seen_key``), so that a shared link is restored once and not on every rerun."""
    link = {k: st.query_params.get_all(k)[-1] for k in st.query_params}
    if not link or st.session_state.get(seen_key) == link:
        return None
    st.session_state[seen_key] = link
    return link


def record_epochs(result: RunResult) -> list:
    return sorted(result.layers["epoch"].unique().tolist())


def show_profile(result: RunResult, epoch, key: str) -> None:
    """The gradient profile at ``epoch`` with the mean-field prediction at initialization (dashed)."""
    predicted, theory_text = theory.against_measurement(result)
    chart(charts.profile_figure(result.layers, epoch, predicted), key=key, filename="gradient_profile")
    st.caption(summaries.profile_caption(result.layers, epoch))
    if theory_text:
        st.caption(theory_text)
