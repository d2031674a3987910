"""The processes a sweep starts, found in /proc: for the tests that check they end when they should."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _table() -> dict[int, tuple[int, int, str]]:
    """{pid: (parent pid, start time, state)} of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            out[int(entry)] = (int(fields[1]), int(fields[19]), fields[0])
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of every process below ``root``."""
    table, found, frontier = _table(), [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
        found += [(pid, table[pid][1]) for pid in children]
        frontier += children
    return found


def pool_workers(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of the pool workers ``root`` started: the children of its forkserver."""
    table = _table()
    servers = [pid for pid, (ppid, _, _) in table.items() if ppid == root and "multiprocessing.forkserver" in _cmdline(pid)]
    return [(pid, start) for pid, (ppid, start, state) in table.items() if ppid in servers and state != "Z"]


def alive(processes: list[tuple[int, int]]) -> list[int]:
    """The pids of ``processes`` still running (the same start time, not a zombie)."""
    table = _table()
    return [pid for pid, start in processes if pid in table and table[pid][1] == start and table[pid][2] != "Z"]


def seconds_until_gone(processes: list[tuple[int, int]], since: float, limit: float = 30.0) -> float:
    """Seconds from ``since`` (time.perf_counter) until none of ``processes`` runs, waiting at most ``limit``."""
    while alive(processes) and time.perf_counter() - since < limit:
        time.sleep(0.02)
    return time.perf_counter() - since


def dead(pid: int, timeout: float = 30.0) -> float:
    """time.perf_counter() when process ``pid`` has exited (a zombie or gone): a process killed with SIGKILL
    takes a while to release its memory, threads and pipes."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        table = _table()
        if pid not in table or table[pid][2] in ("Z", "X"):
            return time.perf_counter()
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not exit within {timeout:g} s")


def wait_for_workers(root: int, n: int, timeout: float = 60.0) -> list[tuple[int, int]]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = pool_workers(root)
        if len(found) >= n:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{n} pool workers did not start within {timeout:g} s")


def kill_all(processes: list[tuple[int, int]]) -> None:
    """Kill what is left, so that a failing test leaves no orphans behind."""
    for pid in alive(processes):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
