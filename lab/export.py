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
from pathlib import Path

import numpy as np
import pandas as pd

from .config import ConfigError, RunConfig
from .train import HISTORY_COLUMNS, LAYER_COLUMNS, RunResult

FORMAT_VERSION = 1
KIND = "backprop-lab-runs"
MAX_IMPORT_BYTES = 50 * 2**20
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
    paths[0].write_text(json.dumps(_finite(config_document(runs, with_run)), indent=2) + "\n")
    history_table(runs, with_run).to_csv(paths[1], index=False)
    layers_table(runs, with_run).to_csv(paths[2], index=False)
    return paths


def _finite(obj):
    """JSON has no NaN or inf: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
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
    return json.dumps(_finite(_plain(doc)), allow_nan=False)


def runs_zip(runs: dict[str, RunResult], figures: dict[str, str] | None = None) -> bytes:
    """One ZIP: runs.json, config.json, history.csv, layers.csv and figures/<name>.html."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("runs.json", runs_json(runs))
        z.writestr("config.json", json.dumps(_finite(config_document(runs, True)), indent=2))
        z.writestr("history.csv", history_table(runs, with_run=True, with_config=True).to_csv(index=False))
        z.writestr("layers.csv", layers_table(runs, with_run=True).to_csv(index=False))
        for name, html in (figures or {}).items():
            z.writestr(f"figures/{name}.html", html)
    return buf.getvalue()


def load_runs(raw: bytes) -> dict[str, RunResult]:
    """Runs from an exported JSON or ZIP; raises ImportFormatError saying what is wrong."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise ImportFormatError(f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MB")
    if raw[:4] == b"PK\x03\x04":
        raw = _runs_json_from_zip(raw)
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ImportFormatError("it is neither JSON nor a ZIP exported by Backprop Lab") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ImportFormatError("it is JSON, but not a Backprop Lab export (no \"kind\": \"backprop-lab-runs\")")
    if doc.get("format") != FORMAT_VERSION:
        raise ImportFormatError(f"export format {doc.get('format')!r} is not supported (this lab reads {FORMAT_VERSION})")
    entries = doc.get("runs")
    if not isinstance(entries, list) or not entries:
        raise ImportFormatError("the file holds no runs")
    out = {}
    for i, entry in enumerate(entries):
        name = entry.get("run") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise ImportFormatError(f"run {i + 1} has no name")
        out[name] = _run_from_entry(name, entry)
    return out


def _runs_json_from_zip(raw: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            info = z.getinfo("runs.json")
            if info.file_size > 4 * MAX_IMPORT_BYTES:
                raise ImportFormatError("runs.json in the ZIP is too large")
            return z.read(info)
    except KeyError:
        raise ImportFormatError("the ZIP has no runs.json: it was not exported by Backprop Lab") from None
    except zipfile.BadZipFile:
        raise ImportFormatError("the ZIP file is damaged") from None


def _run_from_entry(name: str, entry: dict) -> RunResult:
    try:
        config = RunConfig.from_dict(entry.get("config") or {})
    except (ConfigError, TypeError) as exc:
        raise ImportFormatError(f"run {name!r} has an invalid config: {exc}") from None
    history = _table(name, entry.get("history"), HISTORY_COLUMNS, "history")
    layers = _table(name, entry.get("layers"), LAYER_COLUMNS, "layers")
    history["diverged"] = history["diverged"].astype(bool)
    for col, frame in (("epoch", history), ("epoch", layers)):
        if (frame[col] % 1 == 0).all():
            frame[col] = frame[col].astype(np.int64)
    layers["layer"] = layers["layer"].astype(np.int64)
    result = entry.get("result") if isinstance(entry.get("result"), dict) else {}
    return RunResult.from_tables(config, history, layers, result)


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
        try:
            frame[c] = pd.to_numeric(frame[c].astype(object).where(frame[c].notna(), np.nan), errors="raise").astype(float)
        except (ValueError, TypeError):
            raise ImportFormatError(f"run {name!r}: column {c!r} of the {what} table is not numeric") from None
    return frame


def _plain(obj):
    """numpy scalars -> Python values, recursively (json cannot encode numpy types)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
