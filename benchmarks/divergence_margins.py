"""How far runs get from the divergence limit: the figures behind lab.engine.divergence.DIVERGENCE_FACTOR.

With the rule switched off, every mini-batch loss of a run is kept, and the largest is
printed as a multiple of the run's reference, max(loss at initialization, chance-level
loss).  The rule marks a run diverged where this multiple passes DIVERGENCE_FACTOR
(at initialization: where the initial loss passes DIVERGENCE_FACTOR times chance).

    python benchmarks/divergence_margins.py            # named runs, then a sweep of 480 (~1 min)
    python benchmarks/divergence_margins.py --quick    # named runs only
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import train  # noqa: E402
from lab.engine import divergence  # noqa: E402
from lab.engine.config import RunConfig  # noqa: E402
from lab.engine.model import MLP  # noqa: E402
from lab.experiments.presets import PRESETS  # noqa: E402

FACTOR = divergence.DIVERGENCE_FACTOR
UI_DEFAULTS = RunConfig(samples=400, epochs=200, dtype="float32")  # pages.ui.widgets.ui_defaults
SMALL = RunConfig(samples=200, depth=4, width=16, epochs=20, batch_size=32)


def named_runs() -> dict[str, RunConfig]:
    runs = {f"Home preset {k}": UI_DEFAULTS.replace(**p.changes) for k, p in PRESETS.items()}
    compare = UI_DEFAULTS.replace(depth=20, epochs=60, activation="relu")
    for init in ("xavier_normal", "he_normal", "lecun_normal", "orthogonal", "normal"):
        runs[f"Compare default, init={init}"] = compare.replace(init=init)
    runs.update({
        "Train page default": UI_DEFAULTS,
        "high start: relu normal std 1, depth 8": SMALL.replace(init="normal", init_scale=1.0, depth=8),
        "high start: mse, relu normal std 1, depth 3": SMALL.replace(init="normal", init_scale=1.0, depth=3, loss="mse"),
        "noisy first epoch: blobs, rmsprop lr 0.03, depth 8": SMALL.replace(dataset="blobs", optimizer="rmsprop",
                                                                            lr=0.03, depth=8, epochs=30),
        "issue 9: identity, lr 3": RunConfig(dataset="spirals", samples=600, val_fraction=0.0, depth=10, width=32,
                                             epochs=40, seed=5, batch_size=600, activation="identity",
                                             init="xavier_normal", lr=3.0),
    })
    return runs


def sweep() -> dict[str, RunConfig]:
    base = SMALL.replace(epochs=30, instrument=False)
    out = {}
    for ds, opt, lr, depth, act, seed in itertools.product(
            ["spirals", "blobs", "circles"], ["sgd", "momentum", "rmsprop", "adam"], [0.03, 0.1, 0.3, 1.0, 3.0],
            [4, 8], ["relu", "tanh"], [0, 1]):
        init = "he_normal" if act == "relu" else "xavier_normal"
        out[f"{ds} {opt} lr {lr} depth {depth} {act} seed {seed}"] = base.replace(
            dataset=ds, optimizer=opt, lr=lr, depth=depth, activation=act, seed=seed, init=init)
    return out


def measure(config: RunConfig, seen: list) -> dict:
    seen.clear()
    result = train(config)
    kept = result.history[~result.history["diverged"]]
    initial = float(kept["loss"].iloc[0])
    check = divergence.DivergenceCheck.for_run(config.loss, result.data.classes, initial)
    losses = np.array(seen)
    over = ~np.isfinite(losses) | (losses > FACTOR * check.reference)
    return {
        "init_x_chance": initial / check.chance,
        "max_x_reference": float(np.nanmax(np.where(np.isfinite(losses), losses, np.nan))) / check.reference
        if np.isfinite(losses).any() else math.nan,
        "over": bool(over.any()),
        "came_back": bool(over.any() and (~over[int(np.argmax(over)):]).any()),
        "non_finite": result.diverged_at is not None,
        "final_accuracy": float(kept["accuracy"].iloc[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="named runs only")
    args = parser.parse_args()
    divergence.DIVERGENCE_FACTOR = math.inf  # the rule off: see every step's loss
    seen: list = []
    loss_and_grads = MLP.loss_and_grads

    def spy(self, X, t):
        loss = loss_and_grads(self, X, t)
        seen.append(loss)
        return loss

    MLP.loss_and_grads = spy
    print(f"DIVERGENCE_FACTOR = {FACTOR:g}\n")
    print(f"{'run':52s} {'init/chance':>12s} {'max/reference':>14s} {'final acc':>9s}")
    for name, config in named_runs().items():
        m = measure(config, seen)
        flag = "  <- diverged" if m["init_x_chance"] > FACTOR or m["max_x_reference"] > FACTOR else ""
        print(f"{name:52s} {m['init_x_chance']:12.3g} {m['max_x_reference']:14.3g} {m['final_accuracy']:9.2f}{flag}")
    if args.quick:
        return
    start = time.perf_counter()
    rows = [measure(c, seen) for c in sweep().values()]
    over = [r for r in rows if r["over"]]
    print(f"\nsweep: {len(rows)} runs (3 datasets x 4 optimizers x lr 0.03-3 x depth 4, 8 x relu, tanh x 2 seeds), "
          f"{time.perf_counter() - start:.0f} s")
    print(f"  passed {FACTOR:g} x reference: {len(over)}")
    print(f"  of those, went on to inf or NaN: {sum(r['non_finite'] for r in over)}")
    print(f"  came back below the limit: {sum(r['came_back'] for r in over)}, "
          f"{sum(r['came_back'] and r['final_accuracy'] > 0.7 for r in over)} of them to above 70% training accuracy")
    below = [r["max_x_reference"] for r in rows if not r["over"]]
    print(f"  largest multiple among the others: {max(below):.3g}")


if __name__ == "__main__":
    main()
