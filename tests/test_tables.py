"""The tables' number formats: readable from 1e-12 to 1e15, percentages that never hide a share."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from lab.report import tables


@pytest.mark.parametrize("x, text", [
    (7.41e11, "7.41e11"), (1e15, "1.00e15"), (1.215e-5, "1.22e-5"), (0.326, "0.326"), (12.04, "12"),
    (2.5e4, "2.50e4"), (0.0, "0"), (-3.2e-7, "-3.20e-7"), (math.nan, "–"), (None, "–"), (math.inf, "∞"),
])
def test_magnitude(x, text):
    assert tables.magnitude(x) == text


@pytest.mark.parametrize("x, text", [
    (0.0, "0%"), (1.0, "100%"), (0.0004, "<0.1%"), (0.9996, ">99.9%"), (0.123, "12.3%"), (math.nan, "–"),
])
def test_fraction(x, text):
    assert tables.fraction(x) == text


@pytest.mark.parametrize("column, kind", [
    ("final_accuracy", tables.fraction), ("final_val_accuracy", tables.fraction), ("dead_frac", tables.fraction),
    ("saturated_frac", tables.fraction), ("final_loss", tables.magnitude), ("delta_ratio_init", tables.magnitude),
    ("grad_norm", tables.magnitude), ("layer", tables.count), ("epochs_to_loss_0.1", tables.epoch),
    ("diverged_at", tables.epoch), ("wall_s", tables.seconds), ("final loss", tables.magnitude),
    ("diverged at", tables.epoch),
])
def test_formatter_by_column_name(column, kind):
    assert tables.formatter(column) is kind


def test_styled_keeps_the_numbers_and_changes_only_the_text():
    table = pd.DataFrame({"run": ["a", "b"], "final_loss": [7.41e11, 0.2], "final_accuracy": [0.5, 0.0],
                          "layer": [1, 2]})
    html = tables.styled(table).to_html()
    for text in ("7.41e11", "2.00e-1", "50.0%", "0%", ">1<", ">a<"):  # one format per column (issue 22)
        assert text in html
    assert "741000000000" not in html
    assert tables.styled(table).data["final_loss"].dtype.kind == "f"  # still sorts by value


def test_height_shows_every_row_of_a_30_layer_network():
    assert tables.height(31) > tables.height(10) and tables.height(31) == tables.height(200)


def test_styled_colours_the_runs_like_the_charts():
    table = pd.DataFrame({"run": ["a", "b"], "final_loss": [1.0, 2.0]})
    html = tables.styled(table, {"a": "#1f77b4"}).to_html()
    assert "color: #1f77b4" in html and html.count("color: #") == 1


def test_a_loss_beyond_2_to_the_53_is_shown_as_its_text():
    """st.dataframe shows an error cell for a whole number above 2^53 in a number column."""
    table = pd.DataFrame({"run": ["a", "b"], "final_loss": [2.4688e22, 0.2], "final_accuracy": [0.5, 0.1]})
    shown = tables.styled(table).data
    assert list(shown["final_loss"]) == ["2.47e22", "2.00e-1"]
    assert shown["final_accuracy"].dtype.kind == "f"  # the other columns stay numbers


def test_missing_values_read_as_a_dash_not_none():
    import pandas as pd

    from lab.report.tables import styled

    table = pd.DataFrame({"run": ["a", "b"], "epochs_to_loss_T": [None, 3], "diverged_at": [None, None]})
    style = styled(table)
    html = style.to_html()
    assert "None" not in html and "nan" not in html and html.count("–") >= 3
    # st.dataframe draws a null cell as "None" whatever the Styler says: the data itself holds the dash
    assert style.data["diverged_at"].tolist() == ["–", "–"] and style.data["epochs_to_loss_T"].tolist()[0] == "–"
