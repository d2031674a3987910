"""The lab's export format: config.json, history.csv and layers.csv.

The command line writes these files and the pages offer the same tables for
download, so a run can move between the terminal and the browser.  Column meanings
are documented in the README.  Reading an exported file back, which is untrusted input, is
``lab.serving.imports``.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from lab.engine.results import HISTORY_COLUMNS, LAYER_COLUMNS, RunResult

from .imports import (  # noqa: F401 - reading a file back is lab.serving.imports; its names are read from here too
    FORMAT_VERSION,
    KIND,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_JSON_BYTES,
    MAX_IMPORT_RUNS,
    ImportFormatError,
    load_runs,
)

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# config field -> column of the tidy history table ("loss" is taken by the loss values)
CONFIG_COLUMNS = {f: f for f in ("dataset", "samples", "depth", "width", "activation", "init", "gain", "init_scale",
                                  "bias_std", "optimizer", "lr", "batch_size", "seed", "dtype")} | {"loss": "loss_function"}


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


def _config_cell(config, field: str):
    if field == "samples":
        return config.n_samples  # samples not given: all of a bundled dataset's rows, or the default count
    return str(config.gain) if field == "gain" else getattr(config, field)


def history_table(runs: dict[str, RunResult], with_run: bool, with_config: bool = False) -> pd.DataFrame:
    """Training curves; with ``run`` as the first column when several runs are exported,
    and with the main config fields after it when ``with_config`` (tidy, one row per record)."""
    table = _stack(runs, "history", HISTORY_COLUMNS, with_run)
    if with_config and len(table):
        for pos, (field, column) in enumerate(CONFIG_COLUMNS.items(), start=1):
            table.insert(pos, column, [_config_cell(runs[name].config, field) for name in table["run"]])
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


def runs_zip(runs: dict[str, RunResult], figures: dict[str, str] | None = None,
             assets: dict[str, str] | None = None) -> bytes:
    """One ZIP: runs.json, config.json, history.csv, layers.csv, figures/<name>.html and ``assets``
    (path in the ZIP -> text: the plotly.js the figures load from beside them)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("runs.json", runs_json(runs))
        z.writestr("config.json", json.dumps(_json_ready(config_document(runs, True)), indent=2))
        z.writestr("history.csv", csv_text(history_table(runs, with_run=True, with_config=True)))
        z.writestr("layers.csv", csv_text(layers_table(runs, with_run=True)))
        for name, html in (figures or {}).items():
            z.writestr(f"figures/{name}.html", html)
        for path, text in (assets or {}).items():
            z.writestr(path, text)
    return buf.getvalue()
