#!/usr/bin/env python
"""Cost of the run store: a run with and without saving it, and a store of 1,000 runs.

    python benchmarks/bench_store.py                 # about a minute on 2 cores
    python benchmarks/bench_store.py --runs 200      # a smaller store
    python benchmarks/bench_store.py --keep DIR      # leave the filled store in DIR

(a) ``train()`` of the default UI run (``RunConfig(samples=400, epochs=200, dtype="float32")``) alone and
followed by ``Store.save``, alternating, median of ``--repeats``; the save's share of the whole.
(b) a store filled with ``--runs`` copies of that run (one transaction each, under different names), then:
the time to list them (``Store.runs()``), to open one (``Store.load``, with and without rebuilding its data),
to list with a filter, the file size per run, and the save time per run.  Targets of issue 13 beside them,
MET or MISSED; never fails on a time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lab.engine.config import RunConfig  # noqa: E402
from lab.engine.gradcheck import time_pass  # noqa: E402
from lab.engine.training import train  # noqa: E402
from lab.store.runstore import open_store  # noqa: E402

DEFAULT_RUN = RunConfig(samples=400, epochs=200, dtype="float32")


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def with_and_without(directory: Path, repeats: int):
    """Train alone and train + save, alternating; medians in seconds."""
    alone, saved = [], []
    with open_store(directory / "a.sqlite") as store:
        train(DEFAULT_RUN)  # warm-up
        for i in range(repeats):
            start = time.perf_counter()
            train(DEFAULT_RUN)
            alone.append(time.perf_counter() - start)
            start = time.perf_counter()
            result = train(DEFAULT_RUN)
            store.save(result, f"run {i}", "cli")
            saved.append(time.perf_counter() - start)
    return statistics.median(alone), statistics.median(saved)


def fill(path: Path, n: int, result) -> list[float]:
    times = []
    with open_store(path) as store:
        for i in range(n):
            start = time.perf_counter()
            store.save(result, f"run {i:04d}", ("train", "compare", "cli")[i % 3], tags=("bench",) if i % 10 else ())
            times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs in the filled store (1000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the with/without figure (5)")
    parser.add_argument("--keep", metavar="DIR", help="fill the store in DIR and leave it there")
    args = parser.parse_args(argv)
    directory = Path(args.keep or tempfile.mkdtemp(prefix="bench_store_"))
    directory.mkdir(parents=True, exist_ok=True)

    print(f"(a) train() of the default UI run, alone and followed by save(), median of {args.repeats}")
    alone, saved = with_and_without(directory, args.repeats)
    overhead = saved / alone - 1
    print(f"  train alone        {alone * 1000:8.1f} ms")
    print(f"  train + save       {saved * 1000:8.1f} ms   (+{100 * overhead:.1f}%)   target under +5%: "
          f"{verdict(overhead < 0.05)}")

    result = train(DEFAULT_RUN)
    path = directory / "runs.sqlite"
    if path.exists():
        sys.exit(f"{path} exists already: give --keep an empty directory")
    print(f"\n(b) a store of {args.runs} runs like it ({path})")
    start = time.perf_counter()
    saves = fill(path, args.runs, result)
    filled = time.perf_counter() - start
    size = sum(p.stat().st_size for p in directory.glob("runs.sqlite*"))
    with open_store(path) as store:
        listing = time_pass(store.runs, 5)
        table = store.runs()
        some = int(table["id"].iloc[len(table) // 2])
        filtered = time_pass(lambda: store.runs({"activation": "relu", "batch_size": 64}, tag="bench"), 5)
        opening = time_pass(lambda: store.load(some), 5)
        opening_bare = time_pass(lambda: store.load(some, with_data=False), 5)
    print(f"  save per run       {statistics.median(saves) * 1000:8.1f} ms median, {max(saves) * 1000:.1f} ms max "
          f"({filled:.1f} s for all)")
    print(f"  list all runs()    {listing * 1000:8.1f} ms for {len(table)} rows   target under 1 s: {verdict(listing < 1)}")
    print(f"  list with filters  {filtered * 1000:8.1f} ms")
    print(f"  open one: load()   {opening * 1000:8.1f} ms (data rebuilt), {opening_bare * 1000:.1f} ms without data   "
          f"target under 0.5 s: {verdict(opening < 0.5)}")
    print(f"  file size          {size / 2**20:8.1f} MB, {size / args.runs / 1024:.0f} KB per run "
          f"(the run in memory: {result.nbytes() / 1024:.0f} KB)")
    if not args.keep:
        for p in directory.iterdir():
            p.unlink()
        directory.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
