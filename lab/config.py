"""The run configuration: one frozen value that says everything needed to rerun.

Widgets and command-line options both end up here; ``validate`` turns an absurd
setting into a ``ConfigError`` whose message is meant for the user.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

import numpy as np

from .activations import ACTIVATIONS
from .data import DATASETS, FIXED_CLASSES, FIXED_DIM
from .init import canonical_init
from .layers import LOSSES
from .optim import OPTIMIZERS

MAX_DEPTH = 500
MAX_WIDTH = 4096


class ConfigError(ValueError):
    """A setting the lab cannot run, with a message meant for the user."""


@dataclass(frozen=True)
class RunConfig:
    # data
    dataset: str = "spirals"  # a DATASETS name, or "csv"
    data_path: str | None = None  # the CSV file when dataset == "csv"
    label: str | None = None  # its label column
    samples: int = 1000
    input_dim: int = 2  # for blobs and random
    classes: int = 2  # spiral arms, blobs, random labels
    noise: float | None = None  # None: the dataset's own default
    val_fraction: float = 0.2
    standardize: bool = True
    # network
    depth: int = 10  # hidden layers
    width: int = 64
    activation: str = "relu"
    leaky_slope: float = 0.01
    init: str = "he_normal"
    gain: float | str = 1.0  # a multiplier, or "auto" (PyTorch's calculate_gain)
    init_scale: float = 1.0  # std of "normal", half-width of "uniform"
    bias_std: float = 0.0
    loss: str = "cross_entropy"
    # training
    optimizer: str = "adam"
    lr: float = 0.003
    epochs: int = 200
    batch_size: int = 64
    record_every: int = 0  # 0: once per epoch; k > 0: every k optimizer steps
    seed: int = 0
    dtype: str = "float64"
    probe_size: int = 512
    instrument: bool = True

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Build from a dict; unknown keys raise ConfigError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**d).validate()

    @property
    def np_dtype(self):
        return np.dtype(self.dtype)

    def validate(self) -> "RunConfig":
        """Return self with the init alias resolved, or raise ConfigError."""
        _choice("dataset", self.dataset, [*DATASETS, "csv"])
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("loss", self.loss, LOSSES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("dtype", self.dtype, ["float64", "float32"])
        try:
            init = canonical_init(self.init)
        except KeyError as exc:
            raise ConfigError(exc.args[0]) from None
        if self.dataset == "csv" and not (self.data_path and self.label):
            raise ConfigError("a CSV dataset needs a file and the name of its label column")
        _int_range("samples", self.samples, 4, 200_000)
        _int_range("input_dim", self.input_dim, 1, 4096)
        _int_range("classes", self.classes, 2, 100)
        _int_range("depth", self.depth, 0, MAX_DEPTH)
        _int_range("width", self.width, 1, MAX_WIDTH)
        _int_range("epochs", self.epochs, 0, 100_000)
        _int_range("batch_size", self.batch_size, 1, 1_000_000)
        _int_range("record_every", self.record_every, 0, 10_000_000)
        _int_range("seed", self.seed, 0, 2**32 - 1)
        _int_range("probe_size", self.probe_size, 1, 100_000)
        _float_range("val_fraction", self.val_fraction, 0.0, 0.9)
        _float_range("lr", self.lr, 0.0, 1e6, open_low=True)
        _float_range("init_scale", self.init_scale, 0.0, 1e6)
        _float_range("bias_std", self.bias_std, 0.0, 1e6)
        _float_range("leaky_slope", self.leaky_slope, 0.0, 1.0)
        if self.noise is not None:
            _float_range("noise", self.noise, 0.0, 100.0)
        if self.gain != "auto":
            try:
                gain = float(self.gain)
            except (TypeError, ValueError):
                raise ConfigError(f"gain must be a number or 'auto', not {self.gain!r}") from None
            _float_range("gain", gain, 0.0, 1e6)
        else:
            gain = "auto"
        if self.depth * self.width * self.width > 2e8:
            raise ConfigError(
                f"depth {self.depth} x width {self.width} is too large for this lab "
                "(more than 200 million weights)"
            )
        return dataclasses.replace(self, init=init, gain=gain)

    @property
    def n_classes(self) -> int:
        return FIXED_CLASSES.get(self.dataset, self.classes)

    @property
    def n_inputs(self) -> int:
        return FIXED_DIM.get(self.dataset, self.input_dim)


def _choice(name, value, options):
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(options)}; got {value!r}")


def _int_range(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high:,}; got {value}")


def _float_range(name, value, low, high, open_low=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(value) or value < low or value > high or (open_low and value == low):
        bound = f"above {low}" if open_low else f"at least {low}"
        raise ConfigError(f"{name} must be {bound} and at most {high:g}; got {value}")
