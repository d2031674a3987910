"""Reading an exported JSON or ZIP back (the upload box): untrusted input, held to bounds before anything
is inflated, parsed or built.

In order, each step cheap and bounded in memory:

1. the file's size (``MAX_IMPORT_BYTES``);
2. for a ZIP, its central directory (entries, encryption, method, declared sizes); then its config.json,
   which is small, lists the runs, and so gives the most their runs.json can hold (``most_bytes``: each
   run's records and layers, at most ``BYTES_PER_NUMBER`` a number).  runs.json is refused when its
   header declares more, and inflated in pieces with a running cap at that bound, since a header may lie;
3. the JSON text is scanned in pieces of ``SCAN_PIECE`` bytes without parsing it (``scan``): its deepest
   nesting (json.loads recurses once per level) and its number of items (each one becomes a Python object);
4. each run: its name and every text field (text, valid Unicode, short); its config (each setting of its
   type, then RunConfig's bounds); its result (types and sane ranges); its tables (numbers, no more records
   than its config makes, and every record with the layers 1..depth+1 of its network).

Every refusal is an ``ImportFormatError`` whose message is one sentence for the user.  A run's text
fields are kept as data: pages show them as plain text, never as Markdown or HTML.
"""
from __future__ import annotations

import io
import json
import math
import re
import zipfile
import zlib
from dataclasses import fields

import numpy as np
import pandas as pd

from lab.engine.config import MAY_BE_UNSET, ConfigError, RunConfig
from lab.engine.results import HISTORY_COLUMNS, LAYER_COLUMNS, RunResult
from lab.engine.settings import SETTINGS, Choice
from lab.experiments.compare import unique_name
from lab.formats import size

FORMAT_VERSION = 1
KIND = "backprop-lab-runs"
MAX_IMPORT_BYTES = 50 * 2**20  # the uploaded file
MAX_IMPORT_JSON_BYTES = 64 * 2**20  # runs.json once inflated, whatever its runs (a 100-layer, 1000-record run is ~20 MB)
MAX_CONFIG_JSON_BYTES = 2**20  # a ZIP's config.json: each run's config and result, about 2 kB a run
MAX_IMPORT_ITEMS = 4_000_000  # values in the JSON, each a Python object once parsed (about 130 MB at most);
#                              an export of 64 MB holds about 3 million
MAX_ZIP_ENTRIES = 1000  # runs.json, config.json, two CSVs and the figures of an export
MAX_JSON_DEPTH = 16  # an export nests 4 deep; json.loads recurses once per level
MAX_IMPORT_RUNS = 100
MAX_NAME_CHARS = 200  # a run's name, a CSV's file name or label column
MAX_REASON_CHARS = 500  # a diverge_reason is cut to this
BYTES_PER_NUMBER = 26  # the longest number json.dumps writes ("-2.2250738585072014e-308") with its ", "
RUN_OVERHEAD_BYTES = 64 * 2**10  # a run's name, config, result and column names in JSON, generously
SCAN_PIECE = 2**18  # bytes the scan looks at at once (its arrays: about 8 bytes a byte)
TEXT_FIELDS = ("data_path", "label")  # config fields of free text (or null), not among lab.engine.settings' choices
# a run's result fields: the kind of number and the most a real run reaches (diverged_at: its config's epochs)
RESULT_FIELDS = {"steps_per_epoch": (int, 10**8), "n_train": (int, 10**9), "n_val": (int, 10**9),
                 "wall_s": (float, 10**9), "diverged_at": (float, None)}


class ImportFormatError(ValueError):
    """A file that is not a Backprop Lab export, with a message meant for the user."""


def load_runs(raw: bytes) -> dict[str, RunResult]:
    """Runs from an exported JSON or ZIP; raises ImportFormatError saying what is wrong.

    Two runs with one name are both kept, the second renamed."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise ImportFormatError(f"the file is {size(len(raw))}; the limit is {size(MAX_IMPORT_BYTES)}")
    declared = None
    if raw[:4] == b"PK\x03\x04":
        raw, declared = _runs_json_from_zip(raw)
    doc = _parse(raw, "it is neither JSON nor a ZIP exported by Backprop Lab")
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ImportFormatError("it is JSON, but not a Backprop Lab export (no \"kind\": \"backprop-lab-runs\")")
    if doc.get("format") != FORMAT_VERSION:
        raise ImportFormatError(f"export format {_short(doc.get('format'))} is not supported (this lab reads {FORMAT_VERSION})")
    entries = _entries(doc, "the file")
    names = [_name(entry, i) for i, entry in enumerate(entries)]
    if declared is not None and names != declared:
        raise ImportFormatError("runs.json and config.json in the ZIP list different runs")
    out = {}
    for name, entry in zip(names, entries):
        name = unique_name(name.strip(), out)
        out[name] = run_from_entry(name, entry)
    return out


def _entries(doc, where: str) -> list:
    entries = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ImportFormatError(f"{where} holds no runs")
    if len(entries) > MAX_IMPORT_RUNS:
        raise ImportFormatError(f"{where} holds {len(entries):,} runs; at most {MAX_IMPORT_RUNS} can be loaded at once")
    return entries


def _short(value, limit: int = 40) -> str:
    """repr of a value from a file, cut to ``limit`` characters (repr writes invisible characters as escapes)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse(raw, not_json: str):
    """The JSON document in ``raw``, once ``scan`` has found it shallow and small enough to parse."""
    depth, items = scan(raw)
    if depth > MAX_JSON_DEPTH:
        raise ImportFormatError(f"its JSON nests {depth:,} levels deep; an export nests at most {MAX_JSON_DEPTH}")
    if items > MAX_IMPORT_ITEMS:
        raise ImportFormatError(f"its JSON holds {items:,} values; at most {MAX_IMPORT_ITEMS:,} can be loaded at once")
    if not re.match(rb"\s*\{", raw):  # an export is one JSON object: anything else is refused before it is decoded
        raise ImportFormatError(not_json)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ImportFormatError(not_json) from None


def scan(raw: bytes | bytearray, piece: int = SCAN_PIECE) -> tuple[int, int]:
    """(deepest nesting of [ and {, number of items) of a JSON text, strings skipped, without parsing it.

    Items are counted as the commas outside strings, plus one: each separates two values (or an object's
    two members).  The text is read in pieces of ``piece`` bytes, so that memory stays about 8 x ``piece``
    whatever its length; a piece without quotes or backslashes (most of any export: its numbers) is only
    counted.  A quote is escaped when an odd run of backslashes precedes it, which may have begun in an
    earlier piece."""
    depth = deepest = commas = 0
    inside = False  # within a string at the end of the last piece
    run = 0  # backslashes that ended the last piece
    for start in range(0, len(raw), piece):
        end = start + piece
        quotes, backslashes = raw.count(b'"', start, end), raw.count(b"\\", start, end)
        strings = bool(quotes or backslashes or run)  # whether the piece may enter, leave or escape a string
        if not strings:
            if inside:
                continue
            commas += raw.count(b",", start, end)
            if not any(raw.count(c, start, end) for c in (b"[", b"{", b"]", b"}")):
                continue
        text = np.frombuffer(memoryview(raw)[start:end], dtype=np.uint8)
        quote = text == ord('"')
        if backslashes or run:  # the quotes an odd run of backslashes escapes are not quotes
            backslash = text == ord("\\")
            runs = np.zeros(len(text), dtype=np.int32)  # the length of the run of backslashes ending at each byte
            idx = np.flatnonzero(backslash)
            if len(idx):
                starts = np.r_[True, np.diff(idx) != 1]
                group = np.cumsum(starts) - 1
                runs[idx] = idx - idx[starts][group] + 1
                if idx[0] == 0:  # the piece starts inside the last piece's run
                    runs[idx[group == 0]] += run
            quote[0] &= run % 2 == 0
            quote[1:] &= runs[:-1] % 2 == 0
            run = int(runs[-1])
        if strings:
            parity = np.cumsum(quote, dtype=np.uint8)  # wraps at 256, which keeps the parity
            within = ((parity - quote + inside) & 1).astype(bool)  # after an odd number of real quotes
            commas += int(np.count_nonzero((text == ord(",")) & ~within))
            inside = bool((int(parity[-1]) + inside) % 2)
        else:  # only brackets and numbers: the commas are counted above
            within = np.zeros(len(text), dtype=bool)
        step = ((text == ord("[")) | (text == ord("{"))).astype(np.int8) - ((text == ord("]")) | (text == ord("}")))
        step[within] = 0
        level = depth + np.cumsum(step, dtype=np.int32)
        deepest = max(deepest, int(level.max()))
        depth = int(level[-1])
    return deepest, commas + 1


def _runs_json_from_zip(raw: bytes) -> tuple[bytearray, list[str]]:
    """runs.json of an exported ZIP, and the names of the runs its config.json lists (which bound it)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise ImportFormatError(f"the ZIP holds {len(infos):,} files; an export holds far fewer")
            runs_info, config_info = _member(z, "runs.json"), _member(z, "config.json")
            if config_info.file_size > MAX_CONFIG_JSON_BYTES:
                raise ImportFormatError(f"config.json in the ZIP expands to {size(config_info.file_size)}; "
                                        f"an export's is at most {size(MAX_CONFIG_JSON_BYTES)}")
            config_doc = _parse(_inflate(z, config_info, MAX_CONFIG_JSON_BYTES), "config.json in the ZIP is not JSON")
            names, bound = most_bytes(config_doc)
            if runs_info.file_size > bound:
                raise ImportFormatError(
                    f"runs.json in the ZIP expands to {size(runs_info.file_size)}, more than the "
                    f"{len(names)} run{'' if len(names) == 1 else 's'} that its config.json lists can hold "
                    f"({size(bound)})")
            return _inflate(z, runs_info, bound), names
    except ImportFormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError):
        raise ImportFormatError("the ZIP file is damaged") from None


def _member(z: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    try:
        info = z.getinfo(name)
    except KeyError:
        raise ImportFormatError(f"the ZIP has no {name}: it was not exported by Backprop Lab "
                                "(an exported JSON file loads on its own)") from None
    if info.flag_bits & 0x1:
        raise ImportFormatError(f"{name} in the ZIP is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ImportFormatError(f"{name} in the ZIP uses a compression method this lab does not read "
                                "(export files use deflate)")
    return info


def _inflate(z: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytearray:
    """The member's bytes, inflated piece by piece and refused as soon as they pass ``cap``."""
    out = bytearray()
    with z.open(info) as fh:
        while piece := fh.read(min(4 * SCAN_PIECE, cap + 1 - len(out))):
            out += piece
            if len(out) > cap:
                raise ImportFormatError(f"{info.filename} in the ZIP expands to more than {size(cap)}")
    return out


def most_bytes(config_doc) -> tuple[list[str], int]:
    """The names of the runs a ZIP's config.json lists, and the most bytes their runs.json can hold:
    for each run, its most records times its columns (history, and every layer's statistics) at
    ``BYTES_PER_NUMBER`` a number, plus ``RUN_OVERHEAD_BYTES``; at most ``MAX_IMPORT_JSON_BYTES``."""
    entries = _entries(config_doc, "config.json in the ZIP")
    names, total = [], 4096
    for i, entry in enumerate(entries):
        name = _name(entry, i)
        config = _config(name, entry.get("config"))
        records = _most_records(name, config, _summary(name, entry.get("result"), config))
        numbers = records * (len(HISTORY_COLUMNS) + (config.depth + 1) * len(LAYER_COLUMNS))
        names.append(name)
        total += BYTES_PER_NUMBER * numbers + RUN_OVERHEAD_BYTES
    return names, min(total, MAX_IMPORT_JSON_BYTES)


def most_records(config: RunConfig, steps_per_epoch: int | None) -> int | None:
    """The most history rows a run of ``config`` makes: the record at initialization, one per epoch (or one
    every ``record_every`` steps and one at the last), and the row marking divergence.  None when it
    cannot be told: records every k steps, and the steps per epoch unknown."""
    if config.record_every == 0 or config.epochs == 0:
        return config.epochs + 2
    if not steps_per_epoch:
        return None
    return config.epochs * steps_per_epoch // config.record_every + 3


def _most_records(name: str, config: RunConfig, summary: dict) -> int:
    records = most_records(config, summary.get("steps_per_epoch"))
    if records is None:
        raise ImportFormatError(f"run {name!r} records every {config.record_every:,} steps, and its result does "
                                "not say how many steps an epoch has (steps_per_epoch)")
    return records


def _text_problem(value, limit: int) -> str | None:
    """What is wrong with ``value`` as text from a file (None: nothing)."""
    if not isinstance(value, str):
        return "must be text"
    if len(value) > limit:
        return f"has {len(value):,} characters; the limit is {limit}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid text (it holds a lone surrogate)"
    return None


def _name(entry, i: int) -> str:
    name = entry.get("run") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ImportFormatError(f"run {i + 1} has no name")
    if len(name) > MAX_NAME_CHARS:
        raise ImportFormatError(f"run {i + 1} has a name of {len(name):,} characters; the limit is {MAX_NAME_CHARS}")
    problem = _text_problem(name, MAX_NAME_CHARS)
    if problem:
        raise ImportFormatError(f"the name of run {i + 1} {problem}")
    return name


def _kind(field: str) -> str:
    """What config field ``field`` must be, in words."""
    if field in TEXT_FIELDS:
        return "text"
    constraint = SETTINGS[field]
    if isinstance(constraint, Choice):
        return "true or false" if constraint.choices() == (True, False) else "text"
    words = "a whole number" if constraint.kind is int else "a number"
    return " or ".join([words, *(repr(w) for w in constraint.also)])


def _fits_kind(field: str, value) -> bool:
    if value is None:
        return field in TEXT_FIELDS or field in MAY_BE_UNSET
    kind = _kind(field)
    if kind == "text":
        return isinstance(value, str)
    if kind == "true or false":
        return isinstance(value, bool)
    if isinstance(value, str):
        return value in SETTINGS[field].also
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind.startswith("a whole number") else isinstance(value, (int, float))


def _config(name: str, d) -> RunConfig:
    """The run's config: every setting of its kind (text, a number, ...), text short and valid, then
    RunConfig's own bounds (the engine's, as the command line has them)."""
    if not isinstance(d, dict):
        raise ImportFormatError(f"run {name!r} has no config")
    known = {f.name for f in fields(RunConfig)}
    unknown = [k for k in d if k not in known]
    if unknown:
        listed = ", ".join(_short(k) for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ImportFormatError(f"run {name!r} has an invalid config: unknown setting(s) {listed}")
    for field, value in d.items():
        if not _fits_kind(field, value):
            raise ImportFormatError(f"run {name!r} has an invalid config: {field} must be {_kind(field)}")
        problem = _text_problem(value, MAX_NAME_CHARS) if isinstance(value, str) else None
        if problem:
            raise ImportFormatError(f"run {name!r} has an invalid config: {field} {problem}")
    try:
        return RunConfig.from_dict(d)
    except (ConfigError, TypeError, ValueError, OverflowError) as exc:
        raise ImportFormatError(f"run {name!r} has an invalid config: {exc}") from None


def _as_number(value) -> float | None:
    """A JSON number as a float (inf for an integer too large for one); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _summary(name: str, result, config: RunConfig) -> dict:
    """The result summary of an imported run, each field checked for its type and range."""
    result = result if isinstance(result, dict) else {}
    out = {}
    for key, (kind, most) in RESULT_FIELDS.items():
        value = result.get(key)
        if value is None:
            continue
        number = _as_number(value)
        if number is None or not 0 <= number < math.inf:
            raise ImportFormatError(f"run {name!r}: result field {key!r} must be a number of 0 or more, "
                                    f"not {_short(value)}")
        most = config.epochs if key == "diverged_at" else most
        if number > most:
            raise ImportFormatError(f"run {name!r}: result field {key!r} is {number:g}, more than a run of "
                                    f"its config reaches ({most:,})")
        if kind is int and number != int(number):
            raise ImportFormatError(f"run {name!r}: result field {key!r} must be a whole number, not {number:g}")
        out[key] = kind(value)
    if "stopped" in result:
        out["stopped"] = result["stopped"] is True
    reason = result.get("diverge_reason")
    if reason is not None and not isinstance(reason, str):
        raise ImportFormatError(f"run {name!r}: result field 'diverge_reason' must be text")
    problem = _text_problem(reason or "", math.inf)
    if problem:
        raise ImportFormatError(f"run {name!r}: result field 'diverge_reason' {problem}")
    out["diverge_reason"] = (reason or "")[:MAX_REASON_CHARS]
    return out


def run_from_entry(name: str, entry: dict) -> RunResult:
    """One run of an export's entry (its config, result summary, history and layers), held to the export's bounds."""
    config = _config(name, entry.get("config"))
    summary = _summary(name, entry.get("result"), config)
    records = _most_records(name, config, summary)
    n_layers = config.depth + 1
    history = _table(name, entry.get("history"), HISTORY_COLUMNS, "history", records)
    layers = _table(name, entry.get("layers"), LAYER_COLUMNS, "layers", records * n_layers)
    history["diverged"] = history["diverged"].map(lambda v: v is True or v == 1).astype(bool)
    for what, frame, cols in (("history", history, ("epoch", "step")), ("layers", layers, ("epoch", "layer", "step"))):
        for col in cols:
            values = frame[col]
            if not (np.isfinite(values) & (values >= 0)).all():
                raise ImportFormatError(f"run {name!r}: column {col!r} of the {what} table must hold "
                                        "numbers of 0 or more")
    fits_network(name, config, layers)
    for col, frame in (("epoch", history), ("epoch", layers)):
        if (frame[col] % 1 == 0).all():
            frame[col] = frame[col].astype(np.int64)
    layers["layer"] = layers["layer"].astype(np.int64)
    return RunResult.from_tables(config, history, layers, summary)


def fits_network(name: str, config: RunConfig, layers: pd.DataFrame) -> None:
    """Raises ImportFormatError unless each record of ``layers`` has the layers 1..depth+1 of ``config``'s
    network, once each (the charts and the theory read them by number)."""
    n_layers = config.depth + 1
    layer = layers["layer"]
    if not ((layer % 1 == 0) & (layer >= 1) & (layer <= n_layers)).all():
        raise ImportFormatError(f"run {name!r}: the layers table numbers its layers outside 1 to {n_layers:,} "
                                f"(its config has {config.depth:,} hidden layers)")
    counts = layers.groupby("epoch")["layer"].agg(["size", "nunique"])
    if not ((counts["size"] == n_layers) & (counts["nunique"] == n_layers)).all():
        raise ImportFormatError(f"run {name!r}: the layers table does not give each record the {n_layers:,} "
                                "layers of its network, once each")


def _table(name, cols, required, what, most_rows: int) -> pd.DataFrame:
    if not isinstance(cols, dict):
        raise ImportFormatError(f"run {name!r} has no {what} table")
    missing = [c for c in required if c not in cols]
    if missing:
        raise ImportFormatError(f"run {name!r}: the {what} table lacks {', '.join(missing)}")
    lengths = {len(cols[c]) if isinstance(cols[c], list) else -1 for c in required}
    if len(lengths) != 1 or -1 in lengths or 0 in lengths:
        raise ImportFormatError(f"run {name!r}: the {what} columns are not lists of one length")
    (rows,) = lengths
    if rows > most_rows:
        raise ImportFormatError(f"run {name!r}: its {what} table has {rows:,} rows, and a run of its config makes "
                                f"at most {most_rows:,}")
    frame = {}
    for c in required:
        if c == "diverged":
            frame[c] = cols[c]
            continue
        numbers = [math.nan if v is None else _as_number(v) for v in cols[c]]  # an int too large for a float: inf
        if any(v is None for v in numbers):
            raise ImportFormatError(f"run {name!r}: column {c!r} of the {what} table is not numeric")
        frame[c] = np.array(numbers, dtype=float)
    return pd.DataFrame(frame)


__all__ = ["FORMAT_VERSION", "KIND", "MAX_IMPORT_BYTES", "MAX_IMPORT_ITEMS", "MAX_IMPORT_JSON_BYTES",
           "MAX_IMPORT_RUNS", "ImportFormatError", "fits_network", "load_runs", "most_bytes", "most_records", "scan"]
