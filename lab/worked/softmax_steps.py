"""Softmax with cross-entropy for one example, taken apart into the source text's small steps.

Forward, for logits a (K,) and a one-hot target t (K,):

    y  = softmax(a)
    f1 = log y          (elementwise)
    f2 = t * f1         (elementwise)
    f3 = sum_k f2_k
    L  = -f3

Backward multiplies the local derivatives from the loss down: dL/df3 = -1, df3/df2 = 1,
df2/df1 = t, df1/dy = 1/y, so dL/dy = -t / y; then softmax's Jacobian
dy_i/da_j = y_i (delta_ij - y_j) turns that into dL/da = y - t.  ``softmax_steps`` does
this step by step, runs the lab's fused ``SoftmaxWithLoss`` beside it, and checks both
against central differences of the loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lab.engine.gradcheck import numerical_gradient
from lab.engine.layers import SoftmaxWithLoss, softmax

TEXT_LOGITS = (0.3, 2.9, 4.0)  # the softmax example of "Deep Learning from Scratch"


@dataclass(frozen=True)
class SoftmaxSteps:
    """Every intermediate of forward and backward for one example; arrays are (K,).

    chain: DataFrame, one row per backward step (step, local, upstream): the local
    derivative and the gradient of L with respect to that step's output, as arrays.
    jacobian: (K, K) dy_i/da_j.  table: DataFrame, one row per class.
    """

    a: np.ndarray
    t: np.ndarray
    y: np.ndarray
    loss: float
    fused_loss: float
    dL_dy: np.ndarray  # -t / y, by the chain of local derivatives
    jacobian: np.ndarray
    dL_da_chain: np.ndarray  # jacobian^T @ dL_dy
    dL_da_fused: np.ndarray  # SoftmaxWithLoss.backward()
    dL_da_numerical: np.ndarray
    dL_dy_numerical: np.ndarray  # central differences of -sum t log y, y taken as free
    chain: pd.DataFrame
    table: pd.DataFrame

    @property
    def max_diff(self) -> float:
        """Largest |fused - numerical| over the logits."""
        return float(np.abs(self.dL_da_fused - self.dL_da_numerical).max())


def cross_entropy_of_probs(y: np.ndarray, t: np.ndarray) -> float:
    """L = -sum_k t_k log y_k, with y treated as free numbers (not necessarily a softmax)."""
    mask = t != 0  # 0 * log(0) counts as 0, as in the limit
    return float(-(t[mask] * np.log(y[mask])).sum())


def softmax_jacobian(y: np.ndarray) -> np.ndarray:
    """dy_i/da_j = y_i (delta_ij - y_j): diag(y) - y y^T, (K, K)."""
    return np.diag(y) - np.outer(y, y)


def softmax_steps(logits, target: int, eps: float = 1e-6) -> SoftmaxSteps:
    """Forward and backward of softmax-with-loss for logits (K,) and target class index."""
    a = np.asarray(logits, dtype=np.float64).copy()
    k = a.shape[0]
    if a.ndim != 1 or k < 2:
        raise ValueError("need at least two logits")
    if not 0 <= target < k:
        raise ValueError(f"target class must be between 0 and {k - 1}")
    t = np.zeros(k)
    t[target] = 1.0

    y = softmax(a[None, :])[0]
    f1 = np.log(y)
    f2 = t * f1 + 0.0  # + 0.0 turns the -0.0 of 0 * (negative) into a plain 0
    f3 = f2.sum()
    loss = float(-f3)

    fused = SoftmaxWithLoss()
    fused_loss = fused.forward(a[None, :], np.array([target]))
    dL_da_fused = fused.backward()[0]  # a batch of one, so (y - t) / 1

    # backward, one local derivative at a time; "upstream" is dL/d(that step's output)
    dL_df3 = -1.0
    dL_df2 = dL_df3 * np.ones(k)  # d(sum)/d(each term) = 1
    dL_df1 = dL_df2 * t + 0.0
    dL_dy = dL_df1 / y
    jac = softmax_jacobian(y)
    dL_da_chain = jac.T @ dL_dy
    chain = pd.DataFrame([
        {"step": "L = -f3", "local": np.array([-1.0]), "upstream": np.array([1.0])},
        {"step": "f3 = sum f2", "local": np.ones(k), "upstream": np.array([dL_df3])},
        {"step": "f2 = t * f1", "local": t.copy(), "upstream": dL_df2},
        {"step": "f1 = log y", "local": 1.0 / y, "upstream": dL_df1},
        {"step": "y = softmax(a)", "local": jac, "upstream": dL_dy},
        {"step": "a", "local": None, "upstream": dL_da_chain},
    ])

    a_work = a.copy()
    dL_da_num = numerical_gradient(lambda: SoftmaxWithLoss().forward(a_work[None, :], np.array([target])), a_work, eps)
    y_work = y.copy()
    # a relative step in y, since y_k can be far smaller than eps
    dL_dy_num = np.array([_central(lambda v, i=i: _ce_at(y_work, t, i, v), y[i], eps * y[i]) for i in range(k)])

    table = pd.DataFrame({
        "class": np.arange(k), "logit a": a, "target t": t, "softmax y": y, "log y": f1, "t log y": f2,
        "dL/dy = -t/y": dL_dy, "dL/dy numerical": dL_dy_num,
        "dL/da by the chain": dL_da_chain, "dL/da fused (y - t)": dL_da_fused, "dL/da numerical": dL_da_num,
    })
    return SoftmaxSteps(a, t, y, loss, fused_loss, dL_dy, jac, dL_da_chain, dL_da_fused, dL_da_num,
                        dL_dy_num, chain, table)


def _ce_at(y, t, i, value):
    moved = y.copy()
    moved[i] = value
    return cross_entropy_of_probs(moved, t)


def _central(f, x0: float, h: float) -> float:
    return (f(x0 + h) - f(x0 - h)) / (2.0 * h)
