"""How the pages' tables show their numbers: one format per kind of column.

Fractions as percentages, magnitudes (losses, norms, ratios) plainly from 1e-3 to 1e4 and
in a compact scientific form that stays narrow from 1e-12 to 1e15 (a whole column in it when
any of its values needs it), counts and layers as plain integers, epochs as
written.  ``styled`` gives a pandas Styler: the cells keep their numbers (so a column
still sorts by value) and only their text changes.
"""
from __future__ import annotations

import math

import pandas as pd

from lab import formats
from lab.formats import PLAIN_BELOW, PLAIN_FROM, number

ROW_PX = 35  # st.dataframe's row height, the header's too
MISSING = "–"  # a value that is not there: a threshold never reached, a run that did not diverge
ALL_ROWS_UP_TO = 31  # a 30-layer network's 31 layers fit without an inner scroll bar


def magnitude(x) -> str:
    """3 significant digits: 0.326, 12, 2.50e4, 7.41e11, 1.22e-5 (``lab.formats.number``; "–" when missing)."""
    return number(x, 3, missing=MISSING)


def scientific(x) -> str:
    """3 significant digits in scientific form: 5.03e8, 4.79e3, 2.50e-1 (``lab.formats.scientific``)."""
    return formats.scientific(x, 3, missing=MISSING)


def column_formatter(column: str, values: pd.Series):
    """``formatter(column)``, except that a column of magnitudes of which any needs the scientific form
    is written in it throughout: one column, one format (not "5.03e8" above "4790")."""
    f = formatter(column)
    if f is not magnitude:
        return f
    v = pd.to_numeric(values, errors="coerce").abs()
    v = v[(v > 0) & v.map(math.isfinite)]
    return scientific if ((v < PLAIN_FROM) | (v >= PLAIN_BELOW)).any() else magnitude


def fraction(x) -> str:
    """A fraction in [0, 1] as a percentage that never rounds a non-zero share to 0% or a partial one to 100%."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    p = 100.0 * float(x)
    if p == 0 or p == 100:
        return f"{p:.0f}%"
    if p < 0.1:
        return "<0.1%"
    if p > 99.9 and p < 100:
        return ">99.9%"
    return f"{p:.1f}%"


def count(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{int(x)}"


def epoch(x) -> str:
    """Whole epochs as integers, fractional ones (``record_every``) with up to 3 decimals."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{float(x):.3f}".rstrip("0").rstrip(".")


def seconds(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{float(x):.2f}"


def formatter(column: str):
    """The format for a column, from its name (the lab's column names say what they hold)."""
    name = column.lower().replace(" ", "_")
    if name.endswith(("accuracy", "_frac")):
        return fraction
    if name in ("layer", "step", "records", "n_train", "n_val"):
        return count
    if name.startswith(("epoch", "diverged_at")) or name == "epochs":
        return epoch
    if name.endswith("_s"):
        return seconds
    return magnitude


# st.dataframe refuses to show a whole number above 2^53 in a number column (an error cell); every
# float that large is whole, so a loss of 1e19 would be one.  Such a column is shown as text.
LARGEST_NUMBER_CELL = 2.0**53


def styled(table: pd.DataFrame, colours: dict[str, str] | None = None, key: str = "run"):
    """``table`` with every numeric column formatted by ``formatter``; text columns as they are.
    ``colours`` maps values of column ``key`` to a text colour (a run's colour on the charts).
    A column holding a magnitude beyond LARGEST_NUMBER_CELL becomes its formatted text."""
    numeric = [c for c in table.columns if c != key and table[c].dtype != bool
               and pd.api.types.is_numeric_dtype(pd.to_numeric(table[c], errors="coerce"))
               and table[c].map(lambda v: v is None or isinstance(v, (int, float))).all()]
    # st.dataframe draws a missing cell as a grey "None" whatever the Styler says, and refuses whole
    # numbers above 2^53: such columns are shown as their formatted text ("–" where missing)
    as_text = [c for c in numeric if table[c].isna().any()
               or (pd.to_numeric(table[c], errors="coerce").abs() >= LARGEST_NUMBER_CELL).any()]
    if as_text:
        table = table.assign(**{c: pd.to_numeric(table[c], errors="coerce").map(column_formatter(c, table[c]))
                                for c in as_text})
        numeric = [c for c in numeric if c not in as_text]
    # a missing value (a threshold never reached, a run that did not diverge) reads as a dash, not "None"
    style = table.style.format(na_rep="–").format({c: column_formatter(c, table[c]) for c in numeric}, na_rep="–")
    if colours and key in table.columns:
        style = style.map(lambda v: f"color: {colours[v]}; font-weight: 600" if v in colours else "", subset=[key])
    return style


def height(n_rows: int, all_rows_up_to: int = ALL_ROWS_UP_TO) -> int:
    """Pixels for st.dataframe: every row up to ``all_rows_up_to``, then that many with a scroll bar."""
    return ROW_PX * (min(max(n_rows, 1), all_rows_up_to) + 1) + 3
