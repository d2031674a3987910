"""What the Jacobian spectrum costs at width 256 and depth 128, and how wide it is for four networks.

Timing: ``lab.engine.jacobian.spectrum`` for one input (the network built once, outside the timing) at
(a) its default layers (``spectrum_layers(128)``) and (b) every hidden layer 2..128, beside a baseline in the
same run: each J_l formed from scratch as the product (W_2 D_2) ... (W_l D_l), no running product reused, and
its SVD, at the default layers.  The three take turns, round after round, so that a shared machine's slow
spells fall on all of them; the median of the rounds is printed, with the share of the CPUs other processes
used meanwhile.  The target, 2 s for one input with every depth included, is printed MET or MISSED.

Spread: the middle 90% of the singular values at depth 128, s_p95 / s_p5 (``lab.theory.spectrum.measure``,
4 inputs at the fixed point q*), for tanh with orthogonal and with Gaussian weights near chi = 1, and ReLU with
orthogonal and Gaussian weights, over seeds 0..4: the least and the largest p5 and p95 over the seeds.

    python benchmarks/bench_jacobian.py [--rounds 5] [--seeds 5] [--wait-idle 60]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_engine import BUSY, OtherLoad, wait_for_idle  # noqa: E402

from lab import RunConfig  # noqa: E402
from lab.engine import jacobian as jac  # noqa: E402
from lab.engine.model import build_mlp  # noqa: E402
from lab.formats import number  # noqa: E402
from lab.seeds import run_generators  # noqa: E402
from lab.theory.spectrum import measure, q_star  # noqa: E402

WIDTH, DEPTH = 256, 128
TARGET_S = 2.0  # one input, every depth included
NETWORKS = {
    "tanh, orthogonal, gain sqrt(1.05), bias 0.01": dict(activation="tanh", init="orthogonal", gain=math.sqrt(1.05),
                                                         bias_std=0.01),
    "tanh, lecun_normal, gain sqrt(1.05), bias 0.01": dict(activation="tanh", init="lecun_normal",
                                                           gain=math.sqrt(1.05), bias_std=0.01),
    "relu, orthogonal, gain sqrt(2)": dict(activation="relu", init="orthogonal", gain=math.sqrt(2.0)),
    "relu, he_normal, gain 1": dict(activation="relu", init="he_normal", gain=1.0),
}


def naive_spectrum(model, h1: np.ndarray, layers) -> np.ndarray:
    """The baseline: for each l in ``layers``, J_l^T = (W_2 D_2) ... (W_l D_l) multiplied out from the identity
    (no product shared between layers), then its singular values.  Plain networks only.  (K, N, width)."""
    act = model.activation
    h, slopes = h1, []
    for block in model.blocks[1:]:  # the forward pass once: phi'(z_k) of every layer
        z = h @ block.affine.params["W"] + block.affine.params["b"]
        h = act.f(z)
        slopes.append(act.df(z, h))
    values = []
    for l in layers:
        P = np.broadcast_to(np.eye(h1.shape[1]), (len(h1), h1.shape[1], h1.shape[1])).copy()
        for block, slope in zip(model.blocks[1:l], slopes):
            P = np.matmul(P, block.affine.params["W"]) * slope[:, None, :]
        values.append(np.linalg.svd(P, compute_uv=False))
    return np.array(values)


def timings(rounds: int, wait_idle_s: float) -> None:
    config = RunConfig(depth=DEPTH, width=WIDTH, **NETWORKS["tanh, orthogonal, gain sqrt(1.05), bias 0.01"])
    _, init_rng, _ = run_generators(config.seed)
    model = build_mlp(config, config.n_inputs, config.n_classes, init_rng)
    h1 = jac.fixed_point_inputs(model, q_star(config), 1, np.random.default_rng(1))
    default = jac.spectrum_layers(DEPTH)
    every = list(range(2, DEPTH + 1))
    cases = {
        f"(a) spectrum, default layers ({len(default)})": lambda: jac.spectrum(model, h1, default, probes=1).values,
        f"(b) spectrum, every layer 2..{DEPTH} ({len(every)})": lambda: jac.spectrum(model, h1, every, probes=1).values,
        f"baseline: each J_l from scratch, default layers ({len(default)})": lambda: naive_spectrum(model, h1, default),
    }
    fast, slow = cases[next(iter(cases))](), cases[list(cases)[2]]()  # warm-up, and the same numbers?
    kept = fast > jac.FLOOR_EPS * fast[:, :, :1]
    gap = float(np.max(np.abs(fast - slow)[kept] / fast[kept]))
    seconds = {name: [] for name in cases}
    load, shares = OtherLoad(), []
    for _ in range(rounds):
        if wait_idle_s:
            wait_for_idle(wait_idle_s)
        load.start()
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
        shares.append(load.stop())
    others = None if None in shares else float(np.mean(shares))
    print(f"width {WIDTH}, depth {DEPTH} (hidden layers), tanh, orthogonal, one input at q*; numpy on its default "
          f"threads ({os.cpu_count()} cores); median of {rounds} rounds")
    for name, times in seconds.items():
        median = float(np.median(times))
        verdict = "MET" if median <= TARGET_S else "MISSED"
        print(f"  {name:55s} {median:7.3f} s  (range {min(times):.3f}-{max(times):.3f})  {verdict} {TARGET_S:g} s")
    ratio = np.median(seconds[list(cases)[2]]) / np.median(seconds[list(cases)[0]])
    print(f"  baseline / (a): {ratio:.1f}x; the largest relative difference of their singular values (those above "
          f"the float64 floor): {number(gap, 2)}")
    print(f"  target: {TARGET_S:g} s for one input with every depth included ((b)): "
          f"{'MET' if np.median(seconds[list(cases)[1]]) <= TARGET_S else 'MISSED'}")
    if others is not None:
        print(f"  other processes used {100 * others:.0f}% of the CPUs meanwhile (mean over the rounds)"
              + ("; the figures are unreliable" if others > BUSY else ""))


def spreads(seeds: int) -> None:
    print(f"\nthe middle 90% at depth {DEPTH}, width {WIDTH}: s_p5 and s_p95 of {jac.PROBE_INPUTS} inputs at the fixed "
          f"point q*, least-largest over seeds 0..{seeds - 1}")
    print(f"  {'network':48s} {'s_p5':>19s} {'s_p95':>15s} {'s_p95 / s_p5':>17s} {'~0':>6s}  theory mean s^2 / measured")
    for name, settings in NETWORKS.items():
        rows = []
        for seed in range(seeds):
            m = measure(RunConfig(depth=DEPTH, width=WIDTH, seed=seed, **settings), inputs="fixed-point",
                        layers=[DEPTH])
            row = m.spectrum.summary().iloc[-1]
            p5 = row.s_p5 if row.s_p5 >= jac.FLOOR_EPS * row.s_max else 0.0  # below the floor: float64 says 0
            rows.append((p5, row.s_p95, row.share_below_floor, row.mean_s2, m.theory["mean_s2"].iloc[-1]))
        p5, p95, zero, mean, theory = map(np.array, zip(*rows))
        with np.errstate(divide="ignore"):
            spread = p95 / p5

        def span(v):
            low, high = (number(x, 3) if x > 0 else "~0" for x in (v.min(), v.max()))
            return low if low == high else f"{low}-{high}"

        print(f"  {name:48s} {span(p5):>19s} {span(p95):>15s} {span(spread):>17s} {100 * zero.max():5.0f}%"
              f"  {number(theory.mean(), 3)} / {span(mean)}")
    print(f"  ~0: below {jac.FLOOR_EPS:g} x the largest singular value of its matrix, where float64 resolves no more; "
          "the column ~0 gives their largest share over the seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                        help="before each round, wait up to S seconds for other processes to leave the CPUs")
    args = parser.parse_args()
    timings(args.rounds, args.wait_idle)
    spreads(args.seeds)


if __name__ == "__main__":
    main()
