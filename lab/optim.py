"""Optimizers: one ``step(params, grads)`` for the whole model.

``params`` and ``grads`` are lists of arrays in the same order (the MLP passes its
one flat parameter buffer and its flat gradient buffer, so a step is a handful of
vector operations however deep the network).  A step updates every array in place,
keeps its state per array, and leaves the change it applied in ``last_update``
(valid until the next step) for the update-ratio statistic.  Hyper-parameters are
Python floats, so float32 parameters stay float32.
"""
from __future__ import annotations

import numpy as np


class Optimizer:
    def __init__(self, lr: float):
        self.lr = float(lr)
        self.state: dict[tuple[int, str], np.ndarray] = {}
        self.last_update: list[np.ndarray] = []
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        self.last_update = []
        for i, (p, g) in enumerate(zip(params, grads)):
            delta = self.delta(i, g)
            p += delta  # in place: the layers hold views of these arrays
            self.last_update.append(delta)

    def delta(self, key: int, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _slot(self, key, g, name="m"):
        full = (key, name)
        if full not in self.state:
            self.state[full] = np.zeros_like(g)
        return self.state[full]


class SGD(Optimizer):
    """W <- W - lr * g."""

    def delta(self, key, g):
        return -self.lr * g


class Momentum(Optimizer):
    """v <- mu v - lr g; W <- W + v (Polyak momentum, mu = 0.9)."""

    def __init__(self, lr, momentum=0.9):
        super().__init__(lr)
        self.momentum = float(momentum)

    def delta(self, key, g):
        v = self._slot(key, g, "v")
        v *= self.momentum
        v -= self.lr * g
        return v  # the step applies it before the next call changes it


class AdaGrad(Optimizer):
    """h <- h + g^2; W <- W - lr g / (sqrt(h) + eps)."""

    def __init__(self, lr, eps=1e-7):
        super().__init__(lr)
        self.eps = float(eps)

    def delta(self, key, g):
        h = self._slot(key, g, "h")
        h += g * g
        return (-self.lr * g) / (np.sqrt(h) + self.eps)


class RMSProp(Optimizer):
    """h <- rho h + (1 - rho) g^2; W <- W - lr g / (sqrt(h) + eps), rho = 0.99."""

    def __init__(self, lr, rho=0.99, eps=1e-7):
        super().__init__(lr)
        self.rho, self.eps = float(rho), float(eps)

    def delta(self, key, g):
        h = self._slot(key, g, "h")
        h *= self.rho
        h += (1.0 - self.rho) * (g * g)
        return -self.lr * g / (np.sqrt(h) + self.eps)


class Adam(Optimizer):
    """Kingma & Ba (2015) with bias correction; beta1 0.9, beta2 0.999, eps 1e-8."""

    def __init__(self, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def delta(self, key, g):
        m = self._slot(key, g, "m")
        v = self._slot(key, g, "v")
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * (g * g)
        # PyTorch's form: eps is added to the bias-corrected sqrt(v_hat)
        denom = v * (1.0 / (1.0 - self.beta2**self.t))
        np.sqrt(denom, out=denom)
        denom += self.eps
        out = m * (-self.lr / (1.0 - self.beta1**self.t))
        out /= denom
        return out


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}
