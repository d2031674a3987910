"""Optimizers: one ``step(params, grads)`` for the whole model.

``params`` and ``grads`` are lists of arrays in the same order (the MLP passes its
one flat parameter buffer and its flat gradient buffer, so a step is a handful of
vector operations however deep the network).  A step updates every array in place and
keeps its state (moments) per array.  Hyper-parameters are Python floats, so float32
parameters stay float32.

A step allocates nothing after the first: it runs its chain of elementwise operations a
cache-sized piece at a time (``lab.engine.pieces``), into one scratch array per thread, and
splits a large buffer between threads.  PyTorch's CPU optimizers make a temporary as
large as the parameters (``denom`` in Adam); numpy's whole-array expressions make five.

The change a step applied is not kept: ``update_norms(slices)`` and ``last_update`` compute it
again from the state and the gradient the step used, with the same operations, so they hold
until the next step or until that gradient is overwritten (the record pass's backward does).
"""
from __future__ import annotations

import numpy as np

from . import pieces


def _flat(a: np.ndarray) -> np.ndarray:
    """a as a 1-D view (never a copy: a step must write into the caller's array)."""
    flat = a.reshape(-1)
    if a.size and not np.may_share_memory(flat, a):  # a copy never overlaps its source
        raise ValueError("an optimizer steps contiguous arrays only (a flat view of this one would be a copy)")
    return flat


class Optimizer:
    """``_advance(where, s)`` moves the state of the array being stepped over the piece ``where`` and
    leaves the step's change in ``s``; ``_change(where, s)`` writes that change again from the state
    (``_begin`` binds the array's gradient and state first)."""

    slots: tuple[str, ...] = ()  # the state arrays each parameter array has
    passes = 2  # elementwise passes over the parameters per step (read and write): the cost model's price of a step

    def __init__(self, lr: float):
        self.lr = float(lr)
        self.state: dict[tuple[int, str], np.ndarray] = {}
        self.t = 0
        self._grads: list | None = None  # the gradients of the last step

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update each array of ``params`` in place from the same-shaped array of ``grads`` (contiguous arrays
        of any shape: they are stepped as their flat views)."""
        self.t += 1
        params, grads = [_flat(p) for p in params], [_flat(g) for g in grads]
        self._grads = grads
        for i, (p, g) in enumerate(zip(params, grads)):
            for name in self.slots:
                if (i, name) not in self.state:
                    self.state[(i, name)] = np.zeros_like(g)
            self._begin(i, g)

            def piece(where, s, p=p):
                self._advance(where, s)
                p[where] += s  # in place: the layers hold views of these arrays

            pieces.for_pieces(piece, 0, p.size, p.dtype)

    def _begin(self, i: int, g: np.ndarray) -> None:
        """Before a step's pieces: bind what they read (the gradient, the state, this step's constants)."""
        self._g = g
        self._s = {name: self.state[(i, name)] for name in self.slots}

    def _advance(self, where, s):
        raise NotImplementedError

    def _change(self, where, s):
        raise NotImplementedError

    def update_norms(self, slices: list[slice], i: int = 0) -> list[float] | None:
        """The norm of the last step's change of array i over each of ``slices`` (the model's W_l), or
        None before the first step; computed a piece at a time, allocating nothing."""
        if self._grads is None:
            return None
        g = self._grads[i]
        self._begin(i, g)
        return [pieces.norm(g, w.start, w.stop, fill=self._change) for w in slices]

    @property
    def last_update(self) -> list[np.ndarray]:
        """The change the last step applied to each array (new arrays; [] before the first step)."""
        out = []
        for i, g in enumerate(self._grads or []):
            self._begin(i, g)
            delta = np.empty_like(g)
            pieces.for_pieces(lambda where, s, delta=delta: self._change(where, delta[where]), 0, g.size, g.dtype)
            out.append(delta)
        return out


class SGD(Optimizer):
    """W <- W - lr * g."""

    def _advance(self, where, s):
        self._change(where, s)

    def _change(self, where, s):
        np.multiply(self._g[where], -self.lr, out=s)


class Momentum(Optimizer):
    """v <- mu v - lr g; W <- W + v (Polyak momentum, mu = 0.9)."""

    slots = ("v",)
    passes = 4

    def __init__(self, lr, momentum=0.9):
        super().__init__(lr)
        self.momentum = float(momentum)

    def _advance(self, where, s):
        v = self._s["v"][where]
        v *= self.momentum
        np.multiply(self._g[where], -self.lr, out=s)
        v += s
        s[...] = v

    def _change(self, where, s):
        s[...] = self._s["v"][where]


class _ScaledByHistory(Optimizer):
    """AdaGrad and RMSProp: the change is -lr g / (sqrt(h) + eps) for a running h of g^2."""

    slots = ("h",)

    def _change(self, where, s):
        np.sqrt(self._s["h"][where], out=s)
        s += self.eps
        np.divide(self._g[where], s, out=s)
        s *= -self.lr


class AdaGrad(_ScaledByHistory):
    """h <- h + g^2; W <- W - lr g / (sqrt(h) + eps)."""

    passes = 6

    def __init__(self, lr, eps=1e-7):
        super().__init__(lr)
        self.eps = float(eps)

    def _advance(self, where, s):
        g = self._g[where]
        np.multiply(g, g, out=s)
        self._s["h"][where] += s
        self._change(where, s)


class RMSProp(_ScaledByHistory):
    """h <- rho h + (1 - rho) g^2; W <- W - lr g / (sqrt(h) + eps), rho = 0.99."""

    passes = 7

    def __init__(self, lr, rho=0.99, eps=1e-7):
        super().__init__(lr)
        self.rho, self.eps = float(rho), float(eps)

    def _advance(self, where, s):
        g, h = self._g[where], self._s["h"][where]
        h *= self.rho
        np.multiply(g, g, out=s)
        s *= 1.0 - self.rho
        h += s
        self._change(where, s)


class Adam(Optimizer):
    """Kingma & Ba (2015) with bias correction; beta1 0.9, beta2 0.999, eps 1e-8."""

    slots = ("m", "v")
    passes = 10

    def __init__(self, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _advance(self, where, s):
        g, m, v = self._g[where], self._s["m"][where], self._s["v"][where]
        m *= self.beta1
        np.multiply(g, 1.0 - self.beta1, out=s)
        m += s
        v *= self.beta2
        np.multiply(g, g, out=s)
        s *= 1.0 - self.beta2
        v += s
        self._change(where, s)

    def _change(self, where, s):
        # PyTorch's form: eps is added to the bias-corrected sqrt(v_hat)
        np.multiply(self._s["v"][where], 1.0 / (1.0 - self.beta2**self.t), out=s)
        np.sqrt(s, out=s)
        s += self.eps
        np.divide(self._s["m"][where], s, out=s)
        s *= -self.lr / (1.0 - self.beta1**self.t)


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}
