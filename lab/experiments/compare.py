"""Comparisons: one setting varies, everything else (data, seed, ...) stays fixed.

A ``CompareSpec`` names the base config, the varying field and its values, and how
many seeds to run per value; ``summary_table`` and ``mean_band`` turn the finished
runs into the page's table and its mean-with-band curves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lab.engine.config import RunConfig
from lab.engine.settings import SETTINGS, Interval

if TYPE_CHECKING:  # pandas loads in the functions that build tables: the CLI's parser reads AXES without it
    import pandas as pd

    from lab.engine.results import RunResult

AXES = ("init", "activation", "depth", "width", "optimizer", "lr", "gain", "init_scale", "batch_size", "loss",
        "norm", "residual_scale", "dropout", "clip_norm", "weight_decay")
# the numeric axes and their kinds, from the one declaration of settings
INT_AXES = frozenset(a for a in AXES if isinstance(SETTINGS[a], Interval) and SETTINGS[a].kind is int)
FLOAT_AXES = frozenset(a for a in AXES if isinstance(SETTINGS[a], Interval) and SETTINGS[a].kind is float)


@dataclass(frozen=True)
class CompareSpec:
    base: RunConfig
    axis: str
    values: tuple
    seeds: int = 1

    def setting_name(self, value) -> str:
        return f"{self.axis}={value:g}" if isinstance(value, float) else f"{self.axis}={value}"

    def configs(self) -> dict[str, tuple[str, RunConfig]]:
        """run name -> (setting name, config); seeds base.seed, base.seed + 1, ..."""
        out = {}
        for value in self.values:
            setting = self.setting_name(value)
            for k in range(self.seeds):
                name = setting if self.seeds == 1 else f"{setting} · seed {self.base.seed + k}"
                out[name] = (setting, self.base.replace(**{self.axis: value, "seed": self.base.seed + k}).validate())
        return out


def parse_values(axis: str, values) -> tuple:
    """Values of ``axis`` from strings (a link, a text box): typed, in order, duplicates dropped."""
    if axis not in AXES:
        raise ValueError(f"cannot vary {axis!r}; choose one of {', '.join(AXES)}")
    out = []
    for v in values:
        v = str(v).strip()
        if not v:
            continue
        try:
            if axis in INT_AXES:
                v = int(v)
            elif axis in FLOAT_AXES and v not in SETTINGS[axis].also:  # gain: a number or "auto"
                v = float(v)
        except ValueError:
            kind = "a whole number" if axis in INT_AXES else "a number"
            raise ValueError(f"{axis} value {v!r} is not {kind}") from None
        if v not in out:
            out.append(v)
    return tuple(out)


def epochs_to_threshold(history: pd.DataFrame, threshold: float) -> float:
    """First epoch whose training loss is below ``threshold`` (NaN if never)."""
    from lab.engine.results import records

    h = records(history)
    h = h[h["loss"] < threshold]
    return float(h["epoch"].iloc[0]) if len(h) else math.nan


def summary_table(runs: dict[str, RunResult], threshold: float = 0.1) -> pd.DataFrame:
    """One row per run: final loss and accuracy, epochs to ``threshold``, layer-1/last-hidden
    delta_rms ratio at initialization and at the end, diverged at, wall time."""
    import pandas as pd

    from lab.report.verdicts import signal_ratio  # not via lab.report.summaries, whose lab.theory.meanfield loads scipy

    rows = []
    for name, r in runs.items():
        h = r.records
        last = h.iloc[-1] if len(h) else pd.Series(math.nan, index=h.columns)
        epochs = sorted(r.layers["epoch"].unique()) if len(r.layers) else []
        init_ratio = signal_ratio(r.layers, epochs[0]) if epochs else None
        end_ratio = signal_ratio(r.layers, epochs[-1]) if epochs else None
        rows.append({
            "run": name,
            "final_loss": last["loss"],
            "final_accuracy": last["accuracy"],
            "final_val_loss": last["val_loss"],
            "final_val_accuracy": last["val_accuracy"],
            f"epochs_to_loss_{threshold:g}": epochs_to_threshold(r.history, threshold),
            "delta_ratio_init": init_ratio[0] if init_ratio else math.nan,
            "delta_ratio_end": end_ratio[0] if end_ratio else math.nan,
            "diverged_at": r.diverged_at if r.diverged_at is not None else math.nan,
            "wall_s": r.wall_s,
        })
    return pd.DataFrame(rows)


def mean_band(runs: dict[str, RunResult], settings: dict[str, str], column: str = "loss") -> pd.DataFrame:
    """Per setting and epoch: mean, min and max of ``column`` over its seeds (records all runs share)."""
    import pandas as pd

    frames = []
    for name, r in runs.items():
        h = r.records[["epoch", column]].copy()
        h["setting"] = settings[name]
        frames.append(h)
    if not frames:
        return pd.DataFrame(columns=["setting", "epoch", "mean", "low", "high", "n"])
    tidy = pd.concat(frames, ignore_index=True)
    grouped = tidy.groupby(["setting", "epoch"], sort=False)[column]
    out = grouped.agg(mean="mean", low="min", high="max", n="count").reset_index()
    return out.replace([np.inf, -np.inf], np.nan)


def unique_name(name: str, taken) -> str:
    """``name``, or ``name (2)``, ``name (3)``, ... whichever is not in ``taken``."""
    if name not in taken:
        return name
    k = 2
    while f"{name} ({k})" in taken:
        k += 1
    return f"{name} ({k})"


def _short(value: float) -> str:
    """A number in a few characters: 0.2, 1, 1e-4, 2.5e-4."""
    if 0 < abs(value) < 1e-3:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{value:.3g}"


def cure_tags(config: RunConfig) -> list[str]:
    """The cures a config switches on, each in a few characters: +BN, +LN, res α 0.2, drop 0.2, clip 1, wd 1e-4."""
    c = config
    return [tag for tag, on in (({"batch": "+BN", "layer": "+LN"}.get(c.norm, f"+{c.norm}"), c.norm != "none"),
                                (f"res α {_short(c.residual_scale)}", c.residual),
                                (f"drop {_short(c.dropout)}", c.dropout > 0),
                                (f"clip {_short(c.clip_norm)}", c.clip_norm > 0),
                                (f"wd {_short(c.weight_decay)}", c.weight_decay > 0)) if on]


def describe(config: RunConfig) -> str:
    """A short name for a run: activation/init, depth x width, and its cures (``cure_tags``)."""
    return " ".join([f"{config.activation}/{config.init} {config.depth}×{config.width}", *cure_tags(config)])
