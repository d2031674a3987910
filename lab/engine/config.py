"""The run configuration: one frozen value that says everything needed to rerun.

Widgets and command-line options both end up here; ``validate`` turns an absurd
setting into a ``ConfigError`` whose message is meant for the user.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

import numpy as np

from lab.data.datasets import FIXED_CLASSES, FIXED_DIM, FIXED_SIZE

from .init import canonical_init
from .settings import MAX_WEIGHTS, SETTINGS, ConfigError, value_text

MAX_DEPTH = SETTINGS["depth"].high
MAX_WIDTH = SETTINGS["width"].high
DEFAULT_SAMPLES = 1000  # generated examples when ``samples`` is not given
# settings that may be left unset (None): the dataset's own noise, all rows of a bundled dataset
MAY_BE_UNSET = ("noise", "samples")
TEXT_FIELDS = ("data_path", "label")  # the fields SETTINGS does not hold: a CSV's path and label column


@dataclass(frozen=True)
class RunConfig:
    # data
    dataset: str = "spirals"  # a DATASETS name, or "csv"
    data_path: str | None = None  # the CSV file when dataset == "csv"
    label: str | None = None  # its label column
    samples: int | None = None  # None: all of a bundled dataset's rows, DEFAULT_SAMPLES generated examples
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
    # cures (lab.engine.normalization; placement in lab.engine.model's docstring); the defaults change nothing
    norm: str = "none"  # "none", "batch" or "layer", on every hidden layer's pre-activation
    residual: bool = False  # h_l = h_{l-1} + residual_scale * phi(z_l) for hidden layers 2..depth
    residual_scale: float = 1.0
    dropout: float = 0.0  # rate p of inverted dropout on phi(z_l), while training only
    clip_norm: float = 0.0  # clip the gradients' global norm to this before each step (0: off; lab.engine.regularize)
    weight_decay: float = 0.0  # L2 decay added to the weight matrices' gradients (not biases, gamma, beta)
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

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """Build from a dict; unknown keys raise ConfigError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**d).validate()

    def layer_shapes(self, n_inputs: int, n_classes: int) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of W_1, ..., W_L: n_inputs -> width (``depth`` times) -> n_classes."""
        sizes = [n_inputs] + [self.width] * self.depth + [n_classes]
        return list(zip(sizes[:-1], sizes[1:]))

    @property
    def np_dtype(self):
        return np.dtype(self.dtype)

    def validate(self) -> RunConfig:
        """Return self with the init alias resolved, or raise ConfigError.

        Every bound and choice comes from ``lab.engine.settings.SETTINGS`` (the engine's range); the CSV's file
        and label column are text or None.  A value of the wrong type (a list, a bool for a number,
        text for a number) is refused with the setting's name, whoever built the config.
        """
        for name in TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be text, not {value_text(value)}")
        if not isinstance(self.init, str):
            raise ConfigError(f"init must be the name of an initializer, not {value_text(self.init)}")
        try:
            init = canonical_init(self.init)
        except KeyError as exc:
            raise ConfigError(exc.args[0]) from None
        checked = {}
        for name, constraint in SETTINGS.items():
            value = getattr(self, name)
            if name == "init" or (name in MAY_BE_UNSET and value is None):
                continue
            checked[name] = constraint.check(name, value)
        if self.dataset == "csv" and not (self.data_path and self.label):
            raise ConfigError("a CSV dataset needs a file and the name of its label column")
        if self.depth * self.width * self.width > MAX_WEIGHTS:
            raise ConfigError(
                f"depth {self.depth} x width {self.width} is too large for this lab "
                f"(more than {MAX_WEIGHTS / 1e6:.0f} million weights)"
            )
        # the checked values: numbers as their kind (an int given for a float setting becomes a float)
        return dataclasses.replace(self, **checked, init=init)

    @property
    def plain(self) -> bool:
        """No normalization and no residual connections: the network that (W, b) alone describe, and that
        the mean-field theory knows how to compute."""
        return self.norm == "none" and not self.residual

    @property
    def n_classes(self) -> int:
        return FIXED_CLASSES.get(self.dataset, self.classes)

    @property
    def n_inputs(self) -> int:
        return FIXED_DIM.get(self.dataset, self.input_dim)

    @property
    def n_samples(self) -> int:
        """The examples the dataset will have: ``samples``, or all of a bundled dataset's rows when it has
        fewer or ``samples`` is not given (``DEFAULT_SAMPLES`` generated examples then)."""
        if self.samples is None:
            return FIXED_SIZE.get(self.dataset, DEFAULT_SAMPLES)
        return min(self.samples, FIXED_SIZE.get(self.dataset, self.samples))


def page_defaults() -> RunConfig:
    """The Train page's default run, which lessons' experiments change: small enough to finish in about a second."""
    return RunConfig(samples=400, epochs=200, dtype="float32")


def configure(config: RunConfig | None = None, **settings) -> RunConfig:
    """``config`` (default: the engine's defaults) changed by keyword ``settings``, each held to its declaration;
    ConfigError names an unknown setting (with the nearest known one) or a value out of bounds."""
    import difflib

    known = {f.name for f in dataclasses.fields(RunConfig)}
    for name in settings:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            raise ConfigError(f"unknown setting {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if config is not None and not isinstance(config, RunConfig):
        raise ConfigError(f"config must be a RunConfig, not {type(config).__name__}")
    return (config or RunConfig()).replace(**settings).validate()
