"""A lesson step made live: its block read into settings, run, measured; its reveal filled in; an answer graded.

The block's settings are text held to the lab's own declarations (``lab.engine.settings``, read as a link's
values are: the browser's range, since a step opens in Train); an experiment is a config given as changes to the
Train page's defaults (``lab.engine.config.page_defaults``), and an "init" experiment is that config with
``epochs`` 0.  A step must stay interactive: an experiment may cost at most ``STEP_SECONDS`` at typical prices
(``lab.serving.cost``), a gradient check at most ``GRADCHECK_PARAMS`` parameters.
"""
from __future__ import annotations

import difflib
import math
import re
import string
from dataclasses import dataclass, field

import pandas as pd

from lab.engine.config import RunConfig, page_defaults
from lab.engine.settings import SETTINGS, ConfigError
from lab.formats import number
from lab.serving.share import read_value

from .lesson import Block, Question
from .measures import MEASUREMENTS

STEP_SECONDS = 1.0  # an experiment's estimate at typical prices: on screen within 2 s with its charts
GRADCHECK_PARAMS = 600  # central differences: two forward passes per parameter
GRADCHECK_BASE = RunConfig(depth=2, width=8, activation="tanh", init="xavier_normal", bias_std=0.1, dtype="float64")
FRUIT_INPUTS = {"apple_price": (0.0, 1e6), "apple_count": (0.0, 1e4), "orange_price": (0.0, 1e6),
                "orange_count": (0.0, 1e4), "tax": (0.0, 10.0)}
FRUIT_DEFAULTS = {"apple_price": 100.0, "apple_count": 2.0, "orange_price": 150.0, "orange_count": 3.0, "tax": 1.1}
MAX_LOGITS, LOGIT_BOUND = 6, 30.0
BUGS = ("none", "halved", "sign", "forgotten")  # lab.engine.gradcheck.BUG_KINDS, and none


class StepError(ValueError):
    """A block that cannot run: the message names the setting and says why (with ``key``, where it is)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclass
class StepRun:
    """What a step's block made: a run (experiments), the fruit shop's table, softmax's steps or a check's table."""

    block: Block
    config: RunConfig | None = None
    result: object = None  # RunResult
    table: pd.DataFrame | None = None
    steps: object = None  # SoftmaxSteps
    target: int = 0
    check: pd.DataFrame | None = None
    comparison: object = None  # GradientComparison
    spectrum: object = None  # lab.theory.spectrum.Measured, of a "spectrum" experiment
    values: dict = field(default_factory=dict)  # measurement -> value, filled by measure()


def _unknown(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"unknown setting {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _settings(values: dict[str, str], extra: tuple[str, ...] = ()) -> dict:
    """Text of RunConfig settings -> typed values in the browser's range; StepError at the first bad one."""
    typed = {}
    for key, text in values.items():
        if key in extra:
            continue
        if key not in SETTINGS:
            raise StepError(_unknown(key, [*SETTINGS, *extra]), key)
        value, notice = read_value(key, text, clamp=False)
        if value is None:
            raise StepError(notice, key)
        typed[key] = value
    return typed


def block_config(block: Block) -> RunConfig | None:
    """The config an experiment or a gradient check runs (None for the other examples); StepError when it cannot."""
    if block.kind == "experiment":
        config = page_defaults().replace(**_settings(block.values))
        if block.name in ("init", "spectrum"):  # a spectrum is taken at initialization
            config = config.replace(epochs=0)
    elif block.name == "gradcheck":
        config = GRADCHECK_BASE.replace(**_settings(block.values, extra=("bug", "bug_layer")))
    else:
        return None
    try:
        return config.validate()
    except ConfigError as exc:
        raise StepError(str(exc)) from None


def _number(key: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise StepError(f"{key} must be a number, not {text!r}", key) from None
    if not low <= value <= high:
        raise StepError(f"{key} must be between {low:g} and {high:g}; got {text}", key)
    return value


def example_inputs(block: Block) -> dict:
    """The worked example's own inputs, typed and bounded (StepError when one is wrong)."""
    values = block.values
    if block.name == "fruit_shop":
        for key in values:
            if key not in FRUIT_INPUTS:
                raise StepError(_unknown(key, FRUIT_INPUTS), key)
        given = {k: _number(k, v, *FRUIT_INPUTS[k]) for k, v in values.items()}
        return {**FRUIT_DEFAULTS, **given}
    if block.name == "softmax":
        for key in values:
            if key not in ("logits", "target"):
                raise StepError(_unknown(key, ("logits", "target")), key)
        texts = [t.strip() for t in values.get("logits", "0.3, 2.9, 4.0").split(",") if t.strip()]
        if not 2 <= len(texts) <= MAX_LOGITS:
            raise StepError(f"logits: give 2 to {MAX_LOGITS} numbers, separated by commas", "logits")
        logits = [_number("logits", t, -LOGIT_BOUND, LOGIT_BOUND) for t in texts]
        target = _number("target", values.get("target", "2"), 0, len(logits) - 1)
        if not target.is_integer():
            raise StepError("target must be a whole number: the index of the true class, from 0", "target")
        return {"logits": logits, "target": int(target)}
    bug = values.get("bug", "none")
    if bug not in BUGS:
        raise StepError(f"bug must be one of {', '.join(BUGS)}, not {bug!r}", "bug")
    return {"bug": bug, "bug_layer": int(_number("bug_layer", values.get("bug_layer", "1"), 1, 100))}


def check_cost(block: Block, config: RunConfig | None) -> None:
    """StepError when the block would not stay interactive."""
    if block.kind == "experiment":
        from lab.serving.cost import TYPICAL_PRICES, estimate

        seconds = estimate(config, prices=TYPICAL_PRICES[config.dtype]).seconds
        if block.name == "spectrum":
            from lab.engine.jacobian import probe_count, spectrum_layers
            from lab.serving.cost import jacobian_estimate

            if config.depth < 2:
                raise StepError("a Jacobian spectrum needs at least 2 hidden layers", "depth")
            seconds += jacobian_estimate(config, probe_count(config.width), len(spectrum_layers(config.depth))).seconds
        if seconds > STEP_SECONDS:
            raise StepError(f"this experiment would take about {number(seconds)} s on a typical machine; a lesson step "
                            f"may take at most {STEP_SECONDS:g} s: fewer epochs, samples, layers or units")
    elif block.name == "gradcheck":
        from lab.engine.gradcheck import parameter_count

        n = parameter_count(config)
        if n > GRADCHECK_PARAMS:
            raise StepError(f"this gradient check has {n:,} parameters; a lesson step checks at most "
                            f"{GRADCHECK_PARAMS:,}: lower the depth or the width")
        bug_layer = example_inputs(block)["bug_layer"]
        if example_inputs(block)["bug"] != "none" and bug_layer > config.depth:
            raise StepError(f"bug_layer {bug_layer} is beyond the network's {config.depth} hidden layers", "bug_layer")


def run_block(block: Block, result=None) -> StepRun:
    """Run ``block`` (an experiment trains or only initializes; an example computes); ``result``: an experiment's
    run already made (the page's cache), which is then only measured."""
    config = block_config(block)
    run = StepRun(block, config)
    if block.kind == "experiment":
        if result is None:
            from lab.engine.training import train

            result = train(config)
        run.result = result
        if block.name == "spectrum":
            from lab.theory.spectrum import measure as spectrum_of

            run.spectrum = spectrum_of(config, data=result.data)
    elif block.name == "fruit_shop":
        from lab.worked.graphs import fruit_shop

        run.table = fruit_shop(**example_inputs(block))
    elif block.name == "softmax":
        from lab.worked.softmax_steps import softmax_steps

        inputs = example_inputs(block)
        run.steps, run.target = softmax_steps(inputs["logits"], inputs["target"]), inputs["target"]
    else:
        from lab.engine.gradcheck import check_problem, compare_gradients, planted_bug

        inputs = example_inputs(block)
        model, X, t = check_problem(config)
        if inputs["bug"] != "none":
            planted_bug(model, inputs["bug_layer"], inputs["bug"])
        run.comparison = compare_gradients(model, X, t, repeats=5)  # as the Gradient check page makes it
        run.check = run.comparison.table
    run.values = measure(run)
    return run


def measure(run: StepRun) -> dict:
    """Every measurement the block gives, by name (NaN where a number is not defined for this run)."""
    out = {}
    for name, m in MEASUREMENTS.items():
        if run.block.name in m.blocks:
            try:
                out[name] = m.fn(run)
            except (AttributeError, KeyError, IndexError, ValueError, ZeroDivisionError):
                out[name] = math.nan if m.is_number else "unknown"
    return out


# --- template fields -----------------------------------------------------------------------------------

def fields_of(text: str) -> list[tuple[str, str]]:
    """(name, spec) of every ``{name}`` or ``{name:%}`` in ``text``; ValueError for a brace left open."""
    return [(name, spec or "") for _, name, spec, _ in string.Formatter().parse(text) if name is not None]


def available_fields(block: Block | None) -> set[str]:
    """The names a step's text may quote: its block's measurements, its settings and example inputs."""
    if block is None:
        return set()
    names = {n for n, m in MEASUREMENTS.items() if block.name in m.blocks}
    if block.kind == "experiment" or block.name == "gradcheck":
        names |= set(SETTINGS)
    if block.kind == "example":
        names |= {"fruit_shop": set(FRUIT_INPUTS), "softmax": {"logits", "target"},
                  "gradcheck": {"bug", "bug_layer"}}[block.name]
    return names


def spec_ok(spec: str) -> bool:
    """'' (two significant digits), '%' (a fraction as a percentage) or '.N' (N significant digits, 1 to 6)."""
    return spec in ("", "%") or (len(spec) == 2 and spec[0] == "." and spec[1] in "123456")


def show(value, spec: str = "") -> str:
    """A field's value as the page writes it: numbers through lab.formats, to two significant digits (``.N``: N of
    them; ``%``: a fraction as a percentage)."""
    if isinstance(value, bool) or isinstance(value, str):
        return str(value).replace("_", " ")
    if isinstance(value, (list, tuple)):
        return ", ".join(show(v) for v in value)
    if spec == "%":
        return "n/a" if not math.isfinite(value) else f"{100 * value:.0f}%"
    digits = int(spec[1]) if spec.startswith(".") else 2
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e4:
        return f"{value:.0f}"
    return number(value, digits)


def fill(text: str, run: StepRun) -> str:
    """``text`` with its fields replaced by this run's values."""
    values = dict(run.values)
    if run.config is not None:
        values |= {f: getattr(run.config, f) for f in SETTINGS}
    if run.block.kind == "example":
        values |= example_inputs(run.block)
    out = []
    for literal, name, spec, _ in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            out.append(show(values.get(name, "?"), spec or ""))
    return "".join(out)


# --- answers -------------------------------------------------------------------------------------------

_RANGE = re.compile(r"^(?:(below|under|less than)\s+(\S+)|(above|over|more than)\s+(\S+)|(\S+)\s+(?:to|-|–)\s+(\S+))$")


def parse_range(choice: str) -> tuple[float, float] | None:
    """'below 0.01', 'above 10', '0.1 to 10' -> (low, high); None when ``choice`` is not a range."""
    m = _RANGE.match(choice.strip().lower())
    if not m:
        return None
    try:
        if m.group(1):
            return -math.inf, float(m.group(2))
        if m.group(3):
            return float(m.group(4)), math.inf
        low, high = float(m.group(5)), float(m.group(6))
    except ValueError:
        return None
    return (low, high) if low < high else None


def parse_tolerance(text: str) -> tuple[str, float] | None:
    """'20%' (relative), 'x3' (within a factor of 3), '0.05' (absolute) -> (kind, amount); None when not one."""
    text = text.strip().lower()
    try:
        if text.endswith("%"):
            amount, kind = float(text[:-1]) / 100, "relative"
        elif text.startswith(("x", "×")):
            amount, kind = float(text[1:]), "factor"
            return (kind, amount) if amount > 1 else None
        else:
            amount, kind = float(text), "absolute"
    except ValueError:
        return None
    return (kind, amount) if amount > 0 and math.isfinite(amount) else None


@dataclass(frozen=True)
class Grade:
    correct: bool
    measured: object  # the run's value of the question's measurement
    right: str  # the choice that was right ("" when none covers the value), or the value written out


def right_choice(question: Question, measured) -> str:
    """The choice the run makes right: the measured kind itself, or the range that holds the measured number."""
    if MEASUREMENTS[question.measure].is_number:
        if not isinstance(measured, (int, float)) or not math.isfinite(measured):
            return ""
        return next((c for c in question.choices if (r := parse_range(c)) and r[0] <= measured < r[1]), "")
    return next((c for c in question.choices if c.replace(" ", "_") == measured), "")


def grade(question: Question, run: StepRun, answer) -> Grade:
    """Whether ``answer`` (a choice, or a number) is right for this run."""
    measured = run.values[question.measure]
    if question.kind == "choice":
        right = right_choice(question, measured)
        return Grade(bool(right) and answer == right, measured, right)
    kind, amount = parse_tolerance(question.tolerance)
    ok = isinstance(measured, (int, float)) and math.isfinite(measured) and answer is not None
    if ok:
        a, m = float(answer), float(measured)
        ok = (abs(a - m) <= amount * abs(m) if kind == "relative" else
              abs(a - m) <= amount if kind == "absolute" else
              (a > 0) == (m > 0) and a != 0 and m != 0 and max(a / m, m / a) <= amount)
    return Grade(ok, measured, show(measured, ".4"))  # 715, not the 2 digits of a sentence (720)
