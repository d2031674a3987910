"""Softmax with loss: the fused layer's backward y - t, and the chain of local derivatives that explains it."""
import numpy as np
import streamlit as st

from lab.report import charts
from lab.worked.softmax_steps import TEXT_LOGITS, softmax_steps
from pages.ui import panels, router

router.use_router()

MAX_CLASSES = 6


def vec(values, digits: int = 4) -> str:
    """A row vector for st.latex, each entry to ``digits`` significant figures."""
    return r"\begin{bmatrix}" + " & ".join(_num(v, digits) for v in np.ravel(values)) + r"\end{bmatrix}"


def mat(values, digits: int = 3) -> str:
    rows = [" & ".join(_num(v, digits) for v in row) for row in values]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def _num(v, digits):
    text = f"{v:.{digits}g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = rf"{mant}\cdot 10^{{{int(exp)}}}"
    return "0" if text in ("-0", "0") else text


st.title("Softmax with loss")
st.markdown(
    "A classifier's last layer turns K scores (the logits a) into probabilities with softmax, and the "
    "cross-entropy loss charges −log of the probability given to the right class. Differentiating the two "
    "separately is messy; differentiating them as one fused layer leaves almost nothing: **y − t**. "
    "Change the logits or the target below and follow both routes to the same numbers."
)

with st.container(border=True):
    k = st.slider("number of classes K", 2, MAX_CLASSES, len(TEXT_LOGITS), key="sm_k")
    cols = st.columns(MAX_CLASSES)
    logits = []
    for i in range(k):
        default = TEXT_LOGITS[i] if i < len(TEXT_LOGITS) else 0.0
        logits.append(cols[i].number_input(f"logit a{i}", -30.0, 30.0, default, step=0.1, format="%.3f",
                                           key=f"sm_logit_{i}"))
    target = st.selectbox("target class (t is 1 here, 0 elsewhere)", list(range(k)), index=min(2, k - 1),
                          format_func=lambda c: f"class {c}", key="sm_target")

s = softmax_steps(logits, target)

st.subheader("Forward")
# the equations over the whole width, the chart under them: in a column beside the chart they were cut
# off at 1000 pixels (six classes make y six entries wide)
st.latex(r"y_k = \frac{e^{a_k}}{\sum_{i} e^{a_i}}, \qquad L = -\sum_k t_k \log y_k = -\log y_{\text{target}}")
st.latex(r"y = " + vec(s.y))
cols = st.columns(2)
cols[0].metric("loss, step by step", f"{s.loss:.6f}")
cols[1].metric("loss, fused SoftmaxWithLoss", f"{s.fused_loss:.6f}")
st.caption("Softmax is computed after subtracting the largest logit: the result is the same, "
           "and exp cannot overflow.")
panels.chart(charts.softmax_figure(s.table), key="softmax_bars", filename="softmax_with_loss")

st.subheader("Backward: the chain of local derivatives")
st.markdown("Write the loss as four small steps, f₁ = log y, f₂ = t·f₁, f₃ = Σ f₂, L = −f₃, "
            "and walk back from ∂L/∂L = 1, multiplying by one local derivative per step:")
chain = s.chain.set_index("step")["upstream"]
st.latex(r"\frac{\partial L}{\partial f_3} = -1")
st.latex(r"\frac{\partial L}{\partial f_2} = \frac{\partial L}{\partial f_3}\cdot\frac{\partial f_3}{\partial f_2}"
         r" = -1 \cdot 1 = " + vec(chain["f2 = t * f1"]))
st.latex(r"\frac{\partial L}{\partial f_1} = \frac{\partial L}{\partial f_2}\cdot t = -t = " + vec(chain["f1 = log y"]))
# the vectors and the Jacobian on a line of their own: beside the formula, six classes ran past 1000 pixels
st.latex(r"\begin{aligned}\frac{\partial L}{\partial y} &= \frac{\partial L}{\partial f_1}\cdot\frac{1}{y}"
         r" = -\frac{t}{y} \\ &= " + vec(chain["y = softmax(a)"]) + r"\end{aligned}")
st.markdown("Softmax mixes all the logits, so its local derivative is a K × K Jacobian:")
st.latex(r"\begin{aligned}\frac{\partial y_i}{\partial a_j} &= y_i(\delta_{ij} - y_j) \\ &= " + mat(s.jacobian)
         + r"\end{aligned}")
st.latex(r"\frac{\partial L}{\partial a_j} = \sum_i -\frac{t_i}{y_i}\, y_i(\delta_{ij} - y_j)"
         r" = -t_j + y_j \sum_i t_i = y_j - t_j")
st.markdown("The 1/y of the log cancels the y of softmax, and the targets sum to 1. That is why the fused "
            "layer can skip every step above and return **y − t** directly "
            "(divided by the batch size N in a batch; here N = 1).")

st.subheader("Three routes, one gradient")
comparison = s.table[["class", "dL/da by the chain", "dL/da fused (y - t)", "dL/da numerical"]]
st.dataframe(comparison.style.format("{:.10f}", subset=comparison.columns[1:]), hide_index=True, width="stretch")
st.caption(
    f"Numerical: nudge one logit up and down by 1e-6 and difference the loss. The largest gap between "
    f"the fused backward and the numerical derivative is {s.max_diff:.1e}, the size of rounding error; "
    "the chain and the fused layer agree to the last few bits."
)
with st.expander("every intermediate value, per class"):
    st.dataframe(s.table, hide_index=True, width="stretch")
    st.caption("dL/dy numerical differentiates −Σ t log y with y treated as free numbers, confirming −t/y.")
