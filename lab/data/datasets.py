"""Datasets, deterministic from a ``np.random.Generator``; the checked CSV loader (``lab.data.csv_table``) is re-exported here.

Every generator is ``fn(n, rng, classes, input_dim, noise) -> (X (n, D) float64, y (n,) int)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lab.seeds import stream

from .csv_table import (  # noqa: F401 - the CSV loader's names, where the pages and tests look for them
    MAX_CLASSES,
    MAX_COLUMNS,
    MAX_CSV_BYTES,
    MAX_CSV_ROWS,
    MAX_FEATURES,
    DataError,
    csv_columns,
    read_csv_table,
)


class DataSpec(Protocol):
    """What ``make_dataset`` reads of a run's config (``lab.engine.config.RunConfig`` has all of it): the data
    floor does not import the engine that sits on it."""

    seed: int
    dataset: str
    data_path: str | None
    label: str | None
    noise: float | None
    standardize: bool
    val_fraction: float

    @property
    def n_samples(self) -> int: ...
    @property
    def n_classes(self) -> int: ...
    @property
    def n_inputs(self) -> int: ...


@dataclass(frozen=True)
class Dataset:
    """Features and integer labels, split into training and validation parts."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    classes: int
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]

    @property
    def input_dim(self) -> int:
        return self.X_train.shape[1]


def xor(n, rng, classes=2, input_dim=2, noise=None):
    """Points in [-1, 1]^2, label 1 where x * y > 0 (the XOR problem of the text)."""
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    X = X + rng.normal(0.0, 0.05 if noise is None else noise, size=X.shape)
    return X, y


def circles(n, rng, classes=2, input_dim=2, noise=None):
    """An inner disc of radius 0.5 (class 1) inside a ring of radius 1 (class 0)."""
    y = rng.integers(0, 2, size=n)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n)
    radius = np.where(y == 1, 0.5, 1.0)
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    return X + rng.normal(0.0, 0.08 if noise is None else noise, size=X.shape), y


def moons(n, rng, classes=2, input_dim=2, noise=None):
    """Two interleaving half circles."""
    y = rng.integers(0, 2, size=n)
    angle = rng.uniform(0.0, np.pi, size=n)
    X = np.where(
        (y == 0)[:, None],
        np.c_[np.cos(angle), np.sin(angle)],
        np.c_[1.0 - np.cos(angle), 0.5 - np.sin(angle)],
    )
    return X + rng.normal(0.0, 0.1 if noise is None else noise, size=X.shape), y


def spirals(n, rng, classes=2, input_dim=2, noise=None):
    """K interleaved spiral arms, one per class, each turning 1.75 times around."""
    y = rng.integers(0, classes, size=n)
    r = rng.uniform(0.05, 1.0, size=n)
    angle = 1.75 * 2.0 * np.pi * r + 2.0 * np.pi * y / classes
    X = np.c_[r * np.cos(angle), r * np.sin(angle)]
    return X + rng.normal(0.0, 0.03 if noise is None else noise, size=X.shape), y


def blobs(n, rng, classes=3, input_dim=2, noise=None):
    """Gaussian blobs with centres drawn in [-3, 3]^D, std 0.5 by default."""
    centres = rng.uniform(-3.0, 3.0, size=(classes, input_dim))
    y = rng.integers(0, classes, size=n)
    X = centres[y] + rng.normal(0.0, 0.5 if noise is None else noise, size=(n, input_dim))
    return X, y


def random(n, rng, classes=2, input_dim=100, noise=None):
    """N(0, 1) inputs with random labels: the at-initialization probe of init experiments."""
    return rng.standard_normal((n, input_dim)), rng.integers(0, classes, size=n)


# scikit-learn's bundled real datasets: shipped inside the package (no download), loaded only when
# one of them is built.  name -> (loader, rows, features, classes)
SKLEARN_SETS = {
    "digits": ("load_digits", 1797, 64, 10),  # 8x8 grey images of handwritten digits
    "iris": ("load_iris", 150, 4, 3),
    "wine": ("load_wine", 178, 13, 3),
    "breast_cancer": ("load_breast_cancer", 569, 30, 2),
}


def _bundled(name):
    """fn(n, rng, ...) for one of ``SKLEARN_SETS``: n rows drawn without replacement (all of them
    when n is at least the set's size); classes, input_dim and noise do not apply."""
    loader, rows, _, _ = SKLEARN_SETS[name]

    def load(n, rng, classes=None, input_dim=None, noise=None):
        import sklearn.datasets  # here: scikit-learn loads only when a real dataset is built

        bunch = getattr(sklearn.datasets, loader)()
        X, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
        if n < rows:
            keep = np.sort(rng.choice(rows, size=n, replace=False))
            X, y = X[keep], y[keep]
        return X, y

    load.__name__ = name
    load.__doc__ = f"scikit-learn's {name} dataset ({rows} rows), or n of its rows drawn at random."
    return load


DATASETS = {
    "xor": xor,
    "circles": circles,
    "moons": moons,
    "spirals": spirals,
    "blobs": blobs,
    "random": random,
    **{name: _bundled(name) for name in SKLEARN_SETS},
}
FIXED_CLASSES = {"xor": 2, "circles": 2, "moons": 2, **{k: v[3] for k, v in SKLEARN_SETS.items()}}
FIXED_DIM = {"xor": 2, "circles": 2, "moons": 2, "spirals": 2, **{k: v[2] for k, v in SKLEARN_SETS.items()}}
FIXED_SIZE = {k: v[1] for k, v in SKLEARN_SETS.items()}  # rows a real dataset has; more samples: all of them


STANDARDIZE_CHUNK = 8192  # rows at a time, so that standardizing needs no full-size temporary


def _standardize_in_place(X: np.ndarray, n_val: int) -> None:
    """Centre and scale every column of X (float64, rows n_val: are training) with the training
    rows' mean and std.  The spread is measured in units of each column's largest deviation, so
    that squaring cannot overflow."""
    train = X[n_val:]
    mean = train.mean(axis=0)
    X -= mean
    unit = np.zeros(X.shape[1])
    for i in range(0, len(train), STANDARDIZE_CHUNK):
        np.maximum(unit, np.abs(train[i : i + STANDARDIZE_CHUNK]).max(axis=0), out=unit)
    unit[unit == 0] = 1.0
    sumsq = np.zeros(X.shape[1])
    for i in range(0, len(train), STANDARDIZE_CHUNK):
        sumsq += ((train[i : i + STANDARDIZE_CHUNK] / unit) ** 2).sum(axis=0)
    std = unit * np.sqrt(sumsq / len(train))
    std[std == 0] = 1.0  # a constant column stays constant instead of becoming NaN
    X /= std


def split(X, y, val_fraction, rng, classes, feature_names=None, class_names=None, standardize=True):
    """Shuffle, hold out ``val_fraction`` for validation, and standardize with training statistics."""
    order = rng.permutation(len(X))
    X, y = np.asarray(X, dtype=np.float64)[order], y[order]  # a copy of our own, standardized in place
    n_val = int(round(val_fraction * len(X)))
    if len(X) - n_val < 1:
        raise DataError("the validation fraction leaves no training examples")
    X_train, y_train, X_val, y_val = X[n_val:], y[n_val:], X[:n_val], y[:n_val]
    if standardize:
        _standardize_in_place(X, n_val)
    feature_names = feature_names or tuple(f"x{i + 1}" for i in range(X.shape[1]))
    class_names = class_names or tuple(str(k) for k in range(classes))
    return Dataset(X_train, y_train, X_val, y_val, classes, tuple(feature_names), tuple(class_names))


def make_dataset(config: DataSpec, rng: np.random.Generator | None = None, csv_source=None) -> Dataset:
    """The dataset ``config`` names, split and standardized.  Raises DataError for a bad CSV."""
    if rng is None:
        rng = stream(config.seed, "data")
    if config.dataset == "csv":
        X, y, names, class_names = read_csv_table(
            csv_source if csv_source is not None else config.data_path, config.label
        )
        classes = len(class_names)
    else:
        X, y = DATASETS[config.dataset](
            config.n_samples, rng, classes=config.n_classes, input_dim=config.n_inputs, noise=config.noise
        )
        classes, names, class_names = config.n_classes, None, None
    return split(X, y, config.val_fraction, rng, classes, names, class_names, config.standardize)
