"""The lab's export format: config.json, history.csv and layers.csv.

The command line writes these files and the pages offer the same tables for
download, so a run can move between the terminal and the browser.  Column meanings
are documented in the README.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .train import HISTORY_COLUMNS, LAYER_COLUMNS, RunResult

FORMAT_VERSION = 1


def summary(result: RunResult) -> dict:
    """What happened in a run, next to its config in config.json."""
    return {
        "diverged_at": result.diverged_at,
        "diverge_reason": result.diverge_reason,
        "stopped": result.stopped,
        "wall_s": round(result.wall_s, 4),
        "steps_per_epoch": result.steps_per_epoch,
        "n_train": int(len(result.data.X_train)),
        "n_val": int(len(result.data.X_val)),
    }


def history_table(runs: dict[str, RunResult], with_run: bool) -> pd.DataFrame:
    """Training curves; with ``run`` as the first column when several runs are exported."""
    return _stack(runs, "history", HISTORY_COLUMNS, with_run)


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
