"""A run cut into pieces gives the bits of the same run in one piece (lab.engine.training.Trainer)."""
import math

import numpy as np
import pandas as pd
import pytest

from lab import RunConfig
from lab.engine.training import Trainer, train

# the default network and data, for 3 epochs of 13 steps (800 training examples, batches of 64)
DEFAULT = RunConfig(epochs=3)
CONFIGS = {
    "default": DEFAULT,
    "records inside epochs": RunConfig(epochs=3, record_every=3),
    "cures": RunConfig(epochs=3, depth=4, dropout=0.2, norm="batch", clip_norm=0.5, weight_decay=1e-2,
                       record_every=5),
    "diverges": RunConfig(epochs=3, optimizer="sgd", lr=1.0),
    "float32": RunConfig(epochs=3, dtype="float32", optimizer="rmsprop"),
}
UNEVEN = (1, 5, 2, 13, 1, 8)  # and the rest: 7 pieces, cutting across epochs and records


def assert_same_run(a, b):
    """Every number of two runs bit for bit (the clock's columns aside)."""
    pd.testing.assert_frame_equal(a.history.drop(columns="elapsed_s"), b.history.drop(columns="elapsed_s"),
                                  check_exact=True)
    pd.testing.assert_frame_equal(a.layers, b.layers, check_exact=True)
    for name in ("hist_epochs", "act_hist", "act_zero_frac", "delta_hist"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name, strict=True)
    assert len(a.weights) == len(b.weights)
    for (Wa, ba), (Wb, bb) in zip(a.weights, b.weights):
        np.testing.assert_array_equal(Wa, Wb, strict=True)
        np.testing.assert_array_equal(ba, bb, strict=True)
    assert [sorted(s) for s in a.norm_state] == [sorted(s) for s in b.norm_state]
    for sa, sb in zip(a.norm_state, b.norm_state):
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k, strict=True)
    assert (a.diverged_at, a.diverge_reason, a.stopped) == (b.diverged_at, b.diverge_reason, b.stopped)
    assert a.meta == b.meta or (math.isnan(a.meta["clipping"]["grad_norm_mean"]) and a.meta.keys() == b.meta.keys())


def in_pieces(config, cuts, snapshots=None):
    """The run advanced by ``cuts`` steps, then to the end; ``snapshots`` collects a result between pieces."""
    trainer = Trainer(config)
    for steps in cuts:
        trainer.advance(steps=steps)
        if snapshots is not None:
            snapshots.append(trainer.result())
    trainer.advance()
    return trainer.result()


def step_by_step(config):
    trainer = Trainer(config)
    while trainer.advance(steps=1):
        pass
    return trainer.result()


def epoch_by_epoch(config):
    trainer = Trainer(config)
    epochs = 0
    while trainer.advance(epochs=1):
        epochs += 1
        assert trainer.step == epochs * trainer.steps_per_epoch and trainer.epoch == epochs
    return trainer.result()


@pytest.fixture(scope="module")
def whole():
    """Each config's run in one piece, by train()."""
    return {name: train(config) for name, config in CONFIGS.items()}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_run_in_pieces_gives_the_bits_of_the_run_in_one(whole, name):
    config, one = CONFIGS[name], whole[name]
    assert not one.stopped and len(one.history) >= 2
    assert_same_run(step_by_step(config), one)
    assert_same_run(epoch_by_epoch(config), one)
    snapshots = []
    assert_same_run(in_pieces(config, UNEVEN, snapshots), one)  # results taken between pieces change nothing
    # each snapshot is the run so far: a prefix of the whole history, stopped while steps remain
    for snap in snapshots:
        k = len(snap.history)
        pd.testing.assert_frame_equal(snap.history.drop(columns="elapsed_s"),
                                      one.history.drop(columns="elapsed_s").iloc[:k], check_exact=True)
        assert snap.stopped == (snap.diverged_at is None and snap.history["step"].iloc[-1] < one.history["step"].iloc[-1])


def test_the_cases_exercise_what_they_name(whole):
    assert whole["diverges"].diverged_at == 1 and whole["diverges"].history["diverged"].iloc[-1]
    for name in ("default", "records inside epochs", "cures", "float32"):
        assert whole[name].diverged_at is None
    steps = whole["records inside epochs"].history["step"]
    assert (steps % whole["records inside epochs"].steps_per_epoch != 0).any()  # records fall inside epochs
    assert whole["cures"].meta["clipping"]["clip_steps"] > 0  # clipping fired
    assert set(whole["cures"].norm_state[0]) >= {"running_mean", "running_var"}
    assert whole["float32"].weights[0][0].dtype == np.float32
    for name in CONFIGS:  # each run learned something, or blew up: its weights moved
        first = whole[name].history["loss"].iloc[0]
        assert first != whole[name].history["loss"].iloc[-1] or whole[name].diverged_at is not None


def test_the_pieces_go_where_they_say():
    trainer = Trainer(DEFAULT)
    spe = trainer.steps_per_epoch
    assert (spe, trainer.total_steps, trainer.step, trainer.epoch) == (13, 39, 0, 0.0)
    assert list(trainer.result().history["step"]) == [0] and trainer.result().stopped
    assert trainer.advance(steps=5) and trainer.step == 5 and trainer.epoch == 5 / 13
    assert trainer.advance(epochs=1) and trainer.step == 13  # to the end of the epoch in progress
    assert trainer.advance(epochs=1) and trainer.step == 26
    assert not trainer.advance(steps=100) and trainer.step == 39 and trainer.done
    assert not trainer.advance() and trainer.step == 39
    assert list(trainer.result().history["epoch"]) == [0, 1, 2, 3] and not trainer.result().stopped
    with pytest.raises(ValueError):
        trainer.advance(steps=1, epochs=1)


def test_a_diverged_run_cannot_go_on(whole):
    trainer = Trainer(CONFIGS["diverges"])
    assert not trainer.advance() and trainer.done and trainer.step < trainer.total_steps
    before = trainer.result()
    assert not trainer.advance(steps=3)
    assert_same_run(trainer.result(), before)
    assert_same_run(before, whole["diverges"])
    assert not before.stopped


def test_a_network_that_overflows_at_initialization_is_done_before_any_step():
    config = RunConfig(init="normal", init_scale=1000.0, depth=30, samples=100, epochs=1, dtype="float32")
    trainer = Trainer(config)
    assert trainer.done and trainer.diverged_at == 0 and trainer.step == 0
    seen = []
    assert not trainer.advance(callback=seen.append) and seen == []
    assert trainer.result().history["diverged"].iloc[-1]
    assert_same_run(trainer.result(), train(config))


def test_reset_gives_the_numbers_of_a_new_trainer(whole):
    config = CONFIGS["cures"]  # dropout's generator, the running statistics and the clipping record start over
    trainer = Trainer(config)
    trainer.advance(steps=20)
    trainer.reset()
    assert trainer.step == 0 and not trainer.done
    assert list(trainer.result().history["step"]) == [0]
    trainer.advance()
    assert_same_run(trainer.result(), whole["cures"])


def test_a_pause_asked_by_the_callback_or_should_stop_goes_on_later(whole):
    config = CONFIGS["records inside epochs"]
    trainer = Trainer(config)
    seen = []

    def pause_at_the_third_record(progress):
        seen.append(progress.step)
        return len(seen) == 3

    assert trainer.advance(callback=pause_at_the_third_record)
    assert trainer.paused and seen == [0, 3, 6] and trainer.step == 6
    calls = []

    def stop_after_two_steps():
        calls.append(trainer.step)
        return len(calls) == 2

    assert trainer.advance(should_stop=stop_after_two_steps)  # not asked at a record point (step 9)
    assert trainer.paused and calls == [7, 8] and trainer.step == 8
    assert trainer.result().stopped
    assert not trainer.advance(callback=pause_at_the_third_record)  # goes on to the end: records 9 .. 39
    assert not trainer.paused and seen == [0, 3, 6, *range(9, 40, 3)]
    assert_same_run(trainer.result(), whole["records inside epochs"])


def test_a_stop_at_the_last_record_still_marks_train_s_result_stopped():
    result = train(RunConfig(epochs=1, depth=2, width=8, samples=200), callback=lambda p: p.step == p.total_steps)
    assert result.stopped and list(result.history["epoch"]) == [0, 1]


def test_blas_keeps_to_one_thread_inside_advance_only():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    outside = blas_threads()
    inside = []
    trainer = Trainer(RunConfig(epochs=1, depth=2, width=8, samples=200))
    trainer.advance(callback=lambda p: inside.append(blas_threads()))
    assert inside and all(t == [1] * len(outside) for t in inside)
    assert blas_threads() == outside
