"""Home: what the lab shows, and the classic cases one click away."""
import streamlit as st

from lab import summaries, train
from lab.presets import PRESETS
from pages.ui import router, state, widgets

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


@st.cache_data(show_spinner=False)
def measured(name: str) -> str:
    """What the preset's network shows at initialization (its epoch-0 record)."""
    config = widgets.ui_defaults().replace(**{**PRESETS[name].changes, "epochs": 0})
    result = train(config)
    return summaries.preset_caption(result)


names = list(PRESETS)
for row in range(0, len(names), 4):
    cols = st.columns(4)
    for col, name in zip(cols, names[row : row + 4]):
        preset = PRESETS[name]
        # cards of a row as tall as the tallest, so that no verdict is cut off at any width
        with col.container(border=True, height="stretch"):
            st.markdown(f"**{preset.title}**")
            st.caption(preset.story)
            st.markdown(measured(name))
            if st.button("Open in Train", key=f"preset_{name}", width="stretch"):
                widgets.set_settings(widgets.ui_defaults().replace(**preset.changes))
                st.session_state.pop(state.RESULT, None)
                st.session_state[state.TRAIN_AUTORUN] = True  # the preset trains as soon as the page opens
                st.switch_page("pages/train.py")

st.markdown(
    """
**Pages.** *Train*: train one network and read its learning curves, gradient profile,
heat map of the flow over time, histograms and decision boundary. *Init explorer*: no
training, two initializations side by side, instantly. *Compare*: vary one setting over
several values and keep the runs. *Phase diagram*: where theory puts the edge of chaos,
and what the networks measure. *Chain rule*, *Softmax with loss* and *Gradient check*:
the worked examples of backpropagation, with numbers you can change.
"""
)
