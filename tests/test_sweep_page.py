"""The Sweep page (AppTest, a 2 x 2 sweep of tiny networks on 1 worker) and its figure."""
import math

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from lab.report import charts
from tests.apptest import APP

PAGE = "pages/sweep.py"


def sweep_app(x="depth", xv="1 2", y="width", yv="2 3"):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["sweep_workers"] = 1
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    at.session_state["s_x"], at.session_state["s_xv"] = x, xv
    at.session_state["s_y"], at.session_state["s_yv"] = y, yv
    at.session_state["s_data"], at.session_state["s_epochs"] = "iris", 1
    return at


def test_page_renders_with_the_preset_loaded():
    at = sweep_app()
    assert "Sweep" in at.title[0].value
    at.button(key="s_preset").click().run()
    assert not at.exception
    assert at.session_state["s_x"] == "sigma_w" and at.session_state["s_act"] == "tanh"
    assert math.isclose(at.session_state["s_bias"], math.sqrt(0.05), rel_tol=1e-3)


def test_a_run_fills_the_table():
    at = sweep_app()
    at.button[-1].click()  # the form's submit button is the last one
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    run = at.session_state["sweep_run"]
    assert not run["running"] and len(run["rows"]) == 4
    assert {(r["depth"], r["width"]) for r in run["rows"]} == {(1, 2), (2, 2), (1, 3), (2, 3)}
    table = at.dataframe[0].value
    assert len(table) == 4 and "final_val_accuracy" in table.columns
    assert "4 of 4 runs finished" in at.caption[-1].value or any("4 of 4" in c.value for c in at.caption)


def test_bad_axis_input_gets_a_message():
    at = sweep_app(xv="1:oops:3")
    at.button[-1].click()
    at.run()
    assert not at.exception
    assert at.error and at.error[0].value == "Cannot run this sweep:"
    assert "START:STOP:COUNT" in at.text[0].value  # what the visitor typed, as plain text
    assert "sweep_run" not in at.session_state


def table(done):
    rows = [dict(sigma_w=s, depth=d, seed_index=0, final_val_accuracy=0.9, final_loss=0.3, diverged_at=np.nan,
                 delta_ratio_init=10.0 ** (d - 3)) for d in (2, 10) for s in (1.0, 2.0)]
    return pd.DataFrame(rows[:done])


def test_figure_overlays_xi_for_sigma_w_by_depth_only():
    xi = lambda s: np.where(np.isclose(s, 1.5), np.inf, 1.0 / np.abs(np.asarray(s) - 1.5))  # noqa: E731
    fig = charts.sweep_figure(table(4), "sigma_w", "depth", "final_val_accuracy", depth_scale=xi)
    lines = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert len(lines) == len(charts.SWEEP_XI_MULTIPLES)
    assert np.allclose(lines[0].x[:3] * 0 + lines[0].y[:3], 6.0 / np.abs(lines[0].x[:3] - 1.5))
    swapped = charts.sweep_figure(table(4).rename(columns={"depth": "width"}), "sigma_w", "width",
                                  "final_val_accuracy", depth_scale=xi)
    assert not [t for t in swapped.data if t.type == "scatter" and t.mode == "lines"]
    # a line still being computed (the live map does not wait for it) is left out, and the map drawn
    pending = charts.sweep_figure(table(4), "sigma_w", "depth", "final_val_accuracy", depth_scale=lambda s: None)
    assert not [t for t in pending.data if t.type == "scatter" and t.mode == "lines"] and pending.data
    # every finished cell has an invisible marker that carries its numbers and takes the click
    [cells] = [t for t in fig.data if t.name == "cells"]
    assert len(cells.x) == 4 and "click: open it on the Train page" in cells.hovertemplate


def test_figure_greys_pending_cells_and_logs_delta_ratios():
    fig = charts.sweep_figure(table(3), "sigma_w", "depth", "delta_ratio_init", values=((1.0, 2.0), (2, 10)))
    main, pending = fig.data[0], next(t for t in fig.data if t.name == "not run yet")
    assert pending.name == "not run yet" and np.isfinite(pending.z[1][1]) and np.isnan(pending.z[0][0])
    assert np.allclose(main.z[0], [-1.0, -1.0]) and math.isclose(main.z[1][0], 7.0) and np.isnan(main.z[1][1])


def test_a_scheduler_that_does_not_answer_gets_a_message_and_keeps_the_page(monkeypatch, caplog):
    import lab.experiments.sweep as sweep
    from lab.engine.settings import ConfigError

    def refuse(cells, scheduler, fn=None, waiting=None):
        raise ConfigError(f"no Dask scheduler answered at {scheduler}")
        yield  # a generator, as map_on_dask is

    monkeypatch.setattr(sweep, "map_on_dask", refuse)
    monkeypatch.setenv(sweep.SCHEDULER_ENV, "tcp://127.0.0.1:1")  # the operator's choice
    at = sweep_app()
    at.button[-1].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("The Dask cluster that the operator set up did not answer" in e.value for e in at.error)
    assert not any("127.0.0.1" in e.value for e in at.error)  # the address is for the operator's log
    assert "no Dask scheduler answered at tcp://127.0.0.1:1" in caplog.text
    assert not at.session_state["sweep_run"]["running"]
