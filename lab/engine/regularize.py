"""Two training options that act on the gradient before the optimizer's step, as PyTorch does them.

- ``clip_by_global_norm``: ``torch.nn.utils.clip_grad_norm_``. All gradients are scaled by
  max_norm / (total_norm + 1e-6) when that factor is below 1, where total_norm is the L2 norm of
  every gradient entry together.
- ``add_weight_decay``: the ``weight_decay`` of ``torch.optim.SGD`` and ``Adam`` (L2, added to the
  gradient, not AdamW's decoupled form), on the weight matrices only: biases, gamma and beta are
  left alone.

The training loop clips first and then adds the decay, the order in which torch's
``clip_grad_norm_`` followed by ``optimizer.step()`` applies them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import pieces

CLIP_EPS = 1e-6  # torch's: keeps the factor finite for an all-zero gradient


def global_norm(grads: np.ndarray) -> float:
    """The L2 norm of every entry of the flat gradient buffer, summed in float64 a piece at a time
    (a float32 sum of squares overflows above about 1.8e19; a float64 copy would be as large as the model)."""
    return pieces.norm(grads)


def clip_by_global_norm(grads: np.ndarray, max_norm: float) -> tuple[float, bool]:
    """Scale ``grads`` (the flat buffer) in place so that their global norm is at most about
    ``max_norm``.  Returns (the norm before clipping, whether it was scaled)."""
    norm = global_norm(grads)
    factor = max_norm / (norm + CLIP_EPS)
    if factor < 1.0:
        grads *= grads.dtype.type(factor)
        return norm, True
    return norm, False


def add_weight_decay(grads: np.ndarray, params: np.ndarray, weight_slices: list[slice], decay: float) -> None:
    """grads[W] += decay * W for every weight matrix's slice of the flat buffers, in place."""
    decay = grads.dtype.type(decay)

    def piece(where, s):
        np.multiply(params[where], decay, out=s)
        grads[where] += s

    for w in weight_slices:
        pieces.for_pieces(piece, w.start, w.stop, grads.dtype)


@dataclass
class ClipRecord:
    """How often clipping fired over a run, and the global gradient norm before it."""

    steps: int = 0
    clipped: int = 0
    norm_sum: float = 0.0
    norm_max: float = 0.0

    def add(self, norm: float, clipped: bool) -> None:
        self.steps += 1
        self.clipped += int(clipped)
        self.norm_sum += norm
        self.norm_max = max(self.norm_max, norm)

    def summary(self) -> dict:
        """clip_steps (how many steps were clipped), clip_fraction, grad_norm_mean and grad_norm_max
        (the global norm before clipping, over every step)."""
        mean = self.norm_sum / self.steps if self.steps else math.nan
        return {"clip_steps": self.clipped, "clip_fraction": self.clipped / self.steps if self.steps else math.nan,
                "grad_norm_mean": mean, "grad_norm_max": self.norm_max if self.steps else math.nan}
