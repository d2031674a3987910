"""Links: every query parameter is held to what the widgets can show, each value that is not
gets one plain-text notice, and no link, however bad, breaks a page or the session after it."""
from pathlib import Path

import pytest

from lab import RunConfig
from lab.engine.settings import SETTINGS, Choice
from lab.experiments.compare import CompareSpec
from lab.serving.share import (
    MAX_NOTICES,
    MAX_RUNS,
    SHAREABLE,
    config_to_params,
    params_to_config,
    params_to_spec,
    quote,
    spec_to_params,
)

TRAIN_DEFAULTS = RunConfig(samples=400, epochs=200, dtype="float32")  # pages.ui.widgets.ui_defaults()
COMPARE_DEFAULT = CompareSpec(TRAIN_DEFAULTS.replace(depth=20, epochs=60), "init", ("xavier_normal", "he_normal"))

# The widgets' ranges as the pages draw them, written out here (the issue's list), not read from lab.engine.settings.
WIDGET_RANGES = {
    "depth": (1, 100), "samples": (100, 5000), "classes": (2, 10), "input_dim": (2, 784),
    "val_fraction": (0.0, 0.5), "epochs": (0, 5000), "seed": (0, 2**31 - 1), "gain": (0.0, 100.0),
    "init_scale": (0.0, 1000.0), "bias_std": (0.0, 100.0), "width": (2, 512), "lr": (1e-4, 3.0),
    "batch_size": (8, 512), "record_every": (0, 100_000),
}
NUMBERS = [n for n in SHAREABLE if not isinstance(SETTINGS[n], Choice)]
CHOICES = [n for n in SHAREABLE if isinstance(SETTINGS[n], Choice)]

IGNORED = {  # kinds of bad value that no number can stand for: ignored, the default kept
    "non-numeric": "abc",
    "empty": "",
    "nan": "nan",
    "inf": "inf",
    "minus inf": "-Infinity",
    "html": "<script>alert(1)</script>",
    "markdown image": "![x](http://example.com/x.png)",
    "unicode": "\u202e\u200b\u0663",  # bidi override, zero-width space, an Arabic-Indic 3
    "very long": "9" * 10_000,
    "hex": "0x10",
}
HOSTILE_KEYS = ["<img src=x onerror=alert(1)>", "**bold**", "\u202ecolour", "k" * 5000]


def one_notice(notices, name):
    assert len(notices) == 1, notices
    assert notices[0].startswith(f"{name}:"), notices
    return notices[0]


# ---------------------------------------------------------------- the parser, value by value

@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("kind", IGNORED)
def test_a_value_that_is_no_number_is_ignored_with_one_notice(name, kind):
    config, notices = params_to_config({name: IGNORED[kind]}, TRAIN_DEFAULTS)
    assert config == TRAIN_DEFAULTS.validate()
    assert one_notice(notices, name).endswith("ignored")


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("text, end", [("-5", "low"), ("-1e3", "low"), ("1e400", "high"),
                                       ("99999999999999999999999999", "high"), ("1e999999999999", "high")])
def test_a_number_outside_the_widget_is_clamped_with_one_notice(name, text, end):
    low, high = WIDGET_RANGES.get(name) or SETTINGS[name].range(ui=True)
    config, notices = params_to_config({name: text}, TRAIN_DEFAULTS)
    assert getattr(config, name) == pytest.approx(low if end == "low" else high)
    assert "using" in one_notice(notices, name)


@pytest.mark.parametrize("name, text, expected", [
    # the values of the issue, each of which crashed the page
    ("depth", "500", 100), ("depth", "0", 1), ("samples", "50", 100), ("classes", "20", 10),
    ("input_dim", "1000", 784), ("val_fraction", "0.9", 0.5),
])
def test_the_values_that_crashed_the_page_are_clamped(name, text, expected):
    config, notices = params_to_config({name: text}, TRAIN_DEFAULTS)
    assert getattr(config, name) == expected
    assert f"using {expected:g}" in one_notice(notices, name)


@pytest.mark.parametrize("name", list(WIDGET_RANGES))
def test_the_ends_of_each_widget_are_accepted_without_notice(name):
    for end in WIDGET_RANGES[name]:
        config, notices = params_to_config({name: repr(end)}, TRAIN_DEFAULTS)
        assert notices == [] and getattr(config, name) == pytest.approx(end)


@pytest.mark.parametrize("name, text, expected", [
    ("depth", "7.0", 7), ("depth", " 12 ", 12), ("width", "300", 300), ("lr", "0.05", 0.05),
    ("batch_size", "100", 100), ("init", "glorot_normal", "xavier_normal"), ("gain", "auto", "auto"),
    ("standardize", "false", False), ("noise", "0.25", 0.25), ("init_scale", "-0", 0.0),
])
def test_good_values_are_taken_as_written(name, text, expected):
    config, notices = params_to_config({name: text}, TRAIN_DEFAULTS)
    assert notices == [] and getattr(config, name) == expected


@pytest.mark.parametrize("name", CHOICES)
@pytest.mark.parametrize("text", ["", "swish", "<b>relu</b>", "RELU", "\u202erelu", "x" * 5000, "nan"])
def test_an_unknown_choice_is_ignored_with_one_notice(name, text):
    config, notices = params_to_config({name: text}, TRAIN_DEFAULTS)
    assert config == TRAIN_DEFAULTS.validate()
    assert one_notice(notices, name).endswith("ignored")


def test_a_link_cannot_ask_for_an_uploaded_file():
    config, notices = params_to_config({"dataset": "csv"}, TRAIN_DEFAULTS)
    assert config.dataset == "spirals" and "cannot carry" in one_notice(notices, "dataset")


@pytest.mark.parametrize("key", HOSTILE_KEYS + ["vary", "data_path", "label", "instrument"])
def test_an_unknown_parameter_is_ignored_with_one_notice(key):
    config, notices = params_to_config({key: "1"}, TRAIN_DEFAULTS)
    assert config == TRAIN_DEFAULTS.validate() and len(notices) == 1 and "not a setting" in notices[0]


@pytest.mark.parametrize("text", list(IGNORED.values()) + HOSTILE_KEYS + ["a\nb\tc\x00d\x1b[31m"])
def test_notices_quote_the_link_short_and_visible(text):
    shown = quote(text)
    assert len(shown) < 80
    assert shown.isprintable()  # no newline, control, bidi or zero-width character gets through
    assert "\u202e" not in shown and "\u200b" not in shown


def test_many_bad_parameters_give_a_bounded_list_of_notices():
    params = {f"junk{i}": "1" for i in range(500)}
    config, notices = params_to_config(params, TRAIN_DEFAULTS)
    assert config == TRAIN_DEFAULTS.validate()
    assert len(notices) == MAX_NOTICES and "more parameters" in notices[-1]


def test_every_setting_bad_at_once_gives_one_notice_each_and_a_config_the_widgets_can_show():
    params = {name: "1e400" if name in NUMBERS else "<i>x</i>" for name in SHAREABLE}
    config, notices = params_to_config(params, TRAIN_DEFAULTS)
    assert len(notices) == len(SHAREABLE)
    for name, (low, high) in WIDGET_RANGES.items():
        assert low <= getattr(config, name) <= high, name


def test_link_values_round_trip_exactly():
    config = TRAIN_DEFAULTS.replace(lr=0.0123456789, init_scale=1 / 3, width=300, gain=2.0, seed=2**31 - 1).validate()
    params = config_to_params(config, TRAIN_DEFAULTS)
    assert params["gain"] == "2" and params["width"] == "300"
    back, notices = params_to_config(params, TRAIN_DEFAULTS)
    assert back == config and notices == []


# ---------------------------------------------------------------- comparisons

@pytest.mark.parametrize("vary", ["colour", "", "<script>", "dataset", "\u202einit", "x" * 5000])
def test_compare_link_with_an_unknown_axis_keeps_the_default_comparison(vary):
    spec, notices = params_to_spec({"vary": vary, "depth": "5"}, COMPARE_DEFAULT)
    assert (spec.axis, spec.values) == (COMPARE_DEFAULT.axis, COMPARE_DEFAULT.values)
    assert spec.base.depth == 5
    assert notices[0].startswith("vary:")


@pytest.mark.parametrize("vary, values, kept, n_notices", [
    ("depth", "0,500,abc,1e999,-3,5,nan,inf,5", (5,), 7),
    ("width", "300,8,9999,<b>1</b>", (300, 8), 2),
    ("lr", "0.05,-1,0,1e-9,1", (0.05, 1.0), 3),
    ("init", "xavier_normal,glorot_normal,<script>,he_normal", ("xavier_normal", "he_normal"), 1),
    ("gain", "auto,1.5,200", ("auto", 1.5), 1),
    ("activation", "tanh,,relu,,", ("tanh", "relu"), 0),
])
def test_compare_link_leaves_out_each_bad_value(vary, values, kept, n_notices):
    spec, notices = params_to_spec({"vary": vary, "values": values}, COMPARE_DEFAULT)
    assert (spec.axis, spec.values) == (vary, kept)
    assert len(notices) == n_notices and all(n.startswith("values:") for n in notices)


@pytest.mark.parametrize("values", ["", "abc", "0,-1,1e999", "<b>x</b>"])
def test_compare_link_without_one_usable_value_keeps_the_default_comparison(values):
    spec, notices = params_to_spec({"vary": "depth", "values": values, "epochs": "7"}, COMPARE_DEFAULT)
    assert (spec.axis, spec.values) == (COMPARE_DEFAULT.axis, COMPARE_DEFAULT.values)
    assert spec.base.epochs == 7 and "no usable value" in notices[-1]


@pytest.mark.parametrize("seeds, expected, noticed", [("3", 3, False), ("99", 5, True), ("0", 1, True),
                                                      ("-4", 1, True), ("nan", 1, True), ("two", 1, True),
                                                      ("1e999", 5, True)])
def test_compare_link_seeds_stay_within_the_slider(seeds, expected, noticed):
    spec, notices = params_to_spec({"vary": "depth", "values": "2,3", "seeds": seeds}, COMPARE_DEFAULT)
    assert spec.seeds == expected and spec.values == (2, 3)
    assert bool(notices) == noticed


def test_compare_link_asking_for_too_many_runs_keeps_the_first():
    values = ",".join(str(d) for d in range(1, 101))
    spec, notices = params_to_spec({"vary": "depth", "values": values, "seeds": "5"}, COMPARE_DEFAULT)
    assert len(spec.values) * spec.seeds <= MAX_RUNS and spec.values[:2] == (1, 2)
    assert "more than" in notices[-1]


def test_compare_link_base_settings_are_clamped_like_train():
    spec, notices = params_to_spec({"vary": "init", "values": "xavier_normal,he_normal", "depth": "500",
                                    "samples": "200000", "input_dim": "4096"}, COMPARE_DEFAULT)
    assert (spec.base.depth, spec.base.samples, spec.base.input_dim) == (100, 5000, 784)
    assert len(notices) == 3


def test_comparison_round_trips_through_its_link():
    spec = CompareSpec(TRAIN_DEFAULTS.replace(width=300, lr=0.05).validate(), "init_scale", (0.1, 1 / 3), seeds=2)
    back, notices = params_to_spec(spec_to_params(spec, COMPARE_DEFAULT.base), COMPARE_DEFAULT)
    assert back == spec and notices == []


# ---------------------------------------------------------------- the pages, driven by AppTest

st_testing = pytest.importorskip("streamlit.testing.v1")
APP = Path(__file__).resolve().parent.parent / "app.py"


def widget_range(at, key):
    """(min, max) that the widget ``key`` can show, read from the rendered page."""
    for kind in ("slider", "number_input", "select_slider"):
        found = [w for w in at.get(kind) if w.key == key]
        if found:
            w = found[0]
            if kind == "select_slider":
                return float(w.options[0]), float(w.options[-1])
            if kind == "slider":
                return w.proto.min, w.proto.max
            return w.min, w.max
    raise KeyError(key)


def widget_value(at, key):
    return next(w.value for kind in ("slider", "number_input", "select_slider", "selectbox", "radio")
                for w in at.get(kind) if w.key == key)


def notice_items(at):
    """The link's notices on the page: one line each, in plain text (st.text)."""
    return [line for t in at.text for line in t.value.splitlines() if line.startswith("• ")]


def assert_no_markdown_holds(at, fragments):
    """None of the link's text reaches an element that reads Markdown."""
    for element in [*at.markdown, *at.caption, *at.warning, *at.info, *at.error, *at.title]:
        for fragment in fragments:
            assert fragment not in element.value, (fragment, element.value)


def open_link(at, page, params):
    at.query_params.clear()
    at.query_params.update(params)
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def from_the_sidebar(at, page):
    """Leave for Home and come back with a clean address, as a click in the sidebar does."""
    at.query_params.clear()
    at.switch_page("pages/home.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.query_params.clear()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]


TRAIN_WIDGETS = ["depth", "width", "gain", "init_scale", "bias_std", "lr", "epochs", "batch_size", "seed",
                 "record_every", "samples", "classes", "input_dim", "val_fraction"]


def test_train_links_with_every_parameter_bad_never_break_the_page():
    at = st_testing.AppTest.from_file(APP, default_timeout=60)
    at.run()
    # 1: everything too large (or hostile), each widget must end at its largest value
    high = {"depth": "500", "width": "1e400", "gain": "1e6", "init_scale": "99999999999999999999", "bias_std": "101",
            "lr": "1000", "epochs": "1e999999999", "batch_size": "100000", "seed": str(2**40), "record_every": "1e9",
            "samples": "200000", "classes": "20", "input_dim": "1000", "val_fraction": "0.9",
            "activation": "<script>alert(1)</script>", "init": "![x](http://example.com/x.png)",
            "optimizer": "\u202eadam", "loss": "x" * 3000, "dtype": "float16", "dataset": "csv",
            "standardize": "maybe", "<b>colour</b>": "red", "noise": "1e400", "probe_size": "1e400",
            "leaky_slope": "2"}
    open_link(at, "pages/train.py", high)
    items = notice_items(at)
    assert len(items) == len(high), items
    assert_no_markdown_holds(at, ["script", "example.com", "colour", "xxxx"])
    for name in TRAIN_WIDGETS:
        assert widget_value(at, f"w_{name}") == pytest.approx(widget_range(at, f"w_{name}")[1]), name
    assert widget_value(at, "w_activation") == "relu" and widget_value(at, "w_dataset") == "spirals"
    assert "press **Train**" in at.info[0].value and not at.session_state["runs"]  # a link waits for Train
    assert dict(at.query_params)["depth"] == "100"  # the address says what the page will use
    # 2: everything too small, negative, NaN, inf or not a number
    low = {"depth": "0", "width": "-4", "gain": "-1", "init_scale": "-1e400", "bias_std": "-0.5", "lr": "0",
           "epochs": "-1", "batch_size": "1", "seed": "-7", "record_every": "-1e-300", "samples": "50",
           "classes": "1", "input_dim": "1", "val_fraction": "-0.2"}
    bad = {"depth": "nan", "width": "inf", "lr": "-Infinity", "epochs": "ten", "seed": "9" * 10_000,
           "samples": "\u0663\u0660\u0660", "gain": "", "classes": "2.5", "init_scale": "0x10"}
    open_link(at, "pages/train.py", low)
    items = notice_items(at)
    assert len(items) == len(low), items
    for name in TRAIN_WIDGETS:
        assert widget_value(at, f"w_{name}") == pytest.approx(widget_range(at, f"w_{name}")[0]), name
    open_link(at, "pages/train.py", bad)
    assert len(notice_items(at)) == len(bad)
    assert widget_value(at, "w_depth") == TRAIN_DEFAULTS.depth and widget_value(at, "w_width") == TRAIN_DEFAULTS.width
    from_the_sidebar(at, "pages/train.py")
    assert not notice_items(at)


def test_compare_links_with_every_parameter_bad_never_break_the_page():
    at = st_testing.AppTest.from_file(APP, default_timeout=60)
    at.run()
    link = {"vary": "init", "values": "xavier_normal,he_normal,<script>x</script>,nan", "seeds": "99",
            "depth": "500", "width": "-1", "lr": "nan", "epochs": "1e999", "samples": "200000",
            "input_dim": "4096", "classes": "inf", "dataset": "<b>x</b>", "\u202eevil": "1"}
    open_link(at, "pages/compare.py", link)
    items = notice_items(at)
    assert len(items) == 12, items  # one per bad parameter, two for "values" (it holds two bad ones)
    assert_no_markdown_holds(at, ["script", "<b>", "evil"])
    assert at.multiselect(key="c_values_init").value == ["xavier_normal", "he_normal"]
    assert widget_value(at, "c_depth") == 100 and widget_value(at, "c_width") == 2
    assert widget_value(at, "c_seeds") == 5
    assert "comparison" not in at.session_state  # a link waits for the button
    open_link(at, "pages/compare.py", {"vary": "<img src=x>", "values": "9" * 10_000, "seeds": "-1"})
    assert len(notice_items(at)) == 4  # vary, values (as init), no usable value, seeds
    assert at.selectbox(key="c_axis").value == "init"
    open_link(at, "pages/compare.py", {"vary": "depth", "values": "0,500,abc,1e999,-3,5", "depth": "500"})
    assert len(notice_items(at)) == 6
    assert at.text_input(key="c_text_depth").value == "5"
    from_the_sidebar(at, "pages/compare.py")
    assert not notice_items(at)


def test_the_same_run_is_kept_once_and_the_address_survives_a_visit_elsewhere():
    small = RunConfig(samples=200, epochs=3, depth=3, width=8, dtype="float64")
    at = st_testing.AppTest.from_file(APP, default_timeout=60)
    at.session_state["train_settings"] = small
    at.run()
    at.switch_page("pages/train.py").run()
    for _ in range(2):
        at.sidebar.form_submit_button[0].click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert len(at.session_state["runs"]) == 1  # the second press came back from the cache as a copy
    assert not [b for b in at.button if b.label == "Stop"]  # gone once training ended
    expected = {"samples": "200", "epochs": "3", "depth": "3", "width": "8", "dtype": "float64"}
    assert dict(at.query_params) == expected
    from_the_sidebar(at, "pages/train.py")
    assert dict(at.query_params) == expected  # restored with the result on screen
    assert not notice_items(at)
    # a comparison pressed twice keeps one entry per run
    at.switch_page("pages/compare.py").run()
    at.selectbox(key="c_axis").set_value("depth").run()
    at.slider(key="c_depth").set_value(3)
    at.select_slider(key="c_width").set_value(8)
    at.number_input(key="c_epochs").set_value(2)
    at.text_input(key="c_text_depth").set_value("2, 3")
    for _ in range(2):
        at.form_submit_button[0].click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert len(at.session_state["runs"]) == 3
    assert len(at.get("plotly_chart")) >= 2
    assert at.query_params["vary"] == "depth" and at.query_params["values"] == "2,3"


def test_a_link_to_a_bundled_dataset_uses_all_its_rows_unless_it_gives_samples():
    config, notices = params_to_config({"dataset": "digits"}, TRAIN_DEFAULTS)
    assert notices == [] and config.n_samples == 1797
    config, _ = params_to_config({"dataset": "digits", "samples": "500"}, TRAIN_DEFAULTS)
    assert config.n_samples == 500
    for samples in (None, 400, 500):  # a run on digits, opened on a page through its link, keeps its rows
        run = TRAIN_DEFAULTS.replace(dataset="digits", samples=samples).validate()
        back, notices = params_to_config(config_to_params(run, TRAIN_DEFAULTS), TRAIN_DEFAULTS)
        assert notices == [] and back.n_samples == run.n_samples
    generated = RunConfig(dataset="spirals").validate()  # the command line's default: 1000 examples
    back, _ = params_to_config(config_to_params(generated, TRAIN_DEFAULTS), TRAIN_DEFAULTS)
    assert back.n_samples == 1000
