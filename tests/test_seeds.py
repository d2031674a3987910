"""The random-stream layout of lab.seeds: each setting changes only the numbers it names."""
import numpy as np
import pytest

from lab import seeds
from lab.data.datasets import make_dataset
from lab.engine.config import RunConfig
from lab.engine.model import build_mlp


@pytest.mark.parametrize("init", ["he_normal", "xavier_uniform", "orthogonal"])
def test_biases_do_not_move_the_weights(init):
    config = RunConfig(depth=4, width=16, init=init, seed=3)
    plain = build_mlp(config, 2, 3, seeds.stream(3, "init")).weights()
    biased = build_mlp(config.replace(bias_std=0.1), 2, 3, seeds.stream(3, "init")).weights()
    other = build_mlp(config.replace(bias_std=0.5), 2, 3, seeds.stream(3, "init")).weights()
    for (W0, b0), (W1, b1), (W2, b2) in zip(plain, biased, other):
        np.testing.assert_array_equal(W1, W0)
        np.testing.assert_array_equal(W2, W0)
        assert not b0.any() and b1.any()
        np.testing.assert_allclose(b2, 5 * b1, rtol=1e-12)  # the same draws, scaled by the std


def test_each_layer_has_its_own_bias_stream():
    config = RunConfig(depth=3, width=8, bias_std=1.0, seed=4)
    biases = [b for _, b in build_mlp(config, 8, 8, seeds.stream(4, "init")).weights()]
    assert all(not np.array_equal(biases[0], b) for b in biases[1:])
    # the children of the init stream's seed, whatever was drawn from the init generator first
    drawn = seeds.stream(4, "init")
    drawn.standard_normal(100)
    kids = np.random.SeedSequence(4).spawn(3)[1].spawn(4)
    for generator, kid in zip(seeds.bias_generators(drawn, 4), kids):
        np.testing.assert_array_equal(generator.standard_normal(5), np.random.default_rng(kid).standard_normal(5))


def test_the_layout_is_data_init_shuffle_from_one_seed_sequence():
    children = np.random.SeedSequence(7).spawn(3)
    for generator, child, name in zip(seeds.run_generators(7), children, seeds.STREAMS):
        expected = np.random.default_rng(child).standard_normal(4)
        np.testing.assert_array_equal(generator.standard_normal(4), expected)
        np.testing.assert_array_equal(seeds.stream(7, name).standard_normal(4), expected)
    config = RunConfig(dataset="moons", samples=50, seed=7)
    a, b = make_dataset(config), make_dataset(config, seeds.stream(7, "data"))
    np.testing.assert_array_equal(a.X_train, b.X_train)
