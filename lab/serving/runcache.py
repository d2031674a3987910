"""Bounded homes for finished runs: a process-wide cache and a session's history, each with a
budget in bytes (``RunResult.nbytes``), so that no number of runs can exhaust the server.

The cache keeps whole runs, least recently used first out.  A session's history keeps the
whole arrays of its newest few runs and only the tables of older ones (``RunResult.slim``);
past its budget, the oldest runs leave it.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

from lab.engine.results import RunResult


def _fresh(result: RunResult) -> RunResult:
    """The same arrays under a meta dict of its own, so that one session's notes stay its own."""
    return dataclasses.replace(result, meta=dict(result.meta))


class RunCache:
    """Finished runs by key, at most ``budget`` bytes in all; thread-safe (sessions share it)."""

    def __init__(self, budget: int):
        self.budget = budget
        self._runs: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._lock = threading.Lock()

    def get(self, key) -> RunResult | None:
        with self._lock:
            result = self._runs.get(key)
            if result is None:
                return None
            self._runs.move_to_end(key)
            return _fresh(result)

    def put(self, key, result: RunResult) -> None:
        """Keep ``result`` unless it alone takes more than a quarter of the budget."""
        size = result.nbytes()
        if size > self.budget // 4:
            return
        with self._lock:
            if key in self._runs:
                self._runs.move_to_end(key)
                return
            self._runs[key] = _fresh(result)
            self._sizes[key] = size
            while sum(self._sizes.values()) > self.budget and len(self._runs) > 1:
                old, _ = self._runs.popitem(last=False)
                del self._sizes[old]

    def nbytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def __len__(self) -> int:
        return len(self._runs)

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._sizes.clear()


def trim_history(runs: dict[str, RunResult], keep_full: int, budget: int) -> tuple[dict[str, RunResult], list[str]]:
    """``runs`` (oldest first) with all but the newest ``keep_full`` slimmed, and the oldest
    dropped while the rest take more than ``budget`` bytes (the newest always stays).
    Returns the new history and the names that were dropped."""
    names = list(runs)
    kept = {}
    for i, (n, r) in enumerate(runs.items()):
        kept[n] = r if i >= len(names) - keep_full or r.meta.get("slim") else r.slim()
    sizes = {n: r.nbytes() for n, r in kept.items()}
    dropped = []
    for n in names[:-1]:
        if sum(sizes.values()) <= budget:
            break
        dropped.append(n)
        del kept[n], sizes[n]
    return kept, dropped

