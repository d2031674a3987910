"""Activation functions with their exact derivatives.

Each activation is a small object with ``f(x)`` and ``df(x, y)`` where ``y = f(x)``;
``df`` takes both so that sigmoid and tanh can reuse their output (as the source
text's ``Sigmoid`` layer does) and relu-type functions can use the input.
Scalars are plain Python floats so that float32 arrays stay float32 (numpy 2
promotes ``float32 * np.float64`` to float64).

``ACTIVATIONS`` maps a name to a factory ``(leaky_slope) -> Activation``; the model
builder, the command line and the pages all read it.
"""
from __future__ import annotations

import math

import numpy as np

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


class Activation:
    """Base class: ``f`` and ``df`` are elementwise; attributes describe the shape.

    name: registry key.  max_deriv: sup of |f'| (for ``saturated_frac``).
    saturating: f' -> 0 on both sides (sigmoid, tanh): only then is ``saturated_frac``
    recorded.  kinks: points where f or f' jumps (gradient checks stay away).
    hist_range: fixed histogram edges for the activation values.
    gain: PyTorch's ``calculate_gain`` for it, the factor that keeps the signal's scale
    through the layer (1 where PyTorch has no value: elu, gelu, softplus, silu).
    """

    name = "identity"
    max_deriv = 1.0
    gain = 1.0
    saturating = False
    kinks: tuple[float, ...] = ()
    hist_range = (-4.0, 4.0)

    def f(self, x):
        return x

    def df(self, x, y):
        return np.ones_like(x)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Identity(Activation):
    name = "identity"


class Sigmoid(Activation):
    name = "sigmoid"
    max_deriv = 0.25
    saturating = True
    hist_range = (0.0, 1.0)

    def f(self, x):
        # tanh form never overflows, unlike 1 / (1 + exp(-x)) for x << 0
        return 0.5 * (1.0 + np.tanh(0.5 * x))

    def df(self, x, y):
        return y * (1.0 - y)


class Tanh(Activation):
    name = "tanh"
    gain = 5.0 / 3.0
    saturating = True
    hist_range = (-1.0, 1.0)

    def f(self, x):
        return np.tanh(x)

    def df(self, x, y):
        return 1.0 - y * y


class Relu(Activation):
    name = "relu"
    gain = math.sqrt(2.0)
    kinks = (0.0,)
    hist_range = (0.0, 4.0)

    def f(self, x):
        return np.maximum(x, 0.0)

    def df(self, x, y):
        return (x > 0).astype(x.dtype)


class LeakyRelu(Activation):
    name = "leaky_relu"
    kinks = (0.0,)

    def __init__(self, slope: float = 0.01):
        self.slope = float(slope)

    @property
    def gain(self) -> float:
        return math.sqrt(2.0 / (1.0 + self.slope**2))  # not sqrt(2 / 1 + slope^2), numpy-ml's slip

    def f(self, x):
        return np.where(x > 0, x, self.slope * x)

    def df(self, x, y):
        return np.where(x > 0, 1.0, self.slope).astype(x.dtype)

    def __repr__(self):
        return f"LeakyRelu(slope={self.slope})"


class Elu(Activation):
    """ELU with alpha 1 (Clevert et al., 2015)."""

    name = "elu"
    kinks = (0.0,)  # f' is continuous at 0 only for alpha = 1; f'' jumps
    alpha = 1.0
    scale = 1.0

    def f(self, x):
        # expm1 of min(x, 0) so that the unused branch cannot overflow
        neg = self.alpha * np.expm1(np.minimum(x, 0.0))
        return self.scale * np.where(x > 0, x, neg)

    def df(self, x, y):
        # for x <= 0: d/dx scale*alpha*(e^x - 1) = y + scale*alpha
        return np.where(x > 0, self.scale, y + self.scale * self.alpha).astype(x.dtype)


class Selu(Elu):
    """SELU (Klambauer et al., 2017): scale * elu_alpha with the self-normalizing constants."""

    name = "selu"
    max_deriv = SELU_LAMBDA * SELU_ALPHA
    gain = 0.75  # PyTorch's value, chosen for self-normalizing networks
    alpha = SELU_ALPHA
    scale = SELU_LAMBDA


def _erf(x):
    """scipy's exact erf (numpy has none), imported on first use: scipy takes 0.1 s to load."""
    from scipy.special import erf

    return erf(x)


class Gelu(Activation):
    """Exact GELU, x * Phi(x) with Phi the standard normal CDF (erf-based, not tanh)."""

    name = "gelu"
    max_deriv = 1.129  # sup of Phi(x) + x phi(x), reached at x = sqrt(2)

    def f(self, x):
        return 0.5 * x * (1.0 + _erf(x / _SQRT2))

    def df(self, x, y):
        cdf = 0.5 * (1.0 + _erf(x / _SQRT2))
        return cdf + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)


class Softplus(Activation):
    name = "softplus"

    def f(self, x):
        return np.logaddexp(0.0, x)  # log(1 + e^x) without overflow

    def df(self, x, y):
        return 0.5 * (1.0 + np.tanh(0.5 * x))


class Silu(Activation):
    """SiLU / swish: x * sigmoid(x)."""

    name = "silu"
    max_deriv = 1.0998  # sup of s(x)(1 + x(1 - s(x))), at x ~ 2.4

    def f(self, x):
        return x * (0.5 * (1.0 + np.tanh(0.5 * x)))

    def df(self, x, y):
        s = 0.5 * (1.0 + np.tanh(0.5 * x))
        return s * (1.0 + x * (1.0 - s))


ACTIVATIONS = {
    "identity": lambda slope=0.01: Identity(),
    "sigmoid": lambda slope=0.01: Sigmoid(),
    "tanh": lambda slope=0.01: Tanh(),
    "relu": lambda slope=0.01: Relu(),
    "leaky_relu": lambda slope=0.01: LeakyRelu(slope),
    "elu": lambda slope=0.01: Elu(),
    "selu": lambda slope=0.01: Selu(),
    "gelu": lambda slope=0.01: Gelu(),
    "softplus": lambda slope=0.01: Softplus(),
    "silu": lambda slope=0.01: Silu(),
}


def get_activation(name: str, leaky_slope: float = 0.01) -> Activation:
    """Look up an activation by registry name (``linear`` is accepted for identity)."""
    key = "identity" if name == "linear" else name
    if key not in ACTIVATIONS:
        raise KeyError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key](leaky_slope)
