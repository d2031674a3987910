"""The cost estimate against the work and memory of real runs: the products the engine computes and the bytes
it allocates, never this machine's clock (benchmarks/bench_cost.py times the estimate against real runs)."""
import dataclasses
import tracemalloc

import pytest

from lab import RunConfig, train
from lab.engine.layers import Affine
from lab.serving.cost import TYPICAL_PRICES, Prices, describe, duration, estimate, size

# mid-sized runs of different shapes: overhead-bound (deep, narrow, small batches), probe-bound, product-bound
SIZES = [
    RunConfig(depth=50, width=16, samples=1000, epochs=6, batch_size=16, optimizer="sgd"),
    RunConfig(depth=20, width=64, samples=600, epochs=8, batch_size=32, activation="tanh"),
    RunConfig(depth=4, width=256, samples=1500, epochs=3, batch_size=128, dataset="random", input_dim=64),
]


# prices that charge only for the matrix products, one nanosecond per flop: the estimate is then the model's count of
# the run's products, which the test compares with the products the engine really computes (no clock involved)
PER_FLOP = 1e-9
FLOPS_ONLY = Prices(matmul=((1.0, PER_FLOP), (1e15, PER_FLOP * 1e15)), element=0.0, call=0.0, record_call=0.0,
                    record_element=0.0, param=0.0)


def counted_flops(config, monkeypatch) -> float:
    """The flops of every matrix product a real training run of ``config`` computes (forward, backward, record
    passes, validation), counted by wrapping the engine's Affine layer."""
    flops = []
    forward, backward = Affine.forward, Affine.backward

    def counting_forward(self, x):
        flops.append(2.0 * x.shape[0] * self.params["W"].size)
        return forward(self, x)

    def counting_backward(self, dout):
        flops.append(2.0 * dout.shape[0] * self.params["W"].size * (2 if self.need_dx else 1))
        return backward(self, dout)

    monkeypatch.setattr(Affine, "forward", counting_forward)
    monkeypatch.setattr(Affine, "backward", counting_backward)
    train(config)
    return sum(flops)


@pytest.mark.parametrize("config", SIZES, ids=["deep-narrow", "default-like", "wide"])
def test_the_time_model_counts_the_products_the_engine_computes(config, monkeypatch):
    """The model prices every backward as three products per layer (the first layer computes two) and a chunked
    evaluation as one pass: within 15% of the engine's own count, for runs of every shape.  How well this
    machine's prices then turn counts into seconds is benchmarks/bench_cost.py's to measure, not a test's."""
    predicted = estimate(config, prices=FLOPS_ONLY).seconds / PER_FLOP
    counted = counted_flops(config, monkeypatch)
    assert 0.95 <= predicted / counted <= 1.15, (predicted, counted)  # measured: 1.00, 1.00, 1.06


def test_the_time_model_is_linear_in_each_price():
    """Doubling every price doubles the estimate, and a machine twice as fast at products alone is faster."""
    config = SIZES[1]
    typical = TYPICAL_PRICES[config.dtype]
    doubled = Prices(matmul=tuple((f, 2 * s) for f, s in typical.matmul), element=2 * typical.element,
                     call=2 * typical.call, record_call=2 * typical.record_call,
                     record_element=2 * typical.record_element, param=2 * typical.param)
    once, twice = estimate(config, prices=typical).seconds, estimate(config, prices=doubled).seconds
    assert twice == pytest.approx(2 * once, rel=1e-9)
    faster = dataclasses.replace(typical, matmul=tuple((f, s / 2) for f, s in typical.matmul))
    assert estimate(config, prices=faster).seconds < once


@pytest.mark.parametrize("config", [SIZES[1], RunConfig(depth=3, width=512, samples=3000, epochs=1, batch_size=256,
                                                         dataset="random", input_dim=200)])
def test_memory_estimate_is_within_a_factor_of_2(config):
    tracemalloc.start()
    try:
        train(config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    predicted = estimate(config).peak_bytes
    assert 0.5 <= predicted / peak <= 2.0, (predicted, peak)


def test_cost_grows_with_the_work():
    base = RunConfig(epochs=10)
    assert estimate(base.replace(epochs=20)).seconds > 1.8 * estimate(base).seconds
    assert estimate(base.replace(depth=40)).seconds > 3 * estimate(base).seconds
    assert estimate(base.replace(width=512)).peak_bytes > 10 * estimate(base).peak_bytes
    assert estimate(base.replace(epochs=0)).steps == 0


def test_the_largest_train_settings_are_priced_in_days():
    huge = RunConfig(depth=100, width=512, samples=5000, batch_size=8, epochs=5000, dtype="float32")
    cost = estimate(huge, prices=TYPICAL_PRICES["float32"])  # the model's answer, not this machine's load
    # measured here: 60-95 ms per step, 500 steps per epoch, so 2-3 days (the audit saw 10 on a busy machine)
    assert cost.seconds > 86400
    assert describe(cost).startswith(("about 1", "about 2", "about 3", "about 4"))


@pytest.mark.parametrize("seconds, text", [(0.2, "under a second"), (42, "42 s"), (600, "10 min"),
                                           (7200, "2.0 h"), (10 * 86400, "10 days")])
def test_duration_reads_as_a_person_writes_it(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("n_bytes, text", [(512, "512 bytes"), (3 * 2**20, "3.0 MB"), (6.8 * 2**30, "6.8 GB")])
def test_size_reads_as_a_person_writes_it(n_bytes, text):
    assert size(n_bytes) == text
