"""The recorder: what a run keeps of itself as it trains.

At each record point the Trainer hands it the step's loss and accuracy; with ``instrument`` on it takes
the record pass (``lab.engine.probe``) on the probe set, in line or, for a narrow network, on a copy
of the weights in the thread ``lab.engine.threads.probe_executor`` gives, and keeps the history rows,
the per-layer statistics and the histogram snapshots until ``result()`` puts them into a ``RunResult``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import Future

import numpy as np
import pandas as pd

from .model import mlp_from_config
from .probe import DELTA_EDGES, STAT_COLUMNS, Work, act_edges, probe
from .results import HISTORY_COLUMNS, LAYER_COLUMNS, RunResult
from .threads import probe_executor


def probe_failed(step: int) -> str:
    return f"a gradient on the probe set became inf or NaN at step {step}"


@dataclasses.dataclass
class _Pending:
    """A record pass running in the background: its record's place, and how to go back to its step."""

    index: int  # in the recorder's rows and stats
    step: int
    epoch: float
    with_hist: bool
    future: Future
    rollback: object


class Recorder:
    """Accumulates history rows, per-layer statistics and histogram snapshots."""

    def __init__(self, config, model, X_probe, y_probe, hist_at, has_val, background=False):
        """background: take the record passes after the first on a copy of the model in another thread
        (``probe_in_background``); ``settle()`` then waits for the one in progress."""
        self.config, self.model, self.has_val = config, model, has_val
        self.X_probe, self.y_probe = X_probe, y_probe
        self.copy = mlp_from_config(config, model.weights(), model.norm_state()) if background else None
        self.pending: _Pending | None = None
        self.hist_at = hist_at
        self.slices = model.layer_slices()  # where each W_l sits in the flat buffers
        self.rows: list[dict] = []
        self.stats: list[np.ndarray] = []
        self.hist_epochs: list[float] = []
        self.act_hists: list[np.ndarray] = []
        self.act_zeros: list[np.ndarray] = []
        self.delta_hists: list[np.ndarray] = []

    @property
    def model(self):
        return self._model

    @model.setter
    def model(self, model) -> None:
        # the probe's work arrays (a few activation-sized arrays, kept from one record to the next) go
        # with the model: Trainer.close lets go of both
        self._model, self.work = model, Work()

    def record(self, step, epoch, loss, acc, val, optimizer, start, rollback=None) -> str:
        """Append one record; return a divergence reason, or "" when all is finite.

        With a background copy, the record pass of a step after the first is started on it and its
        statistics come in ``settle()``, which must be called before the next record; ``rollback`` is
        what ``settle`` hands back if that pass finds the gradient inf or NaN (the record is then taken back).
        """
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
            # the last step's change is computed from the gradient, which the probe's backward overwrites
            update_norms = optimizer.update_norms(self.slices)
            if self.copy is not None and step > 0:
                np.copyto(self.copy.flat_params, self.model.flat_params)
                future = probe_executor().submit(probe, self.copy, self.X_probe, self.y_probe, update_norms,
                                                  with_hist, self.work)
                self.pending = _Pending(len(self.rows), step, epoch, with_hist, future, rollback)
            else:
                stats = self._take(probe(self.model, self.X_probe, self.y_probe, update_norms, with_hist, self.work),
                                   epoch, with_hist)
                if stats is None:
                    return probe_failed(step)
        self.rows.append(
            {"epoch": epoch, "step": step, "loss": loss, "accuracy": acc, "val_loss": val_loss,
             "val_accuracy": val_acc, "elapsed_s": time.perf_counter() - start, "diverged": False}
        )
        self.stats.append(stats)
        return ""

    def _take(self, probed, epoch, with_hist):
        """A record pass's statistics, its histograms kept; None when a gradient in them is inf or NaN."""
        _, stats, act_h, act_z, delta_h = probed
        if not np.isfinite(stats[:, :4]).all():
            return None
        if with_hist:
            self.hist_epochs.append(epoch)
            self.act_hists.append(act_h)
            self.act_zeros.append(act_z)
            self.delta_hists.append(delta_h)
        return stats

    def settle(self):
        """Wait for the record pass running in the background, if any, and put its statistics in their
        record.  Returns None, or (reason, rollback) when that pass found the gradient inf or NaN: its
        record is then taken back, as a pass in line would not have made it."""
        pending, self.pending = self.pending, None
        if pending is None:
            return None
        stats = self._take(pending.future.result(), pending.epoch, pending.with_hist)
        if stats is None:
            del self.rows[pending.index :], self.stats[pending.index :]
            return probe_failed(pending.step), pending.rollback
        self.stats[pending.index] = stats
        return None

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
