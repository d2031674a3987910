"""Work that leaves the server's process: a fair queue of tasks, run in worker processes or on a Dask cluster.

A page submits a ``Task`` for its session and gets a ``Handle``; the Streamlit process then only draws.

- **Where it runs.**
  - The embedded default is a worker process per task, forked from a forkserver that has the engine imported
    (``lab.experiments.workers``): it needs no setup, and a task that fails badly takes only its own process
    down.  ``slots`` of them run at once.
  - With a Dask client (``BACKPROP_LAB_SCHEDULER=tcp://HOST:PORT``, through ``connect`` as sweeps do) the same
    tasks go to that cluster.  Only the operator chooses it: a visitor's text is never an address.
- **Fair turns.**  Each session has at most one task running; its other tasks wait in its own line, and the
  sessions take turns, first come first served by the time their next task arrived, so that one session's
  24-run comparison does not push everyone else back 24 places.  At most ``max_queued`` tasks wait: beyond
  that ``submit`` raises ``Full``, whose message the page shows.
- **Progress and stop.**  A task function is called as ``fn(*args, progress=..., should_stop=...)``: it reports
  what the page should draw with ``progress(payload)`` and asks ``should_stop()`` as often as it can.  ``cancel``
  asks the task to stop; a local task that has not returned within ``STOP_GRACE_S`` has its process killed (gone
  within ``STOP_WAIT_S``), a Dask task is cancelled too.  What a task returns on being stopped (a run's records
  so far) is kept in ``Handle.result``.
- **Failure.**  A local worker runs under an address-space limit (``resource.setrlimit``) of the task's
  ``memory_bytes``: beyond it the task fails with "exceeded its memory limit".  A worker that dies (a signal,
  an exit) fails its task with the reason; the next task gets a fresh process.  Other sessions' tasks go on.

The numbers are the same wherever a task runs: the task function is the engine's, seeded by its config.
"""
from __future__ import annotations

import importlib
import itertools
import os
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field

STOP_WAIT_S = 2.0  # a cancelled task's process is gone within this
STOP_GRACE_S = 1.0  # ... after this long to stop by itself, returning what it has (a run keeps its records)
POLL_S = 0.05  # how often the dispatcher looks at its workers
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ENDED = (DONE, FAILED, CANCELLED)


class Full(RuntimeError):
    """The server's queue is full: the message says so, for the page."""


@dataclass(frozen=True)
class Task:
    """Work for the executor: ``fn`` is "module:function" of the lab's own code (the pages name it; it is never
    a visitor's text), called as fn(*args, progress=..., should_stop=...)."""

    fn: str
    args: tuple = ()
    seconds: float = 1.0  # the cost model's estimate, for the waits the queue announces
    memory_bytes: int | None = None  # the worker's address-space limit (None: the machine's)
    label: str = ""


def resolve(name: str):
    """The function "module:function" names, which must live in the lab's own package."""
    module, _, attr = name.partition(":")
    if not (module == "lab" or module.startswith("lab.")) or not attr:
        raise ValueError(f"a task runs the lab's own functions, not {name!r}")
    return getattr(importlib.import_module(module), attr)


@dataclass(eq=False)
class Handle:
    """One submitted task: its state, its latest progress, and its result or why it failed."""

    session: str
    task: Task
    number: int  # the order of arrival, across sessions
    state: str = QUEUED
    progress: object = None  # the last payload the task reported
    reports: int = 0
    result: object = None
    error: str = ""
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None
    pid: int | None = None  # the worker process of a local task, while it runs
    _service: object = field(default=None, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in ENDED

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends (True) or ``timeout`` passes (False)."""
        return self._done.wait(timeout)

    def cancel(self) -> None:
        """Stop the task: taken out of the queue, or ended where it runs."""
        self._service.cancel(self)

    def place(self) -> tuple[int, float]:
        """(tasks that start before this one, estimated seconds until it starts); (0, 0) once it runs."""
        return self._service.place(self)


class _LocalRun:
    """A task in a worker process of its own, with a pipe back for its progress and its result."""

    def __init__(self, handle: Handle, context):
        self.handle = handle
        self.inbox = context.Queue()
        self.stop_flag = context.Event()
        self.process = context.Process(target=_work, args=(handle.task, self.inbox, self.stop_flag, _parent()),
                                       daemon=True, name=f"lab-task-{handle.number}")
        self.process.start()
        handle.pid = self.process.pid

    def poll(self) -> tuple[str, object] | None:
        """The task's next message, or its end when its process died without one."""
        try:
            return self.inbox.get_nowait()
        except queue.Empty:
            pass
        if self.process.is_alive():
            return None
        try:  # it may have put its last message just before it ended
            return self.inbox.get(timeout=0.2)
        except queue.Empty:
            return FAILED, _death(self.process.exitcode)

    def stop(self):
        """Ask the task to stop, kill it if it has not within STOP_GRACE_S; its result if it returned one."""
        self.stop_flag.set()
        last, deadline = None, time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            message = self.poll()
            if message is not None and message[0] != "progress":
                last = message
                break
            time.sleep(0.01)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STOP_WAIT_S)
        self.close()
        return last[1] if last and last[0] == DONE else None

    def close(self) -> None:
        self.inbox.close()
        self.inbox.cancel_join_thread()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"its worker process was ended by {name}"
    return f"its worker process ended without a result (exit status {exitcode})"


def _parent() -> tuple[int, int | None]:
    from lab.experiments.workers import this_process

    return this_process()


def _work(task: Task, outbox, stop_flag, parent) -> None:
    """The worker process: end with the server, hold to the memory limit, run the task, send what it says."""
    from lab.experiments.workers import watch

    watch(*parent)
    if task.memory_bytes:  # on top of what the process has mapped already (the engine, BLAS's buffers)
        import resource

        limit = _mapped_bytes() + task.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        fn = resolve(task.fn)
        result = fn(*task.args, progress=lambda payload: outbox.put(("progress", payload)), should_stop=stop_flag.is_set)
        outbox.put((DONE, result))
    except MemoryError:
        outbox.put((FAILED, f"it exceeded its memory limit ({_mb(task.memory_bytes)})"))
    except Exception as exc:  # noqa: BLE001 - any failure of the task is the task's, reported on its page
        outbox.put((FAILED, f"{type(exc).__name__}: {exc}"))
    finally:
        outbox.close()
        outbox.join_thread()


def _mapped_bytes() -> int:
    """This process's address space now (/proc/self/statm's first field, in pages)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _mb(n: int | None) -> str:
    from lab.formats import size

    return "the machine's" if not n else size(n)


class _DaskRun:
    """A task on a Dask cluster: progress through a distributed Queue, stop through a distributed Variable."""

    def __init__(self, handle: Handle, client):
        from distributed import Queue, Variable

        name = f"lab-task-{os.getpid()}-{handle.number}-{time.monotonic_ns()}"
        self.handle, self.client = handle, client
        self.updates, self.stop_flag = Queue(name + "-progress", client=client), Variable(name + "-stop", client=client)
        self.stop_flag.set(False)
        self.future = client.submit(_on_dask, handle.task, name, pure=False, key=name)

    def poll(self) -> tuple[str, object] | None:
        if self.updates.qsize():  # a get that waits for nothing logs a TimeoutError on the scheduler
            return "progress", self.updates.get()
        status = self.future.status
        if status == "finished":
            return DONE, self.future.result()
        if status in ("error", "lost", "cancelled"):
            error = self.future.exception() if status == "error" else None
            return FAILED, f"{type(error).__name__}: {error}" if error else f"the cluster reported it {status}"
        return None

    def stop(self):
        self.stop_flag.set(True)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.future.status == "pending" and time.monotonic() < deadline:
            time.sleep(0.02)
        result = self.future.result() if self.future.status == "finished" else None
        self.future.cancel()
        return result

    def close(self) -> None:
        pass


def _on_dask(task: Task, name: str):
    """On a Dask worker: run the task, its progress into the Queue ``name``, its stop from the Variable."""
    from distributed import Queue, Variable

    updates, stop_flag = Queue(name + "-progress"), Variable(name + "-stop")
    return resolve(task.fn)(*task.args, progress=updates.put, should_stop=lambda: bool(stop_flag.get()))


class Executor:
    """The server's one queue of tasks and the workers that run them (see the module's docstring)."""

    def __init__(self, slots: int | None = None, client=None, max_queued: int = 200):
        import multiprocessing

        from lab.experiments.workers import FORKSERVER_PRELOAD

        self.slots = max(1, slots or os.cpu_count() or 1)
        self.client, self.max_queued = client, max_queued
        self._context = None
        if client is None:
            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload([*FORKSERVER_PRELOAD, "lab.engine.training"])
        self._lines: dict[str, deque] = {}  # session -> its queued handles, oldest first
        self._running: dict[Handle, object] = {}
        self._numbers = itertools.count()
        self._turns: dict[str, int] = {}  # session -> when it last started a task (a count, not a time)
        self._turn_clock = itertools.count()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="lab-executor", daemon=True)
        self._thread.start()

    # -- the pages' side ---------------------------------------------------------------------------------
    def submit(self, session: str, task: Task) -> Handle:
        """Queue ``task`` for ``session``; raises Full when ``max_queued`` tasks already wait."""
        with self._lock:
            waiting = sum(len(line) for line in self._lines.values())
            if waiting >= self.max_queued:
                raise Full(f"the server is saturated: {waiting:,} runs are waiting; try again in a minute")
            handle = Handle(session, task, next(self._numbers), _service=self)
            self._lines.setdefault(session, deque()).append(handle)
        return handle

    def cancel(self, handle: Handle) -> None:
        with self._lock:
            line = self._lines.get(handle.session)
            if line is not None and handle in line:
                line.remove(handle)
                self._end(handle, CANCELLED)
                return
            if handle not in self._running:
                return  # ended already
            run = self._running.pop(handle)
            if run is None:  # its worker is still starting: the dispatcher stops it once it has started
                self._end(handle, CANCELLED)
                return
        kept = run.stop()
        with self._lock:
            self._end(handle, CANCELLED, result=kept)

    def cancel_session(self, session: str) -> None:
        """End everything ``session`` has queued or running (its tab closed)."""
        with self._lock:
            mine = [*self._lines.get(session, ()), *(h for h in self._running if h.session == session)]
        for handle in mine:
            self.cancel(handle)
        with self._lock:
            self._turns.pop(session, None)

    def place(self, handle: Handle) -> tuple[int, float]:
        """(tasks that will start before ``handle``, estimated seconds until it starts)."""
        with self._lock:
            if handle.state != QUEUED:
                return 0, 0.0
            order = self._order()
        ahead = order[:order.index(handle)] if handle in order else order
        running = sum(max(h.task.seconds - (time.monotonic() - (h.started or time.monotonic())), 0.0)
                      for h in list(self._running))
        return len(ahead), (running + sum(h.task.seconds for h in ahead)) / self.slots

    def close(self) -> None:
        """Cancel everything and stop the dispatcher."""
        self._closed = True
        for session in list(self._lines) + [h.session for h in list(self._running)]:
            self.cancel_session(session)
        self._thread.join(STOP_WAIT_S)

    # -- the dispatcher ----------------------------------------------------------------------------------
    def _order(self) -> list[Handle]:
        """The queued handles in the order they will start, as ``_next`` would pick them one after another, the
        sessions with a task running counted as having just had their turn."""
        lines = {s: deque(line) for s, line in self._lines.items() if line}
        turns = dict(self._turns)
        later = itertools.count(max(turns.values(), default=0) + 1)  # turns still to come, after every past one
        for h in self._running:
            turns[h.session] = next(later)
        order = []
        while lines:
            session = min(lines, key=lambda s: (turns.get(s, -1), lines[s][0].number))
            order.append(lines[session].popleft())
            turns[session] = next(later)
            if not lines[session]:
                del lines[session]
        return order

    def _next(self) -> Handle | None:
        """The next task to start: of the sessions with nothing running, the one whose last turn is oldest (a
        session that never had one first), then the one whose next task came first."""
        busy = {h.session for h in self._running}
        ready = [s for s, line in self._lines.items() if line and s not in busy]
        if not ready:
            return None
        session = min(ready, key=lambda s: (self._turns.get(s, -1), self._lines[s][0].number))
        self._turns[session] = next(self._turn_clock)
        return self._lines[session].popleft()

    def _loop(self) -> None:
        while not self._closed:
            with self._lock:
                while len(self._running) < self.slots:
                    handle = self._next()
                    if handle is None:
                        break
                    handle.state, handle.started = RUNNING, time.monotonic()
                    self._running[handle] = None  # reserved: started outside the lock
            for handle in [h for h, run in list(self._running.items()) if run is None]:
                try:
                    run = _DaskRun(handle, self.client) if self.client is not None else _LocalRun(handle, self._context)
                except Exception as exc:  # noqa: BLE001 - a worker that cannot start fails its task, not the server
                    with self._lock:
                        self._running.pop(handle, None)
                        self._end(handle, FAILED, f"its worker could not start ({type(exc).__name__}: {exc})")
                    continue
                with self._lock:
                    if handle in self._running:
                        self._running[handle] = run
                    else:  # cancelled while it started
                        run.stop()
            for handle, run in list(self._running.items()):
                if run is not None:
                    self._drain(handle, run)
            time.sleep(POLL_S)

    def _drain(self, handle: Handle, run) -> None:
        for _ in range(1000):
            message = run.poll()
            if message is None:
                return
            kind, payload = message
            if kind == "progress":
                handle.progress, handle.reports = payload, handle.reports + 1
                continue
            with self._lock:
                if self._running.pop(handle, None) is None:
                    return
                self._end(handle, kind, payload if kind == FAILED else "", payload if kind == DONE else None)
            run.close()
            return

    def _end(self, handle: Handle, state: str, error: str = "", result=None) -> None:
        handle.state, handle.error, handle.result, handle.ended = state, error, result, time.monotonic()
        handle._done.set()


PROGRESS_S = 0.5  # a task reports at most this often (a page redraws its live charts about as often)


def train_task(config, progress, should_stop):
    """A training run as a task: its records reported (the history so far and the last record's layer statistics)
    at the first record and then at most every PROGRESS_S, its RunResult returned, stopped or not."""
    from lab.engine.training import train

    last = [-PROGRESS_S]

    def report(p):
        now = time.monotonic()
        if now - last[0] >= PROGRESS_S:
            last[0] = now
            progress({"step": p.step, "total_steps": p.total_steps, "epoch": p.epoch, "history": list(p.history),
                      "layers": p.layers_frame()})
        return should_stop()

    return train(config, callback=report, should_stop=should_stop)


__all__ = ["CANCELLED", "DONE", "FAILED", "QUEUED", "RUNNING", "Executor", "Full", "Handle", "Task", "resolve",
           "train_task"]
