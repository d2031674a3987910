"""Activation functions with their exact derivatives.

Each activation is a small object with ``f(x)`` and ``df(x, y)`` where ``y = f(x)``;
``df`` takes both so that sigmoid and tanh can reuse their output (as the source
text's ``Sigmoid`` layer does) and relu-type functions can use the input.
Scalars are plain Python floats so that float32 arrays stay float32 (numpy 2
promotes ``float32 * np.float64`` to float64).

For the training step each activation also has ``f(x, out)``, writing into ``out`` (which may be
``x`` itself), and ``grad(dout, x, y)``, which multiplies ``dout`` by phi'(x) in place and returns it, as
scikit-learn's ``inplace_*_derivative`` functions do: no (N, D) array is made for phi'.  Where phi'
can be read off the output alone (``needs_input`` False), the model computes phi in place over its
input and keeps only the output; ``grad`` is then called with ``x`` None.

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
    needs_input: phi' needs x; False where it follows from y = phi(x) alone.
    """

    name = "identity"
    max_deriv = 1.0
    gain = 1.0
    saturating = False
    needs_input = True
    kinks: tuple[float, ...] = ()
    hist_range = (-4.0, 4.0)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "df" in cls.__dict__:  # a derivative of its own (a planted bug, say): grad and the cache must follow it
            if "grad" not in cls.__dict__:
                cls.grad = Activation.grad
            if "needs_input" not in cls.__dict__:
                cls.needs_input = True

    def f(self, x, out=None):
        return x if out is None else _put(out, x)

    def df(self, x, y):
        return np.ones_like(x)

    def grad(self, dout, x, y):
        """dout * phi'(x), written into dout."""
        return np.multiply(dout, self.df(x, y), out=dout)

    def __repr__(self):
        return f"{type(self).__name__}()"


def _put(out, value):
    """value written into out (nothing to do when they are one array); returns out."""
    if out is not value:
        np.copyto(out, value)
    return out


class Identity(Activation):
    name = "identity"
    needs_input = False

    def grad(self, dout, x, y):
        return dout


class Sigmoid(Activation):
    name = "sigmoid"
    max_deriv = 0.25
    saturating = True
    needs_input = False
    hist_range = (0.0, 1.0)

    def f(self, x, out=None):
        # tanh form never overflows, unlike 1 / (1 + exp(-x)) for x << 0
        out = np.multiply(x, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5
        return out

    def df(self, x, y):
        return y * (1.0 - y)

    def grad(self, dout, x, y):
        d = np.subtract(1.0, y)
        d *= y
        return np.multiply(dout, d, out=dout)


class Tanh(Activation):
    name = "tanh"
    gain = 5.0 / 3.0
    saturating = True
    needs_input = False
    hist_range = (-1.0, 1.0)

    def f(self, x, out=None):
        return np.tanh(x, out=out)

    def df(self, x, y):
        return 1.0 - y * y

    def grad(self, dout, x, y):
        d = np.multiply(y, y)
        np.subtract(1.0, d, out=d)
        return np.multiply(dout, d, out=dout)


class Relu(Activation):
    name = "relu"
    gain = math.sqrt(2.0)
    needs_input = False
    kinks = (0.0,)
    hist_range = (0.0, 4.0)

    def f(self, x, out=None):
        return np.maximum(x, 0.0, out=out)

    def df(self, x, y):
        return (x > 0).astype(x.dtype)

    def grad(self, dout, x, y):
        return np.multiply(dout, y > 0, out=dout)  # y > 0 exactly where x > 0


class LeakyRelu(Activation):
    name = "leaky_relu"
    kinks = (0.0,)
    needs_input = False  # for slopes >= 0: see grad

    def __init__(self, slope: float = 0.01):
        self.slope = float(slope)

    @property
    def gain(self) -> float:
        return math.sqrt(2.0 / (1.0 + self.slope**2))  # not sqrt(2 / 1 + slope^2), numpy-ml's slip

    def f(self, x, out=None):
        neg = ~(x > 0)  # not x <= 0: NaN goes to the slope's side, as np.where(x > 0, ...) sends it
        if out is None:
            out = np.empty_like(x)
        if out is not x:
            np.copyto(out, x, where=~neg)
        return np.multiply(x, self.slope, out=out, where=neg)

    def df(self, x, y):
        return np.where(x > 0, 1.0, self.slope).astype(x.dtype)

    def grad(self, dout, x, y):
        # y > 0 exactly where x > 0 for slopes in [0, 1] (the settings' range), so y is enough
        return np.multiply(dout, self.slope, out=dout, where=~(y > 0))

    def __repr__(self):
        return f"LeakyRelu(slope={self.slope})"


class Elu(Activation):
    """ELU with alpha 1 (Clevert et al., 2015)."""

    name = "elu"
    kinks = (0.0,)  # f' is continuous at 0 only for alpha = 1; f'' jumps
    needs_input = False  # y > 0 exactly where x > 0
    alpha = 1.0
    scale = 1.0

    def f(self, x, out=None):
        # expm1 of min(x, 0) so that the unused branch cannot overflow
        neg = self.alpha * np.expm1(np.minimum(x, 0.0))
        return np.multiply(self.scale, np.where(x > 0, x, neg), out=out)

    def df(self, x, y):
        # for x <= 0: d/dx scale*alpha*(e^x - 1) = y + scale*alpha
        return np.where(x > 0, self.scale, y + self.scale * self.alpha).astype(x.dtype)

    def grad(self, dout, x, y):
        d = np.add(y, self.scale * self.alpha)
        np.copyto(d, self.scale, where=y > 0)
        return np.multiply(dout, d, out=dout)


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

    def f(self, x, out=None):
        return np.multiply(0.5 * x, 1.0 + _erf(x / _SQRT2), out=out)

    def df(self, x, y):
        cdf = 0.5 * (1.0 + _erf(x / _SQRT2))
        return cdf + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)


class Softplus(Activation):
    name = "softplus"

    def f(self, x, out=None):
        return np.logaddexp(0.0, x, out=out)  # log(1 + e^x) without overflow

    def df(self, x, y):
        return 0.5 * (1.0 + np.tanh(0.5 * x))


class Silu(Activation):
    """SiLU / swish: x * sigmoid(x)."""

    name = "silu"
    max_deriv = 1.0998  # sup of s(x)(1 + x(1 - s(x))), at x ~ 2.4

    def f(self, x, out=None):
        return np.multiply(x, 0.5 * (1.0 + np.tanh(0.5 * x)), out=out)

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
