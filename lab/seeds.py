"""The random streams of a run, all drawn from its one seed.

    SeedSequence(seed).spawn(3) -> data, init, shuffle

- data: the dataset, generated and then split into training and validation parts;
- init: the weights W_1, ..., W_L, drawn one after another in layer order;
- shuffle: the order of the training examples in every epoch.

The biases b_1, ..., b_L (drawn only when ``bias_std`` > 0) each have their own stream, the
children of the init stream's seed: ``init.spawn(L)``.  So turning biases on, or changing their
std, leaves every weight as it was, and a setting changes only the numbers it names.  Dropout's
masks (drawn only when ``dropout`` > 0) come from one more child of the init stream's seed, with
spawn key ``DROPOUT_KEY``, far beyond any layer's: turning dropout on changes no weight.
"""
from __future__ import annotations

import numpy as np

STREAMS = ("data", "init", "shuffle")
DROPOUT_KEY = 2**31  # the dropout stream's spawn key among the init stream's children (biases use 0..L-1)


def run_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """The (data, init, shuffle) generators of a run with this seed."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(STREAMS)))


def stream(seed: int, name: str) -> np.random.Generator:
    """One of a run's generators by name ("data", "init" or "shuffle"), as ``run_generators`` gives it."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(len(STREAMS))[STREAMS.index(name)])


def _child(init: np.random.Generator, key: int) -> np.random.Generator:
    seq = init.bit_generator.seed_seq
    return np.random.default_rng(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, key), pool_size=seq.pool_size))


def dropout_generator(init: np.random.Generator) -> np.random.Generator:
    """The generator of the dropout masks: a child of ``init``'s seed (see the module's docstring)."""
    return _child(init, DROPOUT_KEY)


def bias_generators(init: np.random.Generator, n_layers: int) -> list[np.random.Generator]:
    """One generator per layer for the biases: the children of ``init``'s seed.

    They depend on the seed ``init`` was made from, not on what has been drawn from it (the
    children are named by their spawn keys, as ``SeedSequence.spawn`` names them the first time).
    """
    return [_child(init, l) for l in range(n_layers)]
