"""The server's cost limits on the pages: a run or comparison above them is refused with a message."""
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from lab import RunConfig

APP = Path(__file__).resolve().parent.parent / "app.py"
LARGEST = RunConfig(depth=100, width=512, samples=5000, epochs=5000, batch_size=8, dtype="float32")


def _page(page, settings=None):
    at = AppTest.from_file(APP, default_timeout=60)
    if settings is not None:
        at.session_state["train_settings"] = settings
    at.switch_page(page).run()  # straight to the page, as a link does (tests/apptest.py)
    return at


def test_train_refuses_the_largest_settings_under_a_low_limit(monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_MAX_RUN_SECONDS", "60")
    at = _page("pages/train.py", LARGEST)
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(e.startswith("Not started: this run would take about") and "the limit on this server is 60 s" in e
               and "epochs (instead of 5,000)" in e for e in errors), errors
    assert "result" not in at.session_state


def test_compare_refuses_more_runs_than_it_allows():
    at = _page("pages/compare.py")
    at.selectbox(key="c_axis").set_value("depth").run()
    at.text_input(key="c_text_depth").set_value(", ".join(str(d) for d in range(1, 31)))
    at.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("30 runs" in e.value and "at most 24" in e.value for e in at.error), [e.value for e in at.error]
    assert "comparison" not in at.session_state


def test_compare_refuses_a_comparison_above_the_total_limit(monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_MAX_COMPARE_SECONDS", "1")
    at = _page("pages/compare.py")
    at.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(e.startswith("Not started: the 5 runs of this comparison would take") for e in errors), errors


def test_the_phase_diagram_passes_the_gate(monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_MAX_RUN_SECONDS", "0.01")
    at = _page("pages/phase_diagram.py")
    at.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(e.startswith("Not started: this diagram would take about") for e in errors), errors
    assert "phase_result" not in at.session_state


def test_the_init_explorer_passes_the_gate(monkeypatch):
    monkeypatch.setenv("BACKPROP_LAB_MAX_RUN_SECONDS", "0.0001")
    at = _page("pages/init_explorer.py")
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(e.startswith("Not started: one of its 2 runs cannot run: this run would take") for e in errors), errors
