"""The thread policy: BLAS on one thread for the small matrix products of narrow networks, and their
record passes on the core that leaves free."""
from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

from . import pieces

# Below this width a matrix product is too small to split across cores: OpenBLAS's threads
# cost more than they save, and when another process shares the cores they spin and a run
# gets 10-15 times slower (measured: 20 s instead of 1.4 s for the Train page's default run).
SINGLE_THREAD_BELOW_WIDTH = 512

_found: tuple[int, ThreadpoolController | None] = (-1, None)  # (len(sys.modules) then, the libraries found)


def _controller() -> ThreadpoolController:
    # Finding the loaded BLAS libraries costs about 1 ms, limiting them about 7 us (measured), and a
    # Trainer advanced one step at a time enters this context per step: look again only after an
    # import, since a BLAS library comes with one (numpy's, scipy's, torch's).
    from threadpoolctl import ThreadpoolController  # imported by the first run, not by lab.cost

    global _found
    if _found[0] != len(sys.modules):
        _found = (len(sys.modules), ThreadpoolController())
    return _found[1]


def blas_threads(width: int):
    """A context that keeps BLAS on one thread for the small matrices of narrow networks."""
    if width < SINGLE_THREAD_BELOW_WIDTH:
        return _controller().limit(limits=1, user_api="blas")
    return contextlib.nullcontext()


# The record pass of a narrow network runs beside its training, in a thread of its own, on a copy of the
# weights at the record point, so the numbers are those of a pass in line (lab.training).
BACKGROUND_PROBE_MAX_PARAMS = 1 << 22  # the copy (weights and gradients) is the overlap's price in memory


def probe_in_background(config, n_params: int) -> bool:
    """Whether a run's record passes overlap its training: instrumented, BLAS on one thread (a narrow
    network), a second core to run on, and a model small enough to copy."""
    return (config.instrument and config.width < SINGLE_THREAD_BELOW_WIDTH and pieces.THREADS >= 2
            and n_params <= BACKGROUND_PROBE_MAX_PARAMS)
