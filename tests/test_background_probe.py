"""Record passes beside the training (lab.engine.training.probe_in_background) give the numbers of passes in line."""
import numpy as np
import pytest

import lab.engine.recorder as recorder
import lab.engine.training as training
from lab import RunConfig
from lab.engine import threads
from tests.test_training_pieces import UNEVEN, assert_same_run, in_pieces

CONFIGS = {
    "default": RunConfig(epochs=3),
    # batch norm's running averages, dropout's generator and the clipping record all move between records
    "cures": RunConfig(epochs=3, depth=4, dropout=0.2, norm="batch", clip_norm=0.5, record_every=5),
    "float32": RunConfig(epochs=3, dtype="float32", optimizer="adam", record_every=4),
}


@pytest.fixture
def placed(monkeypatch):
    """placed(background) makes every Trainer built after it take its record passes in the background, or in line."""
    def place(background):
        monkeypatch.setattr(training, "probe_in_background", lambda config, n_params: background)  # as imported there
    return place


def failing_on(monkeypatch, k):
    """The k-th record pass of a run (the one at initialization is the first) finds a NaN in a gradient."""
    real, calls = recorder.probe, []

    def probe(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == k:
            out[1][0, 0] = np.nan
        return out

    monkeypatch.setattr(recorder, "probe", probe)


def test_the_policy_uses_the_free_core_only_for_narrow_networks():
    from lab.engine import pieces

    narrow, wide = RunConfig(width=64), RunConfig(width=512)
    assert threads.probe_in_background(narrow, 10_000) == (pieces.THREADS >= 2)
    assert not threads.probe_in_background(wide, 10_000)  # BLAS uses every core there already
    assert not threads.probe_in_background(narrow.replace(instrument=False), 10_000)
    assert not threads.probe_in_background(narrow, threads.BACKGROUND_PROBE_MAX_PARAMS + 1)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_background_passes_give_the_bits_of_passes_in_line(name, placed):
    config = CONFIGS[name]
    placed(False)
    in_line = training.train(config)
    placed(True)
    assert_same_run(training.train(config), in_line)
    assert_same_run(in_pieces(config, UNEVEN), in_line)  # settled at the end of every advance


@pytest.mark.parametrize("k", [2, 5])
def test_a_pass_that_finds_nan_ends_the_run_at_its_own_step(k, placed, monkeypatch):
    # in the background the training goes on for a few steps before the failed pass is seen; the run must
    # still end where a pass in line ends it: that step's weights, running averages, clipping record, epoch
    config = CONFIGS["cures"]
    failing_on(monkeypatch, k)
    placed(False)
    in_line = training.train(config)
    assert in_line.diverge_reason.startswith("a gradient on the probe set became inf or NaN")
    assert in_line.history["diverged"].iloc[-1] and len(in_line.history) == k  # k - 1 records and the mark
    failing_on(monkeypatch, k)
    placed(True)
    assert_same_run(training.train(config), in_line)


def test_a_callback_that_reads_the_statistics_sees_each_record_complete(placed):
    seen = []

    def callback(progress):
        seen.append(progress.layer_stats[-1])  # waits for the pass in the background
        return False

    placed(True)
    result = training.train(CONFIGS["default"], callback=callback)
    assert len(seen) == len(result.history) and all(s is not None for s in seen)
    L = len(result.weights)
    np.testing.assert_array_equal(np.concatenate(seen), result.layers[list(recorder.STAT_COLUMNS)].to_numpy())
    assert result.layers["layer"].max() == L
