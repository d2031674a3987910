"""The Jacobian spectrum drawn and put into words (issue 26): the density of log10 s at a few depths, the mean
and the spread of s^2 per depth with free probability's prediction dashed beside them, and captions computed
from the numbers.

A singular value below the numerical floor (``Spectrum.floor``: float64 cannot resolve it in a product of
that size) is drawn at the floor, its line's left end, and counted in the caption as numerically zero, never as a
value.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lab.engine.jacobian import FLOOR_EPS
from lab.formats import number
from lab.theory.meanfield import Fit
from lab.theory.spectrum import Measured

from .charts import _layout, _log_axis, _stacked_title, _wrap

DEPTH_SHADES = ("#9ecae1", "#4292c6", "#08519c", "#08306b")  # shallow to deep: light to dark
BIN_DECADES = 0.25  # the density's bin width, in decades of s
ISOMETRY_FACTOR = 10.0  # the middle 90% within this factor: "close to an isometry"


def shown_depths(layers, most: int = 4) -> list[int]:
    """A few depths to draw densities at: the first, the last and ones between, spaced in log(depth)."""
    layers = sorted(int(l) for l in layers)
    if len(layers) <= most:
        return layers
    picks = np.geomspace(layers[0], layers[-1], most)
    return sorted({min(layers, key=lambda l: abs(math.log(l) - math.log(p))) for p in picks})


def _log_values(measured: Measured, depth: int) -> np.ndarray:
    """log10 s at ``depth`` (all probe inputs), values under the floor set to the floor; a matrix of zeros (a
    floor of 0: nothing to place on a log axis) is left out, and the caption counts it as numerically zero."""
    spectrum = measured.spectrum
    i = int(np.flatnonzero(spectrum.layers == depth)[0])
    values, floor = spectrum.values[i], spectrum.floor[i][:, None]
    nonzero = np.broadcast_to(floor > 0, values.shape)
    return np.log10(np.where(values < floor, floor, values)[nonzero])


def density_figure(spectra: dict[str, Measured], depths: list[int] | None = None) -> go.Figure:
    """One panel per network, side by side: the share of singular values of J_l per quarter decade of s, one
    line per depth, darker deeper; the dashed vertical line at each depth is the theory's root mean square s
    (where it applies).  The x axes share one range, so the panels read against each other."""
    names = list(spectra)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.08,
                        subplot_titles=[_wrap(n, 40) for n in names])
    finite = [m.spectrum.summary() for m in spectra.values()]
    common = sorted(set.intersection(*(set(s["depth"]) for s in finite))) if finite else []
    depths = depths or shown_depths(common)
    logs = {(n, d): _log_values(spectra[n], d) for n in names for d in depths if d in set(finite[names.index(n)]["depth"])}
    logs = {k: v for k, v in logs.items() if len(v)}
    every = np.concatenate(list(logs.values())) if logs else np.zeros(1)
    lo = math.floor(every.min() / BIN_DECADES) * BIN_DECADES
    hi = math.ceil(every.max() / BIN_DECADES) * BIN_DECADES + BIN_DECADES
    edges = np.arange(lo, hi + BIN_DECADES / 2, BIN_DECADES)
    centres = 0.5 * (edges[1:] + edges[:-1])
    lines = []
    for col, name in enumerate(names, start=1):
        for k, depth in enumerate(depths):
            if (name, depth) not in logs:
                continue
            values = logs[name, depth]
            share = np.histogram(values, edges)[0] / len(values)
            colour = DEPTH_SHADES[min(k, len(DEPTH_SHADES) - 1)] if len(depths) <= len(DEPTH_SHADES) else None
            fig.add_scatter(x=centres, y=share, mode="lines", line=dict(color=colour, width=2.5, shape="hvh"),
                            name=f"layer {depth}", legendgroup=str(depth), showlegend=col == 1,
                            row=1, col=col,
                            hovertemplate="log10 s %{x:.2f}: %{y:.1%} of directions<extra>layer " + str(depth) + "</extra>")
            mean_s2 = spectra[name].theory_mean_s2(depth)
            if mean_s2 > 0 and math.isfinite(mean_s2):
                axis = "" if col == 1 else str(col)  # one list of shapes at the end: add_vline costs 15 ms each
                lines.append(dict(type="line", x0=0.5 * math.log10(mean_s2), x1=0.5 * math.log10(mean_s2),
                                  y0=0, y1=1, xref=f"x{axis}", yref=f"y{axis} domain",
                                  line=dict(color=colour, dash="dash", width=1.5)))
    fig.update_layout(shapes=lines)
    # one short title per panel: two long ones side by side run into each other in a narrow window
    fig.update_xaxes(title_text="log10 s", range=[lo, hi])
    fig.update_yaxes(title_text="share of directions per ¼ decade", tickformat=".0%", row=1, col=1)
    fig = _layout(fig, "Singular values s of the Jacobian J_l = ∂h_l/∂h_1, per layer l", height=420)
    # the key under the title, where a legend that wraps in a narrow window cannot run into it
    fig.update_layout(margin=dict(t=70))
    return _stacked_title(fig, fig.layout.title.text,
                          "dashed: the √(mean s²) that theory predicts at that layer",
                          "a spike at a line's left end: values under float64's floor, numerically zero")


def layer_ticks(top: int) -> list[int]:
    """Ticks for a log axis of layers 2..top, each labelled in full, and always the last layer (plotly's own would
    label 20 and 30 with a bare "2" and "3")."""
    steps = (1, 2, 3, 4, 6, 8) if top <= 12 else (1, 2, 3, 5) if top < 100 else (1, 2, 5)
    ticks = [m * 10**k for k in range(4) for m in steps if 2 <= m * 10**k <= top]
    if ticks[-1] != top:  # the last layer, in place of a tick too close to it to be read apart
        ticks = ticks[:-1] + [top] if top / ticks[-1] < 1.3 else ticks + [top]
    return ticks


def moments_figure(spectra: dict[str, Measured], colours: dict[str, str]) -> go.Figure:
    """Per depth, on log axes: the mean of s^2 (left) and its normalized variance var(s^2) / mean(s^2)^2 (right),
    measured (solid, markers) and predicted by free probability (dashed), one colour per network.  A mean of 1
    with a variance that grows is the case the average alone hides."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16,
                        subplot_titles=["average: mean of s² (= ∏ χ)", "spread: var(s²) / mean(s²)²"])
    for name, m in spectra.items():
        colour = colours[name]
        s = m.spectrum.summary()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            spread = s["var_s2"] / s["mean_s2"] ** 2
        fig.add_scatter(x=s["depth"], y=s["mean_s2"], name=name, mode="lines+markers", legendgroup=name,
                        line=dict(color=colour, width=2.5), row=1, col=1)
        fig.add_scatter(x=s["depth"], y=spread.where(spread > 0), name=name, mode="lines+markers", legendgroup=name,
                        showlegend=False, line=dict(color=colour, width=2.5), row=1, col=2)
        if m.theory is not None and len(m.theory):
            t = m.theory
            fig.add_scatter(x=t["depth"], y=t["mean_s2"], name=f"{name}: theory", mode="lines", legendgroup=name,
                            line=dict(color=colour, dash="dash", width=1.5), row=1, col=1)
            fig.add_scatter(x=t["depth"], y=t["normalized_var"].where(t["normalized_var"] > 0), mode="lines",
                            name=f"{name}: theory", legendgroup=name, showlegend=False,
                            line=dict(color=colour, dash="dash", width=1.5), row=1, col=2)
    top = max((int(m.spectrum.layers.max()) for m in spectra.values() if len(m.spectrum.layers)), default=2)
    ticks = layer_ticks(top)
    fig.update_xaxes(title_text="layer l (log scale)", type="log", tickvals=ticks, ticktext=[str(t) for t in ticks])
    _log_axis(fig, "mean of s² (log scale)", row=1, col=1)
    _log_axis(fig, "var(s²) / mean(s²)² (log)", row=1, col=2)
    fig = _layout(fig, "The average and the spread of s², per layer", height=420)
    return _stacked_title(fig, fig.layout.title.text, "solid: measured · dashed: free probability's prediction")


def _spread_words(p5: float, p95: float, s_max: float = math.inf) -> str:
    if not p95 > FLOOR_EPS * s_max:  # 95% and more of the values are rounding noise next to the largest
        return "at least 95% of directions are numerically zero: the signal crosses in the few largest only"
    if p5 < FLOOR_EPS * s_max:  # the 5th percentile is rounding noise: say how far the resolved part reaches
        return (f"the middle 90% of directions span more than {math.log10(p95 / (FLOOR_EPS * s_max)):.0f} orders "
                f"of magnitude (s from numerically zero to {number(p95)})")
    ratio = p95 / p5
    if ratio < ISOMETRY_FACTOR:
        # digits enough to tell the factor from 1: "1.00001", not "a factor of 1 (s from 1 to 1)"
        digits = 2 if ratio >= 2 else 1 + max(1, math.ceil(-math.log10(max(ratio - 1, 1e-12))))
        return (f"the middle 90% of directions lie within a factor of {number(ratio, digits)} "
                f"(s from {number(p5, digits)} to {number(p95, digits)})")
    return (f"the middle 90% of directions span {math.log10(ratio):.0f} orders of magnitude "
            f"(s from {number(p5)} to {number(p95)})")


def caption(name: str, measured: Measured) -> str:
    """What the spectrum of one network shows at its deepest finite layer, in numbers."""
    s = measured.spectrum.summary()
    if s.empty:
        return f"{name}: the product left float64's range at layer {measured.spectrum.overflow_at}; nothing to show."
    row = s.iloc[-1]
    depth = int(row["depth"])
    if not row["s_max"] > 0:  # zero weights, or every unit dead: J is the zero matrix
        return (f"{name}: at layer {depth} the Jacobian is zero: no change at layer 1 reaches layer {depth} in any "
                f"direction, so there is no spread to draw. " + theory_note(measured))
    spread = _spread_words(row["s_p5"], row["s_p95"], row["s_max"])
    words = f"{name}: at layer {depth}, {spread}; mean of s² {number(row['mean_s2'])}"
    predicted = measured.theory_mean_s2(depth)
    if not math.isnan(predicted):
        words += f", theory {number(predicted)}"
    words += "."
    if row["share_below_floor"] > 0:
        words += (f" {row['share_below_floor']:.0%} of the singular values are below what float64 resolves next to "
                  f"the largest: numerically zero, directions the signal cannot cross.")
    elif 10 ** row["decades_90"] < ISOMETRY_FACTOR and depth >= 10:
        words += " Close to an isometry: every direction passes at about the same scale (dynamical isometry)."
    if measured.spectrum.overflow_at is not None:
        words += f" From layer {measured.spectrum.overflow_at} on the product overflowed float64 and is not drawn."
    return words + " " + theory_note(measured)


REASONS = {  # why the free-probability formulas do not (or only roughly) describe a network (SpectrumFit.reason)
    "cures": "normalization and shortcuts are outside its formulas",
    "zero weights": "with all weights zero there is no random signal to propagate",
    "no fixed point": "the length map has no fixed point",
    "trained": "it describes the random weights of initialization, and these have been trained",
    "narrow": "width {width} is narrow; the formulas are for wide layers, and one network scatters around them",
}


def reason_words(fit, width: int) -> str:
    """``fit.reason`` in words."""
    return REASONS.get(fit.reason, fit.reason).format(width=width)


def theory_note(measured: Measured, width: int | None = None) -> str:
    """Whether the dashed lines are there, and why not."""
    fit = measured.fit
    width = measured.spectrum.width if width is None else width
    if fit.fit is Fit.APPLIES:
        return f"Dashed: free probability for {fit.weights} weights (Pennington et al. 2017)."
    if fit.fit is Fit.APPROXIMATE:
        return f"Dashed: free probability, approximate here: {reason_words(fit, width)}."
    return f"No dashed line: the theory does not apply ({reason_words(fit, width)})."
