"""The Phase diagram's grid and counts (lab/theory/phase_grid.py) and its caption."""
import math

import numpy as np
import pandas as pd
import pytest

from lab.report import summaries
from lab.theory.phase import critical_sigma_w
from lab.theory.phase_grid import PhaseCounts, phase_counts, sweep_grid


def test_page_default_grid_is_twenty_by_twenty_from_depth_2():
    sigma_ws, depths = sweep_grid((0.5, 3.0), 20, 100)
    assert len(sigma_ws) == 20 and sigma_ws[0] == 0.5 and sigma_ws[-1] == 3.0
    assert np.allclose(np.diff(sigma_ws), 2.5 / 19, atol=1e-4)
    assert depths[0] == 2 and depths[-1] == 100 and len(depths) == 20
    assert all(type(d) is int for d in depths) and list(depths) == sorted(set(depths))


def test_depths_that_round_alike_are_measured_once():
    # linspace(2, 5, 5) = 2, 2.75, 3.5, 4.25, 5: rounded 2, 3, 4, 4, 5
    assert sweep_grid((1.0, 2.0), 5, 5)[1] == (2, 3, 4, 5)
    assert sweep_grid((1.0, 2.0), 5, 5)[0] == (1.0, 1.25, 1.5, 1.75, 2.0)


def test_counts_of_underflow_missing_and_beyond_the_colours():
    table = pd.DataFrame({"sigma_w": [1.0] * 6, "depth": range(2, 8),
                          "log10_ratio": [-math.inf, math.nan, 5.0, -5.0, 0.1, 3.0]})
    counts = phase_counts(table, "tanh", 0.0, None, colour_limit=3.0)
    assert counts == PhaseCounts(cells=6, underflow=1, missing=1, beyond=2, critical=None, sigma_w_below=None,
                                 chi_below=None)


def test_chi_below_the_edge_matches_tanh_at_zero_bias():
    # tanh with sigma_b = 0: the fixed point is q* = 0, where tanh' = 1, so chi = sigma_w**2
    critical = critical_sigma_w("tanh", 0.0)
    assert critical == pytest.approx(1.0, rel=1e-3)
    counts = phase_counts(pd.DataFrame({"log10_ratio": [0.0]}), "tanh", 0.0, critical, 4.0)
    assert counts.sigma_w_below == pytest.approx(0.8 * critical)
    assert counts.chi_below == pytest.approx(counts.sigma_w_below**2, rel=1e-3)


def test_caption_names_what_is_drawn_specially_and_the_edge():
    counts = PhaseCounts(cells=400, underflow=3, missing=2, beyond=4, critical=1.0, sigma_w_below=0.8, chi_below=0.64)
    text = summaries.phase_caption(counts, 128, 2.04, "tanh", 0.0, 4.0)
    assert text.startswith("400 networks of width 128 measured in 2.0 s. ")
    assert "In 3 of them the error signal became exactly zero" in text
    assert "2 cells have no value" in text and "4 cells lie beyond ±4 decades" in text
    assert "edge of chaos at σ_w = 1: " in text and "(at σ_w = 0.8, χ = 0.64)" in text
    quiet = summaries.phase_caption(PhaseCounts(25, 0, 0, 0, None, None, None), 32, 0.5, "relu", 0.3, 4.0)
    assert quiet == ("25 networks of width 32 measured in 0.5 s. For relu with σ_b = 0.3, χ never crosses 1 in "
                     "this range: theory predicts no edge of chaos here.")
