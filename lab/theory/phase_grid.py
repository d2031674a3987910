"""The Phase diagram page's grid and the counts its caption reports, as numbers.

``sweep_grid`` turns the page's three controls into the sigma_w and depth axes that
``phase.sweep`` measures; ``phase_counts`` reads a measured table back (cells whose signal
underflowed, cells without a value, cells beyond the colour scale) and where theory puts
the edge of chaos.  The words are ``summaries.phase_caption``'s.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lab.engine.activations import get_activation

from .meanfield import regime

MIN_DEPTH = 2  # the shallowest network of a sweep: one hidden layer before the last has a ratio to show
BELOW_EDGE = 0.8  # the caption's example sigma_w, as a fraction of the critical one


def sweep_grid(sigma_w_range: tuple[float, float], cells: int, max_depth: int) -> tuple[tuple, tuple]:
    """(sigma_ws, depths): ``cells`` sigma_w values evenly over the range (rounded to 4 decimals), and
    up to ``cells`` depths evenly from MIN_DEPTH to ``max_depth``, rounded and without repeats."""
    sigma_ws = tuple(np.round(np.linspace(*sigma_w_range, cells), 4))
    depths = tuple(int(d) for d in np.unique(np.linspace(MIN_DEPTH, max_depth, cells).round().astype(int)))
    return sigma_ws, depths


@dataclass(frozen=True)
class PhaseCounts:
    cells: int  # networks measured
    underflow: int  # cells whose error signal became exactly 0 (log10 ratio -inf)
    missing: int  # cells without a value (overflow, or no signal reached the last hidden layer)
    beyond: int  # finite cells beyond ±colour_limit decades
    critical: float | None  # sigma_w of the edge of chaos (None: chi never crosses 1)
    sigma_w_below: float | None  # BELOW_EDGE × critical
    chi_below: float | None  # chi at the fixed point there


def phase_counts(table: pd.DataFrame, activation: str, sigma_b: float, critical: float | None,
                 colour_limit: float) -> PhaseCounts:
    """The counts of a measured table (columns sigma_w, depth, log10_ratio) and theory's chi below the edge."""
    values = table["log10_ratio"]
    underflow, missing = int(np.isneginf(values).sum()), int(values.isna().sum())
    beyond = int((values.abs() > colour_limit).sum() - underflow)
    below = chi = None
    if critical is not None:
        below = BELOW_EDGE * critical
        chi = regime(get_activation(activation), below, sigma_b).chi_star
    return PhaseCounts(len(table), underflow, missing, beyond, critical, below, chi)
