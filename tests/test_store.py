"""The run store: round trip of every field, concurrent writers, a killed writer, migration, bad files."""
from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time

import numpy as np
import pandas as pd
import pytest

from lab.engine.config import RunConfig
from lab.engine.results import LAYER_COLUMNS
from lab.engine.training import train
from lab.store import runstore as store_mod
from lab.store.runstore import ARRAY_FIELDS, SCHEMA_V1, SCHEMA_VERSION, StoreError, default_path, open_store

TINY = RunConfig(samples=40, epochs=2, depth=1, width=2, batch_size=20, probe_size=16)


@pytest.fixture(scope="module")
def run():
    """Batch norm (a norm state), clipping (meta), float32 weights."""
    return train(RunConfig(samples=80, epochs=3, depth=2, width=4, norm="batch", clip_norm=0.5, dtype="float32"))


@pytest.fixture(scope="module")
def diverged():
    """A run whose history ends in a row of NaN."""
    result = train(RunConfig(samples=80, epochs=5, depth=2, width=4, optimizer="sgd", lr=1e4, init="normal",
                             init_scale=10.0))
    assert result.diverged_at is not None and result.history["loss"].isna().any()
    return result


@pytest.fixture(scope="module")
def tiny():
    return train(TINY)


def assert_same_run(a, b):
    assert a.config == b.config
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.layers, b.layers)
    for f in ARRAY_FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), f
    assert len(a.weights) == len(b.weights)
    for (W, bias), (W2, bias2) in zip(a.weights, b.weights):
        assert W.dtype == W2.dtype and W.tobytes() == W2.tobytes() and bias.tobytes() == bias2.tobytes()
    assert [sorted(s) for s in a.norm_state] == [sorted(s) for s in b.norm_state]
    for s, s2 in zip(a.norm_state, b.norm_state):
        for k in s:
            assert s[k].dtype == s2[k].dtype and s[k].tobytes() == s2[k].tobytes()
    assert (a.steps_per_epoch, a.wall_s, a.diverged_at, a.diverge_reason, a.stopped) == \
        (b.steps_per_epoch, b.wall_s, b.diverged_at, b.diverge_reason, b.stopped)


def test_round_trip_of_every_field(tmp_path, run, diverged):
    assert run.norm_state and run.norm_state[0] and run.meta.get("clipping")
    with open_store(tmp_path / "runs.sqlite") as s:
        group = s.save_group({"a": run, "b": diverged}, "pair", "compare", spec={"vary": "lr"}, tags=["cmp"])
        run_id = s.save(run, "solo", "train", tags=["x", "y"], notes="first try")
        back = s.load(run_id)
        assert_same_run(run, back)
        assert back.meta == run.meta
        assert back.eval_model() is not None
        # the dataset is made again from the config, identical to the one trained on
        assert np.array_equal(back.data.X_train, run.data.X_train) and np.array_equal(back.data.y_val, run.data.y_val)
        table = s.runs()
        assert list(table["name"]) == ["solo", "b", "a"]  # newest first
        solo = table.iloc[0]
        assert solo["tags"] == "x,y" and solo["notes"] == "first try" and solo["source"] == "train"
        assert solo["complete"] and solo["has_weights"] and solo["depth"] == 2 and solo["norm"] == "batch"
        last = run.history.iloc[-1]
        assert solo["final_loss"] == last["loss"] and solo["final_val_accuracy"] == last["val_accuracy"]
        pair = table[table["group_id"] == group]
        assert set(pair["name"]) == {"a", "b"} and set(pair["group"]) == {"pair"} and set(pair["tags"]) == {"cmp"}
        b_row = table[table["name"] == "b"].iloc[0]
        assert b_row["diverged_at"] == diverged.diverged_at
        assert b_row["final_loss"] == diverged.history["loss"].iloc[0]  # the last record, not the NaN row
        assert_same_run(diverged, s.load(int(b_row["id"])))
        record = s.record(run_id)
        assert record["config"] == run.config.to_dict() and record["tags"] == ["x", "y"]


def test_session_only_meta_is_left_out_and_big_weights_are_not_kept(tmp_path, tiny, monkeypatch):
    result = tiny.__class__(**{**tiny.__dict__, "meta": {"made_from": (TINY, "key"), "colour": "#123456"}})
    monkeypatch.setattr(store_mod, "WEIGHTS_CAP_BYTES", 8)
    with open_store(tmp_path / "s.sqlite") as s:
        back = s.load(s.save(result, "big", "cli"))
        assert back.meta == {"colour": "#123456", "weights_not_stored": True}  # said where the boundary would be
        assert back.weights == [] and back.norm_state == [] and back.eval_model() is None
        assert not s.runs()["has_weights"].iloc[0]


def test_edits_filters_and_soft_delete(tmp_path, tiny):
    with open_store(tmp_path / "s.sqlite") as s:
        ids = [s.save(tiny.__class__(**{**tiny.__dict__, "config": tiny.config.replace(lr=lr)}), f"run {lr}", "cli")
               for lr in (0.1, 0.01)]
        s.rename(ids[0], "Renamed")
        s.set_tags(ids[0], ["keep", "best"])
        s.set_notes(ids[1], "a note")
        assert list(s.runs(search="renam")["id"]) == [ids[0]]
        assert list(s.runs(tag="best")["id"]) == [ids[0]] and s.runs(tag="best")["tags"].iloc[0] == "best,keep"
        assert list(s.runs({"lr": "0.01"})["id"]) == [ids[1]]  # text, as a command line gives it
        assert list(s.runs({"lr": 0.1, "depth": 1})["id"]) == [ids[0]]
        assert list(s.runs({"batch_size": 20, "residual": "false"})["id"]) == ids[::-1]  # a field from the JSON
        assert s.runs({"batch_size": 21}).empty
        with pytest.raises(ValueError, match="unknown setting"):
            s.runs({"colour": "red"})
        assert s.find("Renamed") == [ids[0]] and s.find(str(ids[1])) == [ids[1]]
        s.delete([ids[0]])
        assert list(s.runs()["id"]) == [ids[1]] and s.find("Renamed") == []
        assert len(s.runs(include_deleted=True)) == 2
        s.undelete([ids[0]])
        assert len(s.runs()) == 2
        s.delete(ids)
        assert s.purge() == 2 and s.runs(include_deleted=True).empty


def test_location_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BACKPROP_LAB_STORE", str(tmp_path / "x.sqlite"))
    assert default_path() == tmp_path / "x.sqlite"
    for off in ("off", ""):
        monkeypatch.setenv("BACKPROP_LAB_STORE", off)
        assert default_path() is None and store_mod.store_path() is None
        with pytest.raises(StoreError, match="turned off"):
            open_store()
    monkeypatch.delenv("BACKPROP_LAB_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_path() == tmp_path / "xdg" / "backprop-lab" / "runs.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / ".local" / "share" / "backprop-lab" / "runs.sqlite"


def test_the_file_and_its_directory_appear_at_the_first_write(tmp_path, tiny):
    path = tmp_path / "deep" / "er" / "runs.sqlite"
    with open_store(path) as s:
        assert s.runs().empty and s.find("x") == [] and not path.parent.exists()
        s.save(tiny, "one", "cli")
    assert path.is_file()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_migration_from_version_1(tmp_path, run):
    """A v1 file (the v1 schema as written, holding a run) opens with this code and is upgraded to the current version."""
    current, old = tmp_path / "current.sqlite", tmp_path / "v1.sqlite"
    with open_store(current) as s:
        run_id = s.save(run, "old run", "train", tags=["t"])
    _old_store(old, 1, current)
    conn = sqlite3.connect(old)
    v1_columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    conn.close()
    assert "complete" not in v1_columns and "notes" not in v1_columns
    with open_store(old) as s:
        assert_same_run(run, s.load(run_id))
        row = s.runs().iloc[0]
        assert row["complete"] and row["notes"] == "" and row["tags"] == "t"
        s.set_notes(run_id, "written by v2")
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert conn.execute("SELECT notes FROM runs").fetchone()[0] == "written by v2"
    conn.close()


def _old_store(path, version: int, current):
    """A store of schema ``version`` as that version wrote it (v1's schema and the migrations up to it), holding
    the rows of the store ``current``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for script in [SCHEMA_V1, *(store_mod.MIGRATIONS[v] for v in range(1, version))]:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {store_mod.APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("ATTACH DATABASE ? AS cur", (str(current),))
    for table in ("groups", "runs", "tags", "history", "layers", "arrays"):
        columns = ", ".join(row[1] for row in conn.execute(f"PRAGMA main.table_info({table})"))
        conn.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM cur.{table}")
    conn.execute("DETACH DATABASE cur")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    return tables


def test_migration_from_version_2_keeps_the_runs_and_adds_the_lessons_progress(tmp_path, run):
    """A v2 file holding runs (the schema before lessons) opens with this code, is upgraded to v3 with every run as
    it was, and keeps a learner's progress from then on."""
    current, old = tmp_path / "current.sqlite", tmp_path / "v2.sqlite"
    with open_store(current) as s:
        run_id = s.save(run, "old run", "train", tags=["t"])
        s.set_notes(run_id, "kept")
    assert "progress" not in _old_store(old, 2, current)
    with open_store(old) as s:
        assert_same_run(run, s.load(run_id))
        row = s.runs().iloc[0]
        assert row["notes"] == "kept" and row["tags"] == "t"
        assert s.progress("") == {}
        s.save_progress("", "vanishing-sigmoid", 3, {1, 2})
        s.save_progress("ana", "vanishing-sigmoid", 2, {1})
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    conn.close()
    with open_store(old) as s:  # a returning learner finds their place; another learner's is not theirs
        assert s.progress("") == {"vanishing-sigmoid": (3, frozenset({1, 2}))}
        assert s.progress("ana") == {"vanishing-sigmoid": (2, frozenset({1}))} and s.progress("bob") == {}


def _bad_file(tmp_path, kind, tiny):
    path = tmp_path / f"{kind}.sqlite"
    if kind == "text":
        path.write_text("name,value\nnot,a database\n")
    elif kind == "foreign":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE photos (id INTEGER, caption TEXT)")
        conn.commit()
        conn.close()
    else:
        with open_store(path) as s:
            for i in range(30):
                s.save(tiny, f"r{i}", "cli")
        if kind == "newer":
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA user_version = 99")
            conn.close()
        elif kind == "header":  # the first page (the schema) overwritten past the magic string
            raw = bytearray(path.read_bytes())
            raw[100:4096] = b"\xa5" * 3996
            path.write_bytes(bytes(raw))
        elif kind == "truncated":
            raw = path.read_bytes()
            path.write_bytes(raw[: len(raw) // 3])
    return path


@pytest.mark.parametrize("kind, message", [
    ("text", "not a SQLite database"), ("foreign", "not a Backprop Lab run store"),
    ("newer", "newer Backprop Lab"), ("header", "damaged"), ("truncated", "damaged"),
])
def test_bad_files_get_one_clear_line_and_stay_as_they_were(tmp_path, tiny, kind, message):
    path = _bad_file(tmp_path, kind, tiny)
    before = path.read_bytes()
    with pytest.raises(StoreError) as caught:
        with open_store(path) as s:  # a damaged page may only show when it is read
            for i in s.runs()["id"]:
                s.load(int(i))
            s.save(tiny, "more", "cli")
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text
    assert path.read_bytes() == before


def _writer(path, result, n):
    with open_store(path) as s:
        for i in range(n):
            s.save(result, f"{os.getpid()}-{i}", "cli")


def test_eight_concurrent_writers_lose_nothing(tmp_path, tiny):
    path = tmp_path / "shared.sqlite"  # not there yet: the writers also race to create it
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, tiny, 25)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8
    with open_store(path) as s:
        table = s.runs()
        assert len(table) == 200 and table["name"].is_unique and table["complete"].all()
        for run_id in table["id"].iloc[::20]:
            assert_same_run(tiny, s.load(int(run_id), with_data=False))
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM layers").fetchone()[0] == 200 * len(tiny.layers)
        conn.close()


def _killed_writer(path, result, ready):
    def hook():
        ready.set()
        time.sleep(60)

    with open_store(path) as s:
        s.save(result, "half written", "cli", _hook=hook)


def test_a_writer_killed_mid_run_leaves_a_readable_store_without_it(tmp_path, tiny):
    path = tmp_path / "s.sqlite"
    with open_store(path) as s:
        s.save(tiny, "before", "cli")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_killed_writer, args=(path, tiny, ready))
    proc.start()
    assert ready.wait(30), "the writer never got inside its transaction"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    with open_store(path) as s:
        assert list(s.runs(include_deleted=True)["name"]) == ["before"]
        assert s.runs()["complete"].all()
        s.save(tiny, "after", "cli")  # the dead writer's lock is gone
        assert list(s.runs()["name"]) == ["after", "before"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM history").fetchone()[0] == 2 * len(tiny.history)
    conn.close()


def test_the_layers_table_has_every_layer_column():
    conn = sqlite3.connect(":memory:")
    for statement in SCHEMA_V1.split(";"):
        if statement.strip():
            conn.execute(statement)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(layers)")]
    assert columns[2:] == list(LAYER_COLUMNS)
