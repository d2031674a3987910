"""The notebook API (lab.api): keyword settings held to their declaration, the pages' own figures, save and load,
an interrupt that keeps what was recorded, and the command line's results."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import lab
from lab.engine.training import train as engine_train
from lab.report import figures

SMALL = dict(depth=4, width=8, samples=120, epochs=3)


@pytest.fixture(scope="module")
def run():
    return lab.train(**SMALL)


def test_train_takes_settings_and_gives_the_engines_numbers(run):
    direct = engine_train(lab.RunConfig(**SMALL))
    assert isinstance(run, lab.RunResult) and run.config == direct.config
    pd.testing.assert_frame_equal(run.layers, direct.layers)
    pd.testing.assert_frame_equal(run.history.drop(columns="elapsed_s"), direct.history.drop(columns="elapsed_s"))
    assert lab.train(lab.RunConfig(**SMALL), epochs=1).config.epochs == 1  # a config, changed by settings


@pytest.mark.parametrize("settings, words", [
    ({"depht": 3}, "unknown setting 'depht' (did you mean 'depth'?)"),
    ({"depth": 5000}, "depth must be between"),
    ({"activation": "sigmoidal"}, "activation must be one of"),
])
def test_a_bad_setting_is_the_labs_own_error_with_the_clis_words(settings, words):
    with pytest.raises(lab.ConfigError, match=None) as caught:
        lab.train(**settings)
    assert words in str(caught.value)


def test_every_plot_is_the_figure_the_page_draws(run):
    """The same function as the page's (lab.report.figures), so the same figure JSON for the same run."""
    assert run.plot_curves().to_json() == figures.curves(run).to_json()
    assert run.plot_profile(epoch=0).to_json() == figures.profile(run, 0)[0].to_json()
    assert run.plot_profile().to_json() == figures.profile(run, run.layers["epoch"].max())[0].to_json()
    assert run.plot_heatmap("update_ratio").to_json() == figures.heatmap(run, "update_ratio").to_json()
    assert run.plot_histograms(0).to_json() == figures.histograms(run, 0).to_json()
    assert run.plot_histograms(errors=True).to_json() == figures.error_histograms(run, -1).to_json()
    assert run.plot_boundary().to_json() == figures.boundary(run).to_json()
    with pytest.raises(IndexError, match="histogram snapshots"):
        run.plot_histograms(99)


def test_the_train_page_draws_the_apis_figures():
    """Through AppTest: the Train page's learning curves and gradient profile are the API's figures of the same run."""
    pytest.importorskip("streamlit")
    from apptest import app

    at = app("pages/train.py", settings=lab.RunConfig(samples=100, epochs=2, depth=3, width=8, dtype="float32"))
    at.sidebar.form_submit_button[0].click().run()
    result = lab.RunResult.of(at.session_state["result"])
    drawn = {c.proto.spec for c in at.get("plotly_chart")}
    assert result.plot_curves().to_json() in drawn and result.plot_profile().to_json() in drawn


def test_save_and_load_a_folder_a_zip_and_a_cli_run(run, tmp_path):
    for where in (tmp_path / "folder", tmp_path / "run.zip"):
        back = lab.load(run.save(where))
        pd.testing.assert_frame_equal(back.layers.reset_index(drop=True), run.layers.reset_index(drop=True),
                                      check_dtype=False)
        assert back.config == run.config and isinstance(back, lab.RunResult)
    out = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "lab", "train", "--depth", "3", "--width", "6", "--samples", "80",
                    "--epochs", "2", "--out", str(out), "--no-store", "--quiet"], check=True)
    assert lab.load(out).config.depth == 3


def test_the_interrupt_key_stops_a_run_and_keeps_its_records():
    def interrupt_at_the_third(progress):
        if len(progress.history) == 3:
            raise KeyboardInterrupt

    result = lab.train(**{**SMALL, "epochs": 10}, callback=interrupt_at_the_third)
    assert result.stopped and len(result.history) == 3 and result.layers["epoch"].nunique() == 3


def test_compare_names_its_runs_as_the_cli_does():
    runs = lab.compare(init=["xavier_normal", "he_normal"], **{**SMALL, "epochs": 1})
    assert list(runs) == ["init=xavier_normal", "init=he_normal"]
    assert [r.config.init for r in runs.values()] == ["xavier_normal", "he_normal"]
    with pytest.raises(lab.ConfigError, match="exactly one setting with several values"):
        lab.compare(depth=3)


def test_theory_is_the_clis_table():
    table = lab.theory(depth=5, activation="tanh")
    out = subprocess.run([sys.executable, "-m", "lab", "theory", "--depth", "5", "--activation", "tanh"],
                         capture_output=True, text=True, check=True).stdout
    np.testing.assert_allclose(table.to_numpy(dtype=float), pd.read_csv(io.StringIO(out)).to_numpy(dtype=float),
                               rtol=1e-12)


def test_runs_lists_the_store_and_load_opens_a_stored_run(run, tmp_path):
    from lab.store.runstore import open_store

    path = tmp_path / "runs.sqlite"
    with open_store(path) as s:
        run_id = s.save(run, "kept", "cli")
    assert list(lab.runs(path)["name"]) == ["kept"]
    assert lab.load(run_id, store=path).config == run.config


def test_a_notebook_shows_a_short_summary_with_text_escaped(run):
    page = run._repr_html_()
    assert page.startswith("<div><b>relu, he_normal init, 4 hidden layers of 8, spirals</b>") and "&#x27;" in page
    assert "**" not in page and run.verdict().startswith("At initialization:")


def test_the_api_s_signatures_are_the_documented_ones():
    """The names a notebook relies on: changing one is a change of the API, made on purpose."""
    import inspect

    params = {name: list(inspect.signature(getattr(lab, name)).parameters) for name in
              ("train", "compare", "sweep", "runs", "load", "plot_profiles")}
    assert params == {
        "train": ["config", "data", "callback", "should_stop", "progress", "settings"],
        "compare": ["config", "progress", "settings"],
        "sweep": ["x", "y", "config", "seeds", "out", "workers", "progress", "settings"],
        "runs": ["store", "filters"],
        "load": ["what", "store"],
        "plot_profiles": ["runs", "epoch"],
    }
    assert callable(lab.theory) and lab.theory.meanfield.__name__ == "lab.theory.meanfield"
    assert {"train", "compare", "sweep", "runs", "load", "plot_profiles", "RunResult"} <= set(lab.__all__)


def test_loading_what_is_not_a_run_is_the_labs_own_error(tmp_path):
    from lab.serving.imports import ImportFormatError
    from lab.store.runstore import NoSuchRun

    (tmp_path / "notes.txt").write_text("not a run")
    with pytest.raises(ImportFormatError, match="neither JSON nor a ZIP"):
        lab.load(tmp_path / "notes.txt")
    with pytest.raises(NoSuchRun):
        lab.load(42, store=tmp_path / "runs.sqlite")


def test_a_long_call_shows_a_progress_bar_and_a_short_one_none(capsys):
    lab.train(**SMALL, progress=True)
    assert "training" in capsys.readouterr().err  # tqdm's bar, on a terminal (its notebook form in a notebook)
    lab.train(**SMALL)  # estimated well under LONG_RUN_S: no bar
    assert capsys.readouterr().err == ""
