"""Training: a config in, a ``RunResult`` of plain arrays and DataFrames out.

Record points are step 0 (at initialization, before any update) and then every
epoch, or every ``record_every`` optimizer steps.  At each one the history gets
the training loss and accuracy (the mean over the mini-batches since the last
record; at step 0, over the whole training set) and the validation loss and
accuracy at the current weights; with ``instrument`` on, the probe pass adds one
row per layer of ``probe.STAT_COLUMNS``.

A run that diverges (``lab.divergence`` states the rule) stops at once: it keeps
every record taken before, the record at initialization included, and ends its
history with one row marked ``diverged`` at the epoch where it happened.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from .config import RunConfig
from .data import Dataset, make_dataset
from .divergence import DivergenceCheck
from .model import MLP, build_mlp
from .optim import OPTIMIZERS
from .probe import DELTA_EDGES, STAT_COLUMNS, act_edges, histogram_steps, probe
from .regularize import ClipRecord, add_weight_decay, clip_by_global_norm
from .results import HISTORY_COLUMNS, LAYER_COLUMNS, Progress, RunResult
from .seeds import run_generators
from .threads import blas_threads

EVAL_CHUNK = 4096


def evaluate(model: MLP, X: np.ndarray, y: np.ndarray, mode: str = "eval") -> tuple[float, float]:
    """Mean loss and accuracy over (X, y) at the current weights, in chunks.  ``mode`` "probe" uses
    each chunk's own batch statistics (before the first step, batch norm's running averages are
    still their starting values 0 and 1, which describe no network)."""
    if len(X) == 0:
        return math.nan, math.nan
    total, correct = 0.0, 0
    for i in range(0, len(X), EVAL_CHUNK):
        xb, yb = X[i : i + EVAL_CHUNK], y[i : i + EVAL_CHUNK]
        total += model.loss(xb, yb, mode=mode) * len(xb)
        correct += int((model.loss_layer.y.argmax(axis=1) == yb).sum())
    return total / len(X), correct / len(X)


def train(config: RunConfig, data: Dataset | None = None, callback=None,
          should_stop: Callable[[], bool] | None = None) -> RunResult:
    """Train the network ``config`` describes; see ``_train``."""
    config = config.validate()
    with blas_threads(config.width):
        return _train(config, data, callback, should_stop)


def _train(config: RunConfig, data: Dataset | None, callback, should_stop=None) -> RunResult:
    """Train the network ``config`` describes and record how the error signal flows.

    data: an already built Dataset (e.g. an uploaded CSV); by default made from config.
    callback(progress) is called at every record point; a truthy return stops the run.
    should_stop() is asked after every optimizer step, so that Stop (or a closed browser tab)
    ends even a run whose records are far apart within one step; a truthy return stops the
    run, keeping what was recorded (it may also raise, as Streamlit's stop does).
    Never raises for a run that diverges: it stops and says so in the result.
    """
    data_rng, init_rng, shuffle_rng = run_generators(config.seed)
    if data is None:
        data = make_dataset(config, data_rng)
    dtype = config.np_dtype
    X, y = data.X_train.astype(dtype, copy=False), data.y_train
    X_val, y_val = data.X_val.astype(dtype, copy=False), data.y_val
    model = build_mlp(config, data.input_dim, data.classes, init_rng)
    optimizer = OPTIMIZERS[config.optimizer](config.lr)
    n = len(X)
    batch = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    total_steps = config.epochs * steps_per_epoch
    every = config.record_every or steps_per_epoch
    record_steps = sorted({0, *range(every, total_steps + 1, every), total_steps})
    hist_at = histogram_steps(record_steps)
    n_probe = min(n, config.probe_size)
    X_probe, y_probe = X[:n_probe], y[:n_probe]

    record_set = frozenset(record_steps)
    clips = ClipRecord()
    weight_slices = model.layer_slices()  # where each W sits in the flat buffers: the decay's targets
    rec = _Recorder(config, model, X_probe, y_probe, hist_at, has_val=len(X_val) > 0)
    start = time.perf_counter()
    step, epoch = 0, 0
    run_loss, run_correct, run_count = 0.0, 0, 0
    stopped = False
    with np.errstate(all="ignore"):  # overflow is detected and reported, not warned about
        loss0, acc0 = evaluate(model, X, y, mode="probe")
        reason = rec.record(0, 0, loss0, acc0, evaluate(model, X_val, y_val, mode="probe"), optimizer, start)
        check = DivergenceCheck.for_run(config.loss, data.classes, loss0)
        # an exploded network keeps its record at initialization: the charts show what exploded
        reason = reason or check.at_initialization()
        def progress(at_step):
            def snapshot():
                return rec.result(
                    data=data, weights=model.weights(), norm_state=model.norm_state(), steps_per_epoch=steps_per_epoch,
                    wall_s=time.perf_counter() - start, stopped=True, integer_epochs=config.record_every == 0,
                )
            return Progress(at_step, total_steps, rec.rows[-1]["epoch"], rec.rows, rec.stats, snapshot)

        stopped = bool(not reason and callback and callback(progress(0)))
        while epoch < config.epochs and not (reason or stopped):
            order = shuffle_rng.permutation(n)
            for i in range(steps_per_epoch):
                idx = order[i * batch : (i + 1) * batch]
                xb, yb = X[idx], y[idx]
                loss = model.loss_and_grads(xb, yb)
                if not math.isfinite(loss):
                    reason = f"the training loss became {loss} at step {step + 1}"
                elif not np.isfinite(model.flat_grads.sum(dtype=np.float64)):  # a float32 sum could overflow
                    reason = f"the gradient became inf or NaN at step {step + 1}"
                else:
                    reason = check.during_training(loss, step + 1)
                if reason:
                    break
                if config.clip_norm > 0:
                    clips.add(*clip_by_global_norm(model.flat_grads, config.clip_norm))
                if config.weight_decay > 0:
                    add_weight_decay(model.flat_grads, model.flat_params, weight_slices, config.weight_decay)
                optimizer.step([model.flat_params], [model.flat_grads])
                step += 1
                run_loss += loss * len(idx)
                run_correct += int((model.loss_layer.y.argmax(axis=1) == yb).sum())
                run_count += len(idx)
                if should_stop is not None and step not in record_set and should_stop():
                    stopped = True
                    break
                if step in record_set:
                    val = evaluate(model, X_val, y_val)
                    reason = rec.record(
                        step, step / steps_per_epoch, run_loss / run_count, run_correct / run_count, val, optimizer, start
                    )
                    run_loss, run_correct, run_count = 0.0, 0, 0
                    if reason:
                        break
                    if callback and callback(progress(step)):
                        stopped = True
                        break
            epoch += 1
        diverged_at = None
        if reason:
            # the epoch in which it happened (1 = the first epoch of training; 0 = at initialization)
            diverged_at = epoch if config.record_every == 0 else step / steps_per_epoch
            rec.mark_diverged(diverged_at, step, start)
    wall = time.perf_counter() - start
    result = rec.result(
        data=data, weights=model.weights(), norm_state=model.norm_state(), steps_per_epoch=steps_per_epoch,
        wall_s=wall,
        diverged_at=diverged_at, diverge_reason=reason, stopped=stopped, integer_epochs=config.record_every == 0,
    )
    if config.clip_norm > 0:
        result.meta["clipping"] = clips.summary()
    # A Progress handed to the callback keeps its snapshot closure, and with it these variables, for as
    # long as anyone holds it (a page keeps the last one to recover a stopped run): let go of the model
    # and the optimizer's moments, often the largest arrays of the run, once the result has its copies.
    model = optimizer = rec.model = None  # noqa: F841
    return result


class _Recorder:
    """Accumulates history rows, per-layer statistics and histogram snapshots."""

    def __init__(self, config, model, X_probe, y_probe, hist_at, has_val):
        self.config, self.model, self.has_val = config, model, has_val
        self.X_probe, self.y_probe = X_probe, y_probe
        self.hist_at = hist_at
        self.rows: list[dict] = []
        self.stats: list[np.ndarray] = []
        self.hist_epochs: list[float] = []
        self.act_hists: list[np.ndarray] = []
        self.act_zeros: list[np.ndarray] = []
        self.delta_hists: list[np.ndarray] = []

    def record(self, step, epoch, loss, acc, val, optimizer, start) -> str:
        """Append one record; return a divergence reason, or "" when all is finite."""
        val_loss, val_acc = val
        if not math.isfinite(loss) and step == 0:
            return (f"the network overflowed at initialization: its outputs grew past the largest "
                    f"{self.config.dtype} number on the way forward, so the loss is {loss}")
        if not math.isfinite(loss):
            return f"the training loss became {loss} at step {step}"
        if self.has_val and not math.isfinite(val_loss):
            return f"the validation loss became {val_loss} at step {step}"
        stats = None
        if self.config.instrument:
            with_hist = step in self.hist_at
            _, stats, act_h, act_z, delta_h = probe(
                self.model, self.X_probe, self.y_probe, optimizer.last_update[0] if optimizer.last_update else None, with_hist
            )
            if not np.isfinite(stats[:, :4]).all():
                return f"a gradient on the probe set became inf or NaN at step {step}"
            if with_hist:
                self.hist_epochs.append(epoch)
                self.act_hists.append(act_h)
                self.act_zeros.append(act_z)
                self.delta_hists.append(delta_h)
        self.rows.append(
            {"epoch": epoch, "step": step, "loss": loss, "accuracy": acc, "val_loss": val_loss,
             "val_accuracy": val_acc, "elapsed_s": time.perf_counter() - start, "diverged": False}
        )
        self.stats.append(stats)
        return ""

    def mark_diverged(self, epoch, step, start):
        self.rows.append(
            {"epoch": epoch, "step": step, "loss": math.nan, "accuracy": math.nan, "val_loss": math.nan,
             "val_accuracy": math.nan, "elapsed_s": time.perf_counter() - start, "diverged": True}
        )

    def result(self, integer_epochs, **kw) -> RunResult:
        history = pd.DataFrame(self.rows, columns=list(HISTORY_COLUMNS))
        L = self.model.depth
        recorded = [(row, s) for row, s in zip(self.rows, self.stats) if s is not None]
        if recorded:
            epochs = np.repeat([r["epoch"] for r, _ in recorded], L)
            steps = np.repeat([r["step"] for r, _ in recorded], L)
            layer_idx = np.tile(np.arange(1, L + 1), len(recorded))
            body = np.concatenate([s for _, s in recorded])
            layers = pd.DataFrame(body, columns=list(STAT_COLUMNS))
            layers.insert(0, "layer", layer_idx)
            layers.insert(0, "epoch", epochs)
            layers["step"] = steps
        else:
            layers = pd.DataFrame(columns=list(LAYER_COLUMNS))
        if integer_epochs:
            history["epoch"] = history["epoch"].round().astype(np.int64)
            if len(layers):
                layers["epoch"] = layers["epoch"].round().astype(np.int64)
        nb_act = len(act_edges(self.model)) - 1
        return RunResult(
            config=self.config, history=history, layers=layers,
            hist_epochs=np.array(self.hist_epochs, dtype=float),
            act_hist=np.array(self.act_hists).reshape(len(self.act_hists), L - 1, nb_act),
            act_zero_frac=np.array(self.act_zeros).reshape(len(self.act_zeros), L - 1),
            act_edges=act_edges(self.model),
            delta_hist=np.array(self.delta_hists).reshape(len(self.delta_hists), L, len(DELTA_EDGES) - 1),
            delta_edges=DELTA_EDGES, **kw,
        )
