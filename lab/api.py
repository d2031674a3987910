"""The lab in a notebook: a small, stable API over the engine, the report, the experiments and the store.

    import lab
    vanishing = lab.train(depth=30, activation="sigmoid", init="normal", init_scale=0.01, epochs=20)
    vanishing.plot_profile(epoch=0)          # the Train page's gradient profile, as a plotly figure
    vanishing.verdict()                       # what the run's numbers say, in the lab's words

``train``, ``compare``, ``sweep``, ``runs`` and ``lab.theory`` (the theory package, called) match the command
line's commands; settings are keyword
arguments held to the one declaration of settings (``lab.engine.settings``).  Errors are the lab's own types
(``ConfigError``, ``DataError``, ``StoreError``), with the command line's messages.  Long calls show a progress bar
(tqdm) in a notebook and on a terminal; the interrupt key stops a run and keeps what it recorded.
"""
from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

import pandas as pd

from lab.engine import results
from lab.engine.config import RunConfig, configure
from lab.engine.settings import ConfigError

# the report (plotly, scipy for the theory line) loads when a figure or a verdict is asked for, not with ``import lab``
LONG_RUN_S = 2.0  # progress=None: a bar for runs estimated (at typical prices) to take longer than this

# and lab.theory(...): the theory package, called
__all__ = ["RunResult", "compare", "load", "plot_profiles", "runs", "sweep", "train"]


class RunResult(results.RunResult):
    """A run as the API gives it: the engine's ``RunResult`` (plain arrays and DataFrames) that also draws the
    Train page's figures, by the page's own functions (``lab.report.figures``), and says what its numbers say."""

    @classmethod
    def of(cls, result: results.RunResult) -> RunResult:
        """The same run, with the API's methods (shares its arrays and tables)."""
        if isinstance(result, cls):
            return result
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(results.RunResult)})

    def plot_curves(self, log_y: bool = False):
        """The learning curves: training and validation loss and accuracy per epoch."""
        from lab.report import figures

        return figures.curves(self, log_y)

    def plot_profile(self, epoch=None):
        """The gradient profile at ``epoch`` (default: the last record): the error signal per layer on a log scale,
        with mean-field theory's prediction at initialization where it applies."""
        from lab.report import figures

        return figures.profile(self, epoch)[0]

    def plot_heatmap(self, column: str = "delta_rms"):
        """Layer by record, coloured by ``column`` (delta_rms, update_ratio or grad_norm) on a log scale."""
        from lab.report import figures

        return figures.heatmap(self, column)

    def plot_histograms(self, snapshot: int = -1, layers: list[int] | None = None, errors: bool = False):
        """Activation histograms (``errors``: of log10 |dL/dz|) at a snapshot (-1: the last), over initialization's."""
        from lab.report import figures

        return (figures.error_histograms if errors else figures.histograms)(self, snapshot, layers)

    def plot_boundary(self):
        """The decision boundary over the input plane (2-D data only; None otherwise, and ``boundary_gap()`` says
        why)."""
        from lab.report import figures

        return figures.boundary(self)

    def verdict(self) -> str:
        """What the run's numbers say: the error signal at initialization and at the end, and how training ended."""
        from lab.report import summaries

        epochs = sorted(self.layers["epoch"].unique()) if len(self.layers) else []
        lines = [summaries.flow_line(self.layers, e, self.config.residual) for e in epochs[:1] + epochs[1:][-1:]]
        if len(self.history) > 1:
            lines.append(summaries.loss_caption(self, False))
        return "\n".join(line.replace("**", "") for line in lines if line)  # plain text: no Markdown bold

    def save(self, path: str | Path, name: str = "run") -> Path:
        """Write the run: a ``.zip`` as the Train page's download, else a folder as ``python -m lab train --out``
        writes it, with runs.json beside (which ``lab.load`` reads back)."""
        from lab.serving import export

        path = Path(path)
        if path.suffix == ".zip":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(export.runs_zip({name: self}))
            return path
        export.write_run_dir(path, {name: self})
        (path / "runs.json").write_text(export.runs_json({name: self}))
        return path

    def keep(self, name: str, store: str | Path | None = None) -> int:
        """Keep this run in the run store (default: the lab's, as the Runs page lists it); returns its id."""
        from lab.store.runstore import default_path, open_store

        with open_store(Path(store) if store else default_path()) as s:
            return s.save(self, name, "cli")

    def _repr_html_(self) -> str:
        c = self.config
        status = (f"diverged at epoch {self.diverged_at:g}" if self.diverged_at is not None else
                  "stopped" if self.stopped else f"{int(self.history['epoch'].max()):d} epochs" if len(self.history)
                  else "not trained")
        head = (f"<b>{html.escape(c.activation)}, {html.escape(c.init)} init, {c.depth} hidden layers of {c.width}, "
                f"{html.escape(c.dataset)}</b>: {html.escape(status)}")
        lines = "".join(f"<li>{html.escape(line)}</li>" for line in self.verdict().splitlines())
        return f"<div>{head}<ul>{lines}</ul></div>"

    def __repr__(self) -> str:
        return f"RunResult({self.config.activation}, {self.config.init}, depth {self.config.depth}, " \
               f"width {self.config.width}, {len(self.history)} records)"


def _bar(what: str, show: bool, total: int | None = None):
    """A tqdm bar (its notebook form in a notebook), or None."""
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="step", leave=False)


def _long(config: RunConfig) -> bool:
    from lab.serving.cost import TYPICAL_PRICES, estimate

    return estimate(config, prices=TYPICAL_PRICES[config.dtype]).seconds > LONG_RUN_S


def train(config: RunConfig | None = None, data=None, callback=None, should_stop=None, *,
          progress: bool | None = None, **settings) -> RunResult:
    """Train one network: ``config`` (default: the engine's defaults) changed by keyword ``settings``, e.g.
    ``lab.train(depth=30, activation="tanh")``.  ``data``, ``callback`` and ``should_stop`` are the engine's
    (``lab.engine.training.train``).  ``progress``: a progress bar (None: for runs expected to take over 2 s).
    The interrupt key stops the run and keeps what it recorded (``stopped`` is then True)."""
    from lab.engine.training import Trainer

    config = configure(config, **settings)
    bar = _bar("training", _long(config) if progress is None else progress)
    trainer = Trainer(config, data)

    def on_record(p):
        if bar is not None:
            bar.total = p.total_steps
            bar.update(p.step - bar.n)
        return callback(p) if callback is not None else None

    try:
        trainer.advance(callback=on_record, should_stop=should_stop)
        result = trainer.result()
        result.stopped = result.stopped or trainer.paused
    except KeyboardInterrupt:  # the records so far are whole: the run ends there, stopped
        result = trainer.result(stopped=True)
    finally:
        if bar is not None:
            bar.close()
        trainer.close()
    return RunResult.of(result)


def plot_profiles(runs: dict[str, results.RunResult], epoch=0):
    """Several runs' error signal per layer on one log axis, at ``epoch`` (default: initialization), as the Init
    explorer and Compare draw them."""
    from lab.report import charts

    at = {name: r.layers[r.layers["epoch"] == (r.layers["epoch"].max() if epoch is None else epoch)]
          for name, r in runs.items()}
    title = "Error signal per layer at initialization" if epoch == 0 else f"Error signal per layer at epoch {epoch}"
    return charts.profiles_overlay(at, title=title)


def compare(config: RunConfig | None = None, *, progress: bool | None = None, **settings) -> dict[str, RunResult]:
    """Train several networks that differ in one setting, given as a list: ``lab.compare(init=["xavier_normal",
    "he_normal"], depth=20)``.  Returns the runs by name, as ``python -m lab compare`` names them."""
    varying = [name for name, value in settings.items() if isinstance(value, (list, tuple))]
    if len(varying) != 1:
        raise ConfigError("compare needs exactly one setting with several values, e.g. init=['xavier_normal', "
                          "'he_normal']" + (f"; {' and '.join(varying)} have several" if varying else ""))
    (axis,) = varying
    values = settings.pop(axis)
    base = configure(config, **settings)
    out = {}
    for value in values:
        out[f"{axis}={value}"] = train(base, progress=progress, **{axis: value})
    return out


def sweep(x: tuple[str, list], y: tuple[str, list], config: RunConfig | None = None, *, seeds: int = 1,
          out: str | Path = "sweep", workers: int = 1, progress: bool | None = None, **settings) -> pd.DataFrame:
    """Short runs over a grid of two settings, ``x=("sigma_w", [1, 2, 3])``, ``y=("depth", [2, 10, 30])``, as
    ``python -m lab sweep`` runs them (on local worker processes), into the folder ``out`` (sweep.csv, resumed if it
    holds cells)."""
    from lab.experiments.sweep import SweepSpec, parse_axis, run_sweep

    base = configure(config, **settings)
    axes = [(name, parse_axis(name, [str(v) for v in values])) for name, values in (x, y)]
    spec = SweepSpec(base, axes[0], axes[1], seeds=seeds)
    bar = _bar("sweep", progress is not False, len(axes[0][1]) * len(axes[1][1]) * seeds)
    path = run_sweep(spec, out, workers=workers,
                     on_row=(lambda row, done, total: bar.update(done - bar.n)) if bar is not None else None)
    if bar is not None:
        bar.close()
    return pd.read_csv(path)


def runs(store: str | Path | None = None, **filters) -> pd.DataFrame:
    """The run store's table, newest first, as ``python -m lab runs list`` shows it; ``filters``: setting -> value.
    ``lab.load(id)`` opens one."""
    from lab.store.runstore import default_path, open_store

    with open_store(Path(store) if store else default_path()) as s:
        return s.runs(filters or None)


def load(what, store: str | Path | None = None) -> RunResult | dict[str, RunResult]:
    """A saved run back: a folder (``RunResult.save`` or ``python -m lab train --out``), a ZIP or JSON export, or a
    run-store id.  An export of several runs gives them all, by name."""
    from lab.serving.imports import load_runs, run_from_entry

    if isinstance(what, int):
        from lab.store.runstore import default_path, open_store

        with open_store(Path(store) if store else default_path()) as s:
            return RunResult.of(s.load(what))
    path = Path(what)
    if path.is_dir():
        if (path / "runs.json").is_file():
            return _one(load_runs((path / "runs.json").read_bytes()))
        doc = json.loads((path / "config.json").read_text())
        entry = {"run": "run", "config": doc.get("config"), "result": doc.get("result"),
                 "history": pd.read_csv(path / "history.csv").to_dict(orient="list"),
                 "layers": pd.read_csv(path / "layers.csv").to_dict(orient="list")}
        return RunResult.of(run_from_entry("run", entry))
    return _one(load_runs(path.read_bytes()))


def _one(loaded: dict) -> RunResult | dict[str, RunResult]:
    converted = {name: RunResult.of(r) for name, r in loaded.items()}
    return next(iter(converted.values())) if len(converted) == 1 else converted
