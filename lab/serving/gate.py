"""The one gate between a visitor and the server's work: every request passes ``admit``.

A request (``Work``) names its kind and lists the runs it would train (or, for the phase
diagram, the grid it would measure).  ``admit`` checks, in this order and with the same
words whatever the page:

1. the count: at most ``MAX_RUNS[kind]`` runs (a Compare link's 24, a sweep's cells);
2. the bounds: every setting of every run within the browser's range (``lab.engine.settings``,
   ``ui=True``: what a widget can show and a link may ask for), so that an import, a link,
   a preset or a forged request cannot ask for more than the widgets offer;
3. the price: each run's seconds and peak memory from the cost model (``lab.serving.cost``), against
   the server's limits for one run, and their sum against the kind's limit for the whole
   (a comparison, a sweep).

It returns a ``Ticket`` (what the work will cost) or raises ``Refused``, whose message is one
sentence saying what to reduce, in the lab's words and numbers only: it never quotes a
visitor's text, so a page may show it as it is.  The gate decides; the pages show its sentence.  The command
line does not pass it: whoever runs the CLI owns the machine (``lab.serving.limits``).
"""
from __future__ import annotations

from dataclasses import dataclass

from lab.engine.config import RunConfig
from lab.engine.settings import PHASE, SEEDS, SETTINGS, Choice, ConfigError
from lab.formats import duration, size

from .cost import TYPICAL_PRICES, Cost, _pass_seconds, jacobian_estimate, priced
from .limits import Limits, run_refusal
from .share import MAX_RUNS as LINK_RUNS  # a Compare link's most runs

KINDS = ("train", "explore", "compare", "sweep", "phase", "gradcheck", "jacobian", "export")
MAX_RUNS = {"train": 1, "explore": 2, "compare": LINK_RUNS, "sweep": 2500, "phase": 1, "gradcheck": 1,
            "jacobian": 2, "export": 1}
GRADCHECK_MAX_PARAMS = 5_000  # central differences cost two forward passes per parameter
WHOLE = {"compare": "compare_seconds", "sweep": "sweep_seconds"}  # the limit on a request's total seconds
WHAT = {"compare": "comparison", "sweep": "sweep"}
NOT_BOUNDED = ("data_path", "label")  # a CSV's file and column: data, held by the CSV loader's own limits


class Refused(ValueError):
    """Work the server will not do; the message is one sentence for the visitor."""


@dataclass(frozen=True)
class DataShape:
    """An uploaded CSV's size, which a config alone does not know."""

    n_samples: int
    input_dim: int
    classes: int


@dataclass(frozen=True)
class PhaseGrid:
    """The Phase diagram's request: the grid of untrained networks it measures."""

    activation: str
    sigma_b: float
    sigma_w_range: tuple[float, float]
    cells: int
    max_depth: int
    width: int
    n_probe: int = 256


@dataclass(frozen=True)
class Work:
    kind: str  # one of KINDS
    configs: tuple[RunConfig, ...] = ()
    data: DataShape | None = None  # the uploaded CSV the runs train on
    phase: PhaseGrid | None = None


@dataclass(frozen=True)
class Ticket:
    """Admitted work and what it will cost."""

    kind: str
    runs: int
    seconds: float  # summed over the runs (CPU seconds, wherever they run)
    peak_bytes: int  # the largest run's
    costs: tuple[Cost, ...] = ()


def admit(work: Work, limits: Limits) -> Ticket:
    """``work``'s cost when the server may do it under ``limits``; raises Refused (one sentence) if not."""
    if work.kind not in KINDS:
        raise Refused(f"unknown kind of work {work.kind!r}")
    if work.kind == "phase":
        return _admit_phase(work.phase, limits)
    check_count(work.kind, len(work.configs))
    for config in work.configs:
        check_bounds(config, csv=work.data is not None)
    if work.kind == "gradcheck":
        return _admit_gradcheck(work.configs[0], limits)
    if work.kind == "jacobian":
        return _admit_jacobian(work.configs, limits)
    if work.kind == "export":
        return _admit_export(work.configs[0], work.data, limits)
    dims = {} if work.data is None else {"n_train": work.data.n_samples, "input_dim": work.data.input_dim,
                                         "classes": work.data.classes}
    whole = WHOLE.get(work.kind)
    share = getattr(limits, whole) / len(work.configs) if whole else limits.run_seconds
    costs = tuple(priced(c, min(share, limits.run_seconds), **dims) for c in work.configs)
    for config, cost in zip(work.configs, costs):
        why = run_refusal(config, limits, cost, **dims)
        if why:
            raise Refused(why if len(costs) == 1 else f"one of its {len(costs):,} runs cannot run: {why}")
    total = sum(c.seconds for c in costs)
    if whole and total > getattr(limits, whole):
        raise Refused(f"the {len(costs):,} runs of this {WHAT[work.kind]} would take about {duration(total)} "
                      f"together, and the limit on this server is {duration(getattr(limits, whole))}: "
                      f"{_fewer(work.kind)}")
    return Ticket(work.kind, len(costs), total, max((c.peak_bytes for c in costs), default=0), costs)


def _fewer(kind: str) -> str:
    if kind == "sweep":
        return "sweep fewer values or seeds, or reduce epochs, samples, depth or width"
    return "compare fewer values or seeds, or reduce epochs, samples, depth or width"


def check_count(kind: str, n: int) -> None:
    """Refused when a request of ``kind`` asks for ``n`` runs, more than MAX_RUNS[kind] (or none)."""
    if n < 1:
        raise Refused("there is nothing to run")
    if n > MAX_RUNS[kind]:
        what = {"sweep": "cells (values × values × seeds)", "compare": "runs (values × seeds)"}.get(kind, "runs")
        raise Refused(f"this asks for {n:,} {what}, and at most {MAX_RUNS[kind]:,} run at once")


def check_bounds(config: RunConfig, csv: bool = False) -> None:
    """Refused unless every setting of ``config`` is within the browser's range (a CSV dataset only with
    ``csv``: an uploaded file)."""
    for name, constraint in SETTINGS.items():
        value = config.n_samples if name == "samples" else getattr(config, name)  # samples None: the default
        if name in NOT_BOUNDED or (name == "noise" and value is None):
            continue
        if name == "dataset" and value == "csv":
            if not csv:
                raise Refused("a CSV run needs its file uploaded on this page")
            continue
        try:
            constraint.check(name, value, ui=True)
        except ConfigError as exc:
            if isinstance(constraint, Choice):  # the value may be any text: name the choices, not it
                offered = ", ".join(map(str, constraint.choices(ui=True)))
                raise Refused(f"{name} must be one of {offered} on this server") from None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                low, high = constraint.range(ui=True)
                raise Refused(f"{name} must be a number from {low:g} to {high:g} on this server") from None
            raise Refused(f"{exc} (the range this server offers)") from None
    try:
        config.validate()
    except ConfigError as exc:
        raise Refused(str(exc)) from None


def check_seeds(seeds) -> int:
    """A Compare's or a sweep's seeds per value, within SEEDS; Refused otherwise."""
    try:
        return SEEDS.check("seeds", seeds, ui=True)
    except ConfigError as exc:
        raise Refused(str(exc)) from None


def phase_seconds(grid: PhaseGrid, prices=None) -> float:
    """The phase sweep's seconds (lab.theory.phase.sweep): per sigma_w, one forward pass through ``max_depth``
    layers and, for each depth d of the grid, a backward pass through d layers; each layer of either is a
    (n_probe, width) @ (width, width) product, about six elementwise passes (the activation, its
    derivative, the rescaling) and Python's overhead, shared between two threads."""
    from lab.theory.phase_grid import sweep_grid

    prices = prices or TYPICAL_PRICES["float64"]
    sigma_ws, depths = sweep_grid(grid.sigma_w_range, grid.cells, grid.max_depth)
    one = (prices.product(grid.n_probe, grid.width, grid.width) + 6 * grid.n_probe * grid.width * prices.element
           + prices.call)
    layers = max(depths) + sum(depths)
    return len(sigma_ws) * layers * one / 2


def _admit_phase(grid: PhaseGrid | None, limits: Limits) -> Ticket:
    if grid is None:
        raise Refused("there is nothing to run")
    for name in ("sigma_b", "cells", "max_depth", "width"):
        try:
            PHASE[name].check(name, getattr(grid, name))
        except ConfigError as exc:
            raise Refused(str(exc)) from None
    low, high = grid.sigma_w_range
    for value in (low, high):
        try:
            PHASE["sigma_w"].check("sigma_w", value)
        except ConfigError as exc:
            raise Refused(str(exc)) from None
    if not low <= high:
        raise Refused(f"the σ_w range must go up, not from {low:g} to {high:g}")
    seconds = phase_seconds(grid)
    # the deepest network's activations for every sigma_w row in flight (two at a time), float64
    peak = int(2 * 3 * grid.max_depth * grid.n_probe * grid.width * 8 + 2 * grid.max_depth * grid.width ** 2 * 8)
    _within(limits, "this diagram", peak, "choose a smaller width or largest depth",
            seconds, "choose fewer cells, a smaller width or largest depth")
    return Ticket("phase", 1, seconds, peak)


def _within(limits: Limits, what: str, peak: int, less_memory: str, seconds: float, less_time: str) -> None:
    """Refused when ``what`` needs more memory or time than one run may have, saying what to reduce."""
    if peak > limits.run_mb * 2**20:
        raise Refused(f"{what} would need about {size(peak)} of memory, and the limit on this server is "
                      f"{size(limits.run_mb * 2**20)}: {less_memory}")
    if seconds > limits.run_seconds:
        raise Refused(f"{what} would take about {duration(seconds)}, and the limit on this server is "
                      f"{duration(limits.run_seconds)}: {less_time}")


def _admit_gradcheck(config: RunConfig, limits: Limits) -> Ticket:
    """The Gradient check page's network: at most GRADCHECK_MAX_PARAMS weights and biases, since central
    differences take two forward passes per parameter (on the page's batch of 8 examples, 4 inputs, 3 classes)."""
    from lab.engine.gradcheck import parameter_count

    n = parameter_count(config)
    forward = _pass_seconds(TYPICAL_PRICES["float64"], config.layer_shapes(4, 3), 8, backward=False)
    seconds = 2 * n * forward
    if n > GRADCHECK_MAX_PARAMS or seconds > limits.run_seconds:
        raise Refused(f"central differences would need {2 * n:,} forward passes, about {duration(seconds)}, where "
                      f"backprop needs one forward and one backward pass; this page checks networks of up to "
                      f"{GRADCHECK_MAX_PARAMS:,} parameters: lower the depth or the width")
    return Ticket("gradcheck", 1, seconds, 0)


def _admit_jacobian(configs, limits: Limits) -> Ticket:
    """The Jacobian spectra of up to two networks at initialization (the Init explorer's two sides, the Train
    page's network): priced by ``cost.jacobian_estimate`` at the pages' probe inputs and layers."""
    from lab.engine.jacobian import probe_count, spectrum_layers

    costs = tuple(jacobian_estimate(c, probe_count(c.width), len(spectrum_layers(c.depth))) for c in configs)
    seconds = sum(c.seconds for c in costs)
    peak = max(c.peak_bytes for c in costs)
    _within(limits, "this spectrum", peak, "lower the width or the depth", seconds, "lower the width or the depth")
    return Ticket("jacobian", len(costs), seconds, peak, costs)


def _admit_export(config: RunConfig, data: DataShape | None, limits: Limits) -> Ticket:
    """A run's PyTorch export (the Train page's ZIP), made in the server's memory: its arrays, the .npz and the ZIP
    at once (``torch_export.EXPORT_COPIES`` times ``export_bytes``), against the limit on one run's memory."""
    from .torch_export import EXPORT_COPIES, export_bytes

    if data is None:
        raise Refused("there is no data to export")
    n_train = data.n_samples - int(round(config.val_fraction * data.n_samples))
    peak = EXPORT_COPIES * export_bytes(config, n_train, data.input_dim, data.classes)
    _within(limits, "this export", peak, "export a run of fewer epochs or samples", 0.0, "")
    return Ticket("export", 1, 0.0, peak)


def sentence(exc: Refused) -> str:
    """What a page shows for a refusal: one sentence."""
    text = str(exc)
    return f"Not started: {text}{'' if text.endswith('.') else '.'}"


__all__ = ["GRADCHECK_MAX_PARAMS", "KINDS", "MAX_RUNS", "DataShape", "PhaseGrid", "Refused", "Ticket", "Work", "admit",
           "check_bounds", "check_count", "check_seeds", "phase_seconds", "sentence"]
