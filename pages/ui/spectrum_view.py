"""The Jacobian spectrum (issue 26) on a page: the density of the singular values beside their mean and spread per
layer, and one caption per network, for the Init explorer's two sides and the Train page's run."""
from __future__ import annotations

import streamlit as st

from lab.report import spectrum as report
from lab.theory.spectrum import Measured
from pages.ui import panels

INTRO = (
    "The gradient profile above shows the *average*: the mean of s² over the singular values s of the Jacobian "
    "J_l = ∂h_l/∂h_1, which is the product of χ over the layers crossed. What it hides is the *spread*. A network "
    "can have mean s² ≈ 1 and still crush most directions to nothing while stretching a few: the average looks "
    "healthy, yet the signal crosses the network in a handful of directions only. Orthogonal weights with tanh at "
    "the edge of chaos keep every direction near s = 1 at any depth (dynamical isometry; Pennington, Schoenholz & "
    "Ganguli 2017); Gaussian weights, and ReLU with any weights, cannot."
)


def show(spectra: dict[str, Measured], colours: dict[str, str], key: str) -> None:
    """The density of log10 s per network side by side, the mean and the spread of s² per layer (theory dashed),
    and each network's caption; ``colours`` maps the names to their colours, ``key`` names the charts.  A network
    whose product left float64's range at once, or whose Jacobian is zero, has nothing to draw: its caption says
    so."""
    drawn = {name: m for name, m in spectra.items() if (m.spectrum.summary()["s_max"] > 0).any()}
    if drawn:
        panels.chart(report.density_figure(drawn), key=f"{key}_density", filename=f"{key}_density")
        panels.chart(report.moments_figure(drawn, colours), key=f"{key}_moments", filename=f"{key}_moments")
    for name, measured in spectra.items():
        st.caption(report.caption(name, measured))
