#!/usr/bin/env python
"""The cost model's time estimate against the measured time of real runs, on this machine.

    python benchmarks/bench_cost.py            # about 30 s on 2 cores

For runs of three shapes (overhead-bound: deep and narrow with small batches; the default-like; product-bound:
wide), it prices this machine (``calibrate``), estimates each run, trains it twice and prints the estimate, the
quicker measured time and their ratio beside the target: within a factor of 2 (the gate admits and refuses by
these estimates).  The test suite checks the model's count of work (tests/test_cost.py), never the clock; this
script is where the clock is read.  It never fails on a time: a ratio outside the target is printed as MISSED.
"""
from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lab import RunConfig, train  # noqa: E402
from lab.serving.cost import TYPICAL_PRICES, calibrate, estimate  # noqa: E402

SIZES = {
    "deep-narrow": RunConfig(depth=50, width=16, samples=1000, epochs=6, batch_size=16, optimizer="sgd"),
    "default-like": RunConfig(depth=20, width=64, samples=600, epochs=8, batch_size=32, activation="tanh"),
    "wide": RunConfig(depth=4, width=256, samples=1500, epochs=3, batch_size=128, dataset="random", input_dim=64),
}


def timed(config) -> float:
    start = time.perf_counter()
    train(config)
    return time.perf_counter() - start


def main() -> None:
    print(f"{'run':14} {'typical s':>10} {'this machine s':>15} {'measured s':>11} {'ratio':>7}  target 0.5-2")
    for name, config in SIZES.items():
        calibrate.cache_clear()
        calibrate(config.dtype)
        predicted = estimate(config).seconds
        typical = estimate(config, prices=TYPICAL_PRICES[config.dtype]).seconds
        measured = min(timed(config) for _ in range(2))
        ratio = predicted / measured
        verdict = "met" if 0.5 <= ratio <= 2.0 else "MISSED"
        print(f"{name:14} {typical:10.2f} {predicted:15.2f} {measured:11.2f} {ratio:7.2f}  {verdict}")


if __name__ == "__main__":
    main()
