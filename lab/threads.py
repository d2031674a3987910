"""The BLAS thread policy: one thread for the small matrix products of narrow networks."""
from __future__ import annotations

import contextlib
import sys

from threadpoolctl import ThreadpoolController

# Below this width a matrix product is too small to split across cores: OpenBLAS's threads
# cost more than they save, and when another process shares the cores they spin and a run
# gets 10-15 times slower (measured: 20 s instead of 1.4 s for the Train page's default run).
SINGLE_THREAD_BELOW_WIDTH = 512

_found: tuple[int, ThreadpoolController | None] = (-1, None)  # (len(sys.modules) then, the libraries found)


def _controller() -> ThreadpoolController:
    # Finding the loaded BLAS libraries costs about 1 ms, limiting them about 7 us (measured), and a
    # Trainer advanced one step at a time enters this context per step: look again only after an
    # import, since a BLAS library comes with one (numpy's, scipy's, torch's).
    global _found
    if _found[0] != len(sys.modules):
        _found = (len(sys.modules), ThreadpoolController())
    return _found[1]


def blas_threads(width: int):
    """A context that keeps BLAS on one thread for the small matrices of narrow networks."""
    if width < SINGLE_THREAD_BELOW_WIDTH:
        return _controller().limit(limits=1, user_api="blas")
    return contextlib.nullcontext()
