"""The lab's export format: config.json, history.csv and layers.csv.

The command line writes these files and the pages offer the same tables for
download, so a run can move between the terminal and the browser.  Column meanings
are documented in the README.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .compare import unique_name
from .config import ConfigError, RunConfig
from .results import HISTORY_COLUMNS, LAYER_COLUMNS, RunResult
from .units import size

FORMAT_VERSION = 1
KIND = "backprop-lab-runs"
# An import is untrusted input: every limit below is checked before the data is expanded or parsed.
MAX_IMPORT_BYTES = 50 * 2**20  # the uploaded file
MAX_IMPORT_JSON_BYTES = 64 * 2**20  # runs.json once decompressed (a 100-layer, 1000-record run is ~20 MB)
MAX_ZIP_ENTRIES = 1000  # runs.json, three CSVs and the figures of an export
MAX_JSON_DEPTH = 16  # an export nests 4 deep; json.loads recurses once per level
MAX_IMPORT_RUNS = 100
MAX_NAME_CHARS = 200
MAX_LAYERS = 10_000  # layer numbers in an imported table
# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# config field -> column of the tidy history table ("loss" is taken by the loss values)
CONFIG_COLUMNS = {f: f for f in ("dataset", "samples", "depth", "width", "activation", "init", "gain", "init_scale",
                                  "bias_std", "optimizer", "lr", "batch_size", "seed", "dtype")} | {"loss": "loss_function"}


class ImportFormatError(ValueError):
    """A file that is not a Backprop Lab export, with a message meant for the user."""


def summary(result: RunResult) -> dict:
    """What happened in a run, next to its config in config.json."""
    return {
        "diverged_at": result.diverged_at,
        "diverge_reason": result.diverge_reason,
        "stopped": result.stopped,
        "wall_s": round(result.wall_s, 4),
        "steps_per_epoch": result.steps_per_epoch,
        "n_train": int(len(result.data.X_train)) if result.data is not None else None,
        "n_val": int(len(result.data.X_val)) if result.data is not None else None,
        **result.meta.get("clipping", {}),  # clip_steps, clip_fraction, grad_norm_mean/max, when clipping was on
    }


def history_table(runs: dict[str, RunResult], with_run: bool, with_config: bool = False) -> pd.DataFrame:
    """Training curves; with ``run`` as the first column when several runs are exported,
    and with the main config fields after it when ``with_config`` (tidy, one row per record)."""
    table = _stack(runs, "history", HISTORY_COLUMNS, with_run)
    if with_config and len(table):
        for pos, (field, column) in enumerate(CONFIG_COLUMNS.items(), start=1):
            table.insert(pos, column, [str(getattr(runs[name].config, field)) if field == "gain"
                                       else getattr(runs[name].config, field) for name in table["run"]])
    return table


def layers_table(runs: dict[str, RunResult], with_run: bool) -> pd.DataFrame:
    """Per-layer statistics, tidy: one row per (run, record, layer)."""
    return _stack(runs, "layers", LAYER_COLUMNS, with_run)


def _stack(runs, attr, columns, with_run):
    frames = []
    for name, result in runs.items():
        frame = getattr(result, attr).loc[:, list(columns)].copy()
        if with_run:
            frame.insert(0, "run", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))


def config_document(runs: dict[str, RunResult], with_run: bool) -> dict:
    if not with_run:
        (result,) = runs.values()
        return {"format": FORMAT_VERSION, "config": result.config.to_dict(), "result": summary(result)}
    return {
        "format": FORMAT_VERSION,
        "runs": [{"run": name, "config": r.config.to_dict(), "result": summary(r)} for name, r in runs.items()],
    }


def write_run_dir(out: str | Path, runs: dict[str, RunResult], with_run: bool = False) -> list[Path]:
    """Write config.json, history.csv, layers.csv into ``out``; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "config.json", out / "history.csv", out / "layers.csv"]
    paths[0].write_text(json.dumps(_json_ready(config_document(runs, with_run)), indent=2) + "\n")
    paths[1].write_text(csv_text(history_table(runs, with_run)))
    paths[2].write_text(csv_text(layers_table(runs, with_run)))
    return paths


def _json_ready(obj):
    """numpy scalars as Python values (json cannot encode numpy types) and NaN or inf as null
    (JSON has neither), recursively through dicts and lists."""
    if isinstance(obj, dict):
        return {k: _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def runs_json(runs: dict[str, RunResult]) -> str:
    """Configs, results, histories and per-layer statistics of ``runs`` as one JSON document."""
    doc = {"format": FORMAT_VERSION, "kind": KIND, "runs": []}
    for name, r in runs.items():
        doc["runs"].append({
            "run": name, "config": r.config.to_dict(), "result": summary(r),
            "history": r.history.loc[:, list(HISTORY_COLUMNS)].to_dict(orient="list"),
            "layers": r.layers.loc[:, list(LAYER_COLUMNS)].to_dict(orient="list"),
        })
    return json.dumps(_json_ready(doc), allow_nan=False)


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text, with every text cell that a spreadsheet would run as a formula
    (``=HYPERLINK(...)``, ``+1``, ``@SUM``...) prefixed by a quote so that it stays text."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = [("'" + v) if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v
                             for v in frame[column]]
    return frame.to_csv(index=False)


def runs_zip(runs: dict[str, RunResult], figures: dict[str, str] | None = None) -> bytes:
    """One ZIP: runs.json, config.json, history.csv, layers.csv and figures/<name>.html."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("runs.json", runs_json(runs))
        z.writestr("config.json", json.dumps(_json_ready(config_document(runs, True)), indent=2))
        z.writestr("history.csv", csv_text(history_table(runs, with_run=True, with_config=True)))
        z.writestr("layers.csv", csv_text(layers_table(runs, with_run=True)))
        for name, html in (figures or {}).items():
            z.writestr(f"figures/{name}.html", html)
    return buf.getvalue()


def load_runs(raw: bytes) -> dict[str, RunResult]:
    """Runs from an exported JSON or ZIP; raises ImportFormatError saying what is wrong.

    The file is untrusted: its size, a ZIP's entries and decompressed size, the JSON's nesting,
    the number of runs and the length of their names are checked before anything is built.
    Two runs with one name are both kept, the second renamed.
    """
    if len(raw) > MAX_IMPORT_BYTES:
        raise ImportFormatError(f"the file is {size(len(raw))}; the limit is {size(MAX_IMPORT_BYTES)}")
    if raw[:4] == b"PK\x03\x04":
        raw = _runs_json_from_zip(raw)
    depth = _json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ImportFormatError(f"its JSON nests {depth:,} levels deep; an export nests at most {MAX_JSON_DEPTH}")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ImportFormatError("it is neither JSON nor a ZIP exported by Backprop Lab") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ImportFormatError("it is JSON, but not a Backprop Lab export (no \"kind\": \"backprop-lab-runs\")")
    if doc.get("format") != FORMAT_VERSION:
        raise ImportFormatError(f"export format {_short(doc.get('format'))} is not supported (this lab reads {FORMAT_VERSION})")
    entries = doc.get("runs")
    if not isinstance(entries, list) or not entries:
        raise ImportFormatError("the file holds no runs")
    if len(entries) > MAX_IMPORT_RUNS:
        raise ImportFormatError(f"the file holds {len(entries):,} runs; at most {MAX_IMPORT_RUNS} can be loaded at once")
    out = {}
    for i, entry in enumerate(entries):
        name = entry.get("run") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ImportFormatError(f"run {i + 1} has no name")
        if len(name) > MAX_NAME_CHARS:
            raise ImportFormatError(f"run {i + 1} has a name of {len(name):,} characters; the limit is {MAX_NAME_CHARS}")
        name = unique_name(name.strip(), out)
        out[name] = _run_from_entry(name, entry)
    return out


def _short(value, limit: int = 40) -> str:
    """repr of a value from a file, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_depth(raw: bytes) -> int:
    """The deepest nesting of [ and { in a JSON text, strings skipped, without parsing it."""
    text = np.frombuffer(raw, dtype=np.uint8)
    quote, backslash = text == ord('"'), text == ord("\\")
    if backslash.any():  # a quote preceded by an odd run of backslashes is escaped
        run = np.zeros(len(text), dtype=np.int64)
        idx = np.flatnonzero(backslash)
        # length of the run of backslashes ending at each position
        starts = np.r_[True, np.diff(idx) != 1]
        group = np.cumsum(starts) - 1
        first = idx[starts][group]
        run[idx] = idx - first + 1
        before = np.r_[0, run[:-1]]
        quote &= before % 2 == 0
    inside = (np.cumsum(quote) - quote) % 2 == 1  # after an odd number of real quotes
    step = np.where(inside, 0, (text == ord("[")).astype(np.int8) + (text == ord("{")) -
                    (text == ord("]")) - (text == ord("}")))
    return int(np.cumsum(step, dtype=np.int64).max(initial=0))


def _runs_json_from_zip(raw: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise ImportFormatError(f"the ZIP holds {len(infos):,} files; an export holds far fewer")
            info = z.getinfo("runs.json")
            if info.flag_bits & 0x1:
                raise ImportFormatError("runs.json in the ZIP is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ImportFormatError("runs.json in the ZIP uses a compression method this lab does not read "
                                        "(export files use deflate)")
            if info.file_size > MAX_IMPORT_JSON_BYTES:
                raise ImportFormatError(f"runs.json in the ZIP expands to {size(info.file_size)}; "
                                        f"the limit is {size(MAX_IMPORT_JSON_BYTES)}")
            with z.open(info) as fh:  # the header's size may lie: read no more than the limit
                data = fh.read(MAX_IMPORT_JSON_BYTES + 1)
    except ImportFormatError:
        raise
    except KeyError:
        raise ImportFormatError("the ZIP has no runs.json: it was not exported by Backprop Lab") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError):
        raise ImportFormatError("the ZIP file is damaged") from None
    if len(data) > MAX_IMPORT_JSON_BYTES:
        raise ImportFormatError(f"runs.json in the ZIP expands to more than {size(MAX_IMPORT_JSON_BYTES)}")
    return data


def _run_from_entry(name: str, entry: dict) -> RunResult:
    config = entry.get("config")
    if not isinstance(config, dict):
        raise ImportFormatError(f"run {name!r} has no config")
    try:
        config = RunConfig.from_dict(config)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ImportFormatError(f"run {name!r} has an invalid config: {exc}") from None
    history = _table(name, entry.get("history"), HISTORY_COLUMNS, "history")
    layers = _table(name, entry.get("layers"), LAYER_COLUMNS, "layers")
    history["diverged"] = history["diverged"].map(lambda v: v is True or v == 1).astype(bool)
    for what, frame, cols in (("history", history, ("epoch", "step")), ("layers", layers, ("epoch", "layer", "step"))):
        for col in cols:
            values = frame[col]
            if not (np.isfinite(values) & (values >= 0)).all():
                raise ImportFormatError(f"run {name!r}: column {col!r} of the {what} table must hold "
                                        "numbers of 0 or more")
    if not ((layers["layer"] % 1 == 0) & (layers["layer"] >= 1) & (layers["layer"] <= MAX_LAYERS)).all():
        raise ImportFormatError(f"run {name!r}: the layers table numbers its layers outside 1 to {MAX_LAYERS:,}")
    for col, frame in (("epoch", history), ("epoch", layers)):
        if (frame[col] % 1 == 0).all():
            frame[col] = frame[col].astype(np.int64)
    layers["layer"] = layers["layer"].astype(np.int64)
    result = entry.get("result") if isinstance(entry.get("result"), dict) else {}
    return RunResult.from_tables(config, history, layers, _summary_from(name, result))


def _summary_from(name: str, result: dict) -> dict:
    """The result summary of an imported run, each field checked for its type."""
    out = {}
    for key, kind in (("steps_per_epoch", int), ("wall_s", float), ("diverged_at", float)):
        value = result.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ImportFormatError(f"run {name!r}: result field {key!r} must be a number of 0 or more, "
                                    f"not {_short(value)}")
        out[key] = kind(value)
    for key in ("stopped",):
        if key in result:
            out[key] = result[key] is True
    reason = result.get("diverge_reason")
    out["diverge_reason"] = reason[:500] if isinstance(reason, str) else ""
    return out


def _table(name, cols, required, what) -> pd.DataFrame:
    if not isinstance(cols, dict):
        raise ImportFormatError(f"run {name!r} has no {what} table")
    missing = [c for c in required if c not in cols]
    if missing:
        raise ImportFormatError(f"run {name!r}: the {what} table lacks {', '.join(missing)}")
    lengths = {len(cols[c]) if isinstance(cols[c], list) else -1 for c in required}
    if len(lengths) != 1 or -1 in lengths or 0 in lengths:
        raise ImportFormatError(f"run {name!r}: the {what} columns are not lists of one length")
    frame = pd.DataFrame({c: cols[c] for c in required})
    for c in required:
        if c == "diverged":
            continue
        values = frame[c].astype(object)
        if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
            raise ImportFormatError(f"run {name!r}: column {c!r} of the {what} table is not numeric")
        frame[c] = pd.to_numeric(values.where(values.notna(), np.nan)).astype(float)
    return frame
