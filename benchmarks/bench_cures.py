"""What the cures cost per training step, beside the same network without them.

Case (b) of bench_engine.py (depth 50, width 128, batch 256, 2 inputs, 2 classes, relu, He) in
float64 and float32: milliseconds per step (forward + backward + Adam step on the flat buffers)
plain, with batch normalization, layer normalization, residual connections, dropout 0.1, and
clipping + weight decay, each as a ratio to plain. The issue's target: batch normalization and
residual connections at most 1.3x plain. A ratio above the target is printed as MISSED.
The cases take turns (a few steps each, round after round), so that a shared machine's slow
spells fall on all of them; it takes about 30 s.

    python benchmarks/bench_cures.py [--rounds 15]
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
from lab.engine.model import build_mlp  # noqa: E402
from lab.engine.optim import OPTIMIZERS  # noqa: E402
from lab.engine.regularize import add_weight_decay, clip_by_global_norm  # noqa: E402
from lab.engine.threads import blas_threads  # noqa: E402

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
BLOCK = 3  # timed steps per case per round


def stepper(config: RunConfig):
    """One training step of ``config``'s network on a fixed batch, as a function of no arguments."""
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
        return model

    return step


def ms_per_step(configs: dict[str, RunConfig], rounds: int, block: int = BLOCK) -> dict[str, float]:
    """Milliseconds per step of each config: the median over ``rounds`` of the mean of ``block`` timed
    steps, after one untimed step.  The configs take turns within each round, so a slow spell of a
    shared machine slows them all, not whichever happened to be running."""
    steps = {name: stepper(config) for name, config in configs.items()}
    times: dict[str, list[float]] = {name: [] for name in configs}
    with blas_threads(max(c.width for c in configs.values())):
        for step in steps.values():  # warm-up: first-touch of every buffer, Adam's state
            for _ in range(3):
                step()
        for _ in range(rounds):
            for name, step in steps.items():
                step()
                start = time.perf_counter()
                for _ in range(block):
                    model = step()
                times[name].append((time.perf_counter() - start) / block)
                assert model.flat_params.dtype == np.dtype(configs[name].dtype)  # float32 stays float32
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    for dtype in ("float64", "float32"):
        base = RunConfig(depth=50, width=128, batch_size=256, dtype=dtype)
        ms = ms_per_step({name: base.replace(**changes) for name, changes in CASES.items()}, args.rounds)
        print(f"case (b), {dtype}: depth 50, width 128, batch 256 (median of {args.rounds} rounds of {BLOCK} steps)")
        for name in CASES:
            ratio = ms[name] / ms["plain"]
            verdict = "" if name not in TARGETED else ("  (target <= 1.3x)" if ratio <= TARGET else "  MISSED 1.3x")
            print(f"  {name:30s} {ms[name]:8.2f} ms/step  {ratio:5.2f}x plain{verdict}")


if __name__ == "__main__":
    main()
