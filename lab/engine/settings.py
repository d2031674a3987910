"""Every setting's bounds and choices, declared once (scikit-learn's ``_parameter_constraints``).

``SETTINGS`` maps each RunConfig field to one constraint.  ``RunConfig.validate``, the
command line's options, the pages' widgets (min, max, options) and the link parser
all read it, so no bound is written twice.

A numeric setting has two ranges: the engine's (what RunConfig accepts and the command
line may ask for) and the browser's (``ui_low``/``ui_high``), narrower where a page must
stay quick and its widget must be able to show the value.  A link is held to the
browser's range, so it cannot ask for what a widget cannot show.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lab.data.datasets import DATASETS, MAX_FEATURES

from .activations import ACTIVATIONS
from .init import ALIASES, INITIALIZERS
from .layers import LOSSES
from .normalization import NORMS
from .optim import OPTIMIZERS


class ConfigError(ValueError):
    """A setting the lab cannot run, with a message meant for the user."""


@dataclass(frozen=True)
class Interval:
    """A number in [low, high] (or (low, high] when ``open_low``); ``kind`` is int or float.

    ``options``: the values a list widget (select slider) offers; it also accepts any other
    value in the browser's range, which is then shown among them.
    """

    kind: type
    low: float
    high: float
    ui_low: float | None = None  # None: the engine's bound
    ui_high: float | None = None
    open_low: bool = False
    step: float | None = None  # the widget's step
    options: tuple = ()
    also: tuple = ()  # words accepted besides numbers (gain: "auto")

    def range(self, ui: bool = False) -> tuple:
        low = self.ui_low if ui and self.ui_low is not None else self.low
        high = self.ui_high if ui and self.ui_high is not None else self.high
        return self.kind(low), self.kind(high)

    def contains(self, value, ui: bool = False) -> bool:
        if isinstance(value, str):
            return value in self.also
        if not _is_number(value):
            return False
        if self.kind is int and not isinstance(value, (int, np.integer)):
            return False
        low, high = self.range(ui)
        open_low = self.open_low and low == self.low
        return math.isfinite(value) and low <= value <= high and not (open_low and value == low)

    def clamp(self, value, ui: bool = True):
        """``value`` moved to the nearest end of the range (a finite number of the right kind)."""
        low, high = self.range(ui)
        return self.kind(min(max(value, low), high))

    def offered(self, *values) -> list:
        """The list widget's options with ``values`` (those in the browser's range) among them."""
        extra = {v for v in values if v is not None and v not in self.also and self.contains(v, ui=True)}
        return sorted(set(self.options) | extra)

    def check(self, name: str, value, ui: bool = False):
        """``value`` as ``kind`` (or one of ``also``); ConfigError with a message otherwise.

        Only a number is a number: text such as "0.1" (a JSON string) and True are refused, whatever
        reads them (a link's or the command line's parser turns its text into numbers first)."""
        if isinstance(value, str) and value in self.also:
            return value
        low, high = self.range(ui)
        if self.kind is int:
            if not _is_number(value) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"{name} must be a whole number, not {value_text(value)}")
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high:,}; got {value_text(value)}")
            return int(value)
        if not _is_number(value):
            words = " or ".join(["a number", *(repr(w) for w in self.also)])
            raise ConfigError(f"{name} must be {words}, not {value_text(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float64 (JSON allows 10**400)
            number = math.inf if value > 0 else -math.inf
        if not self.contains(number, ui):
            bound = f"above {low:g}" if self.open_low and low == self.low else f"at least {low:g}"
            raise ConfigError(f"{name} must be {bound} and at most {high:g}; got {value_text(value)}")
        return number


def _is_number(value) -> bool:
    """An int or a float (numpy's too), and not a bool: True is not 1.0 here."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def value_text(value) -> str:
    """``value`` as a message shows it: its repr, cut to 40 characters (a JSON file may hold a huge one)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (``aliases`` map other names onto them); ``ui_options``: the browser's."""

    options: tuple
    ui_options: tuple | None = None
    aliases: dict | None = None

    def choices(self, ui: bool = False) -> tuple:
        return self.ui_options if ui and self.ui_options is not None else self.options

    def check(self, name: str, value, ui: bool = False):
        """One of the choices, of the choices' own type: 1 is not True, and a list is no name."""
        if isinstance(value, np.bool_):
            value = bool(value)
        value = (self.aliases or {}).get(value, value) if isinstance(value, str) else value
        kinds = tuple({type(c) for c in self.choices(ui)})
        if not (isinstance(value, kinds) and value in self.choices(ui)):
            raise ConfigError(f"{name} must be one of {', '.join(map(str, self.choices(ui)))}; got {value_text(value)}")
        return value


MAX_WEIGHTS = 2e8  # depth x width^2 above this is refused: the weights alone would not fit
WIDTHS = (2, 4, 8, 16, 32, 64, 100, 128, 256, 512)
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
BATCHES = (8, 16, 32, 64, 128, 256, 512)

SETTINGS: dict[str, Interval | Choice] = {
    # data
    "dataset": Choice((*DATASETS, "csv"), ui_options=tuple(DATASETS)),  # a link cannot carry a file
    "samples": Interval(int, 4, 200_000, ui_low=100, ui_high=5000, step=100),
    "input_dim": Interval(int, 1, MAX_FEATURES, ui_low=2, ui_high=784),
    "classes": Interval(int, 2, 100, ui_high=10),
    "noise": Interval(float, 0.0, 100.0),
    "val_fraction": Interval(float, 0.0, 0.9, ui_high=0.5, step=0.05),
    "standardize": Choice((True, False)),
    # network
    "depth": Interval(int, 0, 500, ui_low=1, ui_high=100),
    "width": Interval(int, 1, 4096, ui_low=WIDTHS[0], ui_high=WIDTHS[-1], options=WIDTHS),
    "activation": Choice(tuple(ACTIVATIONS)),
    "leaky_slope": Interval(float, 0.0, 1.0),
    "init": Choice(tuple(INITIALIZERS), aliases=ALIASES),
    "gain": Interval(float, 0.0, 1e6, ui_high=100.0, step=0.1, also=("auto",)),
    "init_scale": Interval(float, 0.0, 1e6, ui_high=1000.0, step=0.01),
    "bias_std": Interval(float, 0.0, 1e6, ui_high=100.0, step=0.1),
    "loss": Choice(tuple(LOSSES)),
    # cures
    # the cures (issue 11): Train and Compare show them
    "norm": Choice(tuple(NORMS)),
    "residual": Choice((True, False)),
    # alpha = 0 is not a network with shortcuts: layers 2..depth would add nothing and get exactly no error signal
    "residual_scale": Interval(float, 0.0, 10.0, ui_low=0.01, ui_high=2.0, open_low=True, step=0.01),
    "dropout": Interval(float, 0.0, 0.95, ui_high=0.9, step=0.05),
    "clip_norm": Interval(float, 0.0, 1e6, ui_high=100.0, step=0.1),
    "weight_decay": Interval(float, 0.0, 10.0, ui_high=0.1, step=1e-4),
    # training
    "optimizer": Choice(tuple(OPTIMIZERS)),
    "lr": Interval(float, 0.0, 1e6, ui_low=LRS[0], ui_high=LRS[-1], open_low=True, options=LRS),
    "epochs": Interval(int, 0, 100_000, ui_high=5000),
    "batch_size": Interval(int, 1, 1_000_000, ui_low=BATCHES[0], ui_high=BATCHES[-1], options=BATCHES),
    "record_every": Interval(int, 0, 10_000_000, ui_high=100_000),
    "seed": Interval(int, 0, 2**32 - 1, ui_high=2**31 - 1),
    "dtype": Choice(("float64", "float32")),
    "probe_size": Interval(int, 1, 100_000, ui_high=5000),
    "instrument": Choice((True, False)),
}

# Compare and Sweep: how many seeds per value (a page setting, not a RunConfig field)
SEEDS = Interval(int, 1, 5)

# The Phase diagram's controls (lab.theory.phase_grid): its widgets and the gate read them
PHASE_WIDTHS = (32, 64, 128, 256)
PHASE = {
    "sigma_b": Interval(float, 0.0, 2.0, step=0.05),
    "sigma_w": Interval(float, 0.1, 5.0, step=0.1),
    "max_depth": Interval(int, 5, 100),
    "cells": Interval(int, 5, 30),
    "width": Choice(PHASE_WIDTHS),
}

__all__ = ["BATCHES", "LRS", "MAX_WEIGHTS", "PHASE", "PHASE_WIDTHS", "SEEDS", "SETTINGS", "WIDTHS", "Choice",
           "ConfigError", "Interval", "value_text"]
