"""The command line against hostile input: one line on stderr and status 2, never a traceback,
and nothing lost or overwritten.  In-process (``lab.cli.main.main``), so that each case is quick."""
import os
import platform
import re
import subprocess
import sys

import numpy as np
import pytest

from lab.cli.main import main
from lab.engine.config import RunConfig

FAST = ["--samples", "100", "--epochs", "1", "--depth", "2", "--width", "4", "--quiet"]


def _one_line_error(capsys, argv, pattern):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert pattern in err, err
    return err


@pytest.mark.parametrize("content, pattern", [
    ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    ('{"config": {"activation": ["relu"]}}', "activation must be one of"),
    ('{"config": {"standardize": "false"}}', "standardize must be one of True, False"),
    ('{"config": {"instrument": "no"}}', "instrument must be one of True, False"),
    ('{"config": {"noise": "lots"}}', "noise must be a number"),
    ('{"config": {"depth": 1e400}}', "depth must be a whole number"),
])
def test_bad_config_files(tmp_path, capsys, content, pattern):
    path = tmp_path / "config.json"
    path.write_text(content)
    _one_line_error(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "o")], pattern)


def test_fifo_as_config_or_data_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _one_line_error(capsys, ["train", "--config", str(fifo), "--out", str(tmp_path / "o")], "not a regular file")
    _one_line_error(capsys, ["train", "--data", str(fifo), "--label", "y", "--out", str(tmp_path / "o")],
                    "not a regular file")


def test_out_is_checked_before_training_and_a_run_is_not_overwritten(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    _one_line_error(capsys, ["train", *FAST, "--out", str(a_file)], "is a file, not a directory")
    assert a_file.read_text() == "keep me"
    out = tmp_path / "run"
    assert main(["train", *FAST, "--out", str(out)]) == 0
    before = (out / "history.csv").read_text()
    _one_line_error(capsys, ["train", *FAST, "--seed", "3", "--out", str(out)], "already holds a run")
    assert (out / "history.csv").read_text() == before
    assert main(["train", *FAST, "--seed", "3", "--out", str(out), "--force"]) == 0
    assert (out / "history.csv").read_text() != before


def test_gradients_writes_the_file_it_names(tmp_path, capsys):
    out = tmp_path / "probe"
    assert main(["gradients", "--depth", "2", "--width", "4", "--out", str(out)]) == 0
    assert f"wrote {out}:" in capsys.readouterr().out
    assert out.exists() and not (tmp_path / "probe.npz").exists()
    assert "dW1" in np.load(out).files


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_disk_names_the_file(capsys):
    _one_line_error(capsys, ["theory", "--out", "/dev/full"], "No space left on device: /dev/full")


def test_a_run_larger_than_the_machine_is_refused_before_it_starts(tmp_path, capsys, monkeypatch):
    import lab.cli.commands

    monkeypatch.setattr(lab.cli.commands, "machine_free_bytes", lambda: 2**30)  # a machine with 1 GB free
    err = _one_line_error(capsys, ["train", "--dataset", "random", "--input-dim", "4096", "--samples", "200000",
                                   "--epochs", "1", "--out", str(tmp_path / "o")], "of memory and this machine has 1.0 GB free")
    assert "reduce the width" in err
    assert not (tmp_path / "o").exists()


def test_a_long_run_announces_its_estimate(tmp_path, capsys, monkeypatch):
    import lab.cli.commands

    monkeypatch.setattr(lab.cli.commands, "LONG_RUN_S", 0.0)
    assert main(["train", "--samples", "100", "--epochs", "1", "--depth", "2", "--width", "4",
                 "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err.strip()
    # 'about 3 s, ...', or for a run this small 'under a second, ...' (not 'about under a second')
    assert re.fullmatch(r"estimated (about \S+ \S+|under a second), \S+ \S+ of memory", err), err


def test_a_gradient_check_of_days_is_refused_with_its_estimate(capsys):
    err = _one_line_error(capsys, ["gradcheck", "--depth", "100", "--width", "512"], "would take about")
    assert "days" in err and "lower --depth or --width" in err


def test_only_a_run_the_typical_prices_call_long_times_this_machine(capsys, monkeypatch):
    import lab.cli.commands
    import lab.serving.cost

    def calibrate(dtype):
        calls.append(dtype)
        return lab.serving.cost.TYPICAL_PRICES[dtype]

    calls = []
    monkeypatch.setattr(lab.serving.cost, "calibrate", calibrate)
    base = RunConfig(depth=10, width=64, batch_size=128, optimizer="sgd", samples=2500)
    cost = lab.serving.cost
    typical = cost.estimate(base, prices=cost.TYPICAL_PRICES["float64"]).seconds / base.epochs  # per epoch
    short = base.replace(epochs=max(1, int(0.8 * lab.cli.commands.LONG_RUN_S / typical)))  # above priced()'s 5 s, below 10
    long = base.replace(epochs=int(3 * lab.cli.commands.LONG_RUN_S / typical))
    lab.cli.commands._check_cost(short, "", quiet=False)
    lab.cli.commands._check_cost(long, "", quiet=True)
    assert calls == [] and capsys.readouterr().err == ""
    lab.cli.commands._check_cost(long, "", quiet=False)
    assert calls == ["float64"] and "estimated about" in capsys.readouterr().err


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mmap and trim thresholds")
def test_train_keeps_freed_arrays_in_the_heap():
    """After the engine's one large free (the first Trainer of a process does it), the arrays of a training
    step (here 40 of 64 KiB, as a batch of 128 through width 64 makes) are reused from the heap at the next
    step, instead of the heap being trimmed when they are freed and page-faulted anew when they are made again."""
    code = """
import resource
import numpy as np
from lab.engine.training import keep_freed_arrays_in_the_heap

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step = [np.ones((128, 64)) for _ in range(40)]  # written, then all freed
        del step
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

first = faults()
keep_freed_arrays_in_the_heap()
print(first, faults())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    trimmed, reused = map(int, out.split())
    assert trimmed > 20 * 100  # 640 pages a step, most of them faulted again at every step
    assert reused < trimmed / 10
