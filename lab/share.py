"""Settings <-> URL query parameters, so that a link reproduces a run or a comparison.

Only settings that differ from the page's defaults go into the link.  Reading a
link never fails: unknown or invalid parameters are dropped, each with a notice.
"""
from __future__ import annotations

import dataclasses

from .compare import AXES, CompareSpec, parse_values
from .config import ConfigError, RunConfig

SHAREABLE = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("data_path", "label", "instrument"))
COMPARE_KEYS = ("vary", "values", "seeds")


def _field_type(name):
    default = getattr(RunConfig(), name)
    if name == "noise":
        return float
    if name == "gain":
        return lambda v: v if v == "auto" else float(v)
    return type(default)


def _parse(name, text):
    typ = _field_type(name)
    if typ is bool:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ValueError(text)
    return typ(text)


def config_to_params(config: RunConfig, base: RunConfig) -> dict[str, str]:
    """The fields of ``config`` that differ from ``base``, as strings."""
    out = {}
    for name in SHAREABLE:
        value = getattr(config, name)
        if value != getattr(base, name):
            out[name] = str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)
    return out


def params_to_config(params: dict, base: RunConfig) -> tuple[RunConfig, list[str]]:
    """A valid config from ``params`` on top of ``base``, and notices for what was ignored."""
    notices, changes = [], {}
    for key, raw in params.items():
        text = raw[-1] if isinstance(raw, list) else str(raw)
        if key in COMPARE_KEYS:
            continue
        if key not in SHAREABLE:
            notices.append(f"ignored unknown setting '{key}'")
            continue
        try:
            value = _parse(key, text)
            base.replace(**{key: value}).validate()
        except (ValueError, TypeError, ConfigError) as exc:
            reason = str(exc) if isinstance(exc, ConfigError) else f"'{text}' is not a valid value"
            notices.append(f"ignored {key}: {reason}")
            continue
        changes[key] = value
    config = base.replace(**changes)
    try:
        return config.validate(), notices
    except ConfigError as exc:  # valid one by one, invalid together (e.g. too many weights)
        return base.validate(), notices + [f"ignored the link's settings: {exc}"]


def spec_to_params(spec: CompareSpec, base: RunConfig) -> dict[str, str]:
    out = config_to_params(spec.base, base)
    out.update(vary=spec.axis, values=",".join(str(v) for v in spec.values))
    if spec.seeds > 1:
        out["seeds"] = str(spec.seeds)
    return out


def params_to_spec(params: dict, base: RunConfig, max_runs: int = 24) -> tuple[CompareSpec | None, list[str]]:
    """A comparison from a link, or (None, notices) when the link names none (or a broken one)."""
    config, notices = params_to_config(params, base)
    if "vary" not in params:
        return None, notices
    axis = str(params["vary"])
    try:
        values = parse_values(axis, str(params.get("values", "")).split(","))
        seeds = int(params.get("seeds", 1))
        if not 1 <= seeds <= 10:
            raise ValueError("seeds must be between 1 and 10")
        spec = CompareSpec(config, axis, values, seeds)
        configs = spec.configs()
    except (ValueError, ConfigError) as exc:
        return None, notices + [f"ignored the comparison in the link: {exc}"]
    if not values:
        return None, notices + ["ignored the comparison in the link: it lists no values"]
    if len(configs) > max_runs:
        return None, notices + [f"ignored the comparison in the link: {len(configs)} runs (at most {max_runs})"]
    return spec, notices


__all__ = ["AXES", "config_to_params", "params_to_config", "spec_to_params", "params_to_spec"]
