"""Local worker processes that stop when told to and never outlive the process that started them.

A sweep's cells run on a ``ProcessPoolExecutor`` whose workers are forked from a forkserver
(``local_pool``).  On a shared server two things must hold:

- Stop now.  ``Executor.shutdown(cancel_futures=True)`` cancels only the cells not yet started,
  and one cell may train for minutes; ``stop_pool`` kills the workers, and their cells with them.
- Die with the parent.  A worker of a SIGKILLed server (or ``python -m lab sweep``) would wait
  for its next cell forever: it holds both ends of the call queue's pipe, so it never reads an
  end of file.  It also holds the write end of the forkserver's "alive" pipe, whose end of file
  is what ends the forkserver, so the forkserver waited for the workers.  Each worker therefore
  closes its copy of that pipe as it starts (the forkserver then ends with the process that
  started it), and a daemon thread asks every ``POLL_S`` whether that process is still alive
  and ends the worker if not.  The process is known by its pid and its start time, so that a
  new process that got the same pid does not keep a worker alive.  The thread starts as the
  forkserver forks the worker (``watch_from_the_forkserver``), before the pool's initializer runs.

A worker never runs its parent's ``__main__`` either (``forget_the_parents_main``).  Multiprocessing
would run that file (or module) again in each worker, as ``__mp_main__``: in a Streamlit server it is
the app's script, which Streamlit installs as ``__main__`` while a page runs, so each worker imported
Streamlit and the pages (a second or more of start-up) and drew the app outside any session, one
"missing ScriptRunContext" warning in the server's log per Streamlit call.  The cells need nothing
from ``__main__``: their function is ``lab.experiments.sweep.run_cell``, or another of an importable module.
"""
from __future__ import annotations

import os
import threading
import time

POLL_S = 0.5  # how often a worker asks whether the process that started it is alive
STOP_WAIT_S = 2.0  # how long stop_pool waits for a killed worker to be gone
FORKSERVER_PRELOAD = ("lab.experiments._forkserver_watch", "lab.experiments.sweep")  # what local_pool's forkserver imports once

_watching: tuple[int, int | None] | None = None  # the process this one watches, once its thread runs


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot, /proc/PID/stat's 22nd field), or None
    when there is no such process, it has exited (a zombie), or /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()  # after "(name)", which may hold spaces
    except (OSError, IndexError):
        return None
    state, start = fields[0], int(fields[19])
    return None if state in ("Z", "X") else start


def this_process() -> tuple[int, int | None]:
    """(pid, start time) of this process, for ``watch_parent`` in its workers."""
    return os.getpid(), process_start(os.getpid())


def is_alive(pid: int, start: int | None) -> bool:
    """Whether the process (pid, start time) from ``this_process`` is still running."""
    if start is not None:
        return process_start(pid) == start
    try:  # no /proc: the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_parent(pid: int, start: int | None) -> None:
    """A pool initializer: end this worker when the process (pid, start) is gone, and let the forkserver
    end with that process rather than with the last worker."""
    _close_forkserver_alive_fd()
    watch(pid, start)


def watch(pid: int, start: int | None) -> None:
    """End this process when the process (pid, start) is gone: a daemon thread asks every POLL_S."""
    global _watching
    if _watching == (pid, start):
        return
    _watching = (pid, start)

    def poll():
        while is_alive(pid, start):
            time.sleep(POLL_S)
        os._exit(1)  # no cleanup to wait for: the cell's result has nowhere to go

    threading.Thread(target=poll, name="watch-parent", daemon=True).start()


def watch_from_the_forkserver() -> None:
    """In a forkserver (which imports lab.experiments._forkserver_watch, and only it calls this): every process it
    forks from now on watches the process that started the forkserver, from its first instruction."""
    pid = os.getppid()
    start = process_start(pid)
    os.register_at_fork(after_in_child=lambda: watch(pid, start))


MAIN_KEYS = ("init_main_from_path", "init_main_from_name")  # what spawn.prepare reads to run the parent's __main__


def forget_the_parents_main() -> None:
    """In a forkserver (lab.experiments._forkserver_watch calls this): every process it forks from now on prepares
    without its parent's ``__main__`` (multiprocessing's ``spawn.prepare`` would run it as ``__mp_main__``)."""
    from multiprocessing import spawn

    prepare = spawn.prepare
    if getattr(prepare, "forgets_main", False):
        return

    def prepare_without_main(data: dict) -> None:
        prepare({key: value for key, value in data.items() if key not in MAIN_KEYS})

    prepare_without_main.forgets_main = True
    spawn.prepare = prepare_without_main  # spawn._main looks it up at each worker's start


def _close_forkserver_alive_fd() -> None:
    # every process the forkserver forks gets the write end of its "alive" pipe (multiprocessing.forkserver)
    from multiprocessing import forkserver

    server = forkserver._forkserver
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        server._forkserver_alive_fd = None


def local_pool(workers: int):
    """A ProcessPoolExecutor of ``workers`` processes that end with this one (``watch_parent``).

    forkserver: a fresh process forked from a small server, never from a parent that holds threads (a
    Streamlit server); the server imports ``FORKSERVER_PRELOAD`` once, so each worker starts warm and
    watched."""
    import concurrent.futures as cf
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(FORKSERVER_PRELOAD))
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=watch_parent,
                                  initargs=this_process())


def stop_pool(executor) -> None:
    """End ``executor`` (a ProcessPoolExecutor) now: its workers killed with the cells they are running,
    and the cells not started cancelled."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        try:
            process.kill()
        except (OSError, ValueError):  # already gone, or already closed
            pass
    if not processes and hasattr(executor, "kill_workers"):  # Python 3.14 has its own
        executor.kill_workers()
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + STOP_WAIT_S
    for process in processes:
        try:
            process.join(max(0.0, deadline - time.monotonic()))
        except (OSError, ValueError, AssertionError):
            pass


__all__ = ["POLL_S", "forget_the_parents_main", "is_alive", "local_pool", "process_start", "stop_pool", "this_process", "watch",
           "watch_from_the_forkserver", "watch_parent"]
