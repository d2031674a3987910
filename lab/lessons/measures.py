"""What a lesson may ask about: a small named set of measurements, each computed from a step's own run.

A question names one (``measure: signal_ratio``) and the right answer is that measurement of the learner's run;
a reveal quotes them as template fields (``{signal_ratio}``), so the words always match the numbers on screen.
Each measurement says which live blocks give it: an experiment only initialized ("init"), one trained
("train"), one whose Jacobian spectrum is taken at initialization ("spectrum"), or a worked example
("fruit_shop", "softmax", "gradcheck").
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lab.report import verdicts

EXPERIMENT = frozenset({"init", "train", "spectrum"})
TRAINED = frozenset({"train"})
SPECTRUM = frozenset({"spectrum"})


@dataclass(frozen=True)
class Measurement:
    name: str
    blocks: frozenset  # the block names whose run gives it
    describe: str
    fn: Callable  # (StepRun) -> float or str
    values: tuple[str, ...] = ()  # a measurement of kinds: every value it can take (empty: a number)

    @property
    def is_number(self) -> bool:
        return not self.values


def _at(run, epoch_kind: str):
    layers = run.result.layers
    return layers["epoch"].min() if epoch_kind == "init" else layers["epoch"].max()


def _flow(run, epoch_kind: str):
    return verdicts.flow(run.result.layers, _at(run, epoch_kind), residual=run.config.residual)


def _hidden_mean(run, column: str) -> float:
    layers = run.result.layers
    at = layers[layers["epoch"] == layers["epoch"].min()]
    hidden = at[at["layer"] < at["layer"].max()][column].to_numpy(dtype=float)
    hidden = hidden[np.isfinite(hidden)]
    return float(hidden.mean()) if len(hidden) else math.nan


def _theory_ratio(run) -> float:
    """The mean-field prediction of layer 1's error signal over the last hidden layer's (NaN where it does not apply)."""
    from lab.theory import meanfield

    if run.config.depth < 2 or meanfield.applicability(run.config).fit is meanfield.Fit.DOES_NOT_APPLY:
        return math.nan
    data = run.result.data
    mean_square = np.mean(data.X_train**2, axis=1) if data is not None else 1.0
    predicted = meanfield.predict(run.config, run.config.n_inputs, run.config.n_classes, mean_square)
    # the layer signal_ratio starts from: 1, or 2 in a residual network (layer 1 has no shortcut)
    first = _flow(run, "init").first
    return float(predicted["predicted_delta_ratio"].iloc[first - 1])


def _depth_scale(run) -> float:
    """Mean-field's depth scale xi: the squared signal changes by e every xi layers (inf at the edge of chaos)."""
    from lab.engine.activations import get_activation
    from lab.theory import meanfield

    act = get_activation(run.config.activation, run.config.leaky_slope)
    r = meanfield.regime(act, meanfield.sigma_w(run.config), run.config.bias_std)
    return math.inf if r.q_star is not None and r.depth_scale is None else (
        abs(r.depth_scale) if r.depth_scale is not None else math.nan)


def _deepest(run):
    """The spectrum's summary row at its deepest finite layer, and the theory's mean of s^2 there (NaN if none)."""
    row = run.spectrum.spectrum.summary().iloc[-1]
    return row, run.spectrum.theory_mean_s2(int(row["depth"]))


def _decades(run) -> float:
    return float(_deepest(run)[0]["decades_90"])


def _fruit(edge: str) -> Callable:
    return lambda run: float(run.table.set_index("edge").loc[edge, "grad"])


FLOWS = tuple(k.value for k in verdicts.Flow)
OUTCOMES = tuple(k.value for k in verdicts.Outcome)

MEASUREMENTS: dict[str, Measurement] = {m.name: m for m in [
    # experiments, at initialization (both kinds) and at the end (trained only)
    Measurement("signal_ratio", EXPERIMENT, "layer 1's error signal (delta_rms) over the last hidden layer's, at "
                "initialization", lambda run: _flow(run, "init").ratio),
    Measurement("per_layer_factor", EXPERIMENT, "how the error signal changes per layer on its way back, at "
                "initialization (the geometric mean)", lambda run: _flow(run, "init").factor),
    Measurement("verdict", EXPERIMENT, "what the error signal does at initialization",
                lambda run: _flow(run, "init").kind.value, FLOWS),
    Measurement("last_hidden", EXPERIMENT, "the number of the last hidden layer (the network's depth)",
                lambda run: float(run.config.depth)),
    Measurement("theory_ratio", EXPERIMENT, "mean-field theory's prediction of signal_ratio (n/a where it does not "
                "apply)", _theory_ratio),
    Measurement("depth_scale", EXPERIMENT, "mean-field theory's depth scale: the squared signal changes by a factor "
                "e every this many layers", _depth_scale),
    Measurement("saturated_frac", EXPERIMENT, "the fraction of sigmoid or tanh units that are saturated at "
                "initialization (hidden layers' mean)", lambda run: _hidden_mean(run, "saturated_frac")),
    Measurement("dead_frac", EXPERIMENT, "the fraction of hidden units that output 0 for every probe example, at "
                "initialization", lambda run: _hidden_mean(run, "dead_frac")),
    Measurement("act_std", EXPERIMENT, "the spread (std) of the hidden layers' outputs at initialization (their mean)",
                lambda run: _hidden_mean(run, "act_std")),
    Measurement("signal_ratio_end", TRAINED, "signal_ratio at the last record of training",
                lambda run: _flow(run, "end").ratio),
    Measurement("verdict_end", TRAINED, "what the error signal does at the last record of training",
                lambda run: _flow(run, "end").kind.value, FLOWS),
    Measurement("outcome", TRAINED, "what became of the training run",
                lambda run: verdicts.outcome(run.result).outcome.value, OUTCOMES),
    Measurement("final_loss", TRAINED, "the training loss at the last record (before divergence, if any)",
                lambda run: verdicts.outcome(run.result).last_loss),
    Measurement("final_val_accuracy", TRAINED, "the validation accuracy at the last record (a fraction)",
                lambda run: verdicts.outcome(run.result).val_accuracy),
    Measurement("diverged_at", TRAINED, "the epoch at which the run diverged (n/a if it did not)",
                lambda run: math.nan if run.result.diverged_at is None else float(run.result.diverged_at)),
    # the Jacobian spectrum at initialization, at its deepest layer (J_l = dh_l / dh_1)
    Measurement("spectrum_layer", SPECTRUM, "the layer l of J_l = dh_l/dh_1 the spectrum measurements are taken at "
                "(the deepest)", lambda run: float(_deepest(run)[0]["depth"])),
    Measurement("mean_s2", SPECTRUM, "the mean of the squared singular values of J_l (what the average error signal "
                "sees)", lambda run: float(_deepest(run)[0]["mean_s2"])),
    Measurement("theory_mean_s2", SPECTRUM, "free probability's (and mean-field's) mean of s^2: the product of chi "
                "(n/a where it does not apply)", lambda run: _deepest(run)[1]),
    Measurement("spread_decades", SPECTRUM, "how many orders of magnitude the middle 90% of J_l's singular values "
                "span (log10 of the 95th over the 5th percentile; at least, where the 5th is numerically zero)", _decades),
    Measurement("spread_factor", SPECTRUM, "the 95th percentile of J_l's singular values over the 5th",
                lambda run: 10 ** _decades(run)),
    Measurement("zero_share", SPECTRUM, "the share of J_l's singular values that are numerically zero",
                lambda run: float(_deepest(run)[0]["share_below_floor"])),
    # the fruit shop of the source text
    Measurement("price", frozenset({"fruit_shop"}), "the price with tax",
                lambda run: float(run.table.set_index("edge").loc["price", "value"])),
    *(Measurement(f"d_{edge}", frozenset({"fruit_shop"}), f"d price / d {edge.replace('_', ' ')}", _fruit(edge))
      for edge in ("apple_price", "apple_count", "orange_price", "orange_count", "tax", "subtotal")),
    # softmax with cross-entropy
    Measurement("loss", frozenset({"softmax"}), "the cross-entropy loss of the example", lambda run: run.steps.loss),
    Measurement("p_target", frozenset({"softmax"}), "the probability softmax gives the target class",
                lambda run: float(run.steps.y[run.target])),
    Measurement("d_target", frozenset({"softmax"}), "dL/da of the target class's logit: y - t there, so p_target - 1",
                lambda run: float(run.steps.dL_da_fused[run.target])),
    Measurement("max_diff", frozenset({"softmax"}), "the largest difference between the fused backward y - t and "
                "central differences", lambda run: run.steps.max_diff),
    # the gradient check
    Measurement("max_rel_error", frozenset({"gradcheck"}), "the largest relative error between backprop and "
                "central differences, over the layers", lambda run: float(run.check["rel_error"].max())),
    Measurement("check", frozenset({"gradcheck"}), "whether every layer passes the gradient check",
                lambda run: "pass" if bool(run.check["passed"].all()) else "fail", ("pass", "fail")),
    Measurement("failing_layers", frozenset({"gradcheck"}), "how many layers fail the gradient check",
                lambda run: float((~run.check["passed"].astype(bool)).sum())),
]}
