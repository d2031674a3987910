"""Weight initializers, after PyTorch's ``torch/nn/init.py``.

Layout: weights are stored (fan_in, fan_out), so ``fan_in = shape[0]`` and
``fan_out = shape[1]`` (PyTorch stores (out, in); its fan logic is mirrored here).

Every initializer is ``fn(shape, rng, gain=1.0, scale=1.0) -> ndarray (float64)``.
``gain`` multiplies the scheme's own formula; ``scale`` is the absolute std (normal)
or half-width (uniform) used only by the ``normal`` and ``uniform`` schemes.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .activations import Activation


def calculate_gain(activation: Activation) -> float:
    """The gain PyTorch's ``calculate_gain`` gives for an activation (``Activation.gain``).

    identity/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2)),
    selu 3/4.  PyTorch has no value for elu, gelu, softplus and silu; those get 1.
    """
    return activation.gain


@dataclass(frozen=True)
class Scheme:
    """One initialization scheme, read by the initializers and by ``lab.theory.meanfield``.

    A weight's variance is ``gain^2 * numerator / fan(fan_in, fan_out)``, or, for the schemes
    with an absolute ``scale`` (``fan`` None), ``(gain * scale)^2`` for a normal and
    ``(gain * scale)^2 / 3`` for a uniform sampler.  ``numerator`` is the square of the
    activation gain the formula carries: He's 2 is relu's sqrt(2) squared, which is why
    ``gain="auto"`` divides it back out there (``resolve_gain``).
    """

    sampler: str  # "zeros", "normal", "uniform" or "orthogonal"
    fan: Callable[[int, int], float] | None = None
    numerator: float = 1.0
    reference: str = ""

    @property
    def formula_gain(self) -> float:
        """The activation gain already in the formula (sqrt(2) for He, 1 otherwise)."""
        return math.sqrt(self.numerator)

    def variance(self, fan_in: int, fan_out: int, gain: float = 1.0, scale: float = 1.0) -> float:
        """The variance of one weight entry (orthogonal: the mean square of an entry)."""
        if self.sampler == "zeros":
            return 0.0
        if self.fan is None:
            return (gain * scale) ** 2 / (3.0 if self.sampler == "uniform" else 1.0)
        return gain**2 * self.numerator / self.fan(fan_in, fan_out)

    def draw(self, shape, rng: np.random.Generator, gain: float = 1.0, scale: float = 1.0) -> np.ndarray:
        """Weights of ``shape`` = (fan_in, fan_out), float64."""
        if self.sampler == "zeros":
            return np.zeros(shape)
        if self.sampler == "orthogonal":
            return gain * _orthonormal(shape, rng)
        n = None if self.fan is None else self.fan(*shape)
        if self.sampler == "normal":
            std = gain * scale if n is None else gain * math.sqrt(self.numerator / n)
            return rng.standard_normal(shape) * std
        # U(-a, a) has variance a^2 / 3
        a = gain * scale if n is None else gain * math.sqrt(3.0 * self.numerator / n)
        return rng.uniform(-a, a, size=shape)


def _orthonormal(shape, rng):
    """Q with orthonormal columns (rows if fan_in < fan_out), uniform (Haar) over such matrices."""
    rows, cols = shape
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # sign fix makes Q uniform (Haar) over orthogonal matrices
    return q.T if rows < cols else q


def _fan_in(fan_in, fan_out):
    return fan_in


def _fan_avg(fan_in, fan_out):
    return (fan_in + fan_out) / 2


def _fan_max(fan_in, fan_out):
    return max(fan_in, fan_out)


RELU_GAIN_SQUARED = 2.0  # He's formula assumes relu: variance 2 / fan_in

SCHEMES = {
    "zeros": Scheme("zeros", reference="all weights 0: every hidden unit computes the same thing forever (symmetry)"),
    "normal": Scheme("normal", reference="N(0, (gain * scale)^2), an absolute std, as in the text's std 1 and 0.01"),
    "uniform": Scheme("uniform", reference="U(-gain * scale, gain * scale)"),
    "xavier_normal": Scheme("normal", _fan_avg, 1.0,
                            "Glorot & Bengio (2010): std = gain * sqrt(2 / (fan_in + fan_out))"),
    "xavier_uniform": Scheme("uniform", _fan_avg, 1.0,
                             "Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))"),
    "he_normal": Scheme("normal", _fan_in, RELU_GAIN_SQUARED, "He et al. (2015): std = gain * sqrt(2 / fan_in)"),
    "he_uniform": Scheme("uniform", _fan_in, RELU_GAIN_SQUARED, "He et al. (2015): U(-a, a), a = gain * sqrt(6 / fan_in)"),
    "lecun_normal": Scheme("normal", _fan_in, 1.0,
                           "LeCun et al. (1998): std = gain / sqrt(fan_in); gain is sigma_w of mean-field theory"),
    "lecun_uniform": Scheme("uniform", _fan_in, 1.0, "LeCun et al. (1998): U(-a, a), a = gain * sqrt(3 / fan_in)"),
    "orthogonal": Scheme("orthogonal", _fan_max, 1.0,
                         "Saxe et al. (2014): gain * Q, Q with orthonormal columns (rows if fan_in < fan_out)"),
}


def _initializer(name: str, scheme: Scheme):
    def init(shape, rng, gain=1.0, scale=1.0):
        return scheme.draw(shape, rng, gain, scale)

    init.__name__ = init.__qualname__ = name
    init.__doc__ = scheme.reference + "."
    return init


# fn(shape, rng, gain=1.0, scale=1.0) -> ndarray, one per scheme
INITIALIZERS = {name: _initializer(name, scheme) for name, scheme in SCHEMES.items()}

ALIASES = {
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
}


def canonical_init(name: str) -> str:
    """Resolve glorot_*/kaiming_* aliases; raise KeyError for an unknown scheme."""
    key = ALIASES.get(name, name)
    if key not in INITIALIZERS:
        names = ", ".join([*INITIALIZERS, *ALIASES])
        raise KeyError(f"unknown init {name!r}; choose one of {names}")
    return key


def resolve_gain(init: str, gain: float | str, activation: Activation) -> float:
    """The multiplier actually applied to ``init``'s formula.

    A number is used as it is.  ``"auto"`` reproduces PyTorch: for he_* (kaiming),
    whose formula already carries sqrt(2) for relu, the activation's gain replaces
    that sqrt(2) (``kaiming_normal_(w, nonlinearity=...)``); for every other scheme
    the activation's gain multiplies the formula (``xavier_normal_(w, gain=...)``).
    """
    if gain != "auto":
        return float(gain)
    return calculate_gain(activation) / SCHEMES[canonical_init(init)].formula_gain


def init_weight(init: str, shape, rng, gain: float, scale: float) -> np.ndarray:
    return INITIALIZERS[canonical_init(init)](tuple(shape), rng, gain=gain, scale=scale)
