"""The one gate: bounds, count and price for every kind of work a visitor can ask of the server."""
import pytest

from lab import RunConfig
from lab.serving.cost import TYPICAL_PRICES, estimate
from lab.serving.gate import MAX_RUNS, DataShape, PhaseGrid, Refused, Work, admit, check_count, sentence
from lab.serving.limits import Limits

SMALL = RunConfig(samples=200, epochs=5, depth=3, width=8)
HUGE = RunConfig(depth=100, width=512, samples=5000, batch_size=8, epochs=5000, dtype="float32")
DEFAULT_LIMITS = Limits.from_env({})


def refusal(work: Work, limits: Limits = DEFAULT_LIMITS) -> str:
    with pytest.raises(Refused) as caught:
        admit(work, limits)
    return str(caught.value)


def test_a_small_run_is_admitted_with_its_price():
    ticket = admit(Work("train", (SMALL,)), DEFAULT_LIMITS)
    assert ticket.runs == 1 and ticket.seconds == pytest.approx(estimate(SMALL, prices=None).seconds, rel=1.0)
    assert 0 < ticket.peak_bytes < 50 * 2**20


@pytest.mark.parametrize("changes, words", [
    (dict(depth=500), "depth must be between 1 and 100"),  # finding 3: an import of depth 500
    (dict(samples=200_000, input_dim=512, dataset="blobs"), "samples must be between 100 and 5,000"),  # finding 3
    (dict(width=1024), "width must be between 2 and 512"),  # finding 2: the Sweep page's width box
    (dict(epochs=100_000), "epochs must be between 0 and 5,000"),
    (dict(lr=1e5), "lr must be"),
    (dict(dataset="csv", data_path="/etc/passwd", label="x"), "needs its file uploaded"),
])
def test_settings_beyond_the_browser_range_are_refused_whatever_the_page(changes, words):
    for kind in ("train", "explore", "compare", "sweep"):
        why = refusal(Work(kind, (SMALL.replace(**changes),)))
        assert words in why, why


def test_a_csv_run_is_priced_with_the_uploaded_data():
    config = SMALL.replace(dataset="csv", data_path="upload.csv", label="y")
    small = admit(Work("train", (config,), DataShape(200, 4, 2)), DEFAULT_LIMITS)
    assert small.seconds < 5
    why = refusal(Work("train", (config.replace(epochs=5000, depth=100, width=512, batch_size=8),),
                       DataShape(5000, 784, 10)))
    assert why.startswith("this run would need about") and "the limit on this server is 1.5 GB" in why


def test_the_largest_run_is_refused_with_advice_and_the_sentence_is_one_line():
    why = refusal(Work("train", (HUGE,)))
    assert "the limit on this server is 5 min" in why and "epochs (instead of 5,000)" in why
    assert sentence(Refused(why)).startswith("Not started: this run would take") and "\n" not in sentence(Refused(why))


def test_a_comparison_is_limited_by_its_total():
    one = estimate(SMALL).seconds
    limits = Limits(compare_seconds=3 * one)  # room for one run (and noise in the estimate), not twenty
    assert admit(Work("compare", (SMALL,)), limits).runs == 1
    why = refusal(Work("compare", tuple(SMALL.replace(seed=s) for s in range(20))), limits)
    assert why.startswith("the 20 runs of this comparison would take") and "compare fewer values or seeds" in why


def test_a_comparison_with_one_impossible_run_says_so():
    why = refusal(Work("compare", (SMALL, HUGE)))
    assert why.startswith("one of its 2 runs cannot run: this run would take")


def test_a_sweep_is_priced_as_the_sum_of_its_cells():
    """Finding 2: a sweep of settings Train refuses started anyway, with no cost check."""
    cell = RunConfig(dataset="digits", samples=1797, depth=20, width=64, epochs=40, activation="tanh")
    one = estimate(cell, prices=TYPICAL_PRICES["float64"]).seconds
    assert one < DEFAULT_LIMITS.run_seconds / 10  # each cell alone would pass
    n = int(2 * DEFAULT_LIMITS.sweep_seconds / one)  # twice the limit: room for this machine's own prices
    why = refusal(Work("sweep", tuple(cell.replace(seed=s) for s in range(n))))
    assert f"the {n:,} runs of this sweep would take about" in why and "sweep fewer values or seeds" in why
    # a sweep whose every cell is a run Train refuses
    why = refusal(Work("sweep", (HUGE, HUGE.replace(seed=1))))
    assert why.startswith("one of its 2 runs cannot run: this run would take")


def test_the_count_is_checked_before_anything_is_listed():
    """Finding 2: START:STOP:10000 on both axes asks for 10^8 cells."""
    with pytest.raises(Refused, match="100,000,000 cells"):
        check_count("sweep", 10_000 * 10_000)
    with pytest.raises(Refused, match="at most 24"):
        check_count("compare", 25)
    check_count("sweep", MAX_RUNS["sweep"])
    with pytest.raises(Refused, match="nothing to run"):
        check_count("train", 0)


def test_the_phase_diagram_is_bounded_and_priced():
    ok = PhaseGrid("tanh", 0.0, (0.5, 3.0), 20, 100, 128)
    assert admit(Work("phase", phase=ok), DEFAULT_LIMITS).seconds < 30
    for bad, words in ((dict(cells=300), "cells must be between 5 and 30"), (dict(width=4096), "width must be one"),
                       (dict(max_depth=10_000), "max_depth must be between 5 and 100"),
                       (dict(sigma_w_range=(0.5, 50.0)), "sigma_w must be"),
                       (dict(sigma_w_range=(3.0, 1.0)), "must go up")):
        why = refusal(Work("phase", phase=PhaseGrid(**{**ok.__dict__, **bad})))
        assert words in why, why
    why = refusal(Work("phase", phase=ok), Limits(run_seconds=0.01))
    assert "this diagram would take about" in why


def test_a_refusal_never_quotes_the_visitor_text():
    planted = "[click](https://evil.example/x.png) <img src=x onerror=alert(1)>"
    for name in ("activation", "init", "optimizer", "dataset", "loss", "norm", "dtype", "lr", "depth", "gain", "noise"):
        why = refusal(Work("train", (SMALL.replace(**{name: planted}),)))
        assert planted not in why and "evil" not in why and "<img" not in why, (name, why)


def test_the_gradient_check_is_held_to_its_parameter_count():
    ok = RunConfig(depth=2, width=8, activation="tanh", dtype="float64")
    assert admit(Work("gradcheck", (ok,)), DEFAULT_LIMITS).seconds < 1
    why = refusal(Work("gradcheck", (ok.replace(depth=40, width=64),)))
    assert "forward passes" in why and "up to 5,000 parameters" in why
    assert "depth must be" in refusal(Work("gradcheck", (ok.replace(depth=300),)))


def test_a_pytorch_export_is_priced_in_memory_against_the_limit_on_one_run():
    """The Train page's PyTorch ZIP is made in the server's memory: its arrays, the .npz and the ZIP at once."""
    from lab.serving.torch_export import EXPORT_COPIES, torch_export_zip

    small = RunConfig(dataset="moons", samples=200, epochs=5, depth=2, width=8)
    shape = DataShape(200, 2, 2)
    ticket = admit(Work("export", (small,), shape), DEFAULT_LIMITS)
    zipped = len(torch_export_zip(small))
    assert ticket.peak_bytes >= zipped  # at least the download itself, and in proportion to it
    assert ticket.peak_bytes <= EXPORT_COPIES * 4 * zipped + 2**20
    # 4,000 training examples x 5,000 epochs: 80 MB of orders, three times over; the run itself needs about 8 MB
    many_epochs = RunConfig(dataset="moons", samples=5000, epochs=5000, depth=2, width=8)
    admit(Work("train", (many_epochs,)), Limits(run_mb=150, run_seconds=10_000))
    words = refusal(Work("export", (many_epochs,), DataShape(5000, 2, 2)), Limits(run_mb=150, run_seconds=10_000))
    assert words.startswith("this export would need about") and "fewer epochs or samples" in words
    assert "there is no data" in refusal(Work("export", (small,)))
