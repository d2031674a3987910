"""Streamlit helpers shared by the pages: settings widgets, cached runs, chart blocks.

Widgets read into a RunConfig; runs go through ``run_with_progress``; drawing takes a
RunResult.  No math here: statistics come from ``lab``.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from collections import Counter

import pandas as pd
import streamlit as st

from lab import ConfigError, DataError, RunConfig, RunResult, charts, export, make_dataset, summaries, tables, theory, train
from lab import cost
from lab.compare import describe, unique_name
from lab.cost import Cost
from lab.limits import SESSION_FULL_RUNS, Limits, run_refusal
from lab.runcache import RunCache, return_free_memory, trim_history
from lab.settings import SETTINGS

SETTINGS_KEY = "train_settings"
PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
STOP_CHECK_S = 0.05  # how often a running training asks Streamlit whether to stop
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


def _fits(name: str, value, options=None) -> bool:
    if options is not None:
        return value in options
    s = SETTINGS[name]
    return isinstance(value, s.kind) and s.contains(value, ui=True)


def _init(key: str, name: str, value, options=None) -> str:
    """Give widget ``key`` (setting ``name``) its start value: ``value`` if the widget can show it,
    else the nearest value it can.  A value already in session state that the widget could not
    show is replaced too, so no widget is ever handed a value outside its range (which raises,
    and would keep raising for the rest of the session)."""
    if key in st.session_state and _fits(name, st.session_state[key], options):
        return key
    if not _fits(name, value, options):
        default = getattr(ui_defaults(), name, None)
        if options is not None:
            value = default if default in options else options[0]
        else:
            value = SETTINGS[name].clamp(value if _is_finite(value) else default)
    st.session_state[key] = value
    return key


def _is_finite(value) -> bool:
    try:
        return not isinstance(value, bool) and math.isfinite(value)
    except TypeError:
        return False


def _closest(options, value):
    return min(options, key=lambda o: abs(o - value))


def _slider(label: str, name: str, value, key: str, **kwargs):
    """A slider (or number box, ``number=True``) over the browser's range of setting ``name``."""
    s = SETTINGS[name]
    low, high = s.range(ui=True)
    widget = st.number_input if kwargs.pop("number", False) else st.slider
    step = kwargs.pop("step", None) or (s.step if s.step is not None else None)
    return widget(label, low, high, step=step, key=_init(key, name, value), **kwargs)


def _list_slider(label: str, name: str, value, key: str, **kwargs):
    """A select slider over setting ``name``'s offered values.  It also accepts any other value in
    the browser's range (from a link, a preset or the command line): that value is shown among them."""
    s = SETTINGS[name]
    options = s.offered(st.session_state.get(key), value)
    start = value if value in options else _closest(options, value if _is_finite(value) else options[0])
    return st.select_slider(label, options, key=_init(key, name, start, options), **kwargs)


def _choices(name: str) -> list:
    return list(SETTINGS[name].choices(ui=True))


def network_widgets(c: RunConfig, prefix: str = "w_") -> dict:
    """Depth, width, activation, init, gain, scale, bias: the architecture at initialization."""
    k = lambda name: f"{prefix}{name}"  # noqa: E731
    out = {}
    out["depth"] = _slider("depth (hidden layers)", "depth", c.depth, k("depth"))
    out["width"] = _list_slider("width (units per layer)", "width", c.width, k("width"))
    acts = _choices("activation")
    out["activation"] = st.selectbox("activation", acts, key=_init(k("activation"), "activation", c.activation, acts))
    inits = _choices("init")
    out["init"] = st.selectbox("weight init", inits, key=_init(k("init"), "init", c.init, inits),
                               help="xavier = glorot, he = kaiming. normal/uniform use the absolute scale below.")
    auto = st.checkbox("gain auto (PyTorch's calculate_gain)", key=_init(k("gain_auto"), "gain_auto", c.gain == "auto",
                                                                          [True, False]))
    gain = _slider("gain (multiplier on the init's formula)", "gain", 1.0 if c.gain == "auto" else c.gain, k("gain"),
                   number=True, format="%.3f")
    out["gain"] = "auto" if auto else gain
    out["init_scale"] = _slider("init scale (std of normal, half-width of uniform)", "init_scale", c.init_scale,
                                k("init_scale"), number=True, format="%.4f")
    out["bias_std"] = _slider("bias std (0 = zero biases)", "bias_std", c.bias_std, k("bias_std"), number=True,
                              format="%.3f")
    return out


def training_widgets(c: RunConfig, prefix: str = "w_") -> dict:
    k = lambda name: f"{prefix}{name}"  # noqa: E731
    out = {}
    losses, optimizers = _choices("loss"), _choices("optimizer")
    out["loss"] = st.selectbox("loss", losses, key=_init(k("loss"), "loss", c.loss, losses))
    out["optimizer"] = st.selectbox("optimizer", optimizers, key=_init(k("optimizer"), "optimizer", c.optimizer,
                                                                       optimizers))
    out["lr"] = _list_slider("learning rate", "lr", c.lr, k("lr"), format_func=lambda v: f"{v:g}")
    out["epochs"] = _slider("epochs (0 = only the record at initialization)", "epochs", c.epochs, k("epochs"),
                            number=True)
    out["batch_size"] = _list_slider("batch size", "batch_size", c.batch_size, k("batch_size"))
    out["seed"] = _slider("seed", "seed", c.seed, k("seed"), number=True)
    out["record_every"] = _slider("record every k steps (0 = every epoch)", "record_every", c.record_every,
                                  k("record_every"), number=True)
    dtypes = sorted(_choices("dtype"))
    out["dtype"] = st.radio("precision", dtypes, horizontal=True, key=_init(k("dtype"), "dtype", c.dtype, dtypes))
    return out


def data_widgets(c: RunConfig, csv_columns: list[str] | None, prefix: str = "w_") -> dict:
    k = lambda name: f"{prefix}{name}"  # noqa: E731
    out = {}
    names = _choices("dataset") + (["csv"] if csv_columns else [])
    out["dataset"] = st.selectbox("dataset", names, key=_init(k("dataset"), "dataset", c.dataset, names),
                                  format_func=lambda n: "uploaded CSV" if n == "csv" else n)
    if csv_columns:
        out["label"] = st.selectbox("label column of the CSV", csv_columns,
                                    key=_init(k("label"), "label", c.label if c.label in csv_columns
                                              else csv_columns[-1], csv_columns))
    out["samples"] = _slider("samples (generated data)", "samples", c.samples, k("samples"))
    out["classes"] = _slider("classes (spirals, blobs, random)", "classes", c.classes, k("classes"))
    out["input_dim"] = _slider("input dimension (blobs, random)", "input_dim", c.input_dim, k("input_dim"))
    out["val_fraction"] = _slider("validation fraction", "val_fraction", c.val_fraction, k("val_fraction"))
    return out


def build_config(base: RunConfig, values: dict) -> tuple[RunConfig | None, str]:
    """(config, "") or (None, a message for the user)."""
    try:
        return base.replace(**values).validate(), ""
    except (ConfigError, TypeError) as exc:
        return None, str(exc)


_CACHE: dict = {}  # the process's RunCache, made on first use with the deployer's budget


def run_cache() -> RunCache:
    """Finished runs by (config, uploaded data's digest), shared by every session of this server
    process within a budget in bytes (BACKPROP_LAB_CACHE_MB)."""
    if "cache" not in _CACHE:
        _CACHE["cache"] = RunCache(int(server_limits().cache_mb * 2**20))
    return _CACHE["cache"]


def digest(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data else ""


def load_csv(data: bytes, config: RunConfig):
    """Dataset from uploaded bytes, or (None, message)."""
    try:
        return make_dataset(config, csv_source=data), ""
    except DataError as exc:
        return None, f"Your CSV cannot be used: {exc}."


def server_limits() -> Limits:
    """The deployer's limits: the environment, overridden by the same names in .streamlit/secrets.toml."""
    values = dict(os.environ)
    try:
        values |= {k: str(v) for k, v in st.secrets.items() if k.startswith("BACKPROP_LAB_")}
    except Exception:  # noqa: BLE001 - no secrets file (or an unreadable one): the environment alone
        pass
    return Limits.from_env(values)


def refuse_if_too_costly(config: RunConfig, data=None) -> Cost | None:
    """The run's estimated cost, or None after showing why the server's limits refuse it."""
    dims = {} if data is None else {"n_train": len(data.X_train) + len(data.X_val), "input_dim": data.input_dim,
                                    "classes": data.classes}
    limits = server_limits()
    estimated = cost.priced(config, limits.run_seconds, **dims)
    why = run_refusal(config, limits, estimated, **dims)
    if why:
        st.error(f"Not started: {why}.")
        return None
    return estimated


def run_with_progress(config: RunConfig, csv_bytes: bytes | None = None, live: bool = True) -> RunResult | None:
    """A finished run from the cache, or train now with a progress bar and live charts.

    Returns None (after showing why) when the data cannot be loaded or the run costs more than
    the server allows.  A run interrupted by the user (any click reruns the page) is kept in
    session state as ``partial``.
    """
    key = digest(csv_bytes)
    cached = run_cache().get((config, key))
    if cached is not None:
        return cached
    data = None
    if config.dataset == "csv":
        data, message = load_csv(csv_bytes, config)
        if data is None:
            plain_notice("error", "Your CSV cannot be used:", message.removeprefix("Your CSV cannot be used: "))
            return None
    estimated = refuse_if_too_costly(config, data)
    if estimated is None:
        return None
    expect = f"estimated {cost.describe(estimated)}"
    bar = st.progress(0.0, text=f"training… ({expect})")
    live_cols = st.columns(2) if live else None
    slots = [c.empty() for c in live_cols] if live else []
    state = {"next": 0.0, "n": 0, "check": 0.0}

    def callback(progress):
        st.session_state["partial"] = (config, progress)
        start = time.perf_counter()
        if start < state["next"] and progress.step < progress.total_steps:
            return False
        state["n"] += 1
        row = progress.history[-1]
        bar.progress(min(progress.fraction, 1.0),
                     text=f"epoch {row['epoch']:g} of {config.epochs}, loss {row['loss']:.4g} ({expect})")
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

    def stop_requested() -> bool:
        # Any read of session state is one of Streamlit's yield points: there a pending Stop, rerun
        # or closed tab raises and ends the script (the last record is kept as "partial").
        now = time.perf_counter()
        if now >= state["check"]:
            state["check"] = now + STOP_CHECK_S
            _ = "partial" in st.session_state
        return False

    result = train(config, data=data, callback=callback, should_stop=stop_requested)
    st.session_state.pop("partial", None)
    bar.empty()
    for slot in slots:
        slot.empty()
    if not result.stopped:
        # the cache hands back copies, so a run is known again by what made it (see remember_run)
        result.meta["made_from"] = (config, key)
        run_cache().put((config, key), result)
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
    """Add a finished run to the session's run history under a unique name; return the name.

    A run that is already there (the same object, or a complete run of the same config on the
    same data, which the cache returns as a copy) is not added again: its name is returned."""
    runs = st.session_state.setdefault("runs", {})
    made_from = result.meta.get("made_from")
    for existing, r in runs.items():
        if r is result or (made_from is not None and r.meta.get("made_from") == made_from):
            return existing
    name = unique_name(name, runs)
    result.meta.setdefault("source", source)
    runs[name] = result
    # a bounded session: weights and data of the newest runs only, and the oldest let go past the budget
    kept, dropped = trim_history(runs, SESSION_FULL_RUNS, int(server_limits().session_mb * 2**20))
    st.session_state["runs"] = kept
    return_free_memory()
    if dropped:
        st.session_state["dropped_runs"] = [*st.session_state.get("dropped_runs", []), *dropped][-20:]
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
        ("loss curves (CSV)", lambda: export.csv_text(export.history_table(runs, True, True)),
         f"{prefix}_history.csv", "text/csv"),
        ("per-layer statistics (CSV)", lambda: export.csv_text(export.layers_table(runs, True)),
         f"{prefix}_layers.csv", "text/csv"),
        ("configs and histories (JSON)", lambda: export.runs_json(runs), f"{prefix}.json", "application/json"),
        ("everything (ZIP)", lambda: export.runs_zip(runs, {n: html(f) for n, f in figures.items()}),
         f"{prefix}.zip", "application/zip"),
    ]
    files += [(f"{name.replace('_', ' ')} (HTML)", (lambda f=fig: html(f)), f"{prefix}_{name}.html", "text/html")
              for name, fig in figures.items()]
    cols = st.columns(2)  # two a row: four truncate their labels in a 1000-pixel window
    for i, (label, make, file_name, mime) in enumerate(files):
        cols[i % 2].download_button(label, make, file_name, mime, on_click="ignore", key=f"{prefix}_dl_{i}")


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
            plain_notice("error", "This file cannot be loaded. Nothing in this session was changed.",
                         f"{upload.name}: {exc}.")
        else:
            added = [remember_run(name, r, source=f"imported from {upload.name}") for name, r in loaded.items()]
            st.session_state["runs_overlay"] = added
            plain_notice("success", f"Loaded {len(added)} run{'' if len(added) == 1 else 's'}:",
                         "\n".join([f"from {upload.name}:", *(f"• {n}" for n in added)]))
    dropped = st.session_state.pop("dropped_runs", None)
    if dropped:
        plain_notice("info", f"This session keeps at most {server_limits().session_mb:g} MB of runs, so the oldest "
                     "were let go (download the runs you want to keep):", "\n".join(f"• {n}" for n in dropped))
    if not runs:
        st.caption("Runs from the Train and Compare pages, and loaded files, are listed here.")
        return
    table = [{"run": n, "settings": describe(r.config),
              "epochs": r.history["epoch"].iloc[-1], "final loss": r.history["loss"].dropna().iloc[-1]
              if r.history["loss"].notna().any() else None,
              "diverged at": r.diverged_at} for n, r in runs.items()]
    colours = run_colours(runs)  # every run keeps its colour, here and on the page's charts above
    narrow = {c: st.column_config.Column(width="small") for c in ("epochs", "final loss", "diverged at")}
    st.dataframe(tables.styled(pd.DataFrame(table), colours), hide_index=True, width="stretch",
                 height=tables.height(len(table), 12), column_config=narrow)
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
                    plain_notice("error", "There is already a run with that name:", new)
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
    records = int((~result.history["diverged"]).sum())  # the row marking divergence is not a record
    text = (f"**{c.activation}**, **{c.init}** init (gain {c.gain}), {c.depth} hidden layers of {c.width}, "
            f"{c.optimizer} lr {c.lr:g}, {c.dataset}: {summaries.extent(result)} in {result.wall_s:.2f} s")
    if result.diverged_at is not None:
        kept = ("Nothing could be recorded." if not records
                else "Its record at initialization is shown below." if result.diverged_at == 0
                else "Everything recorded before that is shown below.")
        if result.meta.get("imported"):  # the reason came from a file: plain text
            plain_notice("error", f"Diverged at epoch {result.diverged_at:g}. {kept}", result.diverge_reason)
        else:
            st.error(f"Diverged at epoch {result.diverged_at:g}: {result.diverge_reason}. {kept}")
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


def set_address(params: dict, seen_key: str) -> None:
    """Make the page's address carry ``params`` (and remember them as applied, see ``new_link``)."""
    params = {k: str(v) for k, v in params.items()}
    if {k: st.query_params.get_all(k)[-1] for k in st.query_params} != params:
        st.query_params.from_dict(params)
    st.session_state[seen_key] = params


def plain_notice(kind: str, lead: str, detail: str) -> None:
    """An alert with our words (``lead``, Markdown) and under it words that came from a user or a
    file (``detail``: a file name, a run name, a CSV column or cell) as plain text, never read as
    Markdown, HTML or a link.  kind: "error", "warning", "success" or "info"."""
    with st.container(border=True):
        getattr(st, kind)(lead)
        st.text(detail)


def show_link_notices(notices: list[str]) -> None:
    """A warning, and under it each value of a link that was clamped or ignored, one line each.
    The lines are st.text: the link's words are shown as they are, never read as Markdown or HTML
    (escaping cannot stop the Markdown renderer from turning a bare URL into a live link)."""
    if not notices:
        return
    with st.container(border=True, key="link_notices"):
        st.warning("The link asks for settings this page cannot use as given:", icon=":material/link_off:")
        st.text("\n".join(f"• {n}" for n in notices))


def record_epochs(result: RunResult) -> list:
    return sorted(result.layers["epoch"].unique().tolist())


def show_profile(result: RunResult, epoch, key: str) -> None:
    """The gradient profile at ``epoch`` with the mean-field prediction for initialization (dashed),
    its caveat in the legend and the caption next to it."""
    predicted, theory_text = summaries.theory_comparison(result, epoch)
    name = "mean-field theory" + (", approximate" if theory.caveat(result.config).startswith("Approximate") else "")
    chart(charts.profile_figure(result.layers, epoch, predicted, name), key=key, filename="gradient_profile")
    st.caption(summaries.profile_caption(result.layers, epoch, result.config.optimizer))
    if theory_text:
        st.caption(theory_text)
