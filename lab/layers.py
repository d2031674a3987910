"""Layer objects with ``forward`` and ``backward``, in the spirit of the source text.

Each ``forward`` caches exactly what its ``backward`` needs.  A ``backward`` returns
the gradient for its inputs, stores parameter gradients in ``self.grads`` (same keys
as ``self.params``), never updates a weight and never writes into the array it was
given.  Shapes: x (N, D_in), W (D_in, D_out), b (D_out,).
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
        np.sum(dout, axis=0, out=self.grads["b"])
        return dout @ self.params["W"].T if self.need_dx else None


class ActivationLayer:
    """h = phi(z), elementwise; caches z and h, since phi' is cheapest from one or the other."""

    def __init__(self, fn: Activation):
        self.fn = fn
        self.z = self.h = None

    def forward(self, z):
        self.z = z
        self.h = self.fn.f(z)
        return self.h

    def backward(self, dout):
        return dout * self.fn.df(self.z, self.h)


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


class SoftmaxWithLoss:
    """Softmax fused with mean cross-entropy; backward is (y - t) / N.

    forward(a, t): a (N, K) logits, t integer labels (N,) or one-hot (N, K).
    Returns the mean loss.  ``per_example`` keeps -log y_t of each row.
    """

    def forward(self, a, t):
        logp = log_softmax(a)
        self.y = np.exp(logp)
        self.t = t if t.ndim == 2 else one_hot(t, a.shape[1], a.dtype)
        self.per_example = -(logp * self.t).sum(axis=1)
        return float(self.per_example.mean())

    def backward(self, dout=1.0):
        n = self.y.shape[0]
        return (self.y - self.t) * (dout / n)


class MSELoss:
    """Mean over examples of 0.5 * ||a - t||^2, against one-hot targets; backward (a - t) / N."""

    def forward(self, a, t):
        self.y = a
        self.t = t if t.ndim == 2 else one_hot(t, a.shape[1], a.dtype)
        diff = a - self.t
        self.per_example = 0.5 * (diff * diff).sum(axis=1)
        return float(self.per_example.mean())

    def backward(self, dout=1.0):
        n = self.y.shape[0]
        return (self.y - self.t) * (dout / n)


LOSSES = {"cross_entropy": SoftmaxWithLoss, "mse": MSELoss}
