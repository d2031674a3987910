"""Verdicts: what a run's numbers say, as small values (a kind and the numbers behind it).

One function decides each verdict, so that the same numbers get the same verdict on
every page; ``summaries.py`` turns a verdict into words.

flow(layers, epoch, residual): how the error signal changes from the last hidden layer back to
layer 1 at one record (vanishing, exploding, healthy, symmetric, blocked).  In a residual network
the verdict is about the layers that share the shortcut (2..L-1); layer 1, which has none (it
changes the width), is measured apart, against layer 2.
outcome(result): what became of the run (untrained, diverged, converged, at chance,
learning, not improving).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from lab.engine.results import records

# layer 1's delta_rms over the last hidden layer's: below this the signal vanishes, above
# EXPLODING_ABOVE it explodes; in between every layer gets a usable signal
VANISHING_BELOW = 0.1
EXPLODING_ABOVE = 10.0
# a training loss at or below this fits the training data (cross-entropy 0.01: the true
# class gets probability 0.99 on average)
CONVERGED_LOSS = 0.01
# final accuracy within this of chance (1 / classes) counts as not having learned
CHANCE_MARGIN = 0.05
# optimizers that divide each step by the size of its own recent gradients, so that the
# step sizes do not follow the size of the error signal
ADAPTIVE_OPTIMIZERS = frozenset({"adagrad", "rmsprop", "adam"})


class Flow(StrEnum):
    SHALLOW = "shallow"  # fewer than two hidden layers: no depth to vanish over
    UNKNOWN = "unknown"  # the numbers are not finite: nothing to say
    SYMMETRIC = "symmetric"  # zero weights, identical units: they stay identical forever
    BLOCKED = "blocked"  # exactly no error signal reaches a hidden layer
    VANISHING = "vanishing"
    EXPLODING = "exploding"
    HEALTHY = "healthy"


@dataclass(frozen=True)
class FlowVerdict:
    kind: Flow
    epoch: float
    last: int = 0  # the last hidden layer
    ratio: float = math.nan  # delta_rms of layer ``first`` over that of layer ``last``
    factor: float = math.nan  # geometric-mean change per layer, ratio ** (1 / (last - first))
    first: int = 1  # the first layer of the span judged: 1, or 2 in a residual network (layer 1 has no shortcut)
    layer1_gap: float = math.nan  # first == 2: delta_rms of layer 1 over that of layer 2
    step_first: float = math.nan  # update_ratio of layer ``first`` (NaN before any step)
    step_last: float = math.nan  # update_ratio of layer ``last``
    grad_first: float = math.nan  # grad_mean_abs of layer ``first``: mean |dL/dW| of its weights
    blocked_at: int = 0  # BLOCKED, SYMMETRIC: the highest hidden layer with exactly zero delta_rms (0: none)
    cause: str = ""  # BLOCKED: "zero_weights", "dead" or "saturated"; VANISHING: "underflow" if it hit 0
    hidden_outputs_zero: bool = False  # SYMMETRIC: every hidden unit outputs exactly 0
    output_grad_zero: bool = False  # SYMMETRIC: not even the output layer's weights get a gradient


def signal_ratio(layers: pd.DataFrame, epoch) -> tuple[float, int, int] | None:
    """delta_rms of layer 1 over that of the last hidden layer at ``epoch``: (ratio, 1, last)."""
    at = layers[(layers["epoch"] == epoch)].set_index("layer")["delta_rms"]
    if at.empty:
        return None
    hidden = at.index.max() - 1
    if hidden < 2:
        return None
    first, last = float(at.loc[1]), float(at.loc[hidden])
    ratio = first / last if last > 0 else (0.0 if first == 0 else math.inf)
    return ratio, 1, int(hidden)


def per_layer_factor(ratio: float, span: int) -> float:
    """The geometric-mean change of delta_rms per layer over ``span`` layers."""
    return ratio ** (1.0 / span) if ratio > 0 and span > 0 else math.nan


def starts_symmetric(layers: pd.DataFrame) -> bool:
    """True when the first record has all weights zero and every hidden layer's units give one
    and the same output for every example: identical units get identical gradients, so no
    training can ever make them differ."""
    if layers.empty:
        return False
    at = layers[layers["epoch"] == layers["epoch"].min()]
    hidden = at[at["layer"] < at["layer"].max()]
    return bool(len(hidden) and (at["weight_norm"] == 0).all() and (hidden["act_std"] == 0).all())


def _over(a: float, b: float) -> float:
    """a / b for delta_rms values, with 0 / 0 = 0 and a / 0 = inf."""
    return a / b if b > 0 else (0.0 if a == 0 else math.inf)


def flow(layers: pd.DataFrame, epoch, residual: bool = False) -> FlowVerdict | None:
    """The verdict on the error signal at ``epoch`` (None when that epoch was not recorded).

    layers: the tidy per-layer table of a run (epoch, layer, delta_rms, update_ratio, ...).
    residual: the network has shortcuts (on every hidden layer but the first); the verdict then
    judges layers 2..last, which share them, and reports layer 1 against layer 2 in ``layer1_gap``.
    """
    at = layers[layers["epoch"] == epoch].set_index("layer").sort_index()
    if at.empty:
        return None
    last = int(at.index.max()) - 1
    first = 2 if residual and last >= 3 else 1
    if last < first + 1:
        return FlowVerdict(Flow.SHALLOW, epoch, last=max(last, 0))
    delta = at["delta_rms"].to_numpy(dtype=float)[:last]  # hidden layers 1..last
    ratio = _over(delta[first - 1], delta[-1])
    steps = at["update_ratio"].to_numpy(dtype=float)
    s1, sl = steps[first - 1], steps[last - 1]
    common = {"last": last, "ratio": ratio, "factor": per_layer_factor(ratio, last - first), "first": first,
              "layer1_gap": _over(delta[0], delta[1]) if first == 2 else math.nan, "step_first": s1,
              "step_last": sl, "grad_first": float(at["grad_mean_abs"].iloc[first - 1])}
    zero = np.flatnonzero(delta == 0)
    blocked_at = int(zero[-1]) + 1 if len(zero) else 0
    if starts_symmetric(layers):
        hidden = at.loc[: last]
        return FlowVerdict(
            Flow.SYMMETRIC, epoch, blocked_at=blocked_at, **common,
            hidden_outputs_zero=bool(((hidden["act_mean"] == 0) & (hidden["act_std"] == 0)).all()),
            output_grad_zero=bool(at["grad_norm"].iloc[-1] == 0),
        )
    if not np.isfinite(delta).all():
        return FlowVerdict(Flow.UNKNOWN, epoch, **common)
    if blocked_at:
        above = at.loc[blocked_at + 1]
        here = at.loc[blocked_at]
        if above["weight_norm"] == 0:
            cause = "zero_weights"
        elif here["dead_frac"] == 1:
            cause = "dead"
        elif here["saturated_frac"] == 1:
            cause = "saturated"
        else:  # every unit passes some signal on, yet it rounded to exactly 0: the extreme of vanishing
            return FlowVerdict(Flow.VANISHING, epoch, blocked_at=blocked_at, cause="underflow", **common)
        return FlowVerdict(Flow.BLOCKED, epoch, blocked_at=blocked_at, cause=cause, **common)
    if not math.isfinite(ratio):
        return FlowVerdict(Flow.UNKNOWN, epoch, **common)
    kind = Flow.VANISHING if ratio < VANISHING_BELOW else Flow.EXPLODING if ratio > EXPLODING_ABOVE else Flow.HEALTHY
    return FlowVerdict(kind, epoch, **common)


class Outcome(StrEnum):
    UNTRAINED = "untrained"  # only the initialization was recorded
    DIVERGED = "diverged"
    CONVERGED = "converged"  # training loss at or below CONVERGED_LOSS
    AT_CHANCE = "at_chance"  # trained, but accuracy within CHANCE_MARGIN of chance
    LEARNING = "learning"  # training loss went down
    NOT_IMPROVING = "not_improving"  # training loss is no lower than at initialization


@dataclass(frozen=True)
class RunVerdict:
    outcome: Outcome
    first_loss: float = math.nan  # training loss at the first record (initialization)
    last_loss: float = math.nan  # at the last record with finite numbers
    last_epoch: float = 0.0  # that record's epoch
    accuracy: float = math.nan  # training accuracy at that record
    val_accuracy: float = math.nan
    chance: float = math.nan  # 1 / classes (NaN when the classes are unknown)
    planned_epochs: int = 0
    diverged_at: float | None = None
    reason: str = ""
    stopped: bool = False


def outcome(result) -> RunVerdict:
    """What became of ``result`` (a ``RunResult``), from its history."""
    h = result.history
    kept = records(h)
    ok = kept[np.isfinite(kept["loss"].to_numpy(dtype=float))]
    classes = (result.data.classes if result.data is not None
               else result.config.n_classes if result.config.dataset != "csv" else None)
    base = {"chance": 1.0 / classes if classes else math.nan, "planned_epochs": result.config.epochs,
            "diverged_at": result.diverged_at, "reason": result.diverge_reason, "stopped": result.stopped}
    if ok.empty:
        kind = Outcome.DIVERGED if result.diverged_at is not None else Outcome.UNTRAINED
        return RunVerdict(kind, **base)
    first, last = ok.iloc[0], ok.iloc[-1]
    numbers = {"first_loss": float(first["loss"]), "last_loss": float(last["loss"]), "last_epoch": last["epoch"],
               "accuracy": float(last["accuracy"]), "val_accuracy": float(last["val_accuracy"])}
    if result.diverged_at is not None:
        kind = Outcome.DIVERGED
    elif len(ok) < 2:
        kind = Outcome.UNTRAINED
    elif numbers["last_loss"] <= CONVERGED_LOSS:
        kind = Outcome.CONVERGED
    elif numbers["accuracy"] < base["chance"] + CHANCE_MARGIN:
        kind = Outcome.AT_CHANCE
    elif numbers["last_loss"] < numbers["first_loss"]:
        kind = Outcome.LEARNING
    else:
        kind = Outcome.NOT_IMPROVING
    return RunVerdict(kind, **numbers, **base)
