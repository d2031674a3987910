"""What will be trained: the data and the network diagram side by side, before, while and after a run trains."""
from __future__ import annotations

import streamlit as st

from lab.data.datasets import Dataset
from lab.engine.config import RunConfig
from lab.report import diagram, tables

from .panels import chart


def show_plan(config: RunConfig, data: Dataset, weights=None, delta_rms=None, scale: tuple[float, float] | None = None,
              key: str = "plan") -> None:
    """The data (a scatter when 2-D, else class counts and a feature summary) beside the network.

    weights: [(W, b)] to draw (default: the ones the run starts from, for a narrow network);
    delta_rms: (L,) of layers 1..L to colour the units by; scale: (cmin, cmax) of log10 delta_rms,
    fixed across the frames of a live run (``diagram.delta_scale`` of the run's layer table)."""
    left, right = st.columns([2, 3])  # the network wider: ten columns of units need the room
    with left:
        figure = diagram.data_figure(data)
        if figure is not None:
            chart(figure, key=f"{key}_data", filename="data")
        else:
            summary = diagram.data_summary(data)
            st.dataframe(summary.classes.style.format({"training": "{:,}", "validation": "{:,}",
                                                       "share of training": "{:.0%}"}),
                         hide_index=True, height=tables.height(len(summary.classes), 8))
            st.dataframe(tables.styled(summary.features, key="feature"), hide_index=True,
                         height=tables.height(len(summary.features), 8))
            if summary.features_not_shown:
                st.caption(f"and {summary.features_not_shown} more features")
        st.caption(diagram.data_caption(data))
    with right:
        show_network(config, data, weights, delta_rms, scale, key=f"{key}_network")


def show_network(config: RunConfig, data: Dataset, weights=None, delta_rms=None,
                 scale: tuple[float, float] | None = None, key: str = "network", initial: bool = True) -> None:
    """The network diagram alone (arguments as ``show_plan``'s).  ``initial``: without ``weights``, draw the
    ones the run starts from; off for a run whose weights were not kept, which then shows its connections
    grey rather than weights it no longer has."""
    if weights is None and initial:
        weights = diagram.initial_weights(config, data)
    cmin, cmax = scale if scale is not None else (None, None)
    figure = diagram.network_figure(diagram.layer_sizes(config, data), weights, delta_rms, cmin=cmin, cmax=cmax,
                                    input_names=data.feature_names)
    chart(figure, key=key, filename="network")
