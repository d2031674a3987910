"""Shared panels: charts with their PNG button, the run's status line, the profile block, plain-text notices."""
from __future__ import annotations

import streamlit as st

from lab import RunResult
from lab.report import charts, figures, summaries

PLOT_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def chart(fig, key=None, filename: str | None = None):
    """A plotly chart; its camera button saves a PNG at 2x scale named ``filename``."""
    config = PLOT_CONFIG
    if filename:
        config = {**PLOT_CONFIG, "toImageButtonOptions": {**PLOT_CONFIG["toImageButtonOptions"], "filename": filename}}
    st.plotly_chart(fig, key=key, config=config)



def layer_picker(n_layers: int, key: str, label: str = "layers to show in the histograms") -> list[int] | None:
    """All layers when the grids can show them all (None); beyond that, a choice that starts evenly spaced."""
    if n_layers <= charts.HIST_ALL_LAYERS_UP_TO:
        return None
    options = list(range(1, n_layers + 1))
    picked = st.multiselect(label, options, default=charts.pick_layers(n_layers), key=f"{key}_{n_layers}",
                            help=f"{n_layers} layers are too many to draw at once; add or remove any of them. "
                                 f"The last one is the output layer (error histograms only).")
    return sorted(picked) or None



def status_line(result: RunResult, paused: bool = False) -> None:
    """What ran and how it ended; ``paused``: the run is the session's trainer, stopped and able to go on."""
    c = result.config
    records = len(result.records)
    cures = summaries.cures_label(c)
    text = (f"**{c.activation}**, **{c.init}** init (gain {c.gain}), {c.depth} hidden layers of {c.width}"
            + (f" with **{cures}**" if cures else "")
            + f", {c.optimizer} lr {c.lr:g}, {c.dataset}: {summaries.extent(result, paused)} in {result.wall_s:.2f} s")
    if result.diverged_at is not None:
        kept = ("Nothing could be recorded." if not records
                else "Its record at initialization is shown below." if result.diverged_at == 0
                else "Everything recorded before that is shown below.")
        # the reason is text a file or the store may have written: plain text, whatever the run's source
        if result.diverge_reason:
            plain_notice("error", f"Diverged at epoch {result.diverged_at:g}. {kept}", result.diverge_reason)
        else:
            st.error(f"Diverged at epoch {result.diverged_at:g}. {kept}")
    elif result.stopped and paused:
        st.info(f"{summaries.stopped_at(result, paused=True).capitalize()}: **Play** or **Step** go on from here, "
                "**Reset** starts again from initialization.")
    elif result.stopped:
        st.warning(f"{summaries.stopped_at(result).capitalize()}; what was recorded is shown below.")
    st.markdown(text)


def plain_notice(kind: str, lead: str, detail: str, icon: str | None = None, key: str | None = None) -> None:
    """An alert with our words (``lead``, Markdown) and under it words that came from a user or a
    file (``detail``: a file name, a run name, a CSV column or cell, a link's value) as plain text,
    never read as Markdown, HTML or a link (escaping cannot stop the Markdown renderer from turning
    a bare URL into a live link).  kind: "error", "warning", "success" or "info"."""
    with st.container(border=True, key=key):
        getattr(st, kind)(lead, icon=icon)
        st.text(detail)


def record_epochs(result: RunResult) -> list:
    return sorted(result.layers["epoch"].unique().tolist())


def show_profile(result: RunResult, epoch, key: str) -> None:
    """The gradient profile at ``epoch`` with the mean-field prediction for initialization (dashed),
    its caveat in the legend and the caption next to it."""
    figure, theory_text = figures.profile(result, epoch)
    chart(figure, key=key, filename="gradient_profile")
    st.caption(summaries.profile_caption(result.layers, epoch, result.config.optimizer,
                                          result.config.residual))
    if theory_text:
        st.caption(theory_text)
