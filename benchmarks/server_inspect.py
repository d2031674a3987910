#!/usr/bin/env python
"""`streamlit run` under a memory inspector: on SIGUSR1 the server writes what holds its memory to a file.

    python benchmarks/server_inspect.py REPORT_DIR [--tracemalloc FRAMES] -- app.py --server.port 8501 ...

Each report (REPORT_DIR/report-N.txt, ending in a line "END") gives the resident memory; glibc's own account
of its heap (``mallinfo2``: in use, free but kept, mapped on their own); the run cache; the sessions Streamlit
keeps (connected, and disconnected ones kept for a reconnect) with the runs in their state; every RunResult
alive that neither the cache nor a session holds, with a chain of what keeps it (gc.get_referrers); the numpy
memory reachable from Python objects, the largest arrays with their chains; and with ``--tracemalloc`` the lines
that allocated what is still alive.  benchmarks/bench_server_memory.py --inspect starts the server this way.

The imports of lab and pages come from the served tree (Streamlit puts the app's folder on the path), so an
older checkout can be inspected with this file.
"""
from __future__ import annotations

import ctypes
import gc
import inspect
import os
import signal
import sys
import threading
import types
from pathlib import Path

MB = 2**20


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def mallinfo() -> dict:
    """glibc's account of its heap, in MB: arena (the arenas' size), hblkhd (blocks mapped on their own),
    uordblks (in use), fordblks (free but kept); {} where there is no mallinfo2."""
    try:
        call = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return {}
    call.restype = _MallInfo2
    info = call()
    return {k: getattr(info, k) / MB for k in ("arena", "hblkhd", "uordblks", "fordblks")}


def _describe(obj) -> str:
    if isinstance(obj, dict):
        return f"dict{[k for k in list(obj)[:6] if isinstance(k, str)]}"
    if hasattr(obj, "__qualname__"):
        return f"{type(obj).__name__} {obj.__qualname__}"
    return type(obj).__name__


def _holds(container, target) -> bool:
    """Whether ``target`` is a referent of ``container``, or of the untracked tuples in it."""
    todo = list(gc.get_referents(container))
    while todo:
        ref = todo.pop()
        if ref is target:
            return True
        if isinstance(ref, tuple) and not gc.is_tracked(ref):
            todo += ref
    return False


def chain(target, depth: int = 10, mine: frozenset = frozenset()) -> str:
    """One chain of objects from ``target`` up to something that keeps it alive (gc.get_referrers)."""
    seen, path, obj = {id(target), *mine}, [], target
    for _ in range(depth):
        refs = [r for r in gc.get_referrers(obj) if id(r) not in seen and not inspect.isframe(r) and r is not path]
        refs = [r for r in refs if not (isinstance(r, list) and len(r) > 10000)]  # gc.get_objects()'s own lists
        if not refs:  # held by a tuple the collector does not track: find the tracked object above it
            refs = [o for o in gc.get_objects() if id(o) not in seen and _holds(o, obj)][:1]
        if not refs:
            break
        obj = refs[0]
        seen.update((id(obj), id(refs)))
        path.append(_describe(obj))
        if isinstance(obj, types.ModuleType):
            break
    return " <- ".join(path)


def numpy_lines(top: int = 8) -> list[str]:
    """The numpy memory reachable from objects the collector tracks, by the array that owns it."""
    import numpy as np

    owners: dict = {}
    for obj in gc.get_objects():
        todo = gc.get_referents(obj)
        while todo:  # arrays, and the arrays in tuples the collector no longer tracks (a tuple of arrays)
            ref = todo.pop()
            if isinstance(ref, tuple) and not gc.is_tracked(ref):
                todo += ref
            elif isinstance(ref, np.ndarray):
                while isinstance(ref.base, np.ndarray):
                    ref = ref.base
                owners[id(ref)] = ref
        del todo
    lines = [f"numpy arrays reachable: {len(owners)} owning {sum(a.nbytes for a in owners.values()) / MB:.0f} MB"]
    ranked = sorted(owners.values(), key=lambda a: -a.nbytes)[:top]
    owners.clear()
    for i in range(len(ranked)):
        if ranked[i].nbytes >= MB:
            lines.append(f"  {ranked[i].nbytes / MB:7.1f} MB {ranked[i].dtype} {ranked[i].shape}: "
                         f"{chain(ranked[i], mine=frozenset({id(ranked)}))}")
    return lines


def _session_infos():
    from streamlit.runtime import Runtime

    mgr = Runtime.instance()._session_mgr
    return [("connected", i) for i in mgr.list_active_sessions()] + [("kept", i) for i in mgr._session_storage.list()]


def sessions_lines() -> list[str]:
    """The sessions Streamlit keeps and the runs (and trainer) in their state."""
    from lab.engine.results import RunResult

    infos = _session_infos()
    lines = [f"sessions: {sum(k == 'connected' for k, _ in infos)} connected, "
             f"{sum(k == 'kept' for k, _ in infos)} kept for a reconnect"]
    for kind, info in infos:
        state, held = info.session.session_state, []
        for key in list(state.filtered_state):
            value = state[key]
            runs = list(value.values()) if isinstance(value, dict) else [value]
            if runs and all(isinstance(r, RunResult) for r in runs):
                held.append(f"{key}={sum(r.nbytes() for r in runs) / MB:.0f} MB")
            elif hasattr(value, "advance") and hasattr(value, "model"):
                held.append(f"{key}={'a closed Trainer' if value.model is None else 'a Trainer'}")
        lines.append(f"  {kind} {info.session.id[:8]}: {', '.join(held)}")
    return lines


def runs_lines() -> list[str]:
    """Every RunResult with weights alive, and those that neither the cache nor a session's state holds."""
    from lab.engine.results import RunResult
    from pages.ui.running import _CACHE

    def arrays(r):
        return {id(W) for W, _ in r.weights}

    cache = _CACHE.get("cache")
    lines = [f"run cache: {0 if cache is None else len(cache)} runs, "
             f"{0 if cache is None else cache.nbytes() / MB:.0f} MB"]
    held = set().union(*(arrays(r) for r in cache._runs.values())) if cache is not None else set()
    for _, info in _session_infos():
        state = info.session.session_state
        for key in list(state.filtered_state):
            value = state[key]
            for r in (value.values() if isinstance(value, dict) else [value]):
                if isinstance(r, RunResult):
                    held |= arrays(r)
    alive = [o for o in gc.get_objects() if isinstance(o, RunResult) and o.weights]
    loose = [r for r in alive if not arrays(r) & held]
    lines.append(f"RunResults with weights alive: {len(alive)}; held neither by the cache nor by a session: {len(loose)}")
    for r in loose[:4]:
        lines.append(f"  {r.nbytes() / MB:.0f} MB, seed {r.config.seed}: {chain(r, mine=frozenset({id(alive), id(loose)}))}")
    return lines


def write_report(path: Path) -> None:
    import tracemalloc

    gc.collect()
    lines = [f"VmRSS {resident_mb(os.getpid()):.0f} MB; glibc: "
             + ", ".join(f"{k} {v:.0f} MB" for k, v in mallinfo().items())]
    for part in (runs_lines, sessions_lines, numpy_lines):
        try:
            lines += part()
        except Exception as exc:  # noqa: BLE001 - a report on another version of the app says what it could not read
            lines.append(f"{part.__name__}: {exc!r}")
    if tracemalloc.is_tracing():
        snap = tracemalloc.take_snapshot()
        lines.append(f"tracemalloc: {sum(s.size for s in snap.statistics('filename')) / MB:.0f} MB alive; "
                     "the lines that allocated most of it:")
        for stat in snap.statistics("traceback")[:10]:
            frames = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback[:6])
            lines.append(f"  {stat.size / MB:7.1f} MB in {stat.count} blocks: {frames}")
    path.write_text("\n".join(lines) + "\nEND\n")


def main() -> None:
    folder, rest = Path(sys.argv[1]), sys.argv[2:]
    frames = 0
    if rest and rest[0] == "--tracemalloc":
        frames, rest = int(rest[1]), rest[2:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    if frames:
        import tracemalloc

        tracemalloc.start(frames)
    asked = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: asked.set())  # the handler only asks: the report is made in a thread

    def reporter() -> None:
        for n in range(10**6):
            asked.wait()
            asked.clear()
            write_report(folder / f"report-{n}.txt")

    threading.Thread(target=reporter, daemon=True, name="memory-report").start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", *rest]
    cli.main()


if __name__ == "__main__":
    main()
