"""What the cures cost per training step, beside the same network without them.

Case (b) of bench_engine.py (depth 50, width 128, batch 256, 2 inputs, 2 classes, relu, He) in
float64 and float32: milliseconds per step (forward + backward + Adam step on the flat buffers)
plain, with batch normalization, layer normalization, residual connections, dropout 0.1, and
clipping + weight decay, each as a ratio to plain. The issue's target: batch normalization and
residual connections at most 1.3x plain. A ratio above the target is printed as MISSED.

    python benchmarks/bench_cures.py [--repeats 30]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import RunConfig  # noqa: E402
from lab.model import build_mlp  # noqa: E402
from lab.optim import OPTIMIZERS  # noqa: E402
from lab.regularize import add_weight_decay, clip_by_global_norm  # noqa: E402
from lab.threads import blas_threads  # noqa: E402

TARGET = 1.3
CASES = {
    "plain": {},
    "batch norm": {"norm": "batch"},
    "layer norm": {"norm": "layer"},
    "residual (alpha 1/sqrt(50))": {"residual": True, "residual_scale": 50 ** -0.5},
    "dropout 0.1": {"dropout": 0.1},
    "clip 1 + weight decay 1e-4": {"clip_norm": 1.0, "weight_decay": 1e-4},
}
TARGETED = ("batch norm", "residual (alpha 1/sqrt(50))")


def ms_per_step(config: RunConfig, repeats: int) -> float:
    """The median of ``repeats`` timed steps after three warm-up steps."""
    rng = np.random.default_rng(0)
    model = build_mlp(config, 2, 2, rng)
    optimizer = OPTIMIZERS["adam"](1e-3)
    X = rng.standard_normal((config.batch_size, 2)).astype(config.dtype)
    y = rng.integers(0, 2, config.batch_size)
    slices = model.layer_slices()

    def step():
        model.loss_and_grads(X, y)
        if config.clip_norm > 0:
            clip_by_global_norm(model.flat_grads, config.clip_norm)
        if config.weight_decay > 0:
            add_weight_decay(model.flat_grads, model.flat_params, slices, config.weight_decay)
        optimizer.step([model.flat_params], [model.flat_grads])

    times = []
    with blas_threads(config.width):
        for i in range(repeats + 3):
            start = time.perf_counter()
            step()
            if i >= 3:
                times.append(time.perf_counter() - start)
    assert model.flat_params.dtype == np.dtype(config.dtype)  # float32 stays float32 through the cures
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    for dtype in ("float64", "float32"):
        base = RunConfig(depth=50, width=128, batch_size=256, dtype=dtype)
        plain = ms_per_step(base, args.repeats)
        print(f"case (b), {dtype}: depth 50, width 128, batch 256 (median of {args.repeats} steps)")
        for name, changes in CASES.items():
            ms = plain if not changes else ms_per_step(base.replace(**changes), args.repeats)
            ratio = ms / plain
            verdict = "" if name not in TARGETED else ("  (target <= 1.3x)" if ratio <= TARGET else "  MISSED 1.3x")
            print(f"  {name:30s} {ms:8.2f} ms/step  {ratio:5.2f}x plain{verdict}")


if __name__ == "__main__":
    main()
