"""The phase diagram's sweep: a 30 x 30 grid (sigma_w 0.5..3, depth 2..100), width 128,
256 probe examples, on two worker processes beside one (the baseline), in the same run.

    python benchmarks/bench_phase.py [--cells 30] [--activation tanh]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.phase import sweep  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=30)
    ap.add_argument("--activation", default="tanh")
    args = ap.parse_args()
    sigma_ws = np.linspace(0.5, 3.0, args.cells)
    depths = np.unique(np.linspace(2, 100, args.cells).round().astype(int))
    print(f"{args.cells} x {len(depths)} cells, {args.activation}, width 128, 256 probe examples "
          f"({int(depths.sum()) * args.cells:,} layers in all)")
    timings = {}
    for jobs in (2, 1):
        start = time.perf_counter()
        table = sweep(args.activation, sigma_ws, depths, 0.0, width=128, n_probe=256, n_jobs=jobs)
        timings[jobs] = time.perf_counter() - start
        print(f"  n_jobs={jobs}: {timings[jobs]:6.1f} s   ({table['log10_ratio'].notna().sum()} finite cells)")
    print(f"  speed-up from the second core: {timings[1] / timings[2]:.2f}x   (target: 30 x 30 under 30 s)")


if __name__ == "__main__":
    main()
