"""lab.engine.threads: with the engine's heap setting, memory a run frees stays in the process until the heap is
trimmed; closing a trainer trims it, and may be done from another thread while a step runs."""
import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lab import RunConfig
from lab.engine.training import Trainer, train

ROOT = Path(__file__).resolve().parent.parent
SMALL = RunConfig(samples=200, epochs=2, depth=2, width=8, dtype="float64")

# a page rerun as the server has it: a thread of its own (so an arena of its own) makes 160 arrays of 1 MiB and
# lets go of three in four; the quarter kept (results) sits between the freed ones, so no heap top can shrink
FREED_IN_A_THREAD = """
import threading
import numpy as np
from lab.engine.threads import keep_freed_arrays_in_the_heap, return_free_memory

def resident_mb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024

keep_freed_arrays_in_the_heap()
kept = []
def rerun():
    arrays = [np.ones(2**17) for _ in range(160)]
    kept.extend(arrays[::4])
thread = threading.Thread(target=rerun)
thread.start()
thread.join()
before = resident_mb()
print(return_free_memory(), before - resident_mb())
"""


def _freed_in_a_thread(trim: str) -> tuple[bool, float]:
    # without glibc's own MALLOC_* settings: a Dask LocalCluster started earlier in this process leaves
    # MALLOC_TRIM_THRESHOLD_=65536 in os.environ (its nanny's pre-spawn environment), and with it glibc hands freed
    # memory back by itself, leaving nothing for the trim to return
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", FREED_IN_A_THREAD], capture_output=True, text=True, check=True,
                         env={**env, "BACKPROP_LAB_HEAP_TRIM": trim}, cwd=ROOT).stdout
    ran, returned = out.split()
    return ran == "True", float(returned)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's heap")
def test_freed_arrays_stay_in_the_process_until_the_heap_is_trimmed():
    ran, returned = _freed_in_a_thread("1")
    assert ran and returned > 90  # of the 120 MiB freed
    ran, returned = _freed_in_a_thread("0")  # the trim turned off: nothing comes back
    assert not ran and returned < 10


def test_closing_a_trainer_hands_its_memory_back_once(monkeypatch):
    calls = []
    monkeypatch.setattr("lab.engine.training.return_free_memory", lambda: calls.append("trim"))
    trainer = Trainer(SMALL)
    trainer.advance(steps=2)
    trainer.close()
    trainer.close()
    assert trainer.closed and calls == ["trim"]
    train(SMALL)  # train() closes its trainer once the result has its copies
    assert calls == ["trim", "trim"]


def test_close_from_another_thread_waits_for_the_step_in_progress():
    """As a server closes the trainer of a session whose browser left, while its script is still in a step."""
    trainer = Trainer(SMALL)
    in_step, go_on = threading.Event(), threading.Event()
    errors = []

    def should_stop():
        in_step.set()
        go_on.wait(30)
        return False

    def advance():
        try:
            trainer.advance(steps=3, should_stop=should_stop)
        except Exception as exc:  # noqa: BLE001 - what a close in the middle of a step would raise
            errors.append(exc)

    runner = threading.Thread(target=advance)
    runner.start()
    assert in_step.wait(30)
    closer = threading.Thread(target=trainer.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive() and not trainer.closed  # it waits for the advance
    go_on.set()
    runner.join(30)
    closer.join(30)
    assert errors == [] and trainer.step == 3 and trainer.closed
    assert trainer._snapshot() is None  # what a page's last Progress gives once the trainer is closed
    with pytest.raises(RuntimeError, match="closed"):
        trainer.advance()
