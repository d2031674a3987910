"""Datasets, deterministic from a ``np.random.Generator``, and a checked CSV loader.

Every generator is ``fn(n, rng, classes, input_dim, noise) -> (X (n, D) float64, y (n,) int)``.
"""
from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .seeds import stream
from .units import size as size_text

if TYPE_CHECKING:  # config imports this module
    from .config import RunConfig

MAX_CSV_BYTES = 50 * 2**20
MAX_CSV_ROWS = 200_000
MAX_CLASSES = 100
# Standardizing squares (x - mean); beyond about 1e154 that overflows float64, and long before
# it the mean of a column loses every digit of its spread.  No real measurement comes near this.
MAX_FEATURE_ABS = 1e100


class DataError(ValueError):
    """A dataset that cannot be used, with a message meant for the user."""


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


def read_csv_table(source, label: str) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Read a CSV of numeric feature columns plus one label column.

    source: a path, bytes or a file-like object.  Returns X (n, D) float64, y (n,)
    integer codes, feature names, class names.  Raises DataError with a message
    that names the problem (and the column or row) for every bad input.
    """
    import pandas as pd  # here, so that importing the datasets does not load pandas

    raw = _read_bytes(source)
    if not raw.strip():
        raise DataError("the file is empty")
    if b"\x00" in raw[:4096]:
        raise DataError("this is not a CSV file (it contains binary data)")
    try:
        df = pd.read_csv(io.BytesIO(raw))
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"could not read the file as CSV: {str(exc).splitlines()[0]}") from None
    if df.empty:
        raise DataError("the file has a header but no rows")
    if len(df) > MAX_CSV_ROWS:
        raise DataError(f"the file has {len(df):,} rows; the limit is {MAX_CSV_ROWS:,}")
    if label not in df.columns:
        cols = ", ".join(map(str, df.columns[:12]))
        raise DataError(f"no column named {label!r}; the columns are: {cols}")
    features = df.drop(columns=[label])
    if features.shape[1] == 0:
        raise DataError("there are no feature columns besides the label")
    for col in features.columns:
        if not pd.api.types.is_numeric_dtype(features[col]) or pd.api.types.is_bool_dtype(features[col]):
            bad = features[col][pd.to_numeric(features[col], errors="coerce").isna() & features[col].notna()]
            example = f" (row {bad.index[0] + 2}: {bad.iloc[0]!r})" if len(bad) else ""
            raise DataError(f"column {col!r} is not numeric{example}")
    missing = df.isna()
    if missing.any().any():
        row, col = np.argwhere(missing.to_numpy())[0]
        raise DataError(
            f"{int(missing.sum().sum())} missing values, the first in column "
            f"{df.columns[col]!r} at row {row + 2} of the file"
        )
    X = features.to_numpy(dtype=np.float64)
    _check_magnitudes(X, features.columns)
    codes, uniques = pd.factorize(df[label], sort=True)
    if len(uniques) < 2:
        rows = "only one row" if len(df) == 1 else f"{len(df):,} rows, all"
        raise DataError(
            f"the label column {label!r} has a single class ({rows} labelled {_plain(uniques[0])!r}); "
            "at least 2 classes are needed"
        )
    if len(uniques) > MAX_CLASSES:
        raise DataError(
            f"the label column {label!r} has {len(uniques)} distinct values; the lab classifies "
            f"(at most {MAX_CLASSES} classes), so choose a column of class labels"
        )
    return X, codes.astype(np.int64), tuple(map(str, features.columns)), tuple(map(str, uniques))


def csv_columns(data: bytes) -> list[str]:
    """The column names in the header of an uploaded CSV (read without its rows), for the label picker.

    Raises DataError naming why when pandas cannot read the header (empty file, broken quoting,
    not UTF-8); any other error is a bug and propagates."""
    import pandas as pd  # here, so that importing the datasets does not load pandas

    try:
        return list(pd.read_csv(io.BytesIO(data), nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"the header could not be read ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def _plain(value):
    """A numpy scalar as the Python value it holds (so that messages print 0, not np.int64(0))."""
    return value.item() if isinstance(value, np.generic) else value


def _check_magnitudes(X: np.ndarray, columns) -> None:
    """Non-finite values, and values too large to standardize safely, name their column and row."""
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"column {str(columns[col])!r} holds {X[row, col]} at row {row + 2} of the file; "
                        "features must be finite numbers")
    big = np.abs(X) > MAX_FEATURE_ABS
    if big.any():
        row, col = np.argwhere(big)[0]
        raise DataError(f"column {str(columns[col])!r} holds {X[row, col]:.3g} at row {row + 2} of the file; "
                        f"values beyond ±{MAX_FEATURE_ABS:.0e} cannot be standardized safely, so rescale that column")


def _too_big(n_bytes: int) -> DataError:
    return DataError(f"the file is {size_text(n_bytes)}; the limit is {size_text(MAX_CSV_BYTES)}")


def _read_bytes(source) -> bytes:
    """The file's bytes, refusing more than MAX_CSV_BYTES with the file's real size."""
    if isinstance(source, bytes):
        if len(source) > MAX_CSV_BYTES:
            raise _too_big(len(source))
        return source
    if hasattr(source, "read"):
        data = source.read(MAX_CSV_BYTES + 1)
        data = data.encode() if isinstance(data, str) else data
        if len(data) > MAX_CSV_BYTES:
            raise DataError(f"the file is larger than the limit of {size_text(MAX_CSV_BYTES)}")
        return data
    try:
        info = os.stat(source)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise DataError(f"{source} is not a regular file")
        if info.st_size > MAX_CSV_BYTES:
            raise _too_big(info.st_size)
        with open(source, "rb") as fh:
            data = fh.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise DataError(f"cannot open {source}: {exc.strerror}") from None
    if len(data) > MAX_CSV_BYTES:  # a file that grew, or a device that reports no size
        raise DataError(f"the file is larger than the limit of {size_text(MAX_CSV_BYTES)}")
    return data


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


def make_dataset(config: RunConfig, rng: np.random.Generator | None = None, csv_source=None) -> Dataset:
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
            config.samples, rng, classes=config.n_classes, input_dim=config.n_inputs, noise=config.noise
        )
        classes, names, class_names = config.n_classes, None, None
    return split(X, y, config.val_fraction, rng, classes, names, class_names, config.standardize)
