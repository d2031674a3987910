"""Datasets from a seeded generator, the checked CSV loader, and the train/validation split."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

from lab.data.datasets import (
    DATASETS,
    FIXED_CLASSES,
    FIXED_DIM,
    FIXED_SIZE,
    MAX_CLASSES,
    SKLEARN_SETS,
    DataError,
    make_dataset,
    read_csv_table,
    split,
)
from lab.engine.config import RunConfig

NAMES = sorted(DATASETS)


def _rows(name, n):
    """n, or fewer than a real dataset has (so that the rows are drawn, and the seed matters)."""
    return min(n, FIXED_SIZE.get(name, n) - 10)


# ---------------------------------------------------------------- generators

@pytest.mark.parametrize("name", NAMES)
def test_dataset_is_deterministic_from_the_seed(name):
    n = _rows(name, 300)
    a = DATASETS[name](n, np.random.default_rng(3), classes=3, input_dim=4)
    b = DATASETS[name](n, np.random.default_rng(3), classes=3, input_dim=4)
    c = DATASETS[name](n, np.random.default_rng(4), classes=3, input_dim=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("name", NAMES)
def test_dataset_shapes_and_classes(name):
    n, classes, dim = _rows(name, 400), 4, 5
    X, y = DATASETS[name](n, np.random.default_rng(0), classes=classes, input_dim=dim)
    want_classes = FIXED_CLASSES.get(name, classes)
    want_dim = FIXED_DIM.get(name, dim)
    assert X.shape == (n, want_dim) and X.dtype == np.float64
    assert y.shape == (n,) and np.issubdtype(y.dtype, np.integer)
    assert set(np.unique(y)) == set(range(want_classes))  # every class present, nothing else
    assert np.isfinite(X).all()


@pytest.mark.parametrize("name", NAMES)
def test_make_dataset_is_deterministic_and_sized(name):
    config = RunConfig(dataset=name, samples=125, classes=3, input_dim=4, val_fraction=0.2, seed=5)
    a, b = make_dataset(config), make_dataset(config)
    for field in ("X_train", "y_train", "X_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert len(a.X_train) == 100 and len(a.X_val) == 25
    assert a.input_dim == config.n_inputs and a.classes == config.n_classes
    assert len(a.feature_names) == a.input_dim and len(a.class_names) == a.classes
    other = make_dataset(config.replace(seed=6))
    assert not np.array_equal(a.X_train, other.X_train)


# ---------------------------------------------------------------- scikit-learn's real datasets

@pytest.mark.parametrize("name, rows, dim, classes", [("digits", 1797, 64, 10), ("iris", 150, 4, 3),
                                                      ("wine", 178, 13, 3), ("breast_cancer", 569, 30, 2)])
def test_real_dataset_whole_shape_classes_and_standardization(name, rows, dim, classes):
    config = RunConfig(dataset=name, samples=200_000, classes=7, input_dim=3, val_fraction=0.2).validate()
    assert (config.n_inputs, config.n_classes) == (dim, classes)  # the set's own, whatever the widgets say
    data = make_dataset(config)
    assert len(data.X_train) + len(data.X_val) == rows  # more samples than it has: all of them
    assert data.input_dim == dim and data.classes == classes
    assert set(np.unique(np.r_[data.y_train, data.y_val])) == set(range(classes))
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-12)
    std = data.X_train.std(axis=0)
    varying = std > 0  # digits has pixels that are 0 in every image: they stay 0
    np.testing.assert_allclose(std[varying], 1.0)
    assert varying.sum() >= dim - 5
    raw = DATASETS[name](rows, np.random.default_rng(0))[0]
    assert np.abs(raw.mean(axis=0)).max() > 0.5  # the raw features were not standardized already


def test_real_datasets_are_registered_and_load_lazily():
    import subprocess
    import sys

    code = ("import sys, lab.data.datasets, lab.engine.config, lab.engine.settings; assert 'sklearn' not in sys.modules; "
            "from lab.engine.config import RunConfig; lab.data.datasets.make_dataset(RunConfig(dataset='iris').validate()); "
            "assert 'sklearn' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert set(SKLEARN_SETS) <= set(DATASETS)


def test_a_short_run_on_digits_learns():
    from lab.engine.training import train

    config = RunConfig(dataset="digits", samples=1797, depth=2, width=64, epochs=3, lr=0.003,
                       instrument=False).validate()
    result = train(config)
    final = result.history.iloc[-1]
    assert final["val_accuracy"] > 0.8  # chance is 0.1


def test_xor_labels_follow_the_quadrants():
    # noise 0: the label is exactly [x * y > 0]
    X, y = DATASETS["xor"](500, np.random.default_rng(1), noise=0.0)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(int))


def test_circles_radii():
    X, y = DATASETS["circles"](500, np.random.default_rng(1), noise=0.0)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 1], 0.5)
    np.testing.assert_allclose(r[y == 0], 1.0)


def test_noise_parameter_is_used():
    X0, _ = DATASETS["blobs"](2000, np.random.default_rng(1), classes=1, input_dim=2, noise=0.0)
    X1, _ = DATASETS["blobs"](2000, np.random.default_rng(1), classes=1, input_dim=2, noise=2.0)
    assert np.ptp(X0, axis=0).max() == 0.0  # one class, no noise: every point on its centre
    assert X1.std(axis=0) == pytest.approx([2.0, 2.0], rel=0.1)


# ---------------------------------------------------------------- CSV loader

def csv_bytes(text: str) -> bytes:
    return text.encode()


def test_good_csv_with_string_labels_loads(tmp_path):
    text = "height,weight,species\n1.5,10,cat\n0.5,3,mouse\n1.2,8,cat\n2.0,30,dog\n"
    for source in (csv_bytes(text), io.BytesIO(csv_bytes(text)), io.StringIO(text)):
        X, y, names, classes = read_csv_table(source, "species")
        np.testing.assert_array_equal(X, [[1.5, 10], [0.5, 3], [1.2, 8], [2.0, 30]])
        assert X.dtype == np.float64
        assert names == ("height", "weight")
        assert classes == ("cat", "dog", "mouse")  # sorted
        np.testing.assert_array_equal(y, [0, 2, 0, 1])
        assert np.issubdtype(y.dtype, np.integer)
    path = tmp_path / "animals.csv"
    path.write_text(text)
    X, y, _, _ = read_csv_table(str(path), "species")
    np.testing.assert_array_equal(y, [0, 2, 0, 1])


def test_label_column_may_be_anywhere_and_numeric():
    X, y, names, classes = read_csv_table(csv_bytes("label,a\n3,0.5\n1,1.5\n3,2.5\n"), "label")
    assert names == ("a",) and classes == ("1", "3")
    np.testing.assert_array_equal(y, [1, 0, 1])
    np.testing.assert_array_equal(X, [[0.5], [1.5], [2.5]])


BAD_CSVS = {
    # case: (content, regex the DataError message must match)
    "non-numeric column": (b"x1,color,label\n1,red,0\n2,blue,1\n", r"column 'color' is not numeric.*'red'"),
    "partly non-numeric": (b"x1,x2,label\n1,2,0\n2,oops,1\n3,4,0\n", r"column 'x2' is not numeric.*line 3.*'oops'"),
    "boolean column": (b"a,b,label\n1,True,0\n2,False,1\n", r"column 'b' is not numeric"),
    "missing feature": (b"x1,x2,label\n1,2,0\n2,,1\n3,4,0\n", r"missing value.*column 'x2'.*line 3"),
    "missing label": (b"x1,x2,label\n1,2,0\n2,3,\n3,4,1\n", r"missing value.*column 'label'"),
    "single class": (b"a,label\n1,yes\n2,yes\n3,yes\n", r"single class.*'yes'"),
    "empty file": (b"", r"empty"),
    "blank file": (b"\n  \n\n", r"empty"),
    "header only": (b"a,b,label\n", r"header but no rows"),
    "unknown label": (b"a,b,klass\n1,2,0\n3,4,1\n", r"no column named 'label'.*a, b, klass"),
    "no features": (b"label\n0\n1\n", r"no feature columns"),
    "inf values": (b"a,label\n1,0\ninf,1\n", r"inf"),
    "ragged rows": (b"a,b,label\n1,2,0\n1,2,3,4,5\n", r"^line 3 has 5 fields; the header has 3$"),
    "binary with NUL": (bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8)), r"binary"),
    "binary, not UTF-8": (b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)) * 4, r"^line 1 is not UTF-8 text \(byte 0x89\)"),
    "too many classes": (
        ("x,label\n" + "".join(f"{i},{i * 0.37}\n" for i in range(MAX_CLASSES + 1))).encode(),
        rf"{MAX_CLASSES + 1} distinct values.*at most {MAX_CLASSES} classes",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_raises_a_clear_data_error(case):
    content, message = BAD_CSVS[case]
    with pytest.raises(DataError, match=message):
        read_csv_table(content, "label")


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot open"):
        read_csv_table(str(tmp_path / "nope.csv"), "label")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_exactly_max_classes_is_accepted():
    text = "x,label\n" + "".join(f"{i},c{i}\n" for i in range(MAX_CLASSES))
    _, y, _, classes = read_csv_table(text.encode(), "label")
    assert len(classes) == MAX_CLASSES and y.max() == MAX_CLASSES - 1


def test_csv_through_make_dataset(tmp_path):
    path = tmp_path / "d.csv"
    rows = "".join(f"{i},{i % 3 * 2.5},{'abc'[i % 3]}\n" for i in range(30))
    path.write_text("u,v,kind\n" + rows)
    config = RunConfig(dataset="csv", data_path=str(path), label="kind", val_fraction=0.2)
    data = make_dataset(config)
    assert data.classes == 3 and data.class_names == ("a", "b", "c")
    assert data.feature_names == ("u", "v")
    assert len(data.X_train) == 24 and len(data.X_val) == 6


# ---------------------------------------------------------------- split

def _indexed(n=50, d=3, seed=0):
    """Features whose first column is the row index, so the shuffle can be traced."""
    rng = np.random.default_rng(seed)
    X = np.c_[np.arange(n, dtype=float), rng.normal(size=(n, d - 1)) * [3.0, 0.2] + [10.0, -1.0]]
    y = np.arange(n) % 4
    return X, y


def test_split_keeps_pairs_and_partitions():
    X, y = _indexed()
    data = split(X, y, 0.2, np.random.default_rng(1), classes=4, standardize=False)
    assert len(data.X_val) == 10 and len(data.X_train) == 40
    idx = np.r_[data.X_train[:, 0], data.X_val[:, 0]].astype(int)
    assert sorted(idx) == list(range(50))  # a partition of the rows
    assert not np.array_equal(idx, np.arange(50))  # and shuffled
    np.testing.assert_array_equal(data.y_train, idx[:40] % 4)
    np.testing.assert_array_equal(data.y_val, idx[40:] % 4)
    assert data.feature_names == ("x1", "x2", "x3") and data.class_names == ("0", "1", "2", "3")


def test_split_with_val_fraction_zero():
    X, y = _indexed()
    data = split(X, y, 0.0, np.random.default_rng(1), classes=4)
    assert data.X_train.shape == (50, 3) and data.y_train.shape == (50,)
    assert data.X_val.shape == (0, 3) and data.y_val.shape == (0,)
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1.0, rtol=1e-12)


def test_standardization_uses_training_statistics():
    X, y = _indexed()
    raw = split(X, y, 0.3, np.random.default_rng(2), classes=4, standardize=False)
    std = split(X, y, 0.3, np.random.default_rng(2), classes=4, standardize=True)
    mu = raw.X_train.mean(axis=0)
    sigma = np.sqrt(((raw.X_train - mu) ** 2).mean(axis=0))
    np.testing.assert_allclose(std.X_train, (raw.X_train - mu) / sigma, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std.X_val, (raw.X_val - mu) / sigma, rtol=1e-12, atol=1e-12)
    # the validation part is not standardized with its own statistics
    assert np.abs(std.X_val.mean(axis=0)).max() > 1e-3


def test_constant_column_stays_finite():
    X, y = _indexed()
    X[:, 2] = 7.0
    with np.errstate(all="raise"):
        data = split(X, y, 0.2, np.random.default_rng(1), classes=4)
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_val).all()
    np.testing.assert_array_equal(data.X_train[:, 2], 0.0)


def test_split_that_leaves_no_training_data_is_an_error():
    X, y = _indexed(n=4)
    with pytest.raises(DataError, match="no training examples"):
        split(X, y, 1.0, np.random.default_rng(0), classes=4)


HOSTILE_VALUES = {
    # case: (content, regex the DataError message must match)
    "huge features": (b"a,big,label\n1,1e308,0\n2,-1e308,1\n3,1e307,0\n", r"column 'big' holds 1e\+308 on line 2.*rescale"),
    "1e200 column": (b"a,b,label\n1,1e200,0\n2,-1e200,1\n", r"column 'b' holds 1e\+200.*standardized"),
    "-inf in a column": (b"a,b,label\n1,2,0\n2,-inf,1\n", r"column 'b' holds -inf on line 3"),
    "one row": (b"a,label\n1,0\n", r"only one row labelled 0\)"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_VALUES))
def test_data_that_cannot_be_standardized_is_named(case):
    content, message = HOSTILE_VALUES[case]
    with pytest.raises(DataError, match=message) as info:
        read_csv_table(content, "label")
    assert "np." not in str(info.value)


def test_large_but_safe_features_standardize_without_overflow():
    X = np.array([[1e99], [-1e99], [3e98], [0.0]])
    y = np.array([0, 1, 0, 1])
    with np.errstate(all="raise"):
        data = split(X, y, 0.0, np.random.default_rng(0), classes=2)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1.0, rtol=1e-12)
    assert np.ptp(data.X_train) > 1.0  # the separating column did not collapse to zeros


def test_too_large_file_reports_its_real_size(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "wb") as fh:
        fh.truncate(206 * 2**20)  # sparse: 206 MB that take no disk
    with pytest.raises(DataError, match=r"the file is 206 MB; the limit is 50 MB"):
        read_csv_table(str(path), "label")


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        read_csv_table(str(fifo), "label")


@pytest.mark.parametrize("name, rows", [("digits", 1797), ("iris", 150), ("wine", 178), ("breast_cancer", 569)])
def test_a_bundled_dataset_uses_all_its_rows_unless_samples_is_given(name, rows):
    config = RunConfig(dataset=name).validate()  # samples not given
    data = make_dataset(config)
    assert len(data.X_train) + len(data.X_val) == rows == config.n_samples
    fewer = RunConfig(dataset=name, samples=100).validate()
    assert len(make_dataset(fewer).y_train) + len(make_dataset(fewer).y_val) == 100 == fewer.n_samples


def test_generated_data_keeps_its_default_size():
    data = make_dataset(RunConfig(dataset="spirals").validate())
    assert len(data.X_train) + len(data.X_val) == 1000
