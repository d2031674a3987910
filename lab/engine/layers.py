"""Layer objects with ``forward`` and ``backward``, in the spirit of the source text.

Each ``forward`` caches exactly what its ``backward`` needs.  A ``backward`` returns
the gradient for its inputs, stores parameter gradients in ``self.grads`` (same keys
as ``self.params``), never updates a weight and never writes into the array it was
given, unless told it may (``overwrite=True``: the model's own arrays, in a training step).
Shapes: x (N, D_in), W (D_in, D_out), b (D_out,).
"""
from __future__ import annotations

import numpy as np

from .activations import Activation


class MulLayer:
    """z = x * y, the text's fruit-shop multiply node; dz/dx = y, dz/dy = x."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class AddLayer:
    """z = x + y; both local derivatives are 1."""

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout * 1, dout * 1


class Affine:
    """z = x @ W + b.  ``need_dx=False`` skips dL/dx for the first layer, whose input is data.

    ``grads`` may be given as preallocated arrays (views into a model's flat gradient
    buffer); backward writes into them, so read them before the next backward.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, need_dx: bool = True, dW=None, db=None):
        self.params = {"W": W, "b": b}
        self.grads = {
            "W": np.zeros_like(W) if dW is None else dW,
            "b": np.zeros_like(b) if db is None else db,
        }
        self.need_dx = need_dx
        self.x = None

    def forward(self, x):
        self.x = x
        z = x @ self.params["W"]
        z += self.params["b"]
        return z

    def backward(self, dout):
        np.matmul(self.x.T, dout, out=self.grads["W"])
        np.add.reduce(dout, axis=0, out=self.grads["b"])  # np.sum's wrapper costs more than the sum here
        return dout @ self.params["W"].T if self.need_dx else None


class ActivationLayer:
    """h = phi(z), elementwise; caches what phi' needs: h, and z unless phi' follows from h alone.

    ``overwrite=True`` lets forward compute h in z's array and backward compute dL/dz in dout's
    (the model's own arrays, read by nobody else): no (N, D) array is made for either.
    """

    def __init__(self, fn: Activation):
        self.fn = fn
        self.z = self.h = None

    def forward(self, z, overwrite: bool = False):
        if overwrite and not self.fn.needs_input:
            self.z, self.h = None, self.fn.f(z, out=z)
        else:
            self.z, self.h = z, self.fn.f(z)
        return self.h

    def backward(self, dout, overwrite: bool = False):
        return self.fn.grad(dout if overwrite else dout.copy(), self.z, self.h)


def one_hot(t: np.ndarray, k: int, dtype=np.float64) -> np.ndarray:
    """Integer labels (N,) -> one-hot (N, k)."""
    out = np.zeros((t.shape[0], k), dtype=dtype)
    out[np.arange(t.shape[0]), t] = 1.0
    return out


def log_softmax(a: np.ndarray) -> np.ndarray:
    """Row-wise log softmax; subtracting the row max keeps exp from overflowing."""
    shifted = a - a.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(a: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(a))


def _rows(n: int) -> np.ndarray:
    """0, 1, ..., n-1: the row index that picks each example's label entry, a[_rows(n), t]."""
    rows = _ROWS.get(n)
    if rows is None:
        rows = _ROWS[n] = np.arange(n)
    return rows


_ROWS: dict[int, np.ndarray] = {}


class _LabelLoss:
    """What both losses share: integer labels are used as indices (no one-hot array is made, as
    the source text's book does it); one-hot targets (N, K) are accepted too."""

    def _minus_target(self, a, t):
        """a - t for the one-hot t of the labels, in a new array."""
        d = a.copy()
        if t.ndim == 2:
            d -= t
        else:
            d[_rows(len(t)), t] -= 1.0
        return d

    def backward(self, dout=1.0):
        d = self._minus_target(self.y, self.t)
        d *= dout / self.y.shape[0]
        return d


class SoftmaxWithLoss(_LabelLoss):
    """Softmax fused with mean cross-entropy; backward is (y - t) / N.

    forward(a, t): a (N, K) logits, t integer labels (N,) or one-hot (N, K).
    Returns the mean loss.  ``per_example`` keeps -log y_t of each row.
    """

    def forward(self, a, t):
        logp = log_softmax(a)
        self.y = np.exp(logp)
        self.t = t
        if t.ndim == 2:
            self.per_example = -(logp * t).sum(axis=1)
        else:
            self.per_example = -logp[_rows(len(t)), t]
        return float(self.per_example.mean())


class MSELoss(_LabelLoss):
    """Mean over examples of 0.5 * ||a - t||^2, against one-hot targets; backward (a - t) / N."""

    def forward(self, a, t):
        self.y, self.t = a, t
        diff = self._minus_target(a, t)
        diff *= diff
        self.per_example = 0.5 * diff.sum(axis=1)
        return float(self.per_example.mean())


LOSSES = {"cross_entropy": SoftmaxWithLoss, "mse": MSELoss}
