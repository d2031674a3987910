"""One-line captions computed from a run: what each chart shows for *this* run."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .train import RunResult


def fmt(x: float) -> str:
    """A magnitude in a compact form: 3e-06, 0.012, 1.4e+03."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    return f"{x:.2g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.1e}"


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


def profile_caption(layers: pd.DataFrame, epoch) -> str:
    got = signal_ratio(layers, epoch)
    if got is None:
        return "With fewer than two hidden layers there is no depth for the signal to vanish over."
    ratio, first, last = got
    factor = per_layer_factor(ratio, last - first)
    if not math.isfinite(ratio) or ratio == 0:
        return f"At epoch {epoch:g} layer {first} receives no error signal at all (every unit is dead or saturated)."
    verdict = (
        "vanishing: the first layers barely learn" if ratio < 0.1
        else "exploding: the first layers get far larger updates than the last" if ratio > 10
        else "within a factor of 10 across the network: every layer gets a usable signal"
    )
    return (
        f"At epoch {epoch:g}, layer {first} receives {fmt(ratio)}× the error signal that layer {last} receives "
        f"(a factor {factor:.3g} per layer): {verdict}."
    )


def loss_caption(result: RunResult) -> str:
    h = result.history[~result.history["diverged"]]
    if h.empty:
        return f"Nothing to plot: the run diverged at initialization ({result.diverge_reason})."
    first, last = h.iloc[0], h.iloc[-1]
    text = f"Training loss went from {fmt(first['loss'])} at initialization to {fmt(last['loss'])} at epoch {last['epoch']:g}"
    if not math.isnan(last["val_accuracy"]):
        text += f"; validation accuracy {100 * last['val_accuracy']:.0f}%"
    else:
        text += f"; training accuracy {100 * last['accuracy']:.0f}%"
    if result.diverged_at is not None:
        text += f". Then it diverged at epoch {result.diverged_at:g} ({result.diverge_reason})"
    elif result.stopped:
        text += " (stopped early)"
    chance = 1.0 / result.data.classes if result.data is not None else 0.0
    if last["accuracy"] < chance + 0.05 and last["epoch"] > 0:
        text += f". Still at chance level ({100 * chance:.0f}%): the network has not learned"
    return text + "."


def heatmap_caption(layers: pd.DataFrame, column: str = "delta_rms") -> str:
    epochs = np.sort(layers["epoch"].unique())
    if len(epochs) < 2:
        return "Train for at least one epoch to see how the flow changes."
    first = layers[(layers["layer"] == 1)].set_index("epoch")[column]
    a, b = first.loc[epochs[0]] if column != "update_ratio" else first.loc[epochs[1]], first.loc[epochs[-1]]
    start = epochs[0] if column != "update_ratio" else epochs[1]
    return (
        f"Layer 1's {column} went from {fmt(a)} at epoch {start:g} to {fmt(b)} at epoch {epochs[-1]:g}. "
        "Dark rows are layers the error signal hardly reaches."
    )


def saturation_caption(layers: pd.DataFrame, epoch) -> str:
    at = layers[(layers["epoch"] == epoch)]
    hidden = at[at["layer"] < at["layer"].max()]
    if hidden.empty:
        return ""
    parts = []
    sat = hidden["saturated_frac"].mean()
    if not math.isnan(sat):
        parts.append(f"{100 * sat:.0f}% of hidden activations are saturated (derivative below 1% of its maximum)")
    dead = hidden["dead_frac"].mean()
    if dead > 0:
        parts.append(f"{100 * dead:.0f}% of hidden units are dead (output 0 for every probe example)")
    spread = hidden["act_std"]
    parts.append(f"activation std runs from {fmt(spread.iloc[0])} in layer 1 to {fmt(spread.iloc[-1])} in layer {len(hidden)}")
    return f"At epoch {epoch:g}: " + "; ".join(parts) + "."


def preset_caption(result: RunResult) -> str:
    """What a network shows at initialization, in one line of markdown."""
    layers = result.layers
    at0 = layers[layers["epoch"] == layers["epoch"].min()]
    hidden = at0[at0["layer"] < at0["layer"].max()]
    got = signal_ratio(layers, at0["epoch"].iloc[0])
    parts = []
    if got is not None:
        ratio, first, last = got
        if ratio == 0 or not math.isfinite(ratio):
            parts.append(f"layer {first} gets **no** error signal")
        else:
            parts.append(f"layer {first} gets **{fmt(ratio)}×** layer {last}'s error signal "
                         f"({per_layer_factor(ratio, last - first):.2f}× per layer)")
    sat = hidden["saturated_frac"].mean()
    if not math.isnan(sat) and sat > 0.01:
        parts.append(f"{100 * sat:.0f}% of activations saturated")
    if len(result.weights) > 2:
        W = result.weights[1][0]
        if W.size and float(W.std(axis=1).max()) == 0.0:
            parts.append("all hidden units identical")
    return "Measured: " + "; ".join(parts) + "." if parts else ""


THEORY_AGREEMENT = 0.10  # relative: the theory describes a network whose per-layer factor is this close


def theory_caption(predicted: pd.DataFrame, measured_chi: pd.Series, note: str = "", trained_epoch=None) -> str:
    """Measured against predicted per-layer factor of the squared error signal at initialization
    (geometric means over the layers where both are positive), with its verdict; ``note`` is the
    theory's caveat for this config, ``trained_epoch`` the epoch a chart shows when it is after training."""
    if predicted.empty or measured_chi.empty:
        return note
    pred = predicted.set_index("layer")["chi"].reindex(measured_chi.index)
    ok = (pred > 0) & (measured_chi > 0)
    if not ok.any():
        return note or "Theory and measurement: no error signal to compare."
    geo = lambda s: float(np.exp(np.log(s[ok]).mean()))  # noqa: E731
    p, m = geo(pred), geo(measured_chi)
    off = m / p - 1
    percent = f"{100 * off:+.1f}%" if abs(off) < 0.1 else f"{100 * off:+.0f}%"
    text = (f"Theory (dashed) predicts that going back one layer multiplies the squared error signal by "
            f"{p:.3g} on average; measured at initialization: {m:.3g} ({percent})")
    if abs(off) <= THEORY_AGREEMENT:
        text += ", close here." if note else ": the theory describes this network."
    elif note:
        text += f", more than {100 * THEORY_AGREEMENT:.0f}% off."
    else:
        text += f": more than {100 * THEORY_AGREEMENT:.0f}% off, so the theory does not describe this network well."
    if note:
        text += f" {note}"
    if trained_epoch is not None:
        text += (f" The theory is about the untrained network: compare the dashed line with the grey profile at "
                 f"initialization; by epoch {trained_epoch:g} training has changed the weights it assumes.")
    return text
