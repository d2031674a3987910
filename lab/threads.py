"""The BLAS thread policy: one thread for the small matrix products of narrow networks."""
from __future__ import annotations

import contextlib

from threadpoolctl import threadpool_limits

# Below this width a matrix product is too small to split across cores: OpenBLAS's threads
# cost more than they save, and when another process shares the cores they spin and a run
# gets 10-15 times slower (measured: 20 s instead of 1.4 s for the Train page's default run).
SINGLE_THREAD_BELOW_WIDTH = 512


def blas_threads(width: int):
    """A context that keeps BLAS on one thread for the small matrices of narrow networks."""
    if width < SINGLE_THREAD_BELOW_WIDTH:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()
