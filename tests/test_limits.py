"""Server limits: read from the environment, and a refusal that says what to reduce."""
import math

from lab import RunConfig
from lab.cost import Cost, estimate
from lab.limits import Limits, compare_refusal, run_refusal

SMALL = RunConfig(samples=200, epochs=5, depth=3, width=8)
HUGE = RunConfig(depth=100, width=512, samples=5000, batch_size=8, epochs=5000, dtype="float32")


def test_defaults_and_overrides_come_from_the_environment():
    assert Limits.from_env({}) == Limits(300.0, 1500.0, 600.0, 150.0, 500.0)
    got = Limits.from_env({"BACKPROP_LAB_MAX_RUN_SECONDS": "20", "BACKPROP_LAB_MAX_RUN_MB": "off",
                           "BACKPROP_LAB_MAX_COMPARE_SECONDS": "0"})
    assert got == Limits(20.0, math.inf, math.inf, 150.0, 500.0)
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


def test_a_comparison_is_limited_by_its_total():
    one = estimate(SMALL).seconds
    limits = Limits(compare_seconds=3 * one)  # room for one run (and some noise in the estimate), not thirty
    assert compare_refusal([SMALL], limits) == ""
    why = compare_refusal([SMALL.replace(seed=s) for s in range(30)], limits)
    assert why.startswith("the 30 runs would take") and "compare fewer values or seeds" in why


def test_a_comparison_with_one_impossible_run_says_so():
    why = compare_refusal([SMALL, HUGE], Limits.from_env({}))
    assert why.startswith("one of its runs cannot run: this run would take")
