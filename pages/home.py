"""Home: what the lab shows, and the classic cases one click away."""
import streamlit as st

from lab.engine.training import train
from lab.experiments.presets import CURES, PRESETS
from lab.report import summaries
from pages.ui import router, widgets

router.use_router()

st.title("Backprop Lab")
st.markdown(
    """
Backpropagation sends the error of a network's output back through its layers with the
chain rule: every layer multiplies the signal by its weights and by its activation's
derivative. Over many layers those factors compound. If they are below 1 the signal
**vanishes** and the first layers stop learning; above 1 it **explodes**. Which way it goes
is decided before training starts, by the weight initialization and the activation.

Pick a classic case below: it opens the **Train** page with the settings filled in and trains at once.
The verdict under each card (vanishing, exploding, healthy or symmetric) was measured on that very
network at initialization; the Train page shows it again beside the verdict after training.
"""
)
st.page_link("pages/lessons.py", label="New to this? Start with the Lessons: from the chain rule to the edge of chaos, "
             "an experiment and a question at every step", icon=":material/school:")


@st.cache_data(show_spinner=False)
def measured(name: str) -> str:
    """What the preset's network shows at initialization (its epoch-0 record)."""
    config = widgets.ui_defaults().replace(**{**PRESETS[name].changes, "epochs": 0})
    result = train(config)
    return summaries.preset_caption(result)


def open_in_train(changes: dict) -> None:
    widgets.train_now(widgets.ui_defaults().replace(**changes))


def card_grid(items: dict, per_row: int, fill) -> None:
    """One bordered card per item (name -> Preset or Cure), ``per_row`` to a row, each as tall as the
    tallest of its row so that no verdict is cut off at any width; ``fill(name, item)`` writes what is
    measured under the title and story."""
    names = list(items)
    for row in range(0, len(names), per_row):
        for col, name in zip(st.columns(per_row), names[row : row + per_row]):
            with col.container(border=True, height="stretch"):
                st.markdown(f"**{items[name].title}**")
                st.caption(items[name].story)
                fill(name, items[name])


def preset_card(name: str, preset) -> None:
    st.markdown(measured(name))
    if st.button("Open in Train", key=f"preset_{name}", width="stretch"):
        open_in_train(preset.changes)


# on a fresh server every card's network is measured once (about a second in all); the toolbar's
# running indicator is hidden, so say so (a spinner shows only when the wait passes half a second)
with st.spinner("Measuring each card's network…"):
    card_grid(PRESETS, 4, preset_card)

st.subheader("The cures, and how they fail")
st.markdown(
    "Normalization, residual connections and gradient clipping were invented to keep the error signal "
    "usable. Each card pairs a broken network with its cure; every line under it was measured on that "
    "network (at initialization, or, for clipping, after training), and its button opens it in **Train**."
)


@st.cache_data(show_spinner=False)
def measured_cure(name: str, label: str) -> str:
    """What a cure card's variant measured: the flow at initialization, or how training ended."""
    cure = CURES[name]
    changes = cure.variants[label]
    config = widgets.ui_defaults().replace(**changes if cure.trained else {**changes, "epochs": 0})
    return summaries.cure_caption(train(config), cure.trained)


def cure_card(name: str, cure) -> None:
    for i, (label, changes) in enumerate(cure.variants.items()):
        # the button under its line, not beside it: beside, a narrow window cuts its label off
        st.markdown(f"*{label}*. {measured_cure(name, label)}")
        if st.button("Open in Train", key=f"cure_{name}_{i}"):
            open_in_train(changes)


with st.spinner("Measuring each cure's networks…"):
    card_grid(CURES, 2, cure_card)

st.markdown(
    """
**Pages.** *Train*: train one network and read its learning curves, gradient profile,
heat map of the flow over time, histograms and decision boundary. *Init explorer*: no
training, two initializations side by side, instantly. *Compare*: vary one setting over
several values and keep the runs. *Phase diagram*: where theory puts the edge of chaos,
and what the networks measure. *Sweep*: a grid of two settings, every cell a trained
network, drawn as a heat map (the paper's trainability experiment is one click). *Runs*: the
runs kept in the run store, to filter, overlay, reopen in Train and export. *Chain rule*,
*Softmax with loss* and *Gradient check*: the worked examples of backpropagation, with numbers
you can change.
"""
)
