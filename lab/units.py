"""Sizes and durations as a person writes them, for every message that states one."""
from __future__ import annotations


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
