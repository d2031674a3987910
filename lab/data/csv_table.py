"""The CSV loader: an untrusted file read with bounded effort, every bad one refused with one sentence.

Before anything is parsed, cheap scans of the bytes refuse an empty file, UTF-16 text, binary data and a
header of more than ``MAX_COLUMNS`` columns (counted by its separators, without making a string per
column); then the text must be UTF-8, and only then does pandas parse it.  Where the file's shape is wrong
(a row with more or fewer fields than the header, a quote that never closes), a second pass with the
``csv`` module finds the line to name; it runs only on the way to an error.
"""
from __future__ import annotations

import csv
import io
import os
import re
import stat
import warnings

import numpy as np

from lab.formats import size as size_text

MAX_CSV_BYTES = 50 * 2**20
MAX_CSV_ROWS = 200_000
MAX_CLASSES = 100
MAX_FEATURES = 4096  # the engine's bound on the input dimension (lab.engine.settings' input_dim reads it)
MAX_COLUMNS = MAX_FEATURES + 1  # the features and the label
MAX_HEADER_BYTES = 2**20  # room for MAX_COLUMNS names of 250 characters
# Standardizing squares (x - mean); beyond about 1e154 that overflows float64, and long before
# it the mean of a column loses every digit of its spread.  No real measurement comes near this.
MAX_FEATURE_ABS = 1e100
SHOWN_CHARS = 80  # a name or value from the file is cut to this in a message

_NOT_SPACE = re.compile(rb"\S")
_QUOTED = re.compile(rb'"[^"]*"')  # a quoted field; '""' inside one reads as two quoted fields, as it should here


class DataError(ValueError):
    """A dataset that cannot be used, with a message meant for the user."""


def read_csv_table(source, label: str) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Read a CSV of numeric feature columns plus one label column.

    source: a path, bytes or a file-like object.  Returns X (n, D) float64, y (n,)
    integer codes, feature names, class names.  Raises DataError with a message
    that names the problem (and the column or line) for every bad input.
    """
    raw = _read_bytes(source)
    _check_bytes(raw)
    _check_utf8(raw)
    import pandas as pd  # here, after the checks: importing the datasets does not load it, nor does a refusal
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # index_col=False: a first row longer than the header is cut and warned about, where pandas would
            # otherwise make an index of its first fields and shift every column silently
            df = pd.read_csv(io.BytesIO(raw), index_col=False)
    except pd.errors.ParserError as exc:
        raise DataError(_shape_problem(raw) or f"could not read the file as CSV: {_first_line(exc)}") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        raise DataError(_shape_problem(raw) or "a row has more fields than the header")
    if df.empty:
        raise DataError("the file has a header but no rows")
    if len(df) > MAX_CSV_ROWS:
        raise DataError(f"the file has {len(df):,} rows; the limit is {MAX_CSV_ROWS:,}")
    missing = df.isna()
    if missing.any().any():
        short = _shape_problem(raw)  # a row with fewer fields than the header reads as missing values
        if short:
            raise DataError(short)
    if label not in df.columns:
        cols = ", ".join(str(_shown(c)) for c in df.columns[:12])
        raise DataError(f"no column named {_shown(label)!r}; the columns are: {cols}")
    features = df.drop(columns=[label])
    if features.shape[1] == 0:
        raise DataError("there are no feature columns besides the label")
    for col in features.columns:
        if pd.api.types.is_bool_dtype(features[col]):
            raise DataError(f"column {_shown(col)!r} is not numeric (it holds True and False)")
        if not pd.api.types.is_numeric_dtype(features[col]):
            numbers = features[col].map(_as_float)  # not pd.to_numeric: a 400-digit number is a number (inf)
            bad = features[col][numbers.isna() & features[col].notna()]
            if len(bad):
                raise DataError(f"column {_shown(col)!r} is not numeric "
                                f"(line {_line_of_row(raw, bad.index[0])}: {_shown(bad.iloc[0])!r})")
            features[col] = numbers  # numbers pandas kept as text; an inf among them is named below
    if missing.any().any():
        row, col = np.argwhere(missing.to_numpy())[0]
        raise DataError(
            f"{int(missing.sum().sum())} missing values, the first in column "
            f"{_shown(df.columns[col])!r} on line {_line_of_row(raw, row)}"
        )
    X = features.to_numpy(dtype=np.float64)
    _check_magnitudes(X, features.columns, raw)
    codes, uniques = pd.factorize(df[label], sort=True)
    if len(uniques) < 2:
        rows = "only one row" if len(df) == 1 else f"{len(df):,} rows, all"
        raise DataError(
            f"the label column {_shown(label)!r} has a single class ({rows} labelled {_shown(_plain(uniques[0]))!r}); "
            "at least 2 classes are needed"
        )
    if len(uniques) > MAX_CLASSES:
        raise DataError(
            f"the label column {_shown(label)!r} has {len(uniques)} distinct values; the lab classifies "
            f"(at most {MAX_CLASSES} classes), so choose a column of class labels"
        )
    return X, codes.astype(np.int64), tuple(map(str, features.columns)), tuple(map(str, uniques))


def csv_columns(data: bytes) -> list[str]:
    """The column names in the header of an uploaded CSV (read without its rows), for the label picker.

    The same checks as ``read_csv_table`` come first (the header's column limit among them), so a file
    that cannot be used is refused here, cheaply, with the same sentence.  Raises DataError; any other
    error is a bug and propagates."""
    start = _check_bytes(data)
    _check_utf8(data, stop=start + MAX_HEADER_BYTES)
    import pandas as pd  # here, after the checks: importing the datasets does not load it, nor does a refusal
    try:
        return list(pd.read_csv(io.BytesIO(data), nrows=0).columns)
    except pd.errors.ParserError as exc:
        _check_utf8(data)  # the whole file, which _shape_problem reads
        raise DataError(_shape_problem(data) or f"the header could not be read: {_first_line(exc)}") from None
    except UnicodeDecodeError:
        raise DataError("the file is not UTF-8 text; save it as UTF-8") from None


def _check_bytes(raw: bytes) -> int:
    """Refuse, by scans of the bytes that build nothing as large as the file, an empty file, UTF-16 text,
    binary data and a header of more than MAX_COLUMNS columns.  Returns where the header starts (pandas
    skips blank lines before it)."""
    first = _NOT_SPACE.search(raw)
    if first is None:
        raise DataError("the file is empty")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError("the file is UTF-16 text; save it as UTF-8")
    if b"\x00" in raw:
        raise DataError("this is not a CSV file (it contains binary data)")
    start = first.start()
    end = _line_end(raw, start, len(raw))
    if raw.find(b'"', start, end) < 0:  # the header is this line, and every comma on it separates two columns
        columns, complete = raw.count(b",", start, end) + 1, end - start <= MAX_HEADER_BYTES
        exact = True
    else:  # quoted names may hold commas and line breaks: count outside the quotes, within the first bytes
        head = _QUOTED.sub(b"", raw[start : start + MAX_HEADER_BYTES + 1])
        end = _line_end(head, 0, len(head))
        columns, complete = head.count(b",", 0, end) + 1, end < len(head) or len(raw) - start <= MAX_HEADER_BYTES
        exact = complete
    if columns > MAX_COLUMNS:
        raise DataError(f"the header has {'' if exact else 'at least '}{columns:,} columns; the limit is "
                        f"{MAX_COLUMNS:,} ({MAX_FEATURES:,} features and the label)")
    if not complete:
        raise DataError(f"the header is longer than {size_text(MAX_HEADER_BYTES)}, the limit")
    return start


def _line_end(raw: bytes, start: int, stop: int) -> int:
    """Where the line starting at ``start`` ends (\\n, \\r\\n or \\r, as pandas reads them), or ``stop``."""
    ends = [i for i in (raw.find(b"\n", start, stop), raw.find(b"\r", start, stop)) if i >= 0]
    return min(ends, default=stop)


def _check_utf8(raw: bytes, stop: int | None = None) -> None:
    """Refuse bytes (up to ``stop``) that are not UTF-8, naming the line of the first bad byte."""
    head = raw if stop is None or stop >= len(raw) else raw[:stop]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if head is not raw and exc.reason == "unexpected end of data":
            return  # the cut fell inside a character
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8") from None


def _records(raw: bytes):
    """(line the record starts on, its fields) for each record of the file, header first, blank lines
    skipped as pandas skips them.  A DataError names the line where the CSV's quoting breaks."""
    text = raw.decode("utf-8").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise DataError(f"the quoted field that starts on line {line} is never closed") from None
            raise DataError(f"line {line} is not valid CSV ({exc})") from None
        if fields and not (len(fields) == 1 and not fields[0].strip()):
            yield line, fields


def _shape_problem(raw: bytes) -> str | None:
    """The first record whose number of fields differs from the header's, as a sentence; None if none."""
    width = None
    for line, fields in _records(raw):
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            return f"line {line} has {len(fields)} field{'' if len(fields) == 1 else 's'}; the header has {width}"
    return None


def _line_of_row(raw: bytes, row: int) -> int:
    """The line of the file on which data row ``row`` (0: the first after the header) starts."""
    for i, (line, _) in enumerate(_records(raw)):
        if i == row + 1:
            return line
    return row + 2  # not reached for a row pandas read


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _as_float(value) -> float:
    """A cell pandas kept as text, as a float (inf beyond float64's range); NaN when it is not a number."""
    if isinstance(value, str) and "_" in value:  # float() reads 1_000, which no spreadsheet writes
        return float("nan")
    try:
        return float(value)
    except OverflowError:  # a whole number pandas kept as a Python int
        return float("inf") if value > 0 else float("-inf")
    except (TypeError, ValueError):
        return float("nan")


def _shown(value):
    """A name or value from the file for a message: text cut to SHOWN_CHARS, anything else as it is."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return value[: SHOWN_CHARS - 1] + "…"
    return value


def _plain(value):
    """A numpy scalar as the Python value it holds (so that messages print 0, not np.int64(0))."""
    return value.item() if isinstance(value, np.generic) else value


def _check_magnitudes(X: np.ndarray, columns, raw: bytes) -> None:
    """Non-finite values, and values too large to standardize safely, name their column and line."""
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"column {_shown(columns[col])!r} holds {X[row, col]} on line {_line_of_row(raw, row)}; "
                        "features must be finite numbers")
    big = np.abs(X) > MAX_FEATURE_ABS
    if big.any():
        row, col = np.argwhere(big)[0]
        raise DataError(f"column {_shown(columns[col])!r} holds {X[row, col]:.3g} on line {_line_of_row(raw, row)}; "
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
