"""Settings <-> URL query parameters, so that a link reproduces a run or a comparison.

Only settings that differ from the page's defaults go into a link.  Reading one never
fails and never hands a widget what it cannot show: every value is held to the browser's
range declared in ``lab.engine.settings``.  A finite number outside it is clamped to the nearest
end; anything else (not a number, NaN, inf, an unknown name or choice) is ignored.  Each
gets one notice, which quotes the link's text cut short and with invisible characters
written out, ready to be shown as plain text.
"""
from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation

from lab.data.datasets import FIXED_SIZE
from lab.engine.config import ConfigError, RunConfig
from lab.engine.settings import SEEDS, SETTINGS, Choice, Interval
from lab.experiments.compare import AXES, CompareSpec

# not in links: the file a CSV run read (a link cannot carry it)
NOT_SHARED = ("data_path", "label", "instrument")
SHAREABLE = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in NOT_SHARED)
COMPARE_KEYS = ("vary", "values", "seeds")
MAX_RUNS = 24  # a link may ask for at most this many runs (values x seeds)
MAX_TEXT = 64  # a longer value is not read as a number or a name
MAX_NOTICES = 40  # past this many, one notice counts the rest
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class Rejected(ValueError):
    """A link value that cannot be used; the message says why."""


def quote(text, limit: int = 40) -> str:
    """``text`` fit to quote in a notice: in quotes, at most ``limit`` characters, with
    control and invisible characters (newlines, bidi overrides, zero-width) written as escapes."""
    text = str(text)
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:limit])
    return f"'{shown}…' ({len(text):,} characters)" if len(text) > limit else f"'{shown}'"


def _number(constraint: Interval, text: str):
    """The number ``text`` writes, exactly (a Decimal: 1e999 is a huge number, not infinity), or a word
    of ``constraint.also``."""
    if text in constraint.also:
        return text
    if len(text) > MAX_TEXT or not text.isascii():
        raise Rejected("is not a number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Rejected("is not a number") from None
    if not value.is_finite():
        raise Rejected("is not a finite number")
    if constraint.kind is int and value != value.to_integral_value():
        raise Rejected("is not a whole number")
    return value


def _choice(name: str, constraint: Choice, text: str):
    if constraint.choices() == (True, False):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise Rejected("is not true or false")
    if name == "dataset" and text == "csv":
        raise Rejected("needs an uploaded file, which a link cannot carry")
    value = (constraint.aliases or {}).get(text, text)
    if value not in constraint.choices(ui=True):
        raise Rejected(f"is not one of {', '.join(constraint.choices(ui=True))}")
    return value


def read_value(name: str, text: str, clamp: bool = True):
    """(value, notice) for setting ``name`` from a link's ``text``; value None when ignored.

    A number outside the browser's range is clamped (``clamp``) or left out."""
    constraint = SETTINGS[name]
    try:
        if isinstance(constraint, Choice):
            return _choice(name, constraint, text), None
        value = _number(constraint, text)
    except Rejected as exc:
        return None, f"{name}: {quote(text)} {exc}; ignored"
    if isinstance(value, str):
        return value, None
    low, high = constraint.range(ui=True)
    if constraint.kind is float:
        value = float(value) + 0.0  # 1e999 -> inf, compared as such; + 0.0: no -0 in a link
    if low <= value <= high:  # an int is compared as Decimal first: int(Decimal("1e999999999")) takes minutes
        number = constraint.kind(value)
        if constraint.contains(number, ui=True):
            return number, None
    side = f"below {low:g}, the smallest" if value <= low else f"above {high:g}, the largest"
    if not clamp:
        return None, f"{name}: {quote(text)} is {side} this page offers; left out"
    value = low if value <= low else high
    return value, f"{name}: {quote(text)} is {side} this page offers; using {value:g}"


def _text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        r = repr(value)  # the shortest text that reads back as the same float
        return r.removesuffix(".0")
    return str(value)


def _samples(config: RunConfig, base: RunConfig) -> int | None:
    """``samples`` as a link must write it, or None when it need not: a bundled dataset uses all its rows
    unless the link gives ``samples`` (so any count is written), generated data ``base``'s count unless
    it gives another (a config without one means the default count, written out as a number)."""
    if config.dataset in FIXED_SIZE:
        return config.samples
    count = config.n_samples
    return None if count == base.replace(dataset=config.dataset).n_samples else count


def config_to_params(config: RunConfig, base: RunConfig) -> dict[str, str]:
    """The fields of ``config`` that differ from ``base``, as strings."""
    params = {name: _text(getattr(config, name)) for name in SHAREABLE
              if name != "samples" and getattr(config, name) != getattr(base, name)}
    samples = _samples(config, base)
    return params if samples is None else params | {"samples": _text(samples)}


def _last(raw) -> str:
    return str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw)


def _capped(notices: list[str]) -> list[str]:
    if len(notices) <= MAX_NOTICES:
        return notices
    return notices[:MAX_NOTICES - 1] + [f"and {len(notices) - MAX_NOTICES + 1} more parameters; ignored"]


def params_to_config(params: dict, base: RunConfig, skip=()) -> tuple[RunConfig, list[str]]:
    """A valid config from a link's ``params`` on top of ``base``, within the browser's ranges,
    and a notice for each value that was clamped or ignored.  Keys in ``skip`` are not read."""
    notices, changes = [], {}
    for key, raw in params.items():
        if key in skip:
            continue
        if key not in SHAREABLE:
            notices.append(f"{quote(key)} is not a setting of this page; ignored")
            continue
        value, notice = read_value(key, _last(raw))
        if notice:
            notices.append(notice)
        if value is not None:
            changes[key] = value
    if "samples" not in changes and changes.get("dataset", base.dataset) in FIXED_SIZE:
        changes["samples"] = None  # a bundled dataset: all its rows unless the link gives samples
    try:
        return base.replace(**changes).validate(), _capped(notices)
    except ConfigError as exc:  # each value fits, but not all together
        return base.validate(), _capped(notices + [f"the link's settings cannot run together ({exc}); ignored"])


def spec_to_params(spec: CompareSpec, base: RunConfig) -> dict[str, str]:
    out = config_to_params(spec.base, base)
    out.update(vary=spec.axis, values=",".join(_text(v) for v in spec.values))
    if spec.seeds > 1:
        out["seeds"] = str(spec.seeds)
    return out


def _values(axis: str, text: str, notices: list[str]) -> tuple:
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        value, notice = read_value(axis, item, clamp=False)
        if notice:
            notices.append(f"values: {notice}")
        if value is not None and value not in out:
            out.append(value)
    return tuple(out)


def params_to_spec(params: dict, default: CompareSpec, max_runs: int = MAX_RUNS) -> tuple[CompareSpec, list[str]]:
    """A comparison from a link's ``params`` on top of ``default``, and a notice for each value
    that was clamped or ignored.  What the link does not say (or says unusably) is the default's."""
    base, notices = params_to_config(params, default.base, skip=COMPARE_KEYS)
    axis, values, seeds = default.axis, default.values, default.seeds
    if "seeds" in params:
        text = _last(params["seeds"])
        try:
            seeds = _number(SEEDS, text)
        except Rejected as exc:
            notices.append(f"seeds: {quote(text)} {exc}; ignored")
            seeds = default.seeds
        else:
            low, high = SEEDS.range(ui=True)
            if not low <= seeds <= high:
                notices.append(f"seeds: {quote(text)} is not between {low} and {high}; using {min(max(seeds, low), high)}")
            seeds = int(min(max(seeds, low), high))
    if "vary" in params:
        text = _last(params["vary"])
        if text in AXES:
            axis = text
        else:
            notices.append(f"vary: {quote(text)} is not one of {', '.join(AXES)}; ignored")
    if "values" in params or axis != default.axis:
        linked = _values(axis, _last(params.get("values", "")), notices)
        if linked:
            values = linked
        else:
            notices.append(f"values: the link gives no usable value of {axis}; showing the default comparison")
            axis, values = default.axis, default.values
    if len(values) * seeds > max_runs:
        keep = max(max_runs // seeds, 1)
        notices.append(f"values: {len(values)} values × {seeds} seeds is more than {max_runs} runs; "
                       f"kept the first {keep}")
        values = values[:keep]
    spec = CompareSpec(base, axis, tuple(values), int(seeds))
    try:
        spec.configs()
    except ConfigError as exc:
        notices.append(f"the link's comparison cannot run ({exc}); showing the default comparison")
        spec = dataclasses.replace(default, base=base)
    return spec, _capped(notices)


__all__ = ["AXES", "MAX_RUNS", "config_to_params", "params_to_config", "params_to_spec", "quote", "read_value",
           "spec_to_params"]
