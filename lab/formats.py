"""Numbers as a person reads them: one formatter for captions, tables, charts, the CLI and every message.

Magnitudes (losses, norms, ratios, factors) are written plainly from 1e-3 to 1e4 and in a compact scientific
form outside it ("5.03e8", "3.0e-6": no "+", no leading zeros), to a number of significant digits that the
caller chooses (2 in sentences, 3 in tables).  Sizes and durations are written as a person would say them.
"""
from __future__ import annotations

import math

PLAIN_FROM, PLAIN_BELOW = 1e-3, 1e4  # a magnitude is written plainly within this range, in scientific form outside it


def _special(x, missing: str) -> str | None:
    """The text of a value with no digits to show (missing, zero, infinite), else None."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    x = float(x)
    if math.isnan(x):
        return missing
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return "∞" if x > 0 else "-∞"
    return None


def scientific(x, digits: int = 3, missing: str = "n/a") -> str:
    """``digits`` significant digits in scientific form: 5.03e8, 4.79e3, 2.50e-1 (no "+", no leading zeros)."""
    special = _special(x, missing)
    if special is not None:
        return special
    mantissa, exponent = f"{float(x):.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def number(x, digits: int = 2, missing: str = "n/a") -> str:
    """A magnitude to ``digits`` significant digits: 0.0012, 0.66, 120, 4800, 7.2e4, 3.0e-6 (missing: ``missing``)."""
    special = _special(x, missing)
    if special is not None:
        return special
    x = float(x)
    text = f"{x:.{digits}g}"
    if not PLAIN_FROM <= abs(float(text)) < PLAIN_BELOW:  # rounded first: 9999 at 2 digits is 1.0e4, not 10000
        return scientific(x, digits, missing)
    return f"{float(text):.0f}" if "e" in text else text  # 4800, not "4.8e+03"


def power_of_ten(x, digits: int = 2) -> str:
    """A chart's tick: plain within 1e-3..1e4 (0.2, 15, 1000), otherwise 2.5×10<sup>22</sup> (HTML for plotly)."""
    if x == 0 or PLAIN_FROM <= abs(x) < PLAIN_BELOW:
        return number(x, 3)
    mantissa, exponent = scientific(x, digits).split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}×10<sup>{int(exponent)}</sup>"


def duration(seconds: float) -> str:
    """'under a second', '42 s', '10 min', '2.0 h', '10 days'."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def size(n_bytes: float) -> str:
    """'512 bytes', '3.0 MB', '206 MB', '6.8 GB' (binary units)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n_bytes >= scale:
            value = n_bytes / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{int(n_bytes)} bytes"
