#!/usr/bin/env python
"""A whole ``python -m lab train`` process for case (a) against a plain numpy loop of the same training.

    python benchmarks/bench_process.py                    # 200 and 20 epochs, 5 repeats each (~2 min)
    python benchmarks/bench_process.py --epochs 200 --repeats 7
    python benchmarks/bench_process.py --repo /tmp/lab-before   # time another checkout's lab beside this one's

Every figure is a fresh process, start-up included, timed by the parent from spawn to exit:

- ``lab``: ``python -m lab train`` with the flags of bench_engine.py's whole run (spirals, 2500
  samples, validation fraction 0.2, depth 10, width 64, batch 128, SGD lr 0.003, recorded every
  epoch, instrumented as the CLI is by default).  It writes config.json, history.csv and layers.csv
  to a temporary --out and its run to a temporary store ($BACKPROP_LAB_STORE), as it would by default.
- ``lab, not instrumented``: the same through ``--config`` with ``"instrument": false`` (the CLI has
  no flag for it).
- ``plain``: benchmarks/plain_loop.py, the same arithmetic in numpy alone, on one BLAS thread as the
  lab uses for this width (``--plain-threads 0`` for the process default).
- ``plain loop, --keep-heap``: the same, after the one large free that the lab's first Trainer does
  (lab.engine.training: glibc then keeps a step's freed arrays in the heap), for a ratio without that edge.
- ``--repo DIR`` adds the same two lab rows for the lab in DIR (e.g. an export of main before a change).

The variants alternate, and each figure is the median of ``--repeats``.  The target of issue 16,
a whole lab process at most 1.3x the plain loop, is printed as MET or MISSED.  A breakdown of the
lab process comes from separate runs through a thin wrapper (the timed runs are plain
``python -m lab train``): interpreter start, ``import lab.cli.main``, main until training starts,
training (and the run's own wall_s), and what follows it until the process has exited.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from bench_engine import BUSY, OtherLoad, table  # noqa: E402

TARGET = 1.3
CASE_A = ["--dataset", "spirals", "--samples", "2500", "--val-fraction", "0.2", "--depth", "10", "--width", "64",
          "--batch-size", "128", "--optimizer", "sgd", "--lr", "0.003", "--record-every", "0", "--seed", "0"]
ONE_THREAD = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}

# Runs lab/__main__.py as ``python -m lab`` does, marking when lab.cli.main is imported, when training starts
# (the CLI makes its progress printer right before train()) and when it ends; the marks are
# perf_counter values, CLOCK_MONOTONIC on Linux, comparable with the parent's.
WRAPPER = r"""
import json, runpy, sys, time
t_start = time.perf_counter()
import lab.cli.main as cli
t_imported = time.perf_counter()
marks_path, sys.argv = sys.argv[1], ["lab"] + sys.argv[2:]
marks = {}
Printer = getattr(cli, "_ProgressPrinter", None)
if Printer is not None:
    class Marked(Printer):
        def __init__(self, *a, **k):
            marks.setdefault("train_start", time.perf_counter())
            super().__init__(*a, **k)
        def done(self):
            marks["train_end"] = time.perf_counter()
            super().done()
    cli._ProgressPrinter = Marked
try:
    runpy.run_module("lab", run_name="__main__", alter_sys=True)  # lab/__main__.py, as python -m lab runs it
    code = 0
except SystemExit as exc:
    code = exc.code
with open(marks_path, "w") as fh:
    json.dump(dict(marks, start=t_start, imported=t_imported, main_end=time.perf_counter()), fh)
sys.exit(code)
"""


class ProcessLoad(OtherLoad):
    """OtherLoad that counts the CPU time of this process's waited-for children as its own."""

    @staticmethod
    def _own_cpu():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system


def run(argv, cwd, env=None) -> tuple[float, str]:
    """Wall seconds from spawn to exit, and stdout; a failure ends the benchmark with its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed with status {proc.returncode}:\n{proc.stderr}")
    return wall, proc.stdout


def lab_argv(epochs: int, out: str, config: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "lab", "train", *CASE_A, "--epochs", str(epochs), "--out", out, "--force"]
    return argv + (["--config", config] if config else [])


def wall_s(stdout: str) -> float | None:
    """The run's own training time from the CLI's line 'run: N records in X s, ...'."""
    m = re.search(r"records? in ([0-9.]+) s", stdout)
    return float(m.group(1)) if m else None


def uninstrumented_config(repo: str, epochs: int, tmp: str, env) -> str:
    """A config.json of case (a) with instrument off, from a short run of the CLI itself."""
    out = os.path.join(tmp, "config-run")
    run(lab_argv(1, out), repo, env)
    with open(os.path.join(out, "config.json")) as fh:
        doc = json.load(fh)
    doc["config"]["instrument"] = False
    path = os.path.join(tmp, "uninstrumented.json")
    with open(path, "w") as fh:
        json.dump({"config": doc["config"]}, fh)
    return path


def breakdown(repo: str, epochs: int, repeats: int, tmp: str, env) -> dict[str, float]:
    """Median seconds of each phase of a lab process, through WRAPPER."""
    phases: dict[str, list[float]] = {}
    marks_path = os.path.join(tmp, "marks.txt")
    for _ in range(repeats):
        argv = [sys.executable, "-c", WRAPPER, marks_path] + lab_argv(epochs, os.path.join(tmp, "out-b"))[3:]
        t0 = time.perf_counter()
        wall, stdout = run(argv, repo, env)
        t_exit = t0 + wall
        with open(marks_path) as fh:
            m = json.load(fh)
        got = {"interpreter start": m["start"] - t0, "import lab.cli.main": m["imported"] - m["start"]}
        if "train_start" in m:
            got["main until training"] = m["train_start"] - m["imported"]
            got["training"] = m["train_end"] - m["train_start"]
            got["  of which the run's wall_s"] = wall_s(stdout) or float("nan")
            got["after training until exit"] = t_exit - m["train_end"]
            got["  of which interpreter exit"] = t_exit - m["main_end"]
        got["whole process"] = wall
        for k, v in got.items():
            phases.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in phases.items()}


def bench(epochs: int, repeats: int, repos: list[tuple[str, str]], plain_env, tmp: str, env) -> dict:
    variants = []
    for label, repo in repos:
        config = uninstrumented_config(repo, epochs, tmp, env)
        out = os.path.join(tmp, f"out-{len(variants)}")
        variants.append((f"lab{label}", repo, lab_argv(epochs, out), env))
        variants.append((f"lab{label}, not instrumented", repo, lab_argv(epochs, out + "-u", config), env))
    variants.append(("plain numpy loop", ROOT, [sys.executable, os.path.join(ROOT, "benchmarks", "plain_loop.py"),
                                                "--epochs", str(epochs)], plain_env))
    variants.append(("plain loop, --keep-heap", ROOT, [sys.executable, os.path.join(ROOT, "benchmarks", "plain_loop.py"),
                                                       "--epochs", str(epochs), "--keep-heap"], plain_env))
    variants.append(("python -c 'import numpy'", ROOT, [sys.executable, "-c", "import numpy"], plain_env))
    for _, repo, argv, venv in variants:  # warm-up: the file cache, .pyc files
        run(argv, repo, venv)
    times: dict[str, list[float]] = {v[0]: [] for v in variants}
    inner: dict[str, list[float]] = {v[0]: [] for v in variants}
    load = ProcessLoad()
    for r in range(repeats):
        for name, repo, argv, venv in variants if r % 2 == 0 else variants[::-1]:
            wall, stdout = run(argv, repo, venv)
            times[name].append(wall)
            inner_s = wall_s(stdout) if name.startswith("lab") else _plain_s(stdout)
            if inner_s is not None:
                inner[name].append(inner_s)
    others = load.stop()
    return {"times": {k: statistics.median(v) for k, v in times.items()},
            "inner": {k: statistics.median(v) for k, v in inner.items() if v}, "others": others}


def _plain_s(stdout: str) -> float | None:
    m = re.search(r"in ([0-9.]+) s", stdout)
    return float(m.group(1)) if m else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, nargs="+", default=[200, 20], help="epochs of each run length (200 20)")
    ap.add_argument("--repeats", type=int, default=5, help="processes of each variant per run length (5)")
    ap.add_argument("--repo", action="append", default=[], metavar="DIR",
                    help="also time the lab of this checkout (repeatable)")
    ap.add_argument("--plain-threads", type=int, default=1, help="BLAS threads of the plain loop (1; 0: default)")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the breakdown of the lab process")
    args = ap.parse_args(argv)
    repos = [("", ROOT)] + [(f" [{os.path.basename(os.path.normpath(d))}]", os.path.abspath(d)) for d in args.repo]
    plain_env = dict(os.environ, **(ONE_THREAD if args.plain_threads == 1 else {}))
    if args.plain_threads > 1:
        plain_env.update({k: str(args.plain_threads) for k in ONE_THREAD})
    tmp = tempfile.mkdtemp(prefix="bench_process-")
    env = dict(os.environ, BACKPROP_LAB_STORE=os.path.join(tmp, "runs.sqlite"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{args.repeats} repeats, alternating; outputs in a temporary directory, removed at the end")
    print("the lab process writes --out/config.json, history.csv, layers.csv and one row of its run store\n")
    busy_any = False
    try:
        for epochs in args.epochs:
            res = bench(epochs, args.repeats, repos, plain_env, tmp, env)
            plain = res["times"]["plain numpy loop"]
            rows = [["process", "wall s", "x plain", "training s (own clock)"]]
            for name, t in res["times"].items():
                inner = res["inner"].get(name)
                rows.append([name, f"{t:.3f}", f"{t / plain:.2f}", "-" if inner is None else f"{inner:.3f}"])
            others = res["others"]
            busy_any |= others is not None and others > BUSY
            print(f"case (a), {epochs} epochs (others used {'?' if others is None else f'{100 * others:.0f}%'} "
                  f"of the CPUs meanwhile)")
            print(table(rows))
            for label, _ in repos:
                ratio = res["times"][f"lab{label}"] / plain
                verdict = "MET" if ratio <= TARGET else "MISSED"
                kept = res["times"][f"lab{label}"] / res["times"]["plain loop, --keep-heap"]
                print(f"target: whole lab{label} process <= {TARGET}x the plain loop: {verdict} ({ratio:.2f}x; "
                      f"{kept:.2f}x the plain loop given the lab's heap setting)"
                      + (" busy machine: unreliable" if others is not None and others > BUSY else ""))
            if not args.no_breakdown:
                for label, repo in repos:
                    phases = breakdown(repo, epochs, max(3, args.repeats // 2), tmp, env)
                    print(f"\nbreakdown of the lab{label} process, {epochs} epochs (median of "
                          f"{max(3, args.repeats // 2)} wrapped runs)")
                    print(table([["phase", "s"]] + [[k, f"{v:.3f}"] for k, v in phases.items()]))
            print()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if busy_any:
        print("warning: other processes used more than "
              f"{100 * BUSY:.0f}% of the CPUs during some figures; they are unreliable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
