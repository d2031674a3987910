"""What a run gives back: ``RunResult`` (plain arrays and DataFrames), and ``Progress``, what a
callback sees at each record point while the run is going."""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lab.data.datasets import Dataset

from .config import RunConfig
from .model import MLP, mlp_from_config
from .probe import DELTA_EDGES, STAT_COLUMNS

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "elapsed_s", "step", "diverged")
LAYER_COLUMNS = ("epoch", "layer", *STAT_COLUMNS, "step")
SLIM_KEEP_DATA_BYTES = 4 * 2**20  # a slimmed run keeps data smaller than this


def records(history: pd.DataFrame) -> pd.DataFrame:
    """The rows of a run's history that are records: all but the one marking where it diverged."""
    return history[~history["diverged"].astype(bool)] if len(history) else history


class Progress:
    """What a callback sees at each record point.

    step, total_steps, epoch: where the run is; history: the rows (dicts) recorded so far; snapshot():
    what has been recorded, as a stopped RunResult (or None); settle(): waits for the last record's
    statistics when they are computed in the background (``layer_stats`` calls it).
    """

    def __init__(self, step: int, total_steps: int, epoch: float, history: list, layer_stats: list,
                 snapshot: Callable[[], RunResult] | None = None, settle: Callable[[], object] | None = None):
        self.step, self.total_steps, self.epoch, self.history = step, total_steps, epoch, history
        self.snapshot = snapshot
        self._layer_stats, self._settle = layer_stats, settle

    @property
    def layer_stats(self) -> list:
        """One (L, len(STAT_COLUMNS)) array per record, aligned with history; reading it waits for the
        last record's, when they are computed beside the training."""
        if self._settle is not None:
            self._settle()
        return self._layer_stats

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 1.0

    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history, columns=list(HISTORY_COLUMNS))

    def layers_frame(self, records: int = 1) -> pd.DataFrame:
        """The per-layer statistics of the last ``records`` records (and the first), tidy."""
        picked = sorted({0, *range(max(0, len(self.history) - records), len(self.history))})
        frames = []
        for i in picked:
            if self.layer_stats[i] is None:
                continue
            f = pd.DataFrame(self.layer_stats[i], columns=list(STAT_COLUMNS))
            f.insert(0, "layer", np.arange(1, len(f) + 1))
            f.insert(0, "epoch", self.history[i]["epoch"])
            frames.append(f)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(LAYER_COLUMNS))


class BoundaryGap(enum.Enum):
    """Why a run on 2-D data draws no decision boundary (``RunResult.boundary_gap``; the words are
    ``summaries.boundary_note``'s)."""

    SESSION = "session"  # the session kept the final weights of its newest runs only (RunResult.slim)
    STORE = "store"  # the run store did not keep them: they were over its size cap
    TABLES = "tables"  # the run came from exported tables, which hold no weights
    WEIGHTS = "weights"  # the weights are missing for another reason (a file that did not carry them)
    DATA = "data"  # the weights are there, but the run's data was not made again (beyond the page's ranges)
    NO_STEP = "no_step"  # batch norm before any step: its running averages describe no network yet


@dataclass
class RunResult:
    config: RunConfig
    history: pd.DataFrame  # HISTORY_COLUMNS
    layers: pd.DataFrame  # LAYER_COLUMNS, tidy: one row per (record, layer)
    hist_epochs: np.ndarray  # (R,) epochs of the histogram snapshots
    act_hist: np.ndarray  # (R, L-1, bins) counts of non-zero hidden activations
    act_zero_frac: np.ndarray  # (R, L-1) fraction of hidden activations exactly 0
    act_edges: np.ndarray
    delta_hist: np.ndarray  # (R, L, bins) counts of log10 |per-example delta|
    delta_edges: np.ndarray
    weights: list  # final (W_l, b_l)
    data: Dataset | None  # None for a run imported from its exported tables
    steps_per_epoch: int
    wall_s: float
    diverged_at: float | None = None
    diverge_reason: str = ""
    stopped: bool = False
    meta: dict = field(default_factory=dict)
    # what each hidden layer's norm computes with in evaluation ({} without one): gamma, beta, and for
    # batch norm running_mean, running_var, in the run's dtype; with ``weights``, the whole eval network
    norm_state: list = field(default_factory=list)

    @property
    def records(self) -> pd.DataFrame:
        """The history's records (``records``): without the row that marks divergence."""
        return records(self.history)

    @property
    def depth(self) -> int:
        return int(self.layers["layer"].max()) if len(self.layers) else len(self.weights)

    def eval_model(self) -> MLP | None:
        """The trained network rebuilt from its final weights and norm state, for evaluation (batch norm
        on its running statistics, dropout off); None when the weights were not kept (slim, imported)."""
        return mlp_from_config(self.config, self.weights, self.norm_state) if self.weights else None

    def boundary_gap(self) -> BoundaryGap | None:
        """Why this run draws no decision boundary though its inputs are 2-D; None when it draws one, and
        when its inputs are not 2-D (there is no boundary to miss)."""
        dim = self.data.input_dim if self.data is not None else (
            None if self.config.dataset == "csv" else self.config.n_inputs)
        if dim != 2:
            return None
        if not self.weights:
            return (BoundaryGap.SESSION if self.meta.get("slim") else
                    BoundaryGap.STORE if self.meta.get("weights_not_stored") else
                    BoundaryGap.TABLES if self.meta.get("imported") else BoundaryGap.WEIGHTS)
        if self.data is None:
            return BoundaryGap.DATA
        if self.config.norm == "batch" and not (len(self.history) and self.history["step"].max() > 0):
            return BoundaryGap.NO_STEP
        return None

    def nbytes(self) -> int:
        """The memory its arrays and tables hold (weights, data, histograms, history, statistics)."""
        arrays = [self.hist_epochs, self.act_hist, self.act_zero_frac, self.act_edges, self.delta_hist,
                  self.delta_edges, *(a for pair in self.weights for a in pair),
                  *(a for state in self.norm_state for a in state.values())]
        if self.data is not None:
            arrays += [self.data.X_train, self.data.y_train, self.data.X_val, self.data.y_val]
        tables = int(self.history.memory_usage(index=False).sum() + self.layers.memory_usage(index=False).sum())
        return sum(int(a.nbytes) for a in arrays) + tables

    def slim(self, keep_data_below: int = SLIM_KEEP_DATA_BYTES) -> RunResult:
        """A copy without the final weights (and norm state), and without the data unless it is small: every chart
        but the decision boundary still draws (the theory line needs the data's mean square)."""
        data = self.data
        if data is not None and data.X_train.nbytes + data.X_val.nbytes > keep_data_below:
            data = None
        return dataclasses.replace(self, weights=[], norm_state=[], data=data, meta={**self.meta, "slim": True})

    @classmethod
    def from_tables(cls, config: RunConfig, history: pd.DataFrame, layers: pd.DataFrame, summary: dict) -> RunResult:
        """A run known only by its exported tables (no weights, data or histograms)."""
        L = int(layers["layer"].max()) if len(layers) else config.depth + 1
        bins = len(DELTA_EDGES) - 1
        return cls(
            config=config, history=history, layers=layers, hist_epochs=np.zeros(0),
            act_hist=np.zeros((0, L - 1, 1), dtype=np.int64), act_zero_frac=np.zeros((0, L - 1)),
            act_edges=np.zeros(2), delta_hist=np.zeros((0, L, bins), dtype=np.int64), delta_edges=DELTA_EDGES,
            weights=[], data=None, steps_per_epoch=int(summary.get("steps_per_epoch") or 0),
            wall_s=float(summary.get("wall_s") or 0.0), diverged_at=summary.get("diverged_at"),
            diverge_reason=str(summary.get("diverge_reason") or ""), stopped=bool(summary.get("stopped")),
            meta={"imported": True},
        )
