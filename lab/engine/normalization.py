"""Normalization and dropout layers, in the style of ``lab.engine.layers``.

Each ``forward`` caches what its ``backward`` needs; a ``backward`` stores parameter
gradients in ``self.grads`` (same keys as ``self.params``: ``gamma``, ``beta``), never
updates them and never writes into the array it was given; a ``forward`` writes into its
input only when told it may (``overwrite_x=True``).  ``params``/``grads`` may be
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


# How the layers keep a training step cheap (at batch 256, width 128 a norm layer costs about a third of
# its affine's matrix products): means and sums over an axis are matrix-vector products with a
# constant vector (BLAS: 3-4 times faster than ``mean(axis)``), elementwise steps write into an array
# already made (``out=``, in place), and the model lets forward write into its input (``overwrite_x``:
# the affine's output, read by nobody else), which is in cache, where a new array is not.  The math is
# the textbook's; only the order of the floating-point operations differs.


class _Norm:
    """What BatchNorm and LayerNorm share: gamma and beta, and constant vectors for sums and means."""

    def __init__(self, width, eps, dtype, gamma, beta, dgamma, dbeta):
        self.params, self.grads = _gamma_beta(width, dtype, gamma, beta, dgamma, dbeta)
        self.eps = eps
        self._vectors = {}

    def forget(self) -> None:
        """Let go of what forward kept for backward (no backward follows)."""
        self.xc = self.xhat = self.inv_std = None

    def _ones(self, n: int, dtype) -> np.ndarray:
        """n ones: ``ones @ x`` sums x (N, D) over the batch (n = N), ``x @ ones`` over the units (n = D)."""
        return self._vector(n, dtype, 1.0)

    def _averager(self, n: int, dtype) -> np.ndarray:
        """n entries 1/n: ``averager @ x`` is the mean over the batch, ``x @ averager`` over the units."""
        return self._vector(n, dtype, 1.0 / n)

    def _vector(self, n, dtype, value):
        key = (n, dtype, value)
        v = self._vectors.get(key)
        if v is None:
            v = self._vectors[key] = np.full(n, value, dtype=dtype)
        return v


class BatchNorm(_Norm):
    """y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta, per unit over the mini-batch (Ioffe & Szegedy, 2015).

    Training (``training=True``): mean_B and the biased var_B of this batch, as PyTorch's
    ``BatchNorm1d`` in training mode; with ``track=True`` the running averages move by
    ``momentum``: running = (1 - momentum) * running + momentum * batch, where the running
    variance takes the unbiased var_B * N / (N - 1), as torch does.  ``track=False`` uses
    the batch statistics without moving the averages (the lab's probe pass).
    Evaluation (``training=False``): the running averages, so each example stands alone.

    Forward caches the centered input xc = x - mean and inv_std = 1 / sqrt(var + eps) (xhat is
    xc * inv_std), so that y = xc * (gamma * inv_std) + beta is two passes over (N, D), not three.
    """

    def __init__(self, width: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float64,
                 gamma=None, beta=None, dgamma=None, dbeta=None):
        super().__init__(width, eps, dtype, gamma, beta, dgamma, dbeta)
        self.momentum = momentum
        self.running_mean = np.zeros(width, dtype=dtype)
        self.running_var = np.ones(width, dtype=dtype)
        self.xc = self.inv_std = None
        self.training = True

    def forward(self, x, training: bool = True, track: bool = True, overwrite_x: bool = False):
        """x (N, D) -> y (N, D).  ``overwrite_x``: x may be overwritten (the caller never reads it again)."""
        self.training = training
        n = x.shape[0]
        xc = x if overwrite_x else np.empty_like(x)
        if training:
            mean = self._averager(n, x.dtype) @ x
            np.subtract(x, mean, out=xc)
            y = np.multiply(xc, xc)  # the squares, then (below) the output in the same array
            var = self._averager(n, x.dtype) @ y
            if track:
                m = self.momentum
                self.running_mean *= 1 - m
                self.running_mean += m * mean
                self.running_var *= 1 - m
                self.running_var += var * (m * n / max(n - 1, 1))
        else:
            np.subtract(x, self.running_mean.astype(x.dtype, copy=False), out=xc)
            var = self.running_var.astype(x.dtype)  # a copy: the next lines write into it
            y = np.empty_like(xc)
        var += self.eps  # a Python float: float32 stays float32
        inv_std = np.sqrt(var, out=var)
        np.divide(1, inv_std, out=inv_std)
        self.xc, self.inv_std = xc, inv_std
        np.multiply(xc, self.params["gamma"] * inv_std, out=y)
        y += self.params["beta"]
        return y

    def backward(self, dout):
        """dout (N, D) -> dL/dx (N, D); fills grads["gamma"], grads["beta"].

        With s = gamma * inv_std and the gradients just computed (dgamma = sum_n dout * xhat,
        dbeta = sum_n dout), dL/dx = s * (dout - (dbeta + xhat * dgamma) / N) in training
        (the direct path, the path through the mean, the path through the variance), s * dout
        with fixed statistics.
        """
        xc, inv_std = self.xc, self.inv_std
        n = dout.shape[0]
        ones = self._ones(n, dout.dtype)
        dgamma, dbeta = self.grads["gamma"], self.grads["beta"]
        np.matmul(ones, dout, out=dbeta)
        dx = np.multiply(dout, xc)  # dout * xc, then (below) dL/dx in the same array
        np.matmul(ones, dx, out=dgamma)
        dgamma *= inv_std
        s = self.params["gamma"] * inv_std
        if not self.training:
            return np.multiply(dout, s, out=dx)
        # (dbeta + xhat * dgamma) / N = xc * (inv_std * dgamma / N) + dbeta / N
        np.multiply(xc, inv_std * dgamma / n, out=dx)
        dx += dbeta / n
        np.subtract(dout, dx, out=dx)
        dx *= s
        return dx


class LayerNorm(_Norm):
    """y = gamma * (x - mean_i) / sqrt(var_i + eps) + beta, each example over its units (Ba et al., 2016).

    The same computation in training and evaluation; no running statistics.
    """

    def __init__(self, width: int, eps: float = 1e-5, dtype=np.float64,
                 gamma=None, beta=None, dgamma=None, dbeta=None):
        super().__init__(width, eps, dtype, gamma, beta, dgamma, dbeta)
        self.xhat = self.inv_std = None

    def forward(self, x, training: bool = True, track: bool = True, overwrite_x: bool = False):
        """x (N, D) -> y (N, D); ``training`` and ``track`` are accepted for a uniform call and ignored;
        ``overwrite_x``: x may be overwritten (the caller never reads it again)."""
        average = self._averager(x.shape[1], x.dtype)
        mean = x @ average
        xhat = np.subtract(x, mean[:, None], out=x if overwrite_x else None)
        y = np.multiply(xhat, xhat)  # the squares, then (below) the output in the same array
        var = y @ average
        var += self.eps
        inv_std = np.sqrt(var, out=var)
        np.divide(1, inv_std, out=inv_std)
        xhat *= inv_std[:, None]
        self.xhat, self.inv_std = xhat, inv_std
        np.multiply(xhat, self.params["gamma"], out=y)
        y += self.params["beta"]
        return y

    def backward(self, dout):
        """dout (N, D) -> dL/dx (N, D); fills grads["gamma"], grads["beta"].

        With dxhat = dout * gamma, per example: dL/dx = inv_std * (dxhat - (sum_d dxhat + xhat *
        sum_d dxhat * xhat) / D), where sum_d dxhat = dout @ gamma and sum_d dxhat * xhat =
        (dout * xhat) @ gamma.
        """
        xhat, inv_std, gamma = self.xhat, self.inv_std, self.params["gamma"]
        d = dout.shape[1]
        ones = self._ones(dout.shape[0], dout.dtype)
        np.matmul(ones, dout, out=self.grads["beta"])
        tmp = np.multiply(dout, xhat)
        np.matmul(ones, tmp, out=self.grads["gamma"])
        sum_dxhat_xhat = tmp @ gamma
        sum_dxhat = dout @ gamma
        # (sum_dxhat + xhat * sum_dxhat_xhat) / D
        sum_dxhat_xhat /= d
        sum_dxhat /= d
        np.multiply(xhat, sum_dxhat_xhat[:, None], out=tmp)
        tmp += sum_dxhat[:, None]
        dx = dout * gamma
        dx -= tmp
        dx *= inv_std[:, None]
        return dx


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
