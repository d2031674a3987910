"""The classic initialization experiments, one click each.

Each preset is a set of config changes on top of the Train page's defaults and a
sentence on what to look for; the landing page adds what the run actually measured.
"""
from __future__ import annotations

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
