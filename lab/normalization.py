"""Normalization and dropout layers, in the style of ``lab.layers``.

Each ``forward`` caches what its ``backward`` needs; a ``backward`` stores parameter
gradients in ``self.grads`` (same keys as ``self.params``: ``gamma``, ``beta``), never
updates them and never writes into the array it was given.  ``params``/``grads`` may be
given as preallocated arrays (views into a model's flat buffers), as ``Affine`` allows.
Shapes: x (N, D), gamma and beta (D,).  The layers compute in the dtype of their
parameters and input: float32 in, float32 out.
"""
from __future__ import annotations

import numpy as np


def _gamma_beta(width, dtype, gamma, beta, dgamma, dbeta):
    params = {
        "gamma": np.ones(width, dtype=dtype) if gamma is None else gamma,
        "beta": np.zeros(width, dtype=dtype) if beta is None else beta,
    }
    grads = {
        "gamma": np.zeros(width, dtype=dtype) if dgamma is None else dgamma,
        "beta": np.zeros(width, dtype=dtype) if dbeta is None else dbeta,
    }
    return params, grads


def _normalized_backward(dxhat, xhat, inv_std, axis):
    """dL/dx of xhat = (x - mean) / sqrt(var + eps), mean and biased var taken along ``axis``.

    The three terms: the direct path, the path through the mean, the path through the variance.
    """
    n = xhat.shape[axis]
    sum_d = dxhat.sum(axis=axis, keepdims=True)
    sum_dx = _sum_of_products(dxhat, xhat, axis)
    # (inv_std / n) * (n * dxhat - sum_d - xhat * sum_dx), with one temporary instead of four
    out = xhat * sum_dx
    out *= -1
    out += dxhat * n
    out -= sum_d
    out *= inv_std / n
    return out


def _sum_of_products(a, b, axis):
    """(a * b).sum(axis, keepdims=True) without the (N, D) temporary."""
    if axis == 0:
        return np.einsum("ij,ij->j", a, b)[None, :]
    return np.einsum("ij,ij->i", a, b)[:, None]


class BatchNorm:
    """y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta, per unit over the mini-batch (Ioffe & Szegedy, 2015).

    Training (``training=True``): mean_B and the biased var_B of this batch, as PyTorch's
    ``BatchNorm1d`` in training mode; with ``track=True`` the running averages move by
    ``momentum``: running = (1 - momentum) * running + momentum * batch, where the running
    variance takes the unbiased var_B * N / (N - 1), as torch does.  ``track=False`` uses
    the batch statistics without moving the averages (the lab's probe pass).
    Evaluation (``training=False``): the running averages, so each example stands alone.
    """

    def __init__(self, width: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float64,
                 gamma=None, beta=None, dgamma=None, dbeta=None):
        self.params, self.grads = _gamma_beta(width, dtype, gamma, beta, dgamma, dbeta)
        self.eps, self.momentum = eps, momentum
        self.running_mean = np.zeros(width, dtype=dtype)
        self.running_var = np.ones(width, dtype=dtype)
        self.xhat = self.inv_std = None
        self.training = True

    def forward(self, x, training: bool = True, track: bool = True):
        """x (N, D) -> y (N, D)."""
        self.training = training
        if training:
            mean = x.mean(axis=0)
            centered = x - mean
            var = np.einsum("ij,ij->j", centered, centered) / x.dtype.type(x.shape[0])
            if track:
                n = x.shape[0]
                m = self.momentum
                self.running_mean *= 1 - m
                self.running_mean += m * mean
                self.running_var *= 1 - m
                self.running_var += m * var * (n / max(n - 1, 1))
        else:
            centered = x - self.running_mean.astype(x.dtype, copy=False)
            var = self.running_var.astype(x.dtype, copy=False)
        self.inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        if training:
            centered *= self.inv_std  # centered is this pass's own temporary: reuse it as xhat
            self.xhat = centered
        else:
            self.xhat = centered * self.inv_std
        y = self.xhat * self.params["gamma"]
        y += self.params["beta"]
        return y

    def backward(self, dout):
        """dout (N, D) -> dL/dx (N, D); fills grads["gamma"], grads["beta"]."""
        self.grads["gamma"][...] = np.einsum("ij,ij->j", dout, self.xhat)
        np.sum(dout, axis=0, out=self.grads["beta"])
        dxhat = dout * self.params["gamma"]
        if not self.training:  # fixed statistics: no path through the mean or variance
            return dxhat * self.inv_std
        return _normalized_backward(dxhat, self.xhat, self.inv_std, axis=0)


class LayerNorm:
    """y = gamma * (x - mean_i) / sqrt(var_i + eps) + beta, each example over its units (Ba et al., 2016).

    The same computation in training and evaluation; no running statistics.
    """

    def __init__(self, width: int, eps: float = 1e-5, dtype=np.float64,
                 gamma=None, beta=None, dgamma=None, dbeta=None):
        self.params, self.grads = _gamma_beta(width, dtype, gamma, beta, dgamma, dbeta)
        self.eps = eps
        self.xhat = self.inv_std = None

    def forward(self, x, training: bool = True, track: bool = True):
        """x (N, D) -> y (N, D); ``training`` and ``track`` are accepted for a uniform call and ignored."""
        mean = x.mean(axis=1, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=1, keepdims=True)
        self.inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        self.xhat = centered * self.inv_std
        return self.xhat * self.params["gamma"] + self.params["beta"]

    def backward(self, dout):
        np.sum(dout * self.xhat, axis=0, out=self.grads["gamma"])
        np.sum(dout, axis=0, out=self.grads["beta"])
        return _normalized_backward(dout * self.params["gamma"], self.xhat, self.inv_std, axis=1)


class Dropout:
    """Inverted dropout: while training, each unit is zeroed with probability p and the
    survivors scaled by 1 / (1 - p), so evaluation (the identity) needs no rescaling.

    ``fixed_mask``: when set (an (N, D) array of 0 and 1/(1-p)), training uses it instead of
    drawing one, which a gradient check needs; ``freeze()`` keeps the last mask drawn.
    """

    def __init__(self, p: float, rng: np.random.Generator):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        self.p, self.rng = p, rng
        self.mask = None  # None: the identity was applied
        self.fixed_mask = None
        self.params, self.grads = {}, {}

    def forward(self, x, training: bool = True, track: bool = True):
        if not training or self.p == 0.0:
            self.mask = None
            return x
        if self.fixed_mask is not None:
            self.mask = self.fixed_mask.astype(x.dtype, copy=False)
        else:
            keep = self.rng.random(x.shape) >= self.p
            self.mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self.mask

    def freeze(self) -> None:
        """Reuse the last mask drawn in every later training forward."""
        self.fixed_mask = self.mask

    def backward(self, dout):
        return dout if self.mask is None else dout * self.mask


NORMS = {"none": None, "batch": BatchNorm, "layer": LayerNorm}
