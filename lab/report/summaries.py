"""Captions computed from a run: each says what its chart shows for *this* run.

The verdicts (vanishing, exploding, healthy, symmetric, converged, diverged, ...) are
decided once, from the numbers, in ``verdicts.py``; this module puts them into words, the
same words on every page.  Where the numbers cannot tell, a caption says less.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lab.engine.optim import OPTIMIZERS
from lab.engine.results import RunResult
from lab.formats import number

from .verdicts import (  # noqa: F401 - signal_ratio and per_layer_factor are read from here too
    ADAPTIVE_OPTIMIZERS,
    EXPLODING_ABOVE,
    VANISHING_BELOW,
    Flow,
    FlowVerdict,
    Outcome,
    flow,
    outcome,
    per_layer_factor,
    signal_ratio,
)

FLOW_WORDS = {
    Flow.VANISHING: "vanishing",
    Flow.EXPLODING: "exploding",
    Flow.HEALTHY: "healthy",
    Flow.SYMMETRIC: "symmetric",
    Flow.BLOCKED: "blocked",
    Flow.SHALLOW: "too shallow to tell",
    Flow.UNKNOWN: "cannot tell",
}


fmt = number  # a magnitude in a sentence: 3.0e-6, 0.012, 170, 1.4e4 (lab.formats)


def when(epoch) -> str:
    return "At initialization" if epoch == 0 else f"At epoch {epoch:g}"


def _plural(n, thing: str) -> str:
    return f"{n:g} {thing}" + ("" if n == 1 else "s")


def _layers(k: int) -> str:
    return "layer 1" if k == 1 else f"layers 1-{k}"


def flow_detail(v: FlowVerdict, strong: bool = False) -> str:
    """The numbers behind a flow verdict, in one clause (``strong``: the ratio in bold)."""
    k = v.kind
    if k is Flow.SHALLOW:
        return "with fewer than two hidden layers there is no depth for the signal to vanish over"
    if k is Flow.UNKNOWN:
        return "the error signal is not a finite number here"
    if k is Flow.SYMMETRIC:
        what = ("every hidden unit outputs 0 for every example" if v.hidden_outputs_zero
                else "the units of each hidden layer are identical")
        if v.blocked_at:
            into = "the hidden layers" if v.blocked_at == v.last else _layers(v.blocked_at)
            return f"{what}, and no error signal gets into {into}: zero weights carry none back"
        return f"{what} and get identical updates, so they never become different"
    if k is Flow.BLOCKED:
        b = v.blocked_at
        why = {"zero_weights": f"the zero weights of layer {b + 1} carry none back",
               "dead": f"every unit of layer {b} is dead (output 0 for every example)",
               "saturated": f"every unit of layer {b} is saturated (derivative 0)"}[v.cause]
        return f"{_layers(b)} get{'s' if b == 1 else ''} exactly zero error signal: {why}"
    if v.cause == "underflow":
        return f"the error signal shrinks to exactly 0 (below the smallest number stored) in {_layers(v.blocked_at)}"
    ratio = f"**{fmt(v.ratio)}×**" if strong else f"{fmt(v.ratio)}×"
    return (f"layer {v.first} gets {ratio} layer {v.last}'s error signal ({v.factor:.3g}× per layer)"
            + _layer1_apart(v))


def _layer1_apart(v: FlowVerdict) -> str:
    """For a residual network's verdict (judged on layers 2..last): what layer 1, without a shortcut, gets."""
    if v.first == 1:
        return ""
    return f"; layer 1, which has no shortcut, gets {fmt(v.layer1_gap)}× layer 2's"


def flow_rule() -> str:
    """How the flow verdicts are decided, in one sentence."""
    return (f"The verdict compares layer 1's error signal (delta_rms) with the last hidden layer's: below "
            f"{VANISHING_BELOW:g}× is vanishing, above {EXPLODING_ABOVE:g}× exploding, in between healthy. "
            "With residual connections it compares layer 2's, the first with a shortcut, and names layer 1 apart.")


def flow_line(layers: pd.DataFrame, epoch, residual: bool = False, markdown: bool = True) -> str:
    """One line: the verdict on the error signal at ``epoch``, with its numbers, its head in bold
    (``markdown``) or as plain text for the command line (``residual``: the network has shortcuts,
    see ``verdicts.flow``)."""
    v = flow(layers, epoch, residual)
    if v is None:
        return ""
    detail = flow_detail(v)
    head = f"{when(epoch)}: {FLOW_WORDS[v.kind]}."
    return f"{f'**{head}**' if markdown else head} {detail[0].upper()}{detail[1:]}."


def flow_lines(result: RunResult) -> list[str]:
    """The verdicts the Train page puts side by side, as plain text: at initialization (the first
    record) and at the last record, when that is a later one."""
    layers = result.layers
    if layers.empty:
        return []
    epochs = sorted(layers["epoch"].unique())
    return [flow_line(layers, e, result.config.residual, markdown=False) for e in dict.fromkeys([epochs[0], epochs[-1]])]


def _steps(v: FlowVerdict, optimizer: str | None) -> str:
    """What the verdict means for the optimizer's steps, from the measured update_ratio when there is one."""
    if math.isfinite(v.step_first) and math.isfinite(v.step_last):
        text = (f" The last step changed layer {v.first}'s weights by {fmt(v.step_first)} of their size and layer "
                f"{v.last}'s by {fmt(v.step_last)} (update_ratio)")
        if optimizer in ADAPTIVE_OPTIMIZERS:
            text += (f": {optimizer} scales each step by the size of its own recent gradients, "
                     "so the steps need not follow the error signal")
        return text + "."
    if v.kind not in (Flow.VANISHING, Flow.EXPLODING):
        return ""
    if optimizer in ADAPTIVE_OPTIMIZERS:
        text = (f" With plain gradient descent the steps would follow this ratio; {optimizer} divides each step "
                "by the size of its own recent gradients, which partly makes up for it.")
        eps = getattr(OPTIMIZERS[optimizer](1.0), "eps", 0.0)
        if v.kind is Flow.VANISHING and v.grad_first < eps:
            text += (f" Not for layer {v.first}, though: its gradients (mean |dL/dW| {fmt(v.grad_first)}) are below "
                     f"{optimizer}'s ε = {eps:g}, which then sets the step size.")
        return text
    how = f"With {optimizer}" if optimizer else "With plain gradient descent"
    return (f" {how} each step is proportional to the gradient, so "
            + ("the first layers barely learn." if v.kind is Flow.VANISHING
               else "the first layers take the largest steps, which can throw training off."))


def profile_caption(layers: pd.DataFrame, epoch, optimizer: str | None = None, residual: bool = False) -> str:
    """How to read the gradient profile at ``epoch``: the verdict, why, and what it does to the steps.

    optimizer: the run's optimizer (None for an untrained network); residual: the network has
    shortcuts (the verdict is then about layers 2..last, see ``verdicts.flow``)."""
    v = flow(layers, epoch, residual)
    if v is None:
        return ""
    at, word = when(epoch), FLOW_WORDS[v.kind]
    if v.kind in (Flow.SHALLOW, Flow.UNKNOWN):
        text = flow_detail(v)
        return f"{at}: {text}."
    if v.kind is Flow.SYMMETRIC:
        text = (f"{at}, symmetric: the units of each hidden layer started identical (all weights zero), so they "
                "compute the same thing and receive the same update; no training can make them differ, and each "
                "layer acts like a single unit. Random initial weights are what break this symmetry.")
        if v.hidden_outputs_zero and v.output_grad_zero:
            text += (" Here every hidden unit outputs 0, so not even the output layer's weights get a gradient "
                     "(grad_norm 0): only the output biases learn.")
        elif v.blocked_at:
            text += " No error signal gets into the hidden layers: the zero weights above them carry none back."
        return text
    if v.kind is Flow.BLOCKED:
        then = {"zero_weights": "They get no gradient until the weights above them move away from zero.",
                "dead": "They get no gradient, so they cannot learn.",
                "saturated": "They get no gradient and cannot learn while the units stay saturated."}[v.cause]
        return f"{at}, blocked: {flow_detail(v)}. {then}"
    if v.cause == "underflow":
        return (f"{at}, vanishing: the error signal shrinks so much on its way back that it becomes exactly 0 in "
                f"{_layers(v.blocked_at)}: they get no gradient at all.")
    span = v.last - v.first
    shared = " with a shortcut" if v.first > 1 else ""
    if v.kind is Flow.HEALTHY:
        text = (f"{at}, healthy: going back one layer{shared} multiplies the error signal by {v.factor:.3g} on "
                f"average, and over the {_plural(span, 'layer')} from layer {v.last} to layer {v.first} that leaves "
                f"{fmt(v.ratio)}×: every layer{shared} gets a usable signal.")
    else:
        change = "shrinks" if v.kind is Flow.VANISHING else "grows"
        text = (f"{at}, {word}: going back one layer{shared} multiplies the error signal by {v.factor:.3g} on "
                f"average, so over the {_plural(span, 'layer')} from layer {v.last} to layer {v.first} it {change} "
                f"to {fmt(v.ratio)}×.")
    if v.first > 1:
        text += (f" Layer 1 has no shortcut (it changes the width) and is judged apart: it gets "
                 f"{fmt(v.layer1_gap)}× layer 2's error signal.")
    return text + _steps(v, optimizer)


def stop_point(result: RunResult) -> float:
    """Epochs of training a run has done: its steps (``meta["step"]``, which a trainer's result carries) over
    its steps per epoch, which may fall between two records; its last record's epoch when it does not say."""
    step = result.meta.get("step")
    if isinstance(step, int) and result.steps_per_epoch:
        return step / result.steps_per_epoch
    return float(outcome(result).last_epoch)


def epoch_of(done: float, planned: int) -> str:
    """Where a run stands, the one wording for every text: "epoch 115.6 of 200" (to a tenth, never ahead)."""
    tenths = math.floor(done * 10 + 1e-9)
    shown = f"{tenths // 10:,}" if tenths % 10 == 0 else f"{tenths / 10:,.1f}"
    return f"epoch {shown} of {planned:,}"


def stopped_at(result: RunResult, paused: bool = False) -> str:
    """"paused at epoch N of M" (``paused``: it can go on from there), else "stopped at epoch N of M"."""
    return f"{'paused' if paused else 'stopped'} at {epoch_of(stop_point(result), result.config.epochs)}"


def extent(result: RunResult, paused: bool = False) -> str:
    """How far the run got, for the status line: "200 epochs", "initialization only (0 epochs)", ..."""
    r = outcome(result)
    if r.diverged_at is not None:
        return f"diverged at epoch {r.diverged_at:g} of {r.planned_epochs}"
    if r.stopped:
        return stopped_at(result, paused)
    if r.outcome is Outcome.UNTRAINED:
        return "initialization only (0 epochs)"
    return _plural(r.last_epoch, "epoch")


def _accuracy(r) -> str:
    if math.isfinite(r.val_accuracy):
        return f"validation accuracy {100 * r.val_accuracy:.0f}%"
    return f"training accuracy {100 * r.accuracy:.0f}%" if math.isfinite(r.accuracy) else ""


def loss_caption(result: RunResult, paused: bool = False) -> str:
    """The learning curve's verdict: untrained, diverged, converged, at chance, learning or not improving
    (``paused``: a stopped run that can go on, as ``stopped_at`` says).

    Made from the numbers alone: a run's ``diverge_reason`` is text (from a file or the store, for a
    loaded run), which the page shows as plain text beside it, never inside this Markdown."""
    r = outcome(result)
    if math.isnan(r.first_loss):
        if r.outcome is Outcome.DIVERGED:
            return "Nothing to plot: the run diverged at initialization."
        return "Nothing was recorded."
    if r.outcome is Outcome.DIVERGED and r.diverged_at == 0:
        return (f"Diverged at initialization, with a training loss of {fmt(r.first_loss)} before any update: "
                "nothing was trained.")
    if r.outcome is Outcome.DIVERGED and r.last_epoch == 0:
        return (f"Training loss was {fmt(r.first_loss)} at initialization; the run diverged at epoch "
                f"{r.diverged_at:g}, before the next record.")
    if r.outcome is Outcome.UNTRAINED:
        acc = _accuracy(r)
        head = ("So far only the initialization" if r.stopped else "Only the initialization (0 epochs)")
        return (f"{head} was recorded: training loss {fmt(r.first_loss)}" + (f", {acc}" if acc else "")
                + ". Train for at least one epoch to see a learning curve.")
    text = f"Training loss went from {fmt(r.first_loss)} at initialization to {fmt(r.last_loss)} at epoch {r.last_epoch:g}"
    acc = _accuracy(r)
    text += f"; {acc}" if acc else ""
    if r.outcome is Outcome.DIVERGED:
        return text + (f". Then the run diverged at epoch {r.diverged_at:g}; "
                       "the curve ends at the last finite record.")
    if r.stopped:
        text += f" ({stopped_at(result, paused)})"
    if r.outcome is Outcome.CONVERGED:
        text += f". Converged: a training loss of {fmt(r.last_loss)} means the network fits its training data"
    elif r.outcome is Outcome.AT_CHANCE:
        text += f". Still at chance level ({100 * r.chance:.0f}%): the network has not learned"
    elif r.outcome is Outcome.NOT_IMPROVING:
        text += ". No lower than at initialization: training has not helped"
    return text + "."


def _grid(layers: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` by layer (rows) and epoch (columns), as the heat map draws it; epochs without values dropped."""
    grid = layers.pivot_table(index="layer", columns="epoch", values=column, aggfunc="first", dropna=False)
    return grid.sort_index().loc[:, lambda g: g.notna().any()]


def heatmap_caption(result: RunResult, column: str = "delta_rms") -> str:
    """What the heat map of ``column`` by layer and epoch shows for this run."""
    grid = _grid(result.layers, column)
    if result.diverged_at == 0:
        return "The run diverged at initialization: there is no training to show."
    if grid.shape[1] < 2:
        if column == "update_ratio" and grid.shape[1] == 1:
            return "There is a step to measure only from epoch 1 on: train for at least two epochs to see it change."
        return "Train for at least one epoch to see how the flow changes."
    L = int(grid.index.max())
    start, end = grid.columns[0], grid.columns[-1]
    a, b = grid[start], grid[end]
    text = (f"From epoch {start:g} to {end:g}, layer 1's {column} went from {fmt(a.loc[1])} to {fmt(b.loc[1])} "
            f"and the output layer's from {fmt(a.loc[L])} to {fmt(b.loc[L])}.")
    with np.errstate(divide="ignore", invalid="ignore"):
        fell = (b / a).replace([np.inf, -np.inf], np.nan)
    r = outcome(result)
    notes = []
    if column == "delta_rms":
        notes += _delta_notes(result.layers, grid, fell, r, result.config.residual)
    else:
        if fell.notna().any() and float(fell.max()) <= 0.1:
            why = (f" as the training loss fell to {fmt(r.last_loss)}: smaller errors, smaller gradients"
                   if column == "grad_norm" else "")
            notes.append(f"The whole map darkens: every layer's {column} fell at least {fmt(1 / float(fell.max()))}-fold{why}.")
        positive = b[b > 0]
        if len(positive) > 1:
            lo, hi = positive.idxmin(), positive.idxmax()
            notes.append(f"At epoch {end:g} the layers span a factor {fmt(positive[hi] / positive[lo])}: from "
                         f"{fmt(positive[lo])} in layer {lo} to {fmt(positive[hi])} in layer {hi}.")
    if r.diverged_at is not None:
        notes.append(f"The map ends at epoch {end:g}, the last record before the run diverged.")
    return " ".join([text, *notes])


def _delta_notes(layers: pd.DataFrame, grid: pd.DataFrame, fell: pd.Series, r, residual: bool) -> list[str]:
    start, end = grid.columns[0], grid.columns[-1]
    v0, v1 = flow(layers, start, residual), flow(layers, end, residual)
    L = int(grid.index.max())
    notes = []
    if v1.kind is Flow.SYMMETRIC:
        if (grid.loc[: L - 1] == 0).all().all():
            notes.append("The hidden rows are blank: their delta_rms is exactly 0 at every epoch, because zero "
                         "weights carry no error signal back (symmetric; log10 of 0 cannot be drawn).")
        else:
            notes.append("Symmetric: whatever the colours, the units of each hidden layer stay identical.")
        return notes
    if v1.kind is Flow.BLOCKED:
        notes.append(f"At epoch {end:g} {flow_detail(v1)}; those rows are blank (log10 of 0 cannot be drawn).")
        return notes
    hidden_fell = fell.loc[: L - 1].dropna()
    if fell.get(L, math.nan) <= 0.1 and len(hidden_fell) and float(hidden_fell.median()) <= 0.1:
        converged = " (converged)" if r.outcome is Outcome.CONVERGED else ""
        notes.append(f"The whole map darkens, the output row too: the error at the output fell "
                     f"{fmt(1 / fell.loc[L])}-fold as the training loss went from {fmt(r.first_loss)} to "
                     f"{fmt(r.last_loss)}{converged}, so every layer gets less. That is the network fitting its "
                     "data, not a vanishing signal.")
    if v0.kind is not None and v1.kind in (Flow.VANISHING, Flow.EXPLODING, Flow.HEALTHY):
        w0, w1 = FLOW_WORDS[v0.kind], FLOW_WORDS[v1.kind]
        if v0.kind is v1.kind:
            notes.append(f"{w1.capitalize()} at initialization and at epoch {end:g}: {flow_detail(v1)} at the end.")
        else:
            notes.append(f"Training changed the verdict: {w0} at initialization, {w1} at epoch {end:g}, where "
                         f"{flow_detail(v1)}.")
        hidden = grid[end].loc[: v1.last]
        darkest = int(hidden.idxmin())
        if darkest != 1 and hidden[darkest] < 0.1 * hidden[v1.last] and hidden[darkest] < 0.1 * hidden[1]:
            notes.append(f"The darkest row at epoch {end:g} is layer {darkest} ({fmt(hidden[darkest] / hidden[v1.last])}× "
                         f"layer {v1.last}'s signal): it dips in the middle and recovers towards layer 1.")
    return notes


def saturation_caption(layers: pd.DataFrame, epoch) -> str:
    """The hidden activations at ``epoch``: identical units, saturation, dead units and spread."""
    at = layers[(layers["epoch"] == epoch)]
    hidden = at[at["layer"] < at["layer"].max()]
    if hidden.empty:
        return ""
    if (hidden["act_std"] == 0).all():
        values = hidden["act_mean"].unique()
        value = fmt(float(values[0])) if len(values) == 1 else "one and the same value"
        return (f"{when(epoch)}: every hidden unit outputs {value} for every example (activation std 0): "
                "the units are identical copies and carry nothing of the input.")
    parts = []
    sat = hidden["saturated_frac"].mean()
    if not math.isnan(sat):
        parts.append(f"{100 * sat:.0f}% of hidden activations are saturated (derivative below 1% of its maximum)"
                     + (", so most units pass back little error" if sat >= 0.5 else ""))
    dead = hidden["dead_frac"].mean()
    if dead > 0:
        parts.append(f"{100 * dead:.0f}% of hidden units are dead (output 0 for every probe example)")
    spread = hidden["act_std"]
    parts.append(f"activation std runs from {fmt(spread.iloc[0])} in layer 1 to {fmt(spread.iloc[-1])} in layer {len(hidden)}")
    return f"{when(epoch)}: " + "; ".join(parts) + "."


def delta_hist_caption(layers: pd.DataFrame, epoch, residual: bool = False) -> str:
    """How to read the histograms of log10 |per-example error| per layer, and what they show at ``epoch``
    (``residual``: the network has shortcuts, see ``verdicts.flow``)."""
    guide = ("The error each example sends back to each layer, on a log scale: where the histograms slide left "
             "from the output towards layer 1, the signal is vanishing; where they slide right, it explodes.")
    v = flow(layers, epoch, residual)
    if v is None or v.kind in (Flow.SHALLOW, Flow.UNKNOWN):
        return guide
    if (v.kind in (Flow.SYMMETRIC, Flow.BLOCKED) and v.blocked_at) or v.cause == "underflow":
        return guide + (f" {when(epoch)} every error in {_layers(v.blocked_at)} is exactly 0, so their "
                        "histograms sit in the leftmost bin.")
    if v.kind is Flow.SYMMETRIC:
        return guide
    shift = {Flow.VANISHING: "slide left", Flow.EXPLODING: "slide right", Flow.HEALTHY: "stay in place"}[v.kind]
    return guide + (f" {when(epoch)} they {shift}: layer {v.first}'s errors are {fmt(v.ratio)}× layer {v.last}'s "
                    f"in rms ({FLOW_WORDS[v.kind]}){_layer1_apart(v)}.")


def preset_caption(result: RunResult) -> str:
    """What a network shows at initialization, in one line of markdown (the same verdict as the Train page's)."""
    layers = result.layers
    if layers.empty:
        return ""
    first = layers["epoch"].min()
    v = flow(layers, first, result.config.residual)
    parts = [f"**{FLOW_WORDS[v.kind]}**: {flow_detail(v, strong=True)}"]
    at0 = layers[layers["epoch"] == first]
    sat = at0[at0["layer"] < at0["layer"].max()]["saturated_frac"].mean()
    if not math.isnan(sat) and sat > 0.01:
        parts.append(f"{100 * sat:.0f}% of activations saturated")
    return "Measured: " + "; ".join(parts) + "."


def clipping_caption(result: RunResult) -> str:
    """How often gradient clipping fired in a run, and how large the gradients were before it ("" when
    clipping was off)."""
    clip = result.meta.get("clipping")
    if not clip:
        return ""
    steps = int(round(clip["clip_steps"] / clip["clip_fraction"])) if clip["clip_fraction"] else 0
    of = f" of {steps:,} ({100 * clip['clip_fraction']:.0f}%)" if steps else ""
    return (f"Clipping at norm {result.config.clip_norm:g} fired on {_plural(clip['clip_steps'], 'step')}{of}; "
            f"the gradient's norm before clipping was {fmt(clip['grad_norm_mean'])} on average and up to "
            f"{fmt(clip['grad_norm_max'])}.")


def residual_note(config, layers: pd.DataFrame, epoch) -> str:
    """With residual connections, why layer 1 stands apart: it has no shortcut (it changes the width), so
    its error signal lacks the factor alpha that every other layer's carries, and the verdict judges the
    layers that share the shortcut.  "" for a network without shortcuts, with alpha = 1 or with fewer
    than three hidden layers."""
    if not config.residual or config.depth < 3 or config.residual_scale == 1:
        return ""
    at = layers[layers["epoch"] == epoch]
    if at.empty:
        return ""
    last = int(at["layer"].max()) - 1
    alpha = config.residual_scale
    return (f"Layer 1 changes the width, so it has no shortcut and its error signal lacks the factor α = "
            f"{alpha:.3g} (1/α = {1 / alpha:.3g}) that layers 2-{last} carry.")


def cure_caption(result: RunResult, trained: bool) -> str:
    """One variant of a Home cure card, from what was measured: the flow at initialization with the
    theory's per-layer factor beside it, or, for a trained variant (``trained``), how the run ended."""
    from lab.theory import meanfield as theory  # scipy behind it: only for the captions that compare with theory
    if trained:
        r = outcome(result)
        if r.outcome is Outcome.DIVERGED:
            return f"**Diverged at epoch {r.diverged_at:g}**: {r.reason}."
        acc = _accuracy(r)
        text = (f"**Trained {_plural(r.last_epoch, 'epoch')}**: training loss {fmt(r.first_loss)} → "
                f"{fmt(r.last_loss)}" + (f", {acc}" if acc else "") + ".")
        return " ".join(filter(None, [text, clipping_caption(result)]))
    text = preset_caption(result)
    c = theory.against_measurement(result)
    if c is not None and c.overlay is not None and c.means is not None:
        text += f" Theory predicts {math.sqrt(c.means[0]):.3g}× per layer."
    return " ".join(filter(None, [text, residual_note(result.config, result.layers, result.layers["epoch"].min())]))


def theory_caption(predicted: pd.DataFrame, measured_chi: pd.Series, note: str = "", trained_epoch=None,
                   gap: tuple[int, float] | None = None) -> str:
    """Measured against predicted per-layer factor of the squared error signal at initialization
    (geometric means over the layers where both are positive, those of ``measured_chi``'s index), with
    its verdict; ``note`` is the theory's caveat for this config, ``trained_epoch`` the epoch a chart
    shows when it is after training, ``gap`` where the dashed line is farthest from the measurement
    (``theory.overlay_gap``): the caption says so when that is more than PROFILE_AGREEMENT."""
    from lab.theory import meanfield as theory  # scipy behind it: only for the captions that compare with theory
    if predicted.empty or measured_chi.empty:
        return note
    means = theory.chi_means(predicted, measured_chi)
    if means is None:
        return note or "Theory and measurement: no error signal to compare."
    p, m = means
    off = m / p - 1
    percent = f"{100 * off:+.1f}%" if abs(off) < 0.1 else f"{100 * off:+.0f}%"
    lo = int(measured_chi.index.min())
    over = f" among those with a shortcut ({lo}-{int(predicted['layer'].max())})" if lo > 1 else ""
    text = (f"Theory (dashed) predicts that going back one layer{over} multiplies the squared error signal by "
            f"{p:.3g} on average; measured at initialization: {m:.3g} ({percent})")
    far = gap is not None and max(gap[1], 1 / gap[1]) > theory.PROFILE_AGREEMENT
    where = ""
    if far:
        layer, ratio = gap
        where = (f"the dashed line is {fmt(max(ratio, 1 / ratio))}× {'below' if ratio > 1 else 'above'} the "
                 f"measurement at layer {layer}")
    if abs(off) <= theory.THEORY_AGREEMENT:
        if far:
            text += f", close on average, but {where}."
        else:
            text += ", close here." if note else ": the theory describes this network."
    elif note:
        text += f", more than {100 * theory.THEORY_AGREEMENT:.0f}% off" + (f"; {where}." if far else ".")
    else:
        text += (f": more than {100 * theory.THEORY_AGREEMENT:.0f}% off, so the theory does not describe this network well"
                 + (f"; {where}." if far else "."))
    if note:
        text += f" {note}"
    if trained_epoch is not None:
        text += (f" The theory is about the untrained network: compare the dashed line with the grey profile at "
                 f"initialization; by epoch {trained_epoch:g} training has changed the weights it assumes.")
    return text


def caveat_text(applies) -> str:
    """``theory.Applicability`` in words: where the theory does not (or only approximately) describe a
    config at initialization; "" when it does."""
    from lab.theory.meanfield import Reason

    words = {
        Reason.ZERO_WEIGHTS: "Theory does not apply: with all weights zero there is no random signal to propagate.",
        Reason.BATCH_NORM: (f"Theory does not apply: batch normalization couples the examples of a batch, and the "
                            f"closed form for its error signal (Yang et al. 2019) is known for ReLU, not "
                            f"{applies.activation}, so no line is drawn."),
        Reason.NARROW: (f"Approximate: width {applies.width} is narrow. The theory holds for wide layers; one network "
                        "this narrow can differ from it by 20% or more per layer."),
        Reason.ORTHOGONAL: ("Orthogonal weights are not independent: the theory uses only their variance (1/width), "
                            "which predicts the average factor per layer; orthogonal layers scatter less around it."),
    }
    return " ".join(words[r] for r in applies.reasons)


def theory_comparison(result: RunResult, epoch=None) -> tuple[pd.DataFrame | None, str]:
    """``theory.against_measurement`` for a chart: the predicted profile to draw over the measurement
    (None where the theory does not apply) and the caption comparing the per-layer factors."""
    from lab.theory import meanfield as theory  # scipy behind it: only for the captions that compare with theory
    c = theory.against_measurement(result, epoch)
    if c is None:
        return None, ""
    note = caveat_text(c.applies)
    if c.overlay is None:
        return None, note
    return c.overlay, theory_caption(c.predicted, c.measured_chi, note, c.trained_epoch, c.gap)


def lowest(table: pd.DataFrame, column: str) -> pd.Series:
    """The row of a summary table with the smallest ``column`` (missing values last)."""
    return table.sort_values(column).iloc[0]


def comparison_loss_caption(table: pd.DataFrame) -> str:
    """Compare's loss curves: the run with the lowest final training loss (table: compare.summary_table)."""
    best = lowest(table, "final_loss")
    return (f"Lowest final training loss: **{best['run']}** ({fmt(best['final_loss'])}). "
            "Curves that stay flat belong to networks whose first layers receive almost no error signal.")


def comparison_signal_caption(table: pd.DataFrame) -> str:
    """Compare's profiles: the run whose first layer gets the smallest share of the error signal at init."""
    worst = lowest(table, "delta_ratio_init")
    return ("All panels share one log axis, so heights compare directly. At initialization layer 1 of "
            f"**{worst['run']}** gets {fmt(worst['delta_ratio_init'])}× the error signal of its last "
            "hidden layer, the smallest share of any run (δ ratio, init in the summary below).")


def cures_label(config) -> str:
    """The cures a config switches on, in a few words ("" for none): "batch norm, residual α 0.5"."""
    c = config
    parts = [f"{c.norm} norm" if c.norm != "none" else "",
             f"residual α {c.residual_scale:.3g}" if c.residual else "",
             f"dropout {c.dropout:g}" if c.dropout else "",
             f"clip norm {c.clip_norm:g}" if c.clip_norm else "",
             f"weight decay {c.weight_decay:g}" if c.weight_decay else ""]
    return ", ".join(p for p in parts if p)


def boundary_note(gap, session_runs: int, store_cap_bytes: int) -> str:
    """Why the decision boundary is missing, in a plain sentence (``RunResult.boundary_gap``'s kind).
    ``session_runs`` is how many runs a session keeps whole (``lab.serving.limits.SESSION_FULL_RUNS``),
    ``store_cap_bytes`` the largest weights the store keeps (``lab.store.runstore.WEIGHTS_CAP_BYTES``)."""
    from lab.engine.results import BoundaryGap

    return {
        BoundaryGap.SESSION: (f"No decision boundary: this run's final weights were not kept. A session keeps the "
                              f"weights of its newest {session_runs} runs only, to bound the server's memory, "
                              "and this run is older; train it again to see its boundary."),
        BoundaryGap.STORE: (f"No decision boundary: the run store keeps final weights only for networks whose weights "
                            f"total less than {store_cap_bytes / 2**20:g} MB, and this one's did not; train it again "
                            "to see its boundary."),
        BoundaryGap.TABLES: ("No decision boundary: this run was loaded from its exported tables, which hold no "
                             "weights; train it again to see its boundary."),
        BoundaryGap.WEIGHTS: ("No decision boundary: this run's final weights did not come with it; train it again "
                              "to see its boundary."),
        BoundaryGap.DATA: ("No decision boundary: this run's data was not made again, because its settings go beyond "
                           "what this page offers."),
        BoundaryGap.NO_STEP: ("No decision boundary yet: batch norm's running averages are set by training steps, "
                              "and this run has taken none."),
    }[gap]


def network_label(config) -> str:
    """The network at initialization in a few words: activation, init (with its scale where it has one), depth×width."""
    c = config
    scale = f" (scale {c.init_scale:g})" if c.init in ("normal", "uniform") else ""
    return f"{c.activation}, {c.init}{scale}, {c.depth}×{c.width}"


def phase_caption(counts, width: int, seconds: float, activation: str, sigma_b: float, colour_limit: float) -> str:
    """The Phase diagram's caption from ``phase_grid.phase_counts``: what was measured, what is drawn
    specially, and where theory puts the edge of chaos."""
    text = f"{counts.cells} networks of width {width} measured in {seconds:.1f} s. "
    if counts.underflow:
        text += (f"In {counts.underflow} of them the error signal became exactly zero on its way back "
                 "(every unit's derivative 0): drawn darkest blue. ")
    if counts.missing:
        text += (f"{counts.missing} cells have no value (the signal overflowed, or none reached the last hidden "
                 "layer): drawn grey. ")
    if counts.beyond > 0:
        text += (f"{counts.beyond} cells lie beyond ±{colour_limit:g} decades, where the colours stop; "
                 "hover over a cell for its value. ")
    if counts.critical is None:
        text += (f"For {activation} with σ_b = {sigma_b:g}, χ never crosses 1 in this range: "
                 "theory predicts no edge of chaos here.")
    else:
        text += (f"Theory puts the edge of chaos at σ_w = {counts.critical:.3g}: left of it the squared signal "
                 f"shrinks by a factor χ < 1 per layer (at σ_w = {counts.sigma_w_below:.2g}, "
                 f"χ = {counts.chi_below:.3g}); right of it it grows. "
                 "Along the boundary the signal survives at every depth.")
    return text


def sweep_caption(spec, metric_label: str, done: int, total: int, seconds: float, workers: int,
                  xi_multiples=None) -> str:
    """The Sweep page's caption: what was trained, on what, how far the sweep got, and what is drawn."""
    b = spec.base
    (xn, xv), (yn, yv) = spec.x, spec.y
    text = (f"{len(xv)} × {len(yv)} cells ({xn} × {yn}), {spec.seeds} seed{'s' if spec.seeds > 1 else ''} each: "
            f"{b.activation} networks of width {b.width} ({b.init}, σ_b = {b.bias_std:g}), trained for "
            f"{b.epochs} epoch{'s' if b.epochs != 1 else ''} with {b.optimizer} at lr {b.lr:g} on {b.dataset}. "
            f"{done} of {total} runs finished in {seconds:.1f} s on {workers} worker{'s' if workers > 1 else ''}")
    text += "; the grey cells have not run yet. " if done < total else ". "
    text += (f"Colour: {metric_label}, averaged over the seeds finished (a cell's runs are seeded from its "
             f"coordinates, so it gives the same numbers wherever it runs). Loss threshold for 'epochs to "
             f"threshold': {spec.threshold:.3g} nats. ")
    if xi_multiples:
        text += (f"The white line is {' and '.join(f'{c:g}' for c in xi_multiples)} × ξ(σ_w), the mean-field "
                 "depth scale: Schoenholz et al. (2017) found networks trainable only below about 6ξ, and ξ "
                 "diverges at the edge of chaos. ")
    text += "Click a cell to open its run (first seed) on the Train page."
    return text
