"""Weight initializers, after PyTorch's ``torch/nn/init.py``.

Layout: weights are stored (fan_in, fan_out), so ``fan_in = shape[0]`` and
``fan_out = shape[1]`` (PyTorch stores (out, in); its fan logic is mirrored here).

Every initializer is ``fn(shape, rng, gain=1.0, scale=1.0) -> ndarray (float64)``.
``gain`` multiplies the scheme's own formula; ``scale`` is the absolute std (normal)
or half-width (uniform) used only by the ``normal`` and ``uniform`` schemes.
"""
from __future__ import annotations

import math

import numpy as np

from .activations import Activation


def calculate_gain(activation: Activation) -> float:
    """The gain PyTorch's ``calculate_gain`` gives for an activation.

    identity/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2)),
    selu 3/4.  PyTorch has no value for elu, gelu, softplus and silu; those get 1.
    """
    name = activation.name
    if name == "tanh":
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + activation.slope**2))
    if name == "selu":
        return 0.75
    return 1.0


def zeros(shape, rng, gain=1.0, scale=1.0):
    """All weights 0: every hidden unit computes the same thing forever (symmetry)."""
    return np.zeros(shape)


def normal(shape, rng, gain=1.0, scale=1.0):
    """N(0, (gain * scale)^2), an absolute std, as in the text's std 1 and std 0.01 cases."""
    return rng.standard_normal(shape) * (gain * scale)


def uniform(shape, rng, gain=1.0, scale=1.0):
    """U(-gain * scale, gain * scale)."""
    a = gain * scale
    return rng.uniform(-a, a, size=shape)


def xavier_normal(shape, rng, gain=1.0, scale=1.0):
    """Glorot & Bengio (2010): std = gain * sqrt(2 / (fan_in + fan_out))."""
    return rng.standard_normal(shape) * (gain * math.sqrt(2.0 / (shape[0] + shape[1])))


def xavier_uniform(shape, rng, gain=1.0, scale=1.0):
    """Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    a = gain * math.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-a, a, size=shape)


def he_normal(shape, rng, gain=1.0, scale=1.0):
    """He et al. (2015): std = gain * sqrt(2 / fan_in)."""
    return rng.standard_normal(shape) * (gain * math.sqrt(2.0 / shape[0]))


def he_uniform(shape, rng, gain=1.0, scale=1.0):
    """He et al. (2015): U(-a, a), a = gain * sqrt(6 / fan_in)."""
    a = gain * math.sqrt(6.0 / shape[0])
    return rng.uniform(-a, a, size=shape)


def lecun_normal(shape, rng, gain=1.0, scale=1.0):
    """LeCun et al. (1998): std = gain / sqrt(fan_in); gain is sigma_w of mean-field theory."""
    return rng.standard_normal(shape) * (gain / math.sqrt(shape[0]))


def lecun_uniform(shape, rng, gain=1.0, scale=1.0):
    """LeCun et al. (1998): U(-a, a), a = gain * sqrt(3 / fan_in)."""
    a = gain * math.sqrt(3.0 / shape[0])
    return rng.uniform(-a, a, size=shape)


def orthogonal(shape, rng, gain=1.0, scale=1.0):
    """Saxe et al. (2014): gain * Q, Q with orthonormal columns (rows if fan_in < fan_out)."""
    rows, cols = shape
    flat = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # sign fix makes Q uniform (Haar) over orthogonal matrices
    if rows < cols:
        q = q.T
    return gain * q


INITIALIZERS = {
    "zeros": zeros,
    "normal": normal,
    "uniform": uniform,
    "xavier_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "orthogonal": orthogonal,
}

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
    g = calculate_gain(activation)
    if canonical_init(init).startswith("he_"):
        return g / math.sqrt(2.0)
    return g


def init_weight(init: str, shape, rng, gain: float, scale: float) -> np.ndarray:
    return INITIALIZERS[canonical_init(init)](tuple(shape), rng, gain=gain, scale=scale)
