"""Sweeps: short training runs over a grid of two settings, one tidy row per cell and seed.

A ``SweepSpec`` names the base config, the two axes (any setting Compare can vary, or
``sigma_w``), the number of seeds and the loss threshold.  ``cells`` lists the grid as plain,
picklable dicts; ``run_cell(cell) -> row`` trains one of them anywhere; ``map_cells`` runs
``run_cell`` over cells (in this process, or on local worker processes) and yields the rows as
they finish; ``run_sweep`` does that into ``DIR/sweep.csv``, one flushed line per finished cell,
skipping the cells the file already has.

Seeding.  A cell's ``seed`` (the RunConfig seed of its run: data split, weights, shuffling) is
drawn from the base seed, the seed index and the cell's coordinates ({setting: value}, in name
order, so swapping --x and --y changes nothing), never from its place in the grid or the order
in which cells run.  Adding a value to an axis leaves every other cell's numbers as they were,
and ``python -m lab train`` with a row's config (its ``seed`` included) reruns that cell.

sigma_w.  The axis ``sigma_w`` sets ``gain`` so that the hidden layers' mean-field sigma_w
(sqrt(fan_in * Var W), ``lab.theory.meanfield.sigma_w``) is the value asked for, with the base config's
init: gain = sigma_w / sigma_w(gain 1).  With lecun_normal and xavier_normal (square hidden
layers) that is gain = sigma_w; with he_normal, gain = sigma_w / sqrt(2).  An init whose
weights do not scale with gain (zeros, orthogonal, ...) is refused.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import queue
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from lab.engine.config import RunConfig
from lab.engine.settings import ConfigError

from .compare import AXES, FLOAT_AXES, INT_AXES, parse_values
from .workers import local_pool, stop_pool

SIGMA_W = "sigma_w"
SWEEP_AXES = (*AXES, SIGMA_W)
CONFIG_COLUMNS = tuple(f.name for f in fields(RunConfig))
METRIC_COLUMNS = ("final_loss", "final_accuracy", "final_val_loss", "final_val_accuracy", "loss_threshold",
                  "epochs_to_threshold", "delta_ratio_init", "delta_ratio_end", "diverged_at", "wall_s")
COLUMNS = (*CONFIG_COLUMNS, SIGMA_W, "seed_index", *METRIC_COLUMNS)
CSV_NAME, SPEC_NAME = "sweep.csv", "sweep.json"
WAIT_S = 0.2  # map_cells calls its ``waiting`` at least this often while cells run elsewhere


@dataclass(frozen=True)
class SweepSpec:
    """base: the config every cell starts from (its seed is the base seed); x, y: (setting, values)."""

    base: RunConfig
    x: tuple[str, tuple]
    y: tuple[str, tuple]
    seeds: int = 1
    loss_threshold: float | None = None  # None: 0.5 * ln(classes), half the loss of a uniform guess

    def __post_init__(self):
        (xn, xv), (yn, yv) = self.x, self.y
        for name, values in ((xn, xv), (yn, yv)):
            if name not in SWEEP_AXES:
                raise ConfigError(f"cannot sweep {name!r}; choose one of {', '.join(SWEEP_AXES)}")
            if not values:
                raise ConfigError(f"the axis {name} has no values")
        if xn == yn:
            raise ConfigError(f"--x and --y both name {xn}")
        if {xn, yn} == {SIGMA_W, "gain"}:
            raise ConfigError("sigma_w is set through gain: sweep one of them, not both")
        if not 1 <= self.seeds <= 1000:
            raise ConfigError(f"seeds must be between 1 and 1000; got {self.seeds}")

    @property
    def threshold(self) -> float:
        return self.loss_threshold if self.loss_threshold is not None else 0.5 * math.log(self.base.n_classes)

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "x": [self.x[0], list(self.x[1])], "y": [self.y[0], list(self.y[1])],
                "seeds": self.seeds, "loss_threshold": self.threshold}


def parse_axis(name: str, values: Iterable[str]) -> tuple:
    """An axis's values from strings, typed as Compare types them; ``A:B:N`` is N values from A to B
    (evenly spaced; whole numbers for integer settings, duplicates dropped)."""
    if name not in SWEEP_AXES:
        raise ConfigError(f"cannot sweep {name!r}; choose one of {', '.join(SWEEP_AXES)}")
    texts = []
    for v in values:
        parts = str(v).split(":")
        if len(parts) == 3 and (name in INT_AXES or name in FLOAT_AXES or name in ("gain", SIGMA_W)):
            try:
                low, high, n = float(parts[0]), float(parts[1]), int(parts[2])
            except ValueError:
                raise ConfigError(f"{name} range {v!r} is not START:STOP:COUNT") from None
            if not 1 <= n <= 10_000:
                raise ConfigError(f"{name} range {v!r}: COUNT must be between 1 and 10000")
            grid = np.linspace(low, high, n)
            texts += [str(int(round(g))) for g in grid] if name in INT_AXES else [repr(float(g)) for g in grid]
        else:
            texts.append(v)
    if name == SIGMA_W:
        out = []
        for v in texts:
            try:
                number = float(v)
            except ValueError:
                raise ConfigError(f"sigma_w value {v!r} is not a number") from None
            if not (math.isfinite(number) and number >= 0):
                raise ConfigError(f"sigma_w must be a finite number at least 0; got {v}")
            out.append(number)
        return tuple(dict.fromkeys(out))  # duplicates dropped in linear time: a range may hold 10,000
    try:
        typed = [value for text in texts for value in parse_values(name, [text])]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return tuple(dict.fromkeys(typed))  # as parse_values drops them, without its quadratic search


def sigma_w_unit(config: RunConfig) -> float:
    """The hidden layers' sigma_w of ``config``'s init at gain 1 (ConfigError if gain does not scale it)."""
    from lab.theory.meanfield import sigma_w  # scipy: only for sweeps that ask for sigma_w

    one, two = sigma_w(config.replace(gain=1.0)), sigma_w(config.replace(gain=2.0))
    if not (one > 0 and math.isclose(two, 2.0 * one, rel_tol=1e-9)):
        raise ConfigError(f"sigma_w is set through gain, and the init {config.init} does not scale with gain; "
                          "choose lecun_normal, xavier_normal, he_normal or similar")
    return one


def cell_seed(base_seed: int, seed_index: int, coordinates: dict) -> int:
    """The RunConfig seed of one cell: from the base seed, the seed index and {setting: value} alone.  Below
    2**31, the largest seed the Train page's widget takes, so that a cell opened there is the same run."""
    text = json.dumps(sorted((k, _text(v)) for k, v in coordinates.items()))
    words = np.frombuffer(hashlib.sha256(text.encode()).digest()[:16], dtype="<u4")
    seq = np.random.SeedSequence(base_seed, spawn_key=(seed_index, *map(int, words)))
    return int(seq.generate_state(1, np.uint32)[0] >> 1)


def cells(spec: SweepSpec) -> list[dict]:
    """Every cell of the grid, y outer, x inner, seeds innermost: plain dicts that ``run_cell`` takes.

    Each is {"key": (x text, y text, seed index), "coordinates": {x: value, y: value}, "seed_index": k,
    "config": the cell's RunConfig as a dict, "sigma_w": the value asked for (None unless an axis),
    "loss_threshold": float}.  Raises ConfigError for a cell the lab cannot run, before any runs."""
    (xn, xv), (yn, yv) = spec.x, spec.y
    out = []
    for y in yv:
        for x in xv:
            changes = {k: v for k, v in ((xn, x), (yn, y)) if k != SIGMA_W}
            config = spec.base.replace(**changes).validate()
            # as the row will hold them: an alias resolved (kaiming_normal -> he_normal), "1" typed as 1
            coordinates = {xn: x if xn == SIGMA_W else getattr(config, xn),
                           yn: y if yn == SIGMA_W else getattr(config, yn)}
            if SIGMA_W in coordinates:
                config = config.replace(gain=coordinates[SIGMA_W] / sigma_w_unit(config)).validate()
            for k in range(spec.seeds):
                seed = cell_seed(spec.base.seed, k, coordinates)
                out.append({"key": cell_key(coordinates[xn], coordinates[yn], k), "coordinates": coordinates,
                            "seed_index": k, "config": config.replace(seed=seed).to_dict(),
                            "sigma_w": coordinates.get(SIGMA_W), "loss_threshold": spec.threshold,
                            "axes": (xn, yn)})
    return out


def cell_key(x, y, seed_index) -> tuple[str, str, str]:
    """A cell's identity as its row writes it: (x, y, seed index) as CSV text."""
    return _text(x), _text(y), str(seed_index)


def run_cell(cell: dict) -> dict:
    """Train one cell and return its row (``COLUMNS``): the config, sigma_w, then the numbers."""
    from lab.engine.training import train
    from lab.theory.meanfield import sigma_w

    from .compare import summary_table

    config = RunConfig.from_dict(cell["config"])
    result = train(config)
    threshold = cell["loss_threshold"]
    summary = summary_table({"cell": result}, threshold).iloc[0]
    row = dict(cell["config"], samples=config.n_samples)  # the rows it used (samples not given: all, or 1000)
    row[SIGMA_W] = cell["sigma_w"] if cell["sigma_w"] is not None else _theory_sigma_w(config, sigma_w)
    row["seed_index"] = cell["seed_index"]
    for name in METRIC_COLUMNS:
        row[name] = float(summary[name]) if name in summary else math.nan
    row["loss_threshold"] = threshold
    row["epochs_to_threshold"] = float(summary[f"epochs_to_loss_{threshold:g}"])
    return row


def _theory_sigma_w(config, sigma_w) -> float:
    try:
        return sigma_w(config)
    except (KeyError, ValueError, ZeroDivisionError):
        return math.nan


def map_cells(cells: list[dict], workers: int = 1, fn: Callable[[dict], dict] | None = None,
              executor=None, scheduler=None, waiting: Callable[[], object] | None = None) -> Iterator[dict]:
    """``fn(cell)`` for every cell, yielded as each finishes (in no fixed order).

    workers 1 without an executor or scheduler: in this process, in order.  scheduler: the address of a
    Dask distributed scheduler (``tcp://HOST:PORT``) or a ``distributed.Client``: the cells run on that
    cluster as Dask futures (``map_on_dask``).  Otherwise on ``executor`` (anything with
    ``submit(fn, arg) -> concurrent.futures.Future``), by default ``workers`` local processes that end with
    this one (``lab.experiments.workers.local_pool``).  fn: by default ``run_cell``.

    waiting: called at least every ``WAIT_S`` while cells run (not in this process), so that a caller
    that must notice a Stop or a closed tab gets its turn even while every cell takes minutes; it may
    raise.  Leaving the iteration early (Stop, an interrupt, an exception) cancels the cells not started
    and ends those running: the local workers are killed, the cluster's tasks cancelled."""
    fn = fn or run_cell
    if scheduler is not None:
        yield from map_on_dask(cells, scheduler, fn, waiting)
        return
    if executor is None and workers <= 1:
        for cell in cells:
            yield fn(cell)
        return
    import concurrent.futures as cf

    own = executor is None
    if own:
        executor = local_pool(workers)
    pending = set()
    try:
        for cell in cells:
            pending.add(executor.submit(fn, cell))
        while pending:
            done, pending = cf.wait(pending, timeout=WAIT_S, return_when=cf.FIRST_COMPLETED)
            if waiting is not None:
                waiting()
            for future in done:
                yield future.result()
    finally:
        if own and pending:
            stop_pool(executor)  # the cells running would otherwise run to their end
        elif own:
            executor.shutdown(wait=True)
        else:
            for future in pending:
                future.cancel()


SCHEDULER_ENV = "BACKPROP_LAB_SCHEDULER"  # the CLI's and the page's default scheduler address


def connect(address: str, timeout: float = 10.0):
    """A ``distributed.Client`` on the scheduler at ``address`` (ConfigError if distributed is missing
    or the scheduler does not answer within ``timeout`` seconds)."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("a sweep on a Dask scheduler needs dask.distributed: "
                          "pip install 'dask[distributed]>=2024.1'") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None


def map_on_dask(cells: list[dict], scheduler, fn: Callable[[dict], dict] | None = None,
                waiting: Callable[[], object] | None = None) -> Iterator[dict]:
    """``fn(cell)`` for every cell on a Dask cluster, yielded as each finishes.

    scheduler: an address (a client is opened and closed here) or a ``distributed.Client``.  The
    cluster is trusted: Dask's client unpickles what it returns, so only the operator names it (the
    command line, or the server's BACKPROP_LAB_SCHEDULER), never a visitor.  Dask's scheduler does the
    placing: a worker that dies mid-sweep loses only the cells it held, which the scheduler runs again on
    the others.  The workers need this repository importable (``lab``) and the packages of
    requirements.txt.  waiting: as ``map_cells``.  Leaving the iteration early cancels every cell not
    finished (``force``: even one another client also asked for)."""
    fn = fn or run_cell
    own = isinstance(scheduler, str)
    client = connect(scheduler) if own else scheduler
    futures = []
    try:
        # pure=False: every cell is its own task, even if two had equal arguments
        futures = [client.submit(fn, cell, pure=False) for cell in cells]
        finished = queue.SimpleQueue()
        for future in futures:
            future.add_done_callback(finished.put)
        for _ in futures:
            future = None
            while future is None:
                try:
                    future = finished.get(timeout=WAIT_S)
                except queue.Empty:
                    pass
                if waiting is not None:
                    waiting()
            try:
                yield future.result()
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.split(".")[0] == "lab":
                    raise ConfigError("the Dask workers cannot import lab: start them from this repository "
                                      "(or with it on PYTHONPATH), with requirements.txt installed") from exc
                raise
    finally:
        if futures:
            client.cancel([f for f in futures if not f.done()], force=True)
        if own:
            client.close()


def _text(value) -> str:
    """A value as its CSV cell: floats in their shortest round-trip form, None and NaN empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def done_keys(path: Path, axes: tuple[str, str]) -> set[tuple[str, str, str]]:
    """The cells sweep.csv already has; a last line cut off by an interrupt is removed from the file."""
    if not path.exists():
        return set()
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):  # a write cut off mid-line: drop it, the cell runs again
        raw = raw[: raw.rfind(b"\n") + 1]
        with open(path, "r+b") as fh:
            fh.truncate(len(raw))
    reader = csv.DictReader(io.StringIO(raw.decode()))
    if reader.fieldnames and tuple(reader.fieldnames) != COLUMNS:
        raise ConfigError(f"{path} has other columns than a sweep writes; choose another --out")
    return {(r[axes[0]], r[axes[1]], r["seed_index"]) for r in reader}


def run_sweep(spec: SweepSpec, out: str | os.PathLike, workers: int = 1, executor=None,
              on_row: Callable[[dict, int, int], object] | None = None, scheduler=None) -> Path:
    """Run every cell of ``spec`` not yet in ``out``/sweep.csv and append its row as it finishes.

    workers, executor, scheduler: where the cells run, as ``map_cells`` takes them (scheduler: a Dask
    scheduler's address or a ``distributed.Client``; the numbers are the same wherever they run).
    out/sweep.json records the spec; a restart with another spec in the same directory is refused.
    on_row(row, done, total) after each row.  Returns the CSV's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec_path, csv_path = out / SPEC_NAME, out / CSV_NAME
    doc = spec.to_dict()
    if spec_path.exists():
        try:
            held = json.loads(spec_path.read_text())
        except ValueError:
            held = None
        if held != json.loads(json.dumps(doc)):
            raise ConfigError(f"{out} holds another sweep ({spec_path.name} differs); choose another --out, "
                              "or repeat that sweep's arguments to finish it")
    else:
        spec_path.write_text(json.dumps(doc, indent=1) + "\n")
    todo_all = cells(spec)
    done = done_keys(csv_path, (spec.x[0], spec.y[0]))
    todo = [c for c in todo_all if c["key"] not in done]
    finished = len(todo_all) - len(todo)
    new_file = not csv_path.exists() or csv_path.stat().st_size == 0
    with open(csv_path, "a", newline="") as fh:
        writer = csv.writer(fh)
        if new_file:
            writer.writerow(COLUMNS)
            fh.flush()
        # closed on the way out, so that an interrupt ends the cells still running at once
        with contextlib.closing(map_cells(todo, workers, executor=executor, scheduler=scheduler)) as rows:
            for row in rows:
                writer.writerow([_text(row[c]) for c in COLUMNS])
                fh.flush()
                finished += 1
                if on_row is not None:
                    on_row(row, finished, len(todo_all))
    return csv_path


def read_sweep(path: str | os.PathLike):
    """sweep.csv as a DataFrame (pandas reads the empty cells as NaN)."""
    import pandas as pd

    return pd.read_csv(path)


__all__ = ["COLUMNS", "SCHEDULER_ENV", "SIGMA_W", "SWEEP_AXES", "SweepSpec", "cell_seed", "cells", "connect",
           "map_cells", "map_on_dask", "parse_axis", "read_sweep", "run_cell", "run_sweep", "sigma_w_unit"]
