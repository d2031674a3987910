"""What one user may spend on a shared server: limits on a run's and a comparison's cost.

Whoever deploys the lab sets them in the environment (or in ``.streamlit/secrets.toml``
under the same names, which the app copies into the environment):

    BACKPROP_LAB_MAX_RUN_SECONDS      estimated seconds of one run               (default 300)
    BACKPROP_LAB_MAX_RUN_MB           estimated peak memory of one run, in MB    (default 1500)
    BACKPROP_LAB_MAX_COMPARE_SECONDS  estimated seconds of a whole comparison    (default 600)
    BACKPROP_LAB_MAX_SWEEP_SECONDS    estimated seconds of a whole sweep, summed over its cells (default 1200)
    BACKPROP_LAB_SESSION_MB           runs one browser session keeps, in MB      (default 150)
    BACKPROP_LAB_CACHE_MB             finished runs the server caches, in MB     (default 500)

A value of 0 (or "off") turns that limit off (the two memory budgets then fall back to their
defaults: a server without them would grow without bound).  Any other value that is not a
positive number (empty, negative, "nan", a word) keeps the default, with a warning in the log:
a typo must not turn a limit off.  The command line applies only the memory
check against the machine's free memory: it is the user's own machine.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

from lab.engine.config import RunConfig

from .cost import Cost, duration, priced, size

ENV = {
    "run_seconds": ("BACKPROP_LAB_MAX_RUN_SECONDS", 300.0),
    "run_mb": ("BACKPROP_LAB_MAX_RUN_MB", 1500.0),
    "compare_seconds": ("BACKPROP_LAB_MAX_COMPARE_SECONDS", 600.0),
    "sweep_seconds": ("BACKPROP_LAB_MAX_SWEEP_SECONDS", 1200.0),
    "session_mb": ("BACKPROP_LAB_SESSION_MB", 150.0),
    "cache_mb": ("BACKPROP_LAB_CACHE_MB", 500.0),
}
ALWAYS_BOUNDED = ("session_mb", "cache_mb")  # "off" keeps the default: without them a server grows without bound
log = logging.getLogger(__name__)
SESSION_FULL_RUNS = 3  # a session keeps the weights and data of its newest runs only


@dataclass(frozen=True)
class Limits:
    run_seconds: float = math.inf
    run_mb: float = math.inf
    compare_seconds: float = math.inf
    session_mb: float = math.inf
    cache_mb: float = math.inf
    sweep_seconds: float = math.inf

    @classmethod
    def from_env(cls, environ=None) -> Limits:
        """The limits the environment sets; a value that is not a positive number or "off" keeps the
        default, with a warning in the log."""
        environ = os.environ if environ is None else environ
        values = {}
        for field, (name, default) in ENV.items():
            value = default
            if name in environ:
                value = _read_limit(name, environ[name], default)
            if value == math.inf and field in ALWAYS_BOUNDED:
                log.warning("%s cannot be turned off (the server would grow without bound); keeping %g", name, default)
                value = default
            values[field] = value
        return cls(**values)


def _read_limit(name: str, raw, default: float) -> float:
    """One limit variable: a positive number, or 0 / "off" for no limit; anything else the default."""
    text = str(raw).strip().lower()
    if text in ("off", "none"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if value == 0:
        return math.inf
    if not (math.isfinite(value) and value > 0):
        log.warning("%s=%r is not a positive number, 0 or 'off'; keeping the default %g", name, str(raw)[:40], default)
        return default
    return value


def run_refusal(config: RunConfig, limits: Limits, cost: Cost | None = None, **data) -> str:
    """Why ``config`` may not run under ``limits`` and what to reduce; "" when it may."""
    cost = cost or priced(config, limits.run_seconds, **data)
    if cost.peak_bytes > limits.run_mb * 2**20:
        return (f"this run would need about {size(cost.peak_bytes)} of memory, and the limit on this server is "
                f"{size(limits.run_mb * 2**20)}: reduce the width, the depth or the number of samples")
    if cost.seconds > limits.run_seconds:
        return (f"this run would take about {duration(cost.seconds)}, and the limit on this server is "
                f"{duration(limits.run_seconds)}: {_time_advice(config, cost, limits.run_seconds)}")
    return ""


def _time_advice(config: RunConfig, cost: Cost, limit_s: float) -> str:
    if config.epochs > 1 and cost.steps:
        fit = max(1, int(config.epochs * limit_s / cost.seconds))
        if fit < config.epochs:
            return f"train for at most about {fit:,} epochs (instead of {config.epochs:,}), or reduce depth, width or samples"
    return "reduce the depth, the width or the number of samples, or use a larger batch size"


def machine_free_bytes() -> int | None:
    """Memory this machine can still give (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
