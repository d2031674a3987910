"""A class's default runs through the executor of issue 27 (``lab.serving.executor``), without the pages: N learners
each submit the Train page's default run at once, one also a 10-run comparison; how long each waited for its result.

    python benchmarks/bench_executor.py                 # N = 10 and 30, local workers (2) and a 2-worker LocalCluster
    python benchmarks/bench_executor.py --n 10 --dask 0 # local workers only

Prints, per backend and N: p50 and p95 time to result against one learner alone, the ideal the cores allow (N runs'
CPU time / workers) and p95 against 1.5x that ideal (the issue's target), the longest wait of a single-run learner
beside the comparison (fairness), and the errors.  It is the executor's half of ``bench_classroom.py`` (which drives
a real server and browsers, once the pages submit through the executor); it never fails on a time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.engine.config import page_defaults  # noqa: E402
from lab.engine.training import train  # noqa: E402
from lab.serving.executor import DONE, Executor, Task  # noqa: E402

TARGET = 1.5  # p95 within this many times the ideal


def task(config) -> Task:
    return Task("lab.serving.executor:train_task", (config,), seconds=1.0)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def alone_seconds(config, rounds: int = 3) -> float:
    """One default run in this process, the median of a few (the CPU time one learner needs)."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        train(config)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def classroom(executor: Executor, n: int, workers: int, alone: float) -> None:
    config = page_defaults()
    started = time.perf_counter()
    learners = [executor.submit(f"learner-{i}", task(config.replace(seed=i))) for i in range(n)]
    comparison = [executor.submit("comparer", task(config.replace(seed=100 + k))) for k in range(10)]
    for h in learners + comparison:
        h.wait(600)
    took = [h.ended - h.submitted for h in learners]
    errors = [h.error for h in learners + comparison if h.state != DONE]
    ideal = (n + len(comparison)) * alone / workers
    compared = max(h.ended for h in comparison) - min(h.submitted for h in comparison)
    p50, p95 = percentile(took, 50), percentile(took, 95)
    verdict = "MET" if p95 <= TARGET * ideal else "MISSED"
    print(f"  N = {n:>2}: p50 {p50:6.2f} s, p95 {p95:6.2f} s (alone {alone:.2f} s); ideal for {n} + 10 runs on "
          f"{workers} workers {ideal:6.2f} s, p95 / ideal {p95 / ideal:4.2f} ({verdict} {TARGET}x); longest wait of a "
          f"learner {max(took):6.2f} s; comparison done after {compared:6.2f} s; "
          f"errors {len(errors)}; wall {time.perf_counter() - started:6.2f} s")
    for e in errors[:3]:
        print(f"    error: {e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[10, 30], help="learners (10 30)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes at once (2)")
    p.add_argument("--dask", type=int, default=2, help="workers of a distributed.LocalCluster (2; 0: none)")
    args = p.parse_args(argv)
    alone = alone_seconds(page_defaults())
    print(f"the Train page's default run alone, in this process: {alone:.2f} s")
    print(f"local worker processes ({args.workers} at once, one per task, forkserver):")
    executor = Executor(slots=args.workers)
    try:
        for n in args.n:
            classroom(executor, n, args.workers, alone)
    finally:
        executor.close()
    if args.dask:
        import distributed

        print(f"distributed.LocalCluster ({args.dask} worker processes of 1 thread):")
        with distributed.LocalCluster(n_workers=args.dask, processes=True, threads_per_worker=1,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            executor = Executor(slots=args.dask, client=client)
            try:
                for n in args.n:
                    classroom(executor, n, args.dask, alone)
            finally:
                executor.close()


if __name__ == "__main__":
    main()
