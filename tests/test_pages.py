"""The pages through Streamlit's AppTest: each runs, trains, and reports bad input on the page."""

import re

import pytest

pytest.importorskip("streamlit")
from apptest import APP, app  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from lab import RunConfig  # noqa: E402
from lab.experiments.presets import PRESETS  # noqa: E402

SMALL = RunConfig(samples=200, epochs=3, depth=3, width=8, dtype="float64")


def charts(at):
    return at.get("plotly_chart")


def test_home_lists_every_preset_with_a_measured_caption():
    at = app()
    labels = [b.key for b in at.button if b.key.startswith("preset_")]
    assert sorted(f"preset_{name}" for name in PRESETS) == sorted(labels)
    measured = [m.value for m in at.markdown if m.value.startswith("Measured:")]
    assert len(measured) == len(PRESETS)
    sigmoid = next(m for m in measured if re.search(r"\de-[67]\b", m))  # lab.formats: 1.0e-6, never "1e-06"
    assert "layer 1 gets" in sigmoid


def test_home_pairs_each_failure_with_its_cure_from_measured_numbers():
    from lab.experiments.presets import CURES

    at = app()
    lines = {m.value.split(". ", 1)[0].strip("*"): m.value for m in at.markdown if m.value.startswith("*")}
    for cure in CURES.values():
        assert set(cure.variants) <= set(lines), (set(cure.variants), set(lines))
    assert "vanishing" in lines["no normalization"]
    assert "exploding" in lines["α = 1"]
    # the scaled card's verdict is about the layers that share the shortcut; layer 1 is named apart (issue 22)
    assert "**healthy**" in lines["α = 1/√50"] and "layer 1, which has no shortcut" in lines["α = 1/√50"]
    assert "Diverged at epoch 1" in lines["no clipping"]
    assert "Trained 100 epochs" in lines["clipped at norm 1"] and "Clipping at norm 1 fired on" in lines["clipped at norm 1"]
    # Yang et al.'s sqrt(pi / (pi - 1)) per layer in delta_rms, beside the measured explosion
    assert "exploding" in lines["batch norm"] and "Theory predicts 1.21× per layer" in lines["batch norm"]
    assert "healthy" in lines["He alone"]
    # a cure's button opens it in Train, trained
    at.button(key="cure_clip_1").click().run()
    assert not at.exception, [e.value for e in at.exception]
    result = at.session_state["result"]
    assert result.config.clip_norm == 1.0 and result.diverged_at is None
    assert any("Clipping at norm 1 fired on" in c.value for c in at.caption)


def test_preset_fills_the_train_page():
    at = app()
    at.button(key="preset_sigmoid_small").click().run()
    assert not at.exception
    assert at.session_state["train_settings"].activation == "sigmoid"
    assert at.session_state["train_settings"].init == "normal"
    assert at.selectbox(key="w_activation").value == "sigmoid"
    assert at.selectbox(key="w_init").value == "normal"
    assert at.number_input(key="w_init_scale").value == pytest.approx(0.01)
    # and it has trained already: the vanishing signal is on screen
    result = at.session_state["result"]
    assert result.config.activation == "sigmoid" and result.config.init_scale == pytest.approx(0.01)
    assert any("vanishing" in c.value for c in at.caption)


def test_train_default_page_waits_for_the_button():
    at = app("pages/train.py")
    assert any("Press **Train**" in i.value for i in at.info)
    # nothing trained: only the picture of what will be, the data beside the network
    assert {c.key for c in charts(at)} == {"plan_data", "plan_network"}
    assert "result" not in at.session_state


def test_training_draws_every_chart_and_keeps_the_result():
    at = app("pages/train.py", SMALL)
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    result = at.session_state["result"]
    assert result.config.depth == 3 and len(result.history) == 4
    # loss, profile, the network coloured by it, heatmap, activation and error histograms, decision boundary
    assert [c.key for c in charts(at)] == ["loss", "profile", "network", "heat", "hists", "delta_hists", "boundary"]
    captions = " ".join(c.value for c in at.caption)
    assert "from layer 3 to layer 1" in captions
    # the verdict at initialization beside the one at the chosen (last) epoch
    verdicts = [m.value for m in at.markdown if m.value.startswith("**At ")]
    assert [v.split(":")[0] for v in verdicts] == ["**At initialization", "**At epoch 3"]
    # "Take it with you": the run's files, and the run in PyTorch (tests/test_export_torch.py tests its files)
    assert {"everything (ZIP)", "PyTorch script (ZIP)"} <= {d.proto.label for d in at.get("download_button")}
    # another interaction reruns the page; the result stays on screen
    at.toggle[0].set_value(True).run()
    assert not at.exception and len(charts(at)) == 7


def test_changed_settings_are_what_trains():
    at = app("pages/train.py", SMALL)
    at.slider(key="w_depth").set_value(5)
    at.selectbox(key="w_activation").set_value("tanh")
    at.selectbox(key="w_init").set_value("xavier_normal")
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    c = at.session_state["result"].config
    assert (c.depth, c.activation, c.init) == (5, "tanh", "xavier_normal")
    assert at.session_state["result"].layers["layer"].max() == 6


def test_diverged_run_says_when_and_keeps_the_charts():
    settings = SMALL.replace(depth=20, init="normal", init_scale=10.0, optimizer="sgd", lr=1.0, epochs=5)
    at = app("pages/train.py", settings)
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    assert any("Diverged at epoch" in e.value for e in at.error)
    assert charts(at)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"a,b,label\n1,2,x\n3,oops,y\n4,5,x\n", "not numeric"),
        (b"a,b,label\n1,2,x\n3,,y\n4,5,x\n", "missing values"),
        (b"a,b,label\n1,2,x\n3,4,x\n", "single class"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00binary", "cannot be used"),
    ],
)
def test_bad_upload_gets_a_clear_message(content, expected):
    at = app("pages/train.py", SMALL)
    at.sidebar.file_uploader[0].upload("data.csv", content, "text/csv").run()
    assert not at.exception
    if at.sidebar.form_submit_button:
        at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    messages = " ".join([e.value for e in at.error] + [t.value for t in at.text])
    assert expected in messages


def _markdown_bodies(at) -> str:
    """Every string the page hands to Streamlit's Markdown renderer."""
    kinds = ("markdown", "caption", "error", "warning", "success", "info", "title", "header", "subheader")
    return " ".join(el.value for kind in kinds for el in at.get(kind))


def test_csv_words_reach_the_page_as_plain_text_only():
    evil = "![pix](http://127.0.0.1:9/x.png) **bold** <b>html</b>"
    content = f'a,"{evil}",label\n1,2,x\n3,"{evil}",y\n4,5,x\n'.encode()
    at = app("pages/train.py", SMALL)
    at.sidebar.file_uploader[0].upload("data.csv", content, "text/csv").run()
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    assert "not numeric" in " ".join(t.value for t in at.text)
    assert evil in " ".join(t.value for t in at.text)
    assert "![pix]" not in _markdown_bodies(at) and "**bold**" not in _markdown_bodies(at)


def test_imported_run_names_reach_the_page_as_plain_text_only():
    from lab import train
    from lab.serving.export import runs_json

    result = train(SMALL.replace(epochs=1))
    names = ["![pix](http://127.0.0.1:9/x.png)", "**bold**", "=HYPERLINK(\"http://x\")"]
    raw = runs_json({n: result for n in names}).encode()
    at = app("pages/compare.py")
    at.file_uploader(key="import_file").upload("![f](http://127.0.0.1:9/f.png).json", raw, "application/json").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(t.value for t in at.text)
    assert all(n in shown for n in names)
    assert "![" not in _markdown_bodies(at) and "**bold**" not in _markdown_bodies(at)


def test_good_upload_trains():
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{'cat' if i % 2 else 'dog'}" for i in range(60))
    at = app("pages/train.py", SMALL)
    at.sidebar.file_uploader[0].upload("pets.csv", ("x,y,kind\n" + rows).encode(), "text/csv").run()
    assert at.selectbox(key="w_dataset").value == "csv"
    assert at.selectbox(key="w_label").value == "kind"
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    result = at.session_state["result"]
    assert result.config.dataset == "csv" and result.data.class_names == ("cat", "dog")
    # the address carries the settings but not the file, and the page says so
    assert at.query_params["dataset"] == "csv"
    assert any("which a link cannot carry" in c.value for c in at.caption)


def test_init_explorer_compares_two_settings():
    at = app("pages/init_explorer.py")
    assert len(charts(at)) == 5  # overlay + two histogram grids + the Jacobian spectrum's density and moments
    at.selectbox(key="xA_activation").set_value("tanh")
    at.slider(key="xA_depth").set_value(20)
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert any("tanh" in c.value for c in at.caption)


def _small_compare(at):
    at.slider(key="c_depth").set_value(3)
    at.select_slider(key="c_width").set_value(8)
    at.number_input(key="c_epochs").set_value(3)
    return at


def _trace_colours(chart) -> dict:
    import json

    return {t["name"].removesuffix(" training"): t["line"]["color"] for t in json.loads(chart.proto.spec)["data"]
            if t.get("name", "").endswith(" training")}


def test_each_run_keeps_its_colour_on_the_page_and_in_the_session_panel():
    at = app("pages/train.py", SMALL.replace(init="lecun_normal"))  # not one of the comparison's runs (kept once)
    at.sidebar.form_submit_button[0].click().run()
    at.switch_page("pages/compare.py").run()
    _small_compare(at)
    at.multiselect(key="c_values_init").set_value(["xavier_normal", "he_normal"])
    at.form_submit_button[0].click().run()
    at.multiselect(key="overlay_pick").set_value(list(at.session_state["runs"])).run()
    assert not at.exception, [e.value for e in at.exception]
    loss, _, overlay, _ = charts(at)  # the comparison's two charts, then the session panel's two
    compared, panel = _trace_colours(loss), _trace_colours(overlay)
    (trained,) = set(panel) - set(compared)
    assert all(panel[name] == colour for name, colour in compared.items())
    assert panel[trained] not in compared.values() and len(set(compared.values())) == 2


def test_compare_runs_every_value_and_shares_a_link():
    at = _small_compare(app("pages/compare.py"))
    at.multiselect(key="c_values_init").set_value(["xavier_normal", "he_normal", "zeros"])
    at.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    comparison = at.session_state["comparison"]
    assert comparison["runs"] == ["init=xavier_normal", "init=he_normal", "init=zeros"]
    runs = at.session_state["runs"]
    assert {runs[n].config.init for n in comparison["runs"]} == {"xavier_normal", "he_normal", "zeros"}
    assert {runs[n].config.depth for n in comparison["runs"]} == {3}
    assert len(charts(at)) >= 2
    assert at.query_params["vary"] == "init" and at.query_params["values"] == "xavier_normal,he_normal,zeros"
    downloads = at.get("download_button")
    labels = {d.proto.label for d in downloads}
    assert {"loss curves (CSV)", "everything (ZIP)", "loss curves (HTML)"} <= labels
    assert all(d.proto.ignore_rerun for d in downloads)  # a download does not rerun the page


def test_compare_link_restores_the_comparison_and_waits_for_the_button():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"vary": "activation", "values": "tanh,relu", "depth": "2", "width": "8",
                            "epochs": "2", "colour": "red"})
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert "comparison" not in at.session_state  # a link runs nothing by itself, as on Train
    assert at.selectbox(key="c_axis").value == "activation"
    assert at.multiselect(key="c_values_activation").value == ["tanh", "relu"]
    assert any("colour" in t.value for t in at.text)
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert at.session_state["comparison"]["runs"] == ["activation=tanh", "activation=relu"]


def test_train_link_restores_settings_with_a_notice_for_bad_ones():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"activation": "tanh", "depth": "7", "lr": "fast"})
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.selectbox(key="w_activation").value == "tanh"
    assert at.slider(key="w_depth").value == 7
    assert any("lr" in t.value for t in at.text)


def test_import_keeps_the_session_and_rejects_foreign_files():
    from lab import train
    from lab.serving.export import runs_json

    at = app("pages/compare.py")
    good = runs_json({"mine": train(SMALL)}).encode()
    at.file_uploader(key="import_file").upload("mine.json", good, "application/json").run()
    assert not at.exception
    assert "mine" in at.session_state["runs"]
    at.file_uploader(key="import_file").set_value(("bad.json", b'{"hello": 1}', "application/json")).run()
    assert not at.exception
    assert any("cannot be loaded" in e.value for e in at.error)
    assert "mine" in at.session_state["runs"]


def test_phase_diagram_sweeps_and_marks_the_edge_of_chaos():
    at = app("pages/phase_diagram.py")
    assert not charts(at)
    at.slider(key="p_cells").set_value(5)
    at.slider(key="p_depth").set_value(10)
    at.select_slider(key="p_width").set_value(32)
    at.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(charts(at)) == 1
    assert "edge of chaos at σ_w = 1" in " ".join(c.value for c in at.caption)
    at.form_submit_button[0].click().run()  # the same sweep again comes from the cache
    assert not at.exception, [e.value for e in at.exception]
    assert len(charts(at)) == 1


def test_session_runs_can_be_renamed_and_deleted():
    at = app("pages/train.py", SMALL)
    at.sidebar.form_submit_button[0].click().run()
    at.switch_page("pages/compare.py").run()
    (name,) = list(at.session_state["runs"])
    at.selectbox(key="rename_old").set_value(name)
    at.text_input(key="rename_new").set_value("my first run")
    next(b for b in at.form_submit_button if b.label == "Rename").click().run()
    assert not at.exception
    assert list(at.session_state["runs"]) == ["my first run"]
    at.multiselect(key="delete_pick").set_value(["my first run"])
    next(b for b in at.form_submit_button if b.label == "Delete").click().run()
    assert not at.exception and at.session_state["runs"] == {}


OVERFLOW_AT_INIT = RunConfig(samples=200, epochs=3, depth=30, width=64, init="normal", init_scale=100.0,
                             dtype="float32")


def test_a_run_that_overflows_at_initialization_is_explained_everywhere():
    at = app("pages/train.py", OVERFLOW_AT_INIT)
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["result"].diverged_at == 0
    assert any("Diverged at epoch 0" in e.value for e in at.error)
    at.switch_page("pages/compare.py").run()  # the session panel overlays it
    assert not at.exception, [e.value for e in at.exception]


def test_comparison_with_a_value_that_overflows_at_initialization():
    at = _small_compare(app("pages/compare.py"))
    at.selectbox(key="c_axis").set_value("init_scale").run()
    _small_compare(at)
    at.selectbox(key="c_init").set_value("normal")
    at.slider(key="c_depth").set_value(30)
    at.select_slider(key="c_width").set_value(64)
    at.text_input(key="c_text_init_scale").set_value("0.1, 100")
    at.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.session_state["comparison"]["runs"]) == 2


def test_init_explorer_side_that_overflows_gets_a_message():
    at = app("pages/init_explorer.py")
    at.selectbox(key="xA_activation").set_value("relu")
    at.selectbox(key="xA_init").set_value("normal")
    at.number_input(key="xA_init_scale").set_value(1000.0)
    at.slider(key="xA_depth").set_value(100)
    at.select_slider(key="xA_width").set_value(512)
    at.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("overflowed at initialization" in e.value for e in at.error)


def test_deep_network_histograms_say_which_layers_and_take_a_choice():
    at = app("pages/train.py", RunConfig(samples=200, epochs=1, depth=25, width=4, dtype="float64"))
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.multiselect(key="hist_layers_26")
    assert picker.value[0] == 1 and picker.value[-1] == 26
    picker.set_value([2, 26]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe) == 2  # the statistics in two tabs, every layer in each
    assert all(len(d.value) == 26 for d in at.dataframe)


def test_train_page_on_a_bundled_dataset_uses_all_its_rows():
    at = app("pages/train.py", SMALL)
    at.selectbox(key="w_dataset").set_value("digits")
    at.number_input(key="w_epochs").set_value(0)
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    data = at.session_state["result"].data
    assert len(data.X_train) + len(data.X_val) == 1797


def test_a_run_whose_weights_were_not_kept_says_so_where_the_boundary_would_be():
    at = app("pages/train.py", SMALL)
    at.sidebar.form_submit_button[0].click().run()
    assert any(s.value == "5. Decision boundary" for s in at.subheader)
    at.session_state["result"] = at.session_state["result"].slim()  # as a session keeps its older runs
    at.run()
    assert not at.exception
    assert any(s.value == "5. Decision boundary" for s in at.subheader)
    assert any("weights" in i.value and "newest 3 runs" in i.value for i in at.info), [i.value for i in at.info]
