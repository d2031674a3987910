"""Settings widgets: the sidebar and form inputs that read into a RunConfig."""
from __future__ import annotations

import math

import streamlit as st

from lab import ConfigError, RunConfig, RunResult
from lab.data.datasets import FIXED_SIZE
from lab.engine.config import page_defaults
from lab.engine.settings import SETTINGS
from lab.serving import gate
from lab.serving.imports import ImportFormatError, fits_network
from lab.serving.share import config_to_params, params_to_config
from pages.ui import running, state
from pages.ui.panels import plain_notice

# the settings that make a run's data: what the Train page must make again to draw a stored run's data
DATA_SETTINGS = ("dataset", "samples", "input_dim", "classes", "noise", "val_fraction", "standardize")


def ui_defaults() -> RunConfig:
    """The Train page's default run (``lab.engine.config.page_defaults``): it finishes in about a second."""
    return page_defaults()


def current_settings() -> RunConfig:
    return st.session_state.get(state.TRAIN_SETTINGS) or ui_defaults()


def train_now(config: RunConfig) -> None:
    """Open the Train page with ``config`` in its settings and train it at once (a Home card, a Sweep cell);
    when a setting had to be held to the browser's bounds, it waits for **Train** instead, under the notice."""
    notices = set_settings(config)
    st.session_state.pop(state.RESULT, None)
    st.session_state[state.TRAIN_AUTORUN] = not notices
    st.switch_page("pages/train.py")


def set_settings(config: RunConfig) -> list[str]:
    """Make ``config`` the Train page's settings (the widgets pick them up on next render), held to the
    browser's bounds as a link's are (``lab.serving.share``): a number outside a widget's range clamped to its
    nearest end, anything else (a CSV run's file, which cannot come along) left at the default.  Returns
    one notice for each, which the Train page shows once (``show_settings_notices``)."""
    base = ui_defaults()
    held, notices = params_to_config(config_to_params(config, base), base)
    st.session_state[state.TRAIN_SETTINGS] = held
    st.session_state[state.SETTINGS_NOTICES] = notices
    state.forget_widgets(state.TRAIN_WIDGETS)
    return notices


def show_settings_notices() -> None:
    """The notices of the last ``set_settings``, once, as plain text: they quote a run's or a file's values."""
    notices = st.session_state.pop(state.SETTINGS_NOTICES, None)
    if notices:
        plain_notice("warning", "These settings go beyond what this page offers, so the sidebar holds them "
                     "changed; nothing runs until you press **Train**:", "\n".join(f"• {n}" for n in notices),
                     icon=":material/tune:", key="settings_notices")


def open_run(result: RunResult) -> None:
    """Show ``result`` (a stored or loaded run) on the Train page with all its charts, training nothing: its
    settings go into the sidebar held to the browser's bounds (``set_settings``), and its built-in data, which
    the theory line, the network diagram and the decision boundary need, is made again only when that data is
    within those bounds too (the gate's) and the run's tables describe its config's network."""
    set_settings(result.config)
    if result.data is None and _data_admitted(result.config) and _tables_fit(result):
        result.data = running.planned_data(result.config, None)
    state.show_run(result)


def _data_admitted(config: RunConfig) -> bool:
    """Whether the data ``config`` names passes the gate's bounds (a run of the defaults on that data would)."""
    try:
        gate.check_bounds(ui_defaults().replace(**{name: getattr(config, name) for name in DATA_SETTINGS}))
    except gate.Refused:
        return False
    return True


def _tables_fit(result: RunResult) -> bool:
    try:
        fits_network("", result.config, result.layers)
    except ImportFormatError:
        return False
    return True


def _fits(name: str, value, options=None) -> bool:
    if options is not None:
        return value in options
    s = SETTINGS[name]
    return isinstance(value, s.kind) and s.contains(value, ui=True)


def _init(prefix: str, name: str, value, options=None) -> str:
    """Give setting ``name``'s widget on the page with ``prefix`` its start value, and return its key:
    ``value`` if the widget can show it, else the nearest value it can.  A value already in session
    state that the widget could not show is replaced too, so no widget is ever handed a value outside
    its range (which raises, and would keep raising for the rest of the session)."""
    key = state.widget_key(prefix, name)
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


def _slider(label: str, name: str, value, prefix: str, **kwargs):
    """A slider (or number box, ``number=True``) over the browser's range of setting ``name``."""
    s = SETTINGS[name]
    low, high = s.range(ui=True)
    widget = st.number_input if kwargs.pop("number", False) else st.slider
    step = kwargs.pop("step", None) or (s.step if s.step is not None else None)
    return widget(label, low, high, step=step, key=_init(prefix, name, value), **kwargs)


def _list_slider(label: str, name: str, value, prefix: str, **kwargs):
    """A select slider over setting ``name``'s offered values.  It also accepts any other value in
    the browser's range (from a link, a preset or the command line): that value is shown among them."""
    s = SETTINGS[name]
    options = s.offered(st.session_state.get(state.widget_key(prefix, name)), value)
    start = value if value in options else _closest(options, value if _is_finite(value) else options[0])
    return st.select_slider(label, options, key=_init(prefix, name, start, options), **kwargs)


def _choices(name: str) -> list:
    return list(SETTINGS[name].choices(ui=True))


def network_widgets(c: RunConfig, prefix: str = state.TRAIN_WIDGETS) -> dict:
    """Depth, width, activation, init, gain, scale, bias: the architecture at initialization."""
    out = {}
    out["depth"] = _slider("depth (hidden layers)", "depth", c.depth, prefix)
    out["width"] = _list_slider("width (units per layer)", "width", c.width, prefix)
    acts = _choices("activation")
    out["activation"] = st.selectbox("activation", acts, key=_init(prefix, "activation", c.activation, acts))
    inits = _choices("init")
    out["init"] = st.selectbox("weight init", inits, key=_init(prefix, "init", c.init, inits),
                               help="xavier = glorot, he = kaiming. normal/uniform use the absolute scale below.")
    auto = st.checkbox("gain auto (PyTorch's calculate_gain)", key=_init(prefix, "gain_auto", c.gain == "auto",
                                                                        [True, False]))
    gain = _slider("gain (multiplier on the init's formula)", "gain", 1.0 if c.gain == "auto" else c.gain, prefix,
                   number=True, format="%.3f")
    out["gain"] = "auto" if auto else gain
    out["init_scale"] = _slider("init scale (std of normal, half-width of uniform)", "init_scale", c.init_scale,
                                prefix, number=True, format="%.4f")
    out["bias_std"] = _slider("bias std (0 = zero biases)", "bias_std", c.bias_std, prefix, number=True,
                              format="%.3f")
    return out


def training_widgets(c: RunConfig, prefix: str = state.TRAIN_WIDGETS) -> dict:
    out = {}
    losses, optimizers = _choices("loss"), _choices("optimizer")
    out["loss"] = st.selectbox("loss", losses, key=_init(prefix, "loss", c.loss, losses))
    out["optimizer"] = st.selectbox("optimizer", optimizers, key=_init(prefix, "optimizer", c.optimizer,
                                                                       optimizers))
    out["lr"] = _list_slider("learning rate", "lr", c.lr, prefix, format_func=lambda v: f"{v:g}")
    out["epochs"] = _slider("epochs (0 = only the record at initialization)", "epochs", c.epochs, prefix,
                            number=True)
    out["batch_size"] = _list_slider("batch size", "batch_size", c.batch_size, prefix)
    out["seed"] = _slider("seed", "seed", c.seed, prefix, number=True)
    out["record_every"] = _slider("record every k steps (0 = every epoch)", "record_every", c.record_every,
                                  prefix, number=True)
    dtypes = sorted(_choices("dtype"))
    out["dtype"] = st.radio("precision", dtypes, horizontal=True, key=_init(prefix, "dtype", c.dtype, dtypes))
    return out


def cure_widgets(c: RunConfig, prefix: str = state.TRAIN_WIDGETS) -> dict:
    """Normalization, residual connections, dropout, gradient clipping and weight decay (all off by default)."""
    out = {}
    norms = _choices("norm")
    out["norm"] = st.selectbox("normalization (of z in every hidden layer)", norms,
                               key=_init(prefix, "norm", c.norm, norms),
                               help="batch: over the mini-batch (running averages for validation); layer: over "
                                    "each example's units. Both with learnable gamma and beta.")
    out["residual"] = st.checkbox("residual connections", key=_init(prefix, "residual", c.residual, [True, False]),
                                  help="h = h_prev + alpha * phi(z) in hidden layers 2..depth (layer 1 changes the "
                                       "width, so it has none)")
    out["residual_scale"] = _slider("residual scale alpha", "residual_scale", c.residual_scale, prefix, number=True,
                                    format="%.3f", help="1/sqrt(depth) keeps a deep ReLU network's signal steady")
    out["dropout"] = _slider("dropout rate (training only)", "dropout", c.dropout, prefix)
    out["clip_norm"] = _slider("clip the gradient's global norm at (0 = off)", "clip_norm", c.clip_norm, prefix,
                               number=True, format="%.2f")
    out["weight_decay"] = _slider("weight decay (on weight matrices only)", "weight_decay", c.weight_decay, prefix,
                                  number=True, format="%.4f")
    return out


def data_widgets(c: RunConfig, csv_columns: list[str] | None, prefix: str = state.TRAIN_WIDGETS) -> dict:
    out = {}
    names = _choices("dataset") + (["csv"] if csv_columns else [])
    out["dataset"] = st.selectbox("dataset", names, key=_init(prefix, "dataset", c.dataset, names),
                                  format_func=lambda n: "uploaded CSV" if n == "csv" else n)
    if csv_columns:
        out["label"] = st.selectbox("label column of the CSV", csv_columns,
                                    key=_init(prefix, "label", c.label if c.label in csv_columns
                                              else csv_columns[-1], csv_columns))
    count = c.samples if c.samples is not None else (ui_defaults().samples if c.dataset in FIXED_SIZE else c.n_samples)
    samples = _slider("samples (generated data)", "samples", count, prefix)
    all_rows = st.checkbox(f"all rows of a bundled dataset ({_bundled_sizes()}); else the samples above",
                           key=_init(prefix, "all_rows", c.n_samples == FIXED_SIZE.get(c.dataset, c.n_samples),
                                     [True, False]))
    out["samples"] = None if all_rows and out["dataset"] in FIXED_SIZE else samples
    out["classes"] = _slider("classes (spirals, blobs, random)", "classes", c.classes, prefix)
    out["input_dim"] = _slider("input dimension (blobs, random)", "input_dim", c.input_dim, prefix)
    out["val_fraction"] = _slider("validation fraction", "val_fraction", c.val_fraction, prefix)
    return out


def _bundled_sizes() -> str:
    return ", ".join(f"{name} {rows:,}" for name, rows in FIXED_SIZE.items())


def build_config(base: RunConfig, values: dict) -> tuple[RunConfig | None, str]:
    """(config, "") or (None, a message for the user)."""
    try:
        return base.replace(**values).validate(), ""
    except (ConfigError, TypeError) as exc:
        return None, str(exc)
