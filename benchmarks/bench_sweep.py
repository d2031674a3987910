"""The trainability sweep of issue 14 on digits, on 1 and 2 local workers and through a 2-worker
``distributed.LocalCluster`` (Dask's scheduler, worker processes of 1 thread): seconds, and where they go.

    python benchmarks/bench_sweep.py                # 20 sigma_w x 20 depths x 1 seed x 2 epochs, workers 1 and 2, Dask 2
    python benchmarks/bench_sweep.py --n 6          # a 6 x 6 grid (quick)
    python benchmarks/bench_sweep.py --workers 2 --dask 0   # one worker count only, no Dask

The network is the paper's (Schoenholz et al. 2017): tanh, sigma_b 0.05, sigma_w from 1 to 4 (lecun_normal,
so gain = sigma_w), depth from 2 to 60; width 64 and Adam at 1e-3.  Target: under 3 minutes (180 s).
Never fails on a time: a figure above the target is printed as MISSED.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from lab.engine.config import RunConfig  # noqa: E402
from lab.experiments.sweep import SweepSpec, parse_axis, run_sweep  # noqa: E402

TARGET_S = 180.0


def spec(n: int, epochs: int, width: int) -> SweepSpec:
    base = RunConfig(dataset="digits", samples=1797, activation="tanh", init="lecun_normal", bias_std=0.05,
                     width=width, epochs=epochs, lr=1e-3).validate()
    return SweepSpec(base, ("sigma_w", parse_axis("sigma_w", [f"1:4:{n}"])),
                     ("depth", parse_axis("depth", [f"2:60:{n}"])))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20, help="values per axis (20)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--dask", type=int, default=2, help="workers of the LocalCluster (0: no Dask run)")
    args = p.parse_args(argv)
    s = spec(args.n, args.epochs, args.width)
    cells = args.n * args.n
    print(f"trainability sweep: {args.n} sigma_w x {args.n} depths x 1 seed x {args.epochs} epochs on digits "
          f"({cells} cells, width {args.width})")
    tables = {}
    runs = [(f"{w} worker{'s' if w > 1 else ''}", w, None) for w in args.workers]
    if args.dask > 0:
        runs.append((f"Dask LocalCluster, {args.dask} workers", args.dask, "dask"))
    for label, workers, how in runs:
        with tempfile.TemporaryDirectory() as out:
            if how == "dask":
                seconds, table = _on_local_cluster(s, out, workers)
            else:
                start = time.perf_counter()
                table = pd.read_csv(run_sweep(s, out, workers=workers))
                seconds = time.perf_counter() - start
            tables[label] = table
        train_s = table["wall_s"].sum()
        verdict = "ok" if seconds <= TARGET_S else "MISSED"
        print(f"  {label}: {seconds:6.1f} s  (target {TARGET_S:.0f} s: {verdict}); "
              f"training inside the cells {train_s:.1f} s, overhead {seconds - train_s / workers:.1f} s")
    if len(tables) > 1:
        a, *others = (t.sort_values(["depth", "sigma_w"]).reset_index(drop=True).drop(columns="wall_s")
                      for t in tables.values())
        same = all(a.equals(b) for b in others)
        print(f"  the same numbers on every worker count{' and on Dask' if args.dask > 0 else ''}: {same}")
    table = next(iter(tables.values()))
    by_depth = table.groupby("depth")["wall_s"].mean()
    print("  seconds per cell by depth: " + ", ".join(f"{d}: {s:.2f}" for d, s in by_depth.iloc[::4].items()))
    learned = table.pivot(index="depth", columns="sigma_w", values="final_val_accuracy")
    print("  validation accuracy (rows depth, columns sigma_w):")
    print(learned.iloc[::3, ::3].round(2).to_string())


def _on_local_cluster(s: SweepSpec, out: str, workers: int):
    """The sweep through a fresh LocalCluster's scheduler address; the cluster's start-up is not timed
    (a real cluster is started once for many sweeps), connecting the client is."""
    import logging

    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with LocalCluster(n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        start = time.perf_counter()
        table = pd.read_csv(run_sweep(s, out, scheduler=cluster.scheduler_address))
        return time.perf_counter() - start, table


if __name__ == "__main__":
    main()
