"""lab.formats: the one number formatter that captions, tables, charts and the CLI share."""
from __future__ import annotations

import math
import re

import pytest

from lab import formats
from lab.engine import divergence
from lab.report import charts, summaries, tables


@pytest.mark.parametrize("x, digits, text", [
    (0.00123, 2, "0.0012"), (0.66, 2, "0.66"), (123.0, 2, "120"), (4790.0, 2, "4800"), (4790.0, 3, "4790"),
    (7.2e4, 2, "7.2e4"), (3e-6, 2, "3.0e-6"), (1.5e12, 2, "1.5e12"), (-2.5e-7, 3, "-2.50e-7"), (12.04, 3, "12"),
    (0.0, 2, "0"), (math.inf, 2, "∞"), (-math.inf, 2, "-∞"), (math.nan, 2, "n/a"), (None, 2, "n/a"),
    (9999.0, 2, "1.0e4"),  # rounds past the plain range's edge: still no "+" or "e+04"
])
def test_number(x, digits, text):
    assert formats.number(x, digits) == text


@pytest.mark.parametrize("x", [1e-12, 3.3e-5, 0.02, 0.5, 7.0, 99.9, 170.0, 4790.0, 9999.0, 2.5e4, 6.1e8, 1e15, 2.2e22])
def test_no_number_is_written_with_a_plus_or_a_leading_zero_in_its_exponent(x):
    for text in (formats.number(x), formats.number(x, 3), formats.scientific(x), formats.power_of_ten(x),
                 tables.magnitude(x), summaries.fmt(x)):
        assert not re.search(r"e\+|e-?0\d", text), text


def test_the_five_formatters_of_old_are_one():
    """summaries.fmt is the formatter itself; tables' and charts' forms and the divergence messages go through it."""
    assert summaries.fmt is formats.number
    assert tables.magnitude(5.03e8) == formats.number(5.03e8, 3) == "5.03e8"
    assert tables.magnitude(4790) == "4790" and tables.magnitude(math.nan) == "–"
    assert formats.power_of_ten(2.5e22) == "2.5×10<sup>22</sup>" and formats.power_of_ten(1000.0) == "1000"
    assert not hasattr(charts, "_tick_label") and divergence.number is formats.number
    check = divergence.DivergenceCheck(chance=0.69, initial=0.7)
    assert "reached 1.5e12 at step 3" in check.during_training(1.5e12, 3)


@pytest.mark.parametrize("seconds, text", [(0.3, "under a second"), (42, "42 s"), (600, "10 min"), (7200, "2.0 h"),
                                           (864000, "10 days")])
def test_duration(seconds, text):
    assert formats.duration(seconds) == text


@pytest.mark.parametrize("n, text", [(512, "512 bytes"), (3 * 2**20, "3.0 MB"), (206 * 2**20, "206 MB"),
                                     (6.8 * 2**30, "6.8 GB")])
def test_size(n, text):
    assert formats.size(n) == text
