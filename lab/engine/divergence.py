"""When a run has diverged: the rule, its constant, and the sentence that says why.

A run diverges when its loss or gradients stop being finite numbers, or when its
training loss explodes while staying finite.  "Explodes" is measured against a
reference that a healthy run never leaves by orders of magnitude:

* at initialization, the training loss (over the whole training set) is compared with
  the chance-level loss; above ``DIVERGENCE_FACTOR`` times it, the network exploded
  before any update and the run is diverged at epoch 0;
* during training, every mini-batch loss (computed anyway for the gradients) is
  compared with the reference max(loss at initialization, chance-level loss); above
  ``DIVERGENCE_FACTOR`` times it, the run is diverged at that step.

The chance-level loss is that of a network predicting every class with probability
1/C: ln C for cross-entropy, 0.5 (1 - 1/C) for the lab's MSE (half the squared
distance to the one-hot target, ``lab.engine.layers.MSELoss``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lab.formats import number

# Four orders of magnitude (figures from benchmarks/divergence_margins.py): the Home presets
# and the Train and Compare defaults stay within a factor of 2.1 of their reference; a noisy
# first epoch that goes on to learn reaches 364 (blobs, rmsprop lr 0.03, depth 8); starting
# losses up to 4,100 times chance train down (MSE on large outputs).  Of 480 runs at lr 0.03
# to 3, 89 passed 1e4: 16 went on to inf or NaN, and only 2 came back to a network that learns.
DIVERGENCE_FACTOR = 1e4


def chance_loss(loss: str, classes: int) -> float:
    """The loss of predicting every one of ``classes`` classes with probability 1/C.

    cross_entropy: -ln(1/C) = ln C.  mse: 0.5 * ((1 - 1/C)^2 + (C - 1)/C^2) = 0.5 * (1 - 1/C).
    """
    if loss == "mse":
        return 0.5 * (1.0 - 1.0 / classes)
    return math.log(classes)


@dataclass(frozen=True)
class DivergenceCheck:
    """The explosion test of one run.

    chance: its chance-level loss; initial: its training loss at initialization.
    """

    chance: float
    initial: float

    @classmethod
    def for_run(cls, loss: str, classes: int, initial: float) -> DivergenceCheck:
        return cls(chance_loss(loss, classes), initial)

    @property
    def reference(self) -> float:
        return max(self.initial, self.chance)

    @property
    def limit(self) -> float:
        """The training loss above which a run has diverged."""
        return DIVERGENCE_FACTOR * self.reference

    def _reference_text(self) -> str:
        if self.initial >= self.chance:
            return f"its value at initialization ({number(self.initial)})"
        return f"the chance-level loss ({number(self.chance)})"

    def at_initialization(self) -> str:
        """A reason if the network exploded before training, else ""."""
        if self.initial > DIVERGENCE_FACTOR * self.chance:
            return (f"the network exploded at initialization, with a training loss of {number(self.initial)}, "
                    f"more than {DIVERGENCE_FACTOR:,.0f} times the chance-level loss ({number(self.chance)})")
        return ""

    def during_training(self, loss: float, step: int) -> str:
        """A reason if the finite mini-batch ``loss`` of optimizer step ``step`` exploded, else ""."""
        if loss > self.limit:
            return (f"the training loss reached {number(loss)} at step {step}, "
                    f"more than {DIVERGENCE_FACTOR:,.0f} times {self._reference_text()}")
        return ""
