"""Server limits: read from the environment, and a refusal that says what to reduce."""
import logging
import math

import pytest

from lab import RunConfig
from lab.serving.cost import Cost
from lab.serving.limits import Limits, run_refusal

SMALL = RunConfig(samples=200, epochs=5, depth=3, width=8)
HUGE = RunConfig(depth=100, width=512, samples=5000, batch_size=8, epochs=5000, dtype="float32")


def test_defaults_and_overrides_come_from_the_environment():
    assert Limits.from_env({}) == Limits(300.0, 1500.0, 600.0, 150.0, 500.0, 1200.0)
    got = Limits.from_env({"BACKPROP_LAB_MAX_RUN_SECONDS": "20", "BACKPROP_LAB_MAX_RUN_MB": "off",
                           "BACKPROP_LAB_MAX_COMPARE_SECONDS": "0", "BACKPROP_LAB_MAX_SWEEP_SECONDS": "90"})
    assert got == Limits(20.0, math.inf, math.inf, 150.0, 500.0, 90.0)
    assert Limits.from_env({"BACKPROP_LAB_SESSION_MB": "off", "BACKPROP_LAB_CACHE_MB": "64"}).session_mb == 150.0
    assert Limits.from_env({"BACKPROP_LAB_CACHE_MB": "64"}).cache_mb == 64.0
    assert Limits.from_env({"BACKPROP_LAB_MAX_RUN_SECONDS": "lots"}).run_seconds == 300.0


def test_a_small_run_passes_and_the_largest_settings_are_refused_with_advice():
    limits = Limits.from_env({})
    assert run_refusal(SMALL, limits) == ""
    why = run_refusal(HUGE, limits)
    assert "the limit on this server is 5 min" in why
    assert "at most about" in why and "epochs (instead of 5,000)" in why


def test_memory_is_checked_before_time():
    why = run_refusal(SMALL, Limits(run_mb=1.0), cost=Cost(seconds=1.0, peak_bytes=50 * 2**20, steps=1, records=1))
    assert why.startswith("this run would need about 50 MB of memory") and "reduce the width" in why


@pytest.mark.parametrize("raw", ["", "  ", "-5", "nan", "NaN", "inf", "-inf", "lots", "1e999", "-0.5"])
def test_a_bad_limit_value_keeps_the_default_with_a_warning(raw, caplog):
    """Finding 9: "", -5 or nan silently turned the limit off."""
    with caplog.at_level(logging.WARNING, logger="lab.serving.limits"):
        got = Limits.from_env({"BACKPROP_LAB_MAX_RUN_SECONDS": raw, "BACKPROP_LAB_MAX_SWEEP_SECONDS": raw})
    assert got.run_seconds == 300.0 and got.sweep_seconds == 1200.0
    assert "BACKPROP_LAB_MAX_RUN_SECONDS" in caplog.text and "keeping the default 300" in caplog.text


def test_off_and_zero_still_turn_a_limit_off_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="lab.serving.limits"):
        got = Limits.from_env({"BACKPROP_LAB_MAX_RUN_SECONDS": "off", "BACKPROP_LAB_MAX_RUN_MB": "0"})
    assert got.run_seconds == math.inf and got.run_mb == math.inf and caplog.text == ""
