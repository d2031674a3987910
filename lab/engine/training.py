"""Training: a config in, a ``RunResult`` of plain arrays and DataFrames out.

Record points are step 0 (at initialization, before any update) and then every
epoch, or every ``record_every`` optimizer steps.  At each one the history gets
the training loss and accuracy (the mean over the mini-batches since the last
record; at step 0, over the whole training set) and the validation loss and
accuracy at the current weights; with ``instrument`` on, the probe pass adds one
row per layer of ``probe.STAT_COLUMNS``.

A run that diverges (``lab.engine.divergence`` states the rule) stops at once: it keeps
every record taken before, the record at initialization included, and ends its
history with one row marked ``diverged`` at the epoch where it happened.

``Trainer`` is one run that advances by any number of steps or epochs, pauses, goes on and
resets, with the numbers of the run in one piece; ``train`` runs one from start to end.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import threading
import time
from collections.abc import Callable

import numpy as np

from lab.data.datasets import Dataset, make_dataset
from lab.seeds import run_generators

from . import pieces
from .config import RunConfig
from .divergence import DivergenceCheck
from .model import MLP, build_mlp
from .optim import OPTIMIZERS
from .probe import EVAL_CHUNK, histogram_steps
from .recorder import Recorder
from .regularize import ClipRecord, add_weight_decay, clip_by_global_norm
from .results import Progress, RunResult
from .threads import blas_threads, keep_freed_arrays_in_the_heap, probe_in_background, return_free_memory


def evaluate(model: MLP, X: np.ndarray, y: np.ndarray, mode: str = "eval") -> tuple[float, float]:
    """Mean loss and accuracy over (X, y) at the current weights, in chunks.  ``mode`` "probe" uses
    each chunk's own batch statistics (before the first step, batch norm's running averages are
    still their starting values 0 and 1, which describe no network)."""
    if len(X) == 0:
        return math.nan, math.nan
    total, correct = 0.0, 0
    for i in range(0, len(X), EVAL_CHUNK):
        xb, yb = X[i : i + EVAL_CHUNK], y[i : i + EVAL_CHUNK]
        total += model.loss(xb, yb, mode=mode, cache=False) * len(xb)
        correct += int((model.loss_layer.y.argmax(axis=1) == yb).sum())
    return total / len(X), correct / len(X)


def train(config: RunConfig, data: Dataset | None = None, callback=None,
          should_stop: Callable[[], bool] | None = None) -> RunResult:
    """Train the network ``config`` describes from start to end and record how the error signal flows.

    data: an already built Dataset (e.g. an uploaded CSV); by default made from config.
    callback(progress) is called at every record point; a truthy return stops the run.
    should_stop() is asked after every optimizer step, so that Stop (or a closed browser tab)
    ends even a run whose records are far apart within one step; a truthy return stops the
    run, keeping what was recorded (it may also raise, as Streamlit's stop does).
    Never raises for a run that diverges: it stops and says so in the result.
    """
    trainer = Trainer(config, data)
    trainer.advance(callback=callback, should_stop=should_stop)
    result = trainer.result()
    result.stopped = result.stopped or trainer.paused  # a stop asked at the last record is a stop
    # A Progress handed to the callback keeps its snapshot, and with it the trainer, for as long as
    # anyone holds it (a page keeps the last one to recover a stopped run): let go of the model and
    # the optimizer's moments, often the largest arrays of the run, once the result has its copies.
    trainer.close()
    return result


def _exclusive(method):
    """A Trainer method that runs alone: ``close`` from another thread (a server letting go of a session whose
    browser left) waits for an ``advance`` in progress instead of pulling the model from under it."""
    @functools.wraps(method)
    def alone(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return alone


class Trainer:
    """One training run that can stop and go on: the same numbers however it is cut.

    ``Trainer(config, data=None)`` builds the data (unless given), the network, the optimizer and the
    run's generators from ``config.seed``, and takes the record at initialization (step 0).  Then

    * ``advance(steps=k)`` runs k more optimizer steps, ``advance(epochs=k)`` runs to the end of the
      k-th epoch boundary from here (from step 0 or from mid-epoch alike: it stops on an epoch's end),
      and ``advance()`` runs to the end of ``config.epochs``.  It records at the run's record points
      (step 0, then every epoch or every ``config.record_every`` steps) and returns whether the run can
      go on: False once every planned step is done or the run has diverged (``lab.engine.divergence``).
    * ``result()`` is a ``RunResult`` of the run so far, at any point: copies of the weights and norm
      state, the records so far, ``stopped=True`` while the run is not done, the clipping summary in
      ``meta`` when clipping is on.  Taking it changes nothing in what follows.
    * ``reset()`` goes back to initialization with the same seed (and the same data).

    State that carries from one ``advance`` to the next, so that a run in 7 pieces gives the bits of a
    run in one: the weights and norm running statistics, the optimizer's moments and step count, the
    dropout generator (in the model), the shuffle generator and the current epoch's order with the
    position in it, the running sums of the training loss since the last record, the clipping record
    and the divergence check.

    callback(progress) is called at every record point, the record at initialization included (on the
    first ``advance``); should_stop() after every step that is not a record point.  A truthy return
    from either pauses the run (``paused`` is then True): ``advance`` returns, and a later ``advance``
    goes on from there.  Time spent paused does not count in ``elapsed_s`` or ``wall_s``.

    BLAS runs on the thread count ``lab.engine.threads.blas_threads`` sets for the width during ``__init__``
    and each ``advance``, and on the process default in between.  When that is one thread (a narrow
    network) and the machine has a second core, the record passes after the first run beside the
    training, in a thread of their own, on a copy of the weights at the record point
    (``lab.engine.threads.probe_in_background``); each is settled before the next record, before a divergence
    is declared, at the end of every ``advance`` and in ``result()``, so the numbers are those of a pass
    in line, and a pass that finds the gradient inf or NaN ends the run at its own step.  ``close()`` drops the model and the
    optimizer and hands the memory back to the system (``train`` does it once its result has the copies); a closed
    trainer cannot go on.  ``advance``, ``result``, ``reset`` and ``close`` run one at a time: ``close`` may come from
    another thread.
    """

    def __init__(self, config: RunConfig, data: Dataset | None = None):
        self.config = config = config.validate()
        self._lock = threading.RLock()  # a callback inside advance may take result(): the same thread again
        keep_freed_arrays_in_the_heap()
        with blas_threads(config.width), np.errstate(all="ignore"):  # overflow is reported, not warned about
            self._build(data)

    def _build(self, data: Dataset | None) -> None:
        config = self.config
        self._clock = time.perf_counter()  # training time so far is perf_counter() - _clock while running
        data_rng, init_rng, self._shuffle_rng = run_generators(config.seed)
        self.data = data = make_dataset(config, data_rng) if data is None else data
        dtype = config.np_dtype
        self._X, self._y = data.X_train.astype(dtype, copy=False), data.y_train
        self._X_val, self._y_val = data.X_val.astype(dtype, copy=False), data.y_val
        self.model = build_mlp(config, data.input_dim, data.classes, init_rng)
        self.optimizer = OPTIMIZERS[config.optimizer](config.lr)
        n = len(self._X)
        self._batch = min(config.batch_size, n)
        self.steps_per_epoch = spe = math.ceil(n / self._batch)
        self.total_steps = total = config.epochs * spe
        every = config.record_every or spe
        record_steps = sorted({0, *range(every, total + 1, every), total})
        self._record_set = frozenset(record_steps)
        n_probe = min(n, config.probe_size)
        self._rec = Recorder(config, self.model, self._X[:n_probe], self._y[:n_probe], histogram_steps(record_steps),
                              has_val=len(self._X_val) > 0,
                              background=probe_in_background(config, self.model.flat_params.size))
        self._clips = ClipRecord()
        self._weight_slices = self._rec.slices  # where each W sits in the flat buffers: the decay's targets
        self._step = 0
        self._epochs_begun = 0  # orders drawn: the epoch in progress, 1 = the first (0 = at initialization)
        self._order, self._at = None, spe  # the current epoch's order and the next batch's place in it
        self._X_epoch = self._y_epoch = None  # the training set in that order
        self._run_loss, self._run_correct, self._run_count = 0.0, 0, 0
        self._announced = False  # whether a callback has seen the record at initialization
        self.paused = False
        self.diverged_at: float | None = None
        self.diverge_reason = ""
        loss0, acc0 = evaluate(self.model, self._X, self._y, mode="probe")
        val0 = evaluate(self.model, self._X_val, self._y_val, mode="probe")
        # epoch 0.0: a float as every later record's, so that a run's first record alone has the column's dtype
        reason = self._rec.record(0, 0.0, loss0, acc0, val0, self.optimizer, self._clock)
        self._check = DivergenceCheck.for_run(config.loss, data.classes, loss0)
        # an exploded network keeps its record at initialization: the charts show what exploded
        reason = reason or self._check.at_initialization()
        if reason:
            self._diverge(reason)
        self._wall, self._clock = time.perf_counter() - self._clock, None

    @property
    def step(self) -> int:
        """Optimizer steps taken."""
        return self._step

    @property
    def epoch(self) -> float:
        """Epochs of training done, in steps: step / steps_per_epoch."""
        return self._step / self.steps_per_epoch

    @property
    def done(self) -> bool:
        """Every planned step taken, or diverged: nothing left to advance."""
        return self.diverged_at is not None or self._step >= self.total_steps

    @_exclusive
    def reset(self) -> None:
        """Back to initialization with the same seed and data: the numbers of a new ``Trainer``."""
        with blas_threads(self.config.width), np.errstate(all="ignore"):
            self._build(self.data)

    @property
    def closed(self) -> bool:
        return self.model is None

    @_exclusive
    def close(self) -> None:
        """Let go of the model, the optimizer and the run's cast copies of the data, and hand the memory back to
        the system (``lab.engine.threads.return_free_memory``: the heap setting would keep it in the process)."""
        if self.model is None:
            return
        self._settle()
        self.model = self.optimizer = self._rec.model = self._rec.X_probe = self._rec.copy = None
        self._X = self._X_val = self._order = self._X_epoch = self._y_epoch = None
        return_free_memory()

    @_exclusive
    def advance(self, steps: int | None = None, epochs: int | None = None, callback=None,
                should_stop: Callable[[], bool] | None = None) -> bool:
        """Run ``steps`` optimizer steps, or to the end of ``epochs`` epochs from here, or (neither) to the
        end; fewer when the run ends or pauses first.  Returns whether the run can go on."""
        if steps is not None and epochs is not None:
            raise ValueError("advance by steps or by epochs, not both")
        if self.model is None:
            raise RuntimeError("this trainer was closed")
        if steps is not None:
            target = self._step + max(0, int(steps))
        elif epochs is not None:
            target = (self._step // self.steps_per_epoch + max(0, int(epochs))) * self.steps_per_epoch
        else:
            target = self.total_steps
        target = min(target, self.total_steps)
        self.paused = False
        if self.diverged_at is not None:
            return False
        self._clock = time.perf_counter() - self._wall
        try:
            with blas_threads(self.config.width), np.errstate(all="ignore"):
                try:
                    if not self._announced:  # the record at initialization, for the first callback
                        self._announced = True
                        self.paused = bool(callback and callback(self._progress()))
                    if not self.paused and self._step < target:
                        self.paused = self._run_to(target, callback, should_stop)
                finally:  # a trainer at rest has no record pass in the background, however advance ended
                    self._settle()
        finally:
            self._wall, self._clock = time.perf_counter() - self._clock, None
        return not self.done

    def _run_to(self, target: int, callback, should_stop) -> bool:
        """The training loop, from ``_step`` to ``target``; True when a callback or should_stop paused it."""
        model, optimizer, config, check, rec = self.model, self.optimizer, self.config, self._check, self._rec
        batch, spe, record_set = self._batch, self.steps_per_epoch, self._record_set
        clip_norm, weight_decay = config.clip_norm, config.weight_decay
        while self._step < target:
            if self._at == spe:
                self._new_epoch()
            lo = self._at * batch
            xb, yb = self._X_epoch[lo : lo + batch], self._y_epoch[lo : lo + batch]
            loss = model.loss_and_grads(xb, yb)
            step = self._step + 1
            if not math.isfinite(loss):
                reason = f"the training loss became {loss} at step {step}"
            elif not pieces.all_finite(model.flat_grads):
                reason = f"the gradient became inf or NaN at step {step}"
            else:
                reason = check.during_training(loss, step)
            if reason:
                if not self._settle():  # a record pass still running may have found it first, steps ago
                    self._diverge(reason)
                return False
            if clip_norm > 0:
                self._clips.add(*clip_by_global_norm(model.flat_grads, clip_norm))
            if weight_decay > 0:
                add_weight_decay(model.flat_grads, model.flat_params, self._weight_slices, weight_decay)
            optimizer.step([model.flat_params], [model.flat_grads])
            self._step, self._at = step, self._at + 1
            self._run_loss += loss * len(yb)
            self._run_correct += int((model.loss_layer.y.argmax(axis=1) == yb).sum())
            self._run_count += len(yb)
            if step not in record_set:
                if should_stop is not None and should_stop():
                    return True
                continue
            if self._settle():  # the last record's pass, if it runs in the background
                return False
            val = evaluate(model, self._X_val, self._y_val)
            reason = rec.record(step, step / spe, self._run_loss / self._run_count,
                                self._run_correct / self._run_count, val, optimizer, self._clock,
                                rollback=self._rollback_point() if rec.copy is not None else None)
            self._run_loss, self._run_correct, self._run_count = 0.0, 0, 0
            if reason:
                self._diverge(reason)
                return False
            if callback and callback(self._progress()):
                return True
            if self.diverged_at is not None:  # the callback's look at the statistics settled a failed pass
                return False
        return False

    def _rollback_point(self):
        """What a record point leaves that the steps after it change and a divergence found there must show:
        the step, the epoch, the clipping record, batch norm's running averages (the weights are in the
        recorder's copy)."""
        running = [(n, n.running_mean.copy(), n.running_var.copy()) for n in self.model.norms if hasattr(n, "running_mean")]
        return self._step, self._epochs_begun, dataclasses.replace(self._clips), running

    def _settle(self) -> bool:
        """Wait for a record pass running in the background; when it found the gradient inf or NaN, go
        back to its step and end the run there, as a pass in line would have.  Returns whether it did."""
        failed = self._rec.settle()
        if failed is None:
            return False
        reason, (self._step, self._epochs_begun, self._clips, running) = failed
        np.copyto(self.model.flat_params, self._rec.copy.flat_params)
        for norm, mean, var in running:
            norm.running_mean[...], norm.running_var[...] = mean, var
        self._diverge(reason)
        return True

    def _new_epoch(self) -> None:
        """Draw the epoch's order and lay the training set out in it once, so that each batch is a
        contiguous view (a batch taken as X[idx] would be a copy, every step)."""
        self._order, self._at = self._shuffle_rng.permutation(len(self._X)), 0
        self._epochs_begun += 1
        if self._X_epoch is None:
            self._X_epoch, self._y_epoch = np.empty_like(self._X), np.empty_like(self._y)
        np.take(self._X, self._order, axis=0, out=self._X_epoch)
        np.take(self._y, self._order, out=self._y_epoch)

    def _diverge(self, reason: str) -> None:
        # the epoch in which it happened (1 = the first epoch of training; 0 = at initialization)
        self.diverged_at = self._epochs_begun if self.config.record_every == 0 else self._step / self.steps_per_epoch
        self.diverge_reason = reason
        self._rec.mark_diverged(self.diverged_at, self._step, self._clock)

    def _elapsed(self) -> float:
        return self._wall if self._clock is None else time.perf_counter() - self._clock

    def _progress(self) -> Progress:
        rec = self._rec
        return Progress(self._step, self.total_steps, rec.rows[-1]["epoch"], rec.rows, rec.stats,
                        self._snapshot, settle=self._settle)

    @_exclusive
    def _snapshot(self) -> RunResult | None:
        # a page may keep a Progress after the trainer was closed (a browser that left): nothing to show then
        return None if self.model is None else self.result(stopped=True)

    @_exclusive
    def result(self, stopped: bool | None = None) -> RunResult:
        """The run so far as a ``RunResult`` (copies of the weights; ``stopped`` while not done)."""
        if self.model is None:
            raise RuntimeError("this trainer was closed")
        self._settle()
        result = self._rec.result(
            data=self.data, weights=self.model.weights(), norm_state=self.model.norm_state(),
            steps_per_epoch=self.steps_per_epoch, wall_s=self._elapsed(), diverged_at=self.diverged_at,
            diverge_reason=self.diverge_reason, stopped=not self.done if stopped is None else stopped,
            integer_epochs=self.config.record_every == 0,
        )
        result.meta["step"] = self._step  # where a stopped run stands, which may be between two records
        if self.config.clip_norm > 0:
            result.meta["clipping"] = self._clips.summary()
        return result
