"""The classic initialization experiments, one click each, and the cures paired with what they cure.

Each preset is a set of config changes on top of the Train page's defaults and a
sentence on what to look for; the landing page adds what the run actually measured.
A ``Cure`` is a broken network and its cured variants, measured the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    title: str
    changes: dict = field(default_factory=dict)
    story: str = ""


PRESETS: dict[str, Preset] = {
    "sigmoid_xavier": Preset(
        "Sigmoid + Xavier, 10 layers",
        dict(activation="sigmoid", init="xavier_normal", depth=10),
        "The sigmoid's derivative is at most 1/4, so each layer passes back a fraction of the error it receives.",
    ),
    "sigmoid_small": Preset(
        "Sigmoid + normal std 0.01",
        dict(activation="sigmoid", init="normal", init_scale=0.01, depth=10),
        "Tiny weights: every unit sits at 0.5, all units look alike, and the weights multiply the signal away.",
    ),
    "sigmoid_large": Preset(
        "Sigmoid + normal std 1",
        dict(activation="sigmoid", init="normal", init_scale=1.0, depth=10),
        "Large weights saturate many units, yet the same large weights carry the error back: a surprise.",
    ),
    "tanh_xavier": Preset(
        "Tanh + Xavier, 10 layers",
        dict(activation="tanh", init="xavier_normal", depth=10),
        "Tanh is zero-centred with slope 1 at 0; Xavier keeps the variance roughly constant.",
    ),
    "tanh_large": Preset(
        "Tanh + normal std 1",
        dict(activation="tanh", init="normal", init_scale=1.0, depth=10),
        "Weights far too large for tanh: the error signal grows layer after layer (chaotic regime).",
    ),
    "relu_xavier": Preset(
        "ReLU + Xavier, 30 layers",
        dict(activation="relu", init="xavier_normal", depth=30, epochs=60),
        "ReLU zeroes half of its inputs, so with Xavier's variance the signal shrinks by about 1/sqrt(2) per layer.",
    ),
    "relu_he": Preset(
        "ReLU + He, 30 layers",
        dict(activation="relu", init="he_normal", depth=30, epochs=60),
        "He doubles the variance to make up for the half ReLU discards: the profile is flat.",
    ),
    "zeros": Preset(
        "All weights zero",
        dict(activation="tanh", init="zeros", depth=3),
        "Symmetry: every hidden unit computes the same thing and gets the same update, forever.",
    ),
}


@dataclass(frozen=True)
class Cure:
    """A broken network (the first variant) and its cures: label -> config changes.  ``trained``: the
    variants differ in how training ends (measured after training), not at initialization."""

    title: str
    story: str
    variants: dict[str, dict]
    trained: bool = False


_SIGMOID = dict(activation="sigmoid", init="xavier_normal", depth=20, epochs=100)
_RESIDUAL = dict(activation="relu", init="he_normal", depth=50, residual=True, epochs=30)
_HIGH_LR = dict(optimizer="sgd", lr=1.0, epochs=100)
_BN_RELU = dict(activation="relu", init="he_normal", depth=30, epochs=60)

CURES: dict[str, Cure] = {
    "normalize_sigmoid": Cure(
        "Sigmoid + Xavier, 20 layers: normalize?",
        "Normalizing each layer's pre-activations is the usual cure for vanishing. Does it cure this one?",
        {"no normalization": _SIGMOID, "batch norm": dict(_SIGMOID, norm="batch"),
         "layer norm": dict(_SIGMOID, norm="layer")},
    ),
    "residual_scale": Cure(
        "ReLU + He, 50 layers with shortcuts",
        "A shortcut h + α·φ(z) adds the layer's signal to its input's: at α = 1 the variance doubles with "
        "every layer, and so does the squared error signal on its way back. Scaling by 1/√depth tames it.",
        {"α = 1": dict(_RESIDUAL, residual_scale=1.0),
         "α = 1/√50": dict(_RESIDUAL, residual_scale=1 / math.sqrt(50))},
    ),
    "clip": Cure(
        "SGD with learning rate 1: clip the gradient",
        "A step too large throws the weights where the loss is huge, and the gradient there is larger still. "
        "Clipping the gradient's norm to 1 bounds every step.",
        {"no clipping": _HIGH_LR, "clipped at norm 1": dict(_HIGH_LR, clip_norm=1.0)},
        trained=True,
    ),
    "batch_norm_relu": Cure(
        "Batch norm + ReLU, 30 layers: the cure's own failure",
        "Batch normalization fixes every layer's scale going forward, yet going back the error signal grows "
        "by √(π/(π−1)) ≈ 1.21 per layer (Yang et al. 2019). He weights alone keep it flat.",
        {"batch norm": dict(_BN_RELU, norm="batch"), "He alone": _BN_RELU},
    ),
}
