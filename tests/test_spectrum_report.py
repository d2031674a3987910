"""The Jacobian spectrum's charts and words (issue 26): computed from the numbers, honest about the numerical
floor and about where the theory draws no line; and the gate prices it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lab.engine.config import RunConfig
from lab.report import spectrum as report
from lab.serving import gate
from lab.serving.limits import Limits
from lab.theory.spectrum import measure

BASE = RunConfig(dataset="random", input_dim=64, classes=4, samples=200, width=64, depth=40, bias_std=0.0)


@pytest.fixture(scope="module")
def pair():
    return {"tanh, orthogonal": measure(BASE.replace(activation="tanh", init="orthogonal", gain=1.0, bias_std=0.01),
                                        inputs="fixed-point"),
            "relu, He": measure(BASE.replace(activation="relu", init="he_normal"), inputs="fixed-point")}


def test_the_caption_says_the_spread_in_orders_of_magnitude_from_the_percentiles(pair):
    relu = pair["relu, He"]
    row = relu.spectrum.summary().iloc[-1]
    floor = 1e-13 * row.s_max  # float64 resolves no singular value below this next to the largest
    words = report.caption("relu, He", relu)
    if row.s_p5 >= floor:
        decades = math.log10(row.s_p95 / row.s_p5)
        assert f"span {decades:.0f} orders of magnitude" in words
    else:  # the 5th percentile is rounding noise: the span is a lower bound, up to the floor
        decades = math.log10(row.s_p95 / floor)
        assert f"span more than {decades:.0f} orders of magnitude (s from numerically zero" in words
    assert decades > 3 and row.decades_90 == pytest.approx(decades)
    assert "at layer 40" in words and "Dashed: free probability for i.i.d. weights" in words
    tanh = report.caption("tanh, orthogonal", pair["tanh, orthogonal"])
    ratio = pair["tanh, orthogonal"].spectrum.summary().iloc[-1]
    assert ratio.s_p95 / ratio.s_p5 < 10 and "within a factor of" in tanh and "isometry" in tanh


def test_values_below_the_floor_are_counted_as_numerically_zero_not_as_values():
    deep = measure(BASE.replace(activation="relu", init="he_normal", depth=100, width=64), inputs="fixed-point")
    share = deep.spectrum.summary().iloc[-1].share_below_floor
    assert share > 0.1
    words = report.caption("deep relu", deep)
    assert f"{share:.0%} of the singular values are below" in words
    row = deep.spectrum.summary().iloc[-1]
    assert row.s_p5 < 1e-13 * row.s_max and "span more than" in words and "numerically zero to" in words
    fig = report.density_figure({"deep relu": deep})
    lowest = fig.layout.xaxis.range[0]
    floor = np.log10(deep.spectrum.floor.min())
    assert lowest >= floor - report.BIN_DECADES - 1e-9  # nothing drawn below the floor


def test_the_charts_are_on_log_axes_with_the_theory_dashed_and_none_where_it_does_not_apply(pair):
    cured = measure(BASE.replace(activation="relu", init="he_normal", norm="layer", depth=12))
    spectra = {**pair, "layer norm": cured}
    fig = report.moments_figure(spectra, {n: c for n, c in zip(spectra, ("#111", "#222", "#333"))})
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log" and fig.layout.xaxis.type == "log"
    dashed = [t.name for t in fig.data if t.line.dash == "dash"]
    assert "tanh, orthogonal: theory" in dashed and "relu, He: theory" in dashed
    assert not any(name.startswith("layer norm") for name in dashed)
    assert "No dashed line: the theory does not apply" in report.caption("layer norm", cured)
    density = report.density_figure(spectra)
    assert "log10 s" in density.layout.xaxis.title.text and len(density.data) >= 3


def test_the_gate_prices_a_spectrum_and_refuses_one_beyond_the_limits():
    small = gate.admit(gate.Work("jacobian", (BASE, BASE.replace(width=32))), Limits(run_seconds=300, run_mb=1500))
    assert small.kind == "jacobian" and small.runs == 2 and 0 < small.seconds < 5
    big = RunConfig(depth=100, width=512)
    ticket = gate.admit(gate.Work("jacobian", (big,)), Limits(run_seconds=300, run_mb=1500))
    assert ticket.seconds > 20 * small.seconds  # width^3 x depth: about 100 times the small pair
    with pytest.raises(gate.Refused, match="spectrum would take"):
        gate.admit(gate.Work("jacobian", (big,)), Limits(run_seconds=ticket.seconds / 2, run_mb=1500))
    with pytest.raises(gate.Refused, match="at most 2"):
        gate.admit(gate.Work("jacobian", (BASE,) * 3), Limits())
    with pytest.raises(gate.Refused):
        gate.admit(gate.Work("jacobian", (BASE.replace(width=100_000),)), Limits())


def test_a_trained_network_gets_no_dashed_line():
    from lab import train

    config = BASE.replace(activation="tanh", init="lecun_normal", depth=4, width=16, epochs=3)
    result = train(config)
    trained = measure(config, model=result.eval_model(), data=result.data)
    assert trained.theory is None and trained.fit.reason == "trained"
    assert "these have been trained" in report.caption("trained", trained)
    assert measure(config, data=result.data).theory is not None  # the same network at initialization has one


def test_a_network_of_zero_weights_has_a_zero_jacobian_said_in_words_and_no_line_at_minus_infinity():
    zero = measure(BASE.replace(init="zeros", depth=8))
    row = zero.spectrum.summary().iloc[-1]
    assert row.s_max == 0 and row.share_below_floor == 1.0  # every direction numerically zero
    words = report.caption("zeros", zero)
    assert "the Jacobian is zero" in words and "does not apply" in words
    assert len(report.density_figure({"zeros": zero}).data) == 0  # nothing on a log axis, and no error
    he = measure(BASE.replace(activation="relu", init="he_normal", depth=8))
    both = report.density_figure({"zeros": zero, "he": he})
    assert both.data and all(np.isfinite(both.layout.xaxis.range))


def test_when_even_the_95th_percentile_is_numerically_zero_no_span_is_given():
    """A sigmoid with weights of std 100 keeps one direction or two: 99% of the values sit below float64's floor,
    and a span from one noise value to another (it read 'more than -14 orders of magnitude') means nothing."""
    from lab.engine.jacobian import Spectrum
    from lab.theory.meanfield import Fit
    from lab.theory.spectrum import Measured, SpectrumFit

    values = np.full((1, 1, 100), 1e-40)
    values[0, 0, 0] = 1e3  # one direction crosses
    measured = Measured(Spectrum(np.array([10]), values, "data"), None, SpectrumFit(Fit.DOES_NOT_APPLY, "cures"), None)
    row = measured.spectrum.summary().iloc[0]
    assert row.share_below_floor == 0.99 and np.isnan(row.decades_90)
    words = report.caption("one direction", measured)
    assert "at least 95% of directions are numerically zero" in words and "orders of magnitude" not in words
