"""The import box treats a file as untrusted: every hostile file gets a message, cheaply, and changes nothing."""
import dataclasses
import io
import json
import math
import struct
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from lab import RunConfig, RunResult, train
from lab.engine.results import HISTORY_COLUMNS, LAYER_COLUMNS
from lab.serving.export import (
    MAX_IMPORT_JSON_BYTES,
    MAX_IMPORT_RUNS,
    ImportFormatError,
    csv_text,
    history_table,
    load_runs,
    runs_json,
    runs_zip,
)
from lab.serving.imports import scan


@pytest.fixture(scope="module")
def good():
    """One small, valid export as a dict (copied by each test that damages it)."""
    result = train(RunConfig(samples=64, epochs=1, depth=3, width=4))
    return json.loads(runs_json({"good run": result})), result


def _raw(doc) -> bytes:
    return json.dumps(doc).encode()


def _damaged(good, where, value):
    doc = json.loads(json.dumps(good[0]))
    target = doc["runs"][0]
    *path, last = where
    for key in path:
        target = target[key]
    if isinstance(target.get(last), list):
        target[last][0] = value
    else:
        target[last] = value
    return _raw(doc)


@pytest.mark.parametrize("where, value, message", [
    (("layers", "layer"), None, "layer"),
    (("layers", "layer"), 1e18, "outside 1 to"),
    (("layers", "layer"), -5, "layer"),
    (("layers", "epoch"), float("inf"), "epoch"),
    (("history", "step"), "y", "not numeric"),
    (("history", "loss"), True, "not numeric"),
    (("result", "steps_per_epoch"), "y", "steps_per_epoch"),
    (("result", "wall_s"), [1, 2], "wall_s"),
    (("result", "diverged_at"), -1, "diverged_at"),
    (("config",), "relu", "no config"),
    (("config",), {"activation": ["relu"]}, "invalid config"),
])
def test_damaged_fields_get_a_message(good, where, value, message):
    raw = _damaged(good, where, value)
    with pytest.raises(ImportFormatError, match=message):
        load_runs(raw)


def test_deeply_nested_json_is_refused_before_parsing():
    raw = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ImportFormatError, match="nests 100,000 levels"):
        load_runs(raw)


def test_brackets_and_escaped_quotes_inside_names_are_not_nesting(good):
    doc = json.loads(json.dumps(good[0]))
    doc["runs"][0]["run"] = 'a "quoted" [[[[[[[[[[[[[[[[[[[[ {{{{{{{{{{{{{{{{{{{ \\" name'
    loaded = load_runs(_raw(doc))
    assert list(loaded) == [doc["runs"][0]["run"]]


# config.json of an export that lists one run of the default settings (an export's ZIP always has one)
ONE_RUN = json.dumps({"format": 1, "runs": [{"run": "r", "config": {}, "result": {}}]}).encode()


def _zip_with(name: str, data: bytes, method=zipfile.ZIP_DEFLATED, config: bytes = ONE_RUN) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(name, data)
        z.writestr("config.json", config)
    return buf.getvalue()


def _set_flag_and_method(raw: bytes, flag: int | None = None, method: int | None = None) -> bytes:
    """Rewrite the general-purpose flags and compression method in the local and central headers."""
    out = bytearray(raw)
    local = out.find(b"PK\x03\x04")
    central = out.find(b"PK\x01\x02")
    for offset in (local + 6, central + 8):  # flags, then the method, in each header
        if flag is not None:
            out[offset : offset + 2] = struct.pack("<H", flag)
        if method is not None:
            out[offset + 2 : offset + 4] = struct.pack("<H", method)
    return bytes(out)


def test_encrypted_zip_gets_a_message(good):
    raw = _set_flag_and_method(_zip_with("runs.json", _raw(good[0])), flag=0x1)
    with pytest.raises(ImportFormatError, match="encrypted"):
        load_runs(raw)


def test_unknown_compression_method_gets_a_message(good):
    raw = _set_flag_and_method(_zip_with("runs.json", _raw(good[0]), zipfile.ZIP_STORED), method=9)
    with pytest.raises(ImportFormatError, match="compression method"):
        load_runs(raw)


def test_zip_bomb_is_refused_without_expanding_it():
    bomb = _zip_with("runs.json", b" " * (MAX_IMPORT_JSON_BYTES + 2**20))
    assert len(bomb) < 200_000  # small on disk
    start = time.perf_counter()
    with pytest.raises(ImportFormatError, match="expands to"):
        load_runs(bomb)
    assert time.perf_counter() - start < 5.0  # not a benchmark: it must not decompress 65 MB


def test_zip_whose_header_understates_its_size_is_cut_at_the_limit():
    bomb = bytearray(_zip_with("runs.json", b" " * (MAX_IMPORT_JSON_BYTES + 2**20)))
    central = bomb.find(b"PK\x01\x02")
    bomb[central + 24 : central + 28] = struct.pack("<I", 100)  # claim 100 bytes uncompressed
    with pytest.raises(ImportFormatError, match="damaged|expands to more than"):
        load_runs(bytes(bomb))


def test_too_many_runs_are_refused_before_any_is_built(good):
    doc = json.loads(json.dumps(good[0]))
    doc["runs"] = [{"run": f"r{i}", "config": {}} for i in range(60_000)]
    with pytest.raises(ImportFormatError, match=f"60,000 runs; at most {MAX_IMPORT_RUNS}"):
        load_runs(_raw(doc))


def test_a_huge_name_is_refused(good):
    doc = json.loads(json.dumps(good[0]))
    doc["runs"][0]["run"] = "x" * 2**20
    with pytest.raises(ImportFormatError, match="1,048,576 characters"):
        load_runs(_raw(doc))


def test_duplicate_names_are_renamed_not_dropped(good):
    doc = json.loads(json.dumps(good[0]))
    doc["runs"] = [doc["runs"][0], dict(doc["runs"][0]), dict(doc["runs"][0])]
    loaded = load_runs(_raw(doc))
    assert list(loaded) == ["good run", "good run (2)", "good run (3)"]


def test_a_real_export_still_loads_from_json_and_zip(good):
    _, result = good
    for raw in (runs_json({"r": result}).encode(), runs_zip({"r": result})):
        loaded = load_runs(raw)
        pd.testing.assert_frame_equal(loaded["r"].layers, result.layers, check_dtype=False)


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx"])
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(good, name):
    _, result = good
    text = csv_text(history_table({name: result}, with_run=True))
    table = pd.read_csv(io.StringIO(text), skipinitialspace=False, keep_default_na=False)
    assert set(table["run"]) == {"'" + name}
    assert table["loss"].dtype.kind == "f"  # numbers stay numbers (negative ones included)


def test_deflate_stream_error_is_damage_not_a_traceback(good):
    raw = bytearray(_zip_with("runs.json", _raw(good[0])))
    local = raw.find(b"PK\x03\x04")
    start = local + 30 + len("runs.json")
    raw[start : start + 20] = b"\xff" * 20
    with pytest.raises(ImportFormatError, match="^the ZIP file is damaged$"):  # zlib.error, mapped to one sentence
        load_runs(bytes(raw))


# ---- issue 21: what an import's declared runs can hold, and every field of its kind and range ----

ZEROS = b"0" * (62 * 2**20)  # the audit's bomb: runs.json of 62 MB of zeros, deflated to about 60 kB


def _bomb(config: bytes | None, lie: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("runs.json", ZEROS)
        if config is not None:
            z.writestr("config.json", config)
    raw = bytearray(buf.getvalue())
    if lie:  # the central directory claims 100 bytes: only the running cap can tell
        central = raw.find(b"PK\x01\x02")
        raw[central + 24 : central + 28] = struct.pack("<I", 100)
    return bytes(raw)


@pytest.mark.parametrize("config, lie, message", [
    (None, False, "no config.json"),
    ("export", False, "more than the 1 run that its config.json lists can hold"),
    ("export", True, "damaged|expands to more than"),
])
def test_a_zip_of_zeros_is_refused_by_what_its_runs_can_hold_quickly_and_in_little_memory(good, config, lie,
                                                                                          message):
    import tracemalloc

    _, result = good
    listed = None if config is None else zipfile.ZipFile(io.BytesIO(runs_zip({"good run": result}))).read("config.json")
    raw = _bomb(listed, lie)
    assert len(raw) < 100_000
    tracemalloc.start()
    start = time.process_time()
    try:
        with pytest.raises(ImportFormatError, match=message):
            load_runs(raw)
        seconds, peak = time.process_time() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 1.0 and peak < 8 * 2**20, (seconds, peak)  # before: 5-20 s of CPU and 1.3-2.7 GB


def test_runs_that_declare_the_most_still_cannot_make_the_loader_parse_millions_of_values():
    import tracemalloc

    listed = json.dumps({"format": 1, "runs": [{"run": f"r{i}", "config": {"epochs": 100_000, "depth": 500,
                                                                             "width": 8}, "result": {}}
                                               for i in range(MAX_IMPORT_RUNS)]}).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("runs.json", b'{"runs": [' + b"0," * (20 * 2**20) + b"0]}")
        z.writestr("config.json", listed)
    tracemalloc.start()
    try:
        with pytest.raises(ImportFormatError, match="values; at most"):
            load_runs(buf.getvalue())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 80 * 2**20  # the inflated text and the scan's pieces, not 20 million Python objects


def _honest(depth: int, epochs: int, name: str = "deep") -> dict:
    """A run as an export holds it, consistent with its config: every record with every layer."""
    rng = np.random.default_rng(0)
    records = epochs + 1
    history = pd.DataFrame({c: rng.random(records) for c in HISTORY_COLUMNS})
    history["epoch"], history["step"], history["diverged"] = np.arange(records), np.arange(records) * 7, False
    layers = pd.DataFrame({c: rng.random(records * (depth + 1)) for c in LAYER_COLUMNS})
    layers["epoch"] = np.repeat(np.arange(records), depth + 1)
    layers["layer"] = np.tile(np.arange(1, depth + 2), records)
    layers["step"] = layers["epoch"] * 7
    config = RunConfig(depth=depth, width=8, epochs=epochs)
    return {name: RunResult.from_tables(config, history, layers, {"steps_per_epoch": 7, "wall_s": 12.5})}


def test_an_honest_large_export_still_loads():
    runs = {**_honest(100, 200), **_honest(200, 20, "cli depth 200")}  # about 6 MB of JSON
    raw = runs_zip(runs)
    back = load_runs(raw)
    assert list(back) == ["deep", "cli depth 200"]
    for name, r in runs.items():
        pd.testing.assert_frame_equal(back[name].layers, r.layers, check_dtype=False)
        assert back[name].config.depth == r.config.depth


def _reference_scan(text: str) -> tuple[int, int]:
    """Nesting and items of a JSON text, one character at a time."""
    depth = deepest = commas = 0
    inside = escaped = False
    for ch in text:
        if inside:
            escaped, inside = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            inside = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
        elif ch == ",":
            commas += 1
    return deepest, commas + 1


def test_the_scan_in_pieces_agrees_with_reading_one_character_at_a_time():
    import random

    rng = random.Random(21)
    for _ in range(150):
        tokens = [json.dumps("".join(rng.choice('[]{},"\\a') for _ in range(rng.randint(0, 8))))
                  if rng.random() < 0.4 else rng.choice(["[", "]", "{", "}", ",", "0", "12", " "])
                  for _ in range(rng.randint(0, 40))]
        text = "".join(tokens)
        for piece in (1, 3, 2**18):  # runs of backslashes and strings across the pieces' ends
            assert scan(text.encode(), piece) == _reference_scan(text), (text, piece)


TEXT_SETTINGS = ["activation", "init", "dataset", "loss", "optimizer", "norm", "dtype", "data_path", "label"]


@pytest.mark.parametrize("field", TEXT_SETTINGS)
@pytest.mark.parametrize("value", [["relu"], {"a": 1}])
def test_a_list_or_dict_where_text_belongs_is_one_sentence(good, field, value):
    with pytest.raises(ImportFormatError, match=f"^run 'good run' has an invalid config: {field} must be text$"):
        load_runs(_damaged(good, ("config", field), value))


def test_config_json_of_a_zip_is_held_to_the_same_kinds(good):
    _, result = good
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(runs_zip({"good run": result}))) as z, zipfile.ZipFile(buf, "w") as out:
        listed = json.loads(z.read("config.json"))
        listed["runs"][0]["config"]["activation"] = {"relu": 1}
        out.writestr("runs.json", z.read("runs.json"))
        out.writestr("config.json", json.dumps(listed))
    with pytest.raises(ImportFormatError, match="activation must be text"):
        load_runs(buf.getvalue())


@pytest.mark.parametrize("key, value, message", [
    ("steps_per_epoch", 1e300, "steps_per_epoch' is 1e\\+300, more than"),
    ("steps_per_epoch", 10**400, "steps_per_epoch' is inf|steps_per_epoch' must be a number"),
    ("steps_per_epoch", 2.5, "whole number"),
    ("n_train", "many", "n_train"),
    ("n_val", [3], "n_val"),
    ("n_val", -1, "n_val"),
    ("wall_s", 1e300, "wall_s"),
    ("diverged_at", 2.0, "diverged_at' is 2, more than"),  # the run has 1 epoch
    ("diverge_reason", ["why"], "diverge_reason' must be text"),
])
def test_result_fields_are_held_to_their_kind_and_a_sane_range(good, key, value, message):
    with pytest.raises(ImportFormatError, match=message):
        load_runs(_damaged(good, ("result", key), value))


def test_the_largest_accepted_result_fields_can_be_stored(good, tmp_path):
    from lab.store.runstore import open_store

    doc = json.loads(json.dumps(good[0]))
    doc["runs"][0]["result"].update(steps_per_epoch=10**8, n_train=10**9, wall_s=1e9, diverged_at=1)
    (result,) = load_runs(_raw(doc)).values()
    with open_store(tmp_path / "runs.sqlite") as store:
        run_id = store.save(result, "big numbers", "import")
        assert store.load(run_id, with_data=False).steps_per_epoch == 10**8


@pytest.mark.parametrize("where", [("run",), ("config", "data_path"), ("config", "label"),
                                   ("result", "diverge_reason")])
def test_a_lone_surrogate_is_refused_with_a_sentence(good, where):
    doc = json.loads(json.dumps(good[0]))
    target = doc["runs"][0]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = "PLACE"
    raw = _raw(doc).replace(b"PLACE", b"a\\ud800b")  # what json.dumps would never write
    with pytest.raises(ImportFormatError, match="not valid text"):
        load_runs(raw)


def test_tables_must_fit_the_config_they_come_with(good):
    with pytest.raises(ImportFormatError, match="outside 1 to 501|each record the 501 layers"):
        load_runs(_damaged(good, ("config", "depth"), 500))  # the audit's KeyError: 500 on the Train page
    doc = json.loads(json.dumps(good[0]))
    doc["runs"][0]["config"]["epochs"] = 0  # one record at most (and the row of divergence), but it has two
    doc["runs"][0]["history"] = {c: v * 2 for c, v in doc["runs"][0]["history"].items()}
    with pytest.raises(ImportFormatError, match="history table has 4 rows, and a run of its config makes at most 2"):
        load_runs(_raw(doc))


# ---- issue 21 on the pages: an import's settings held to the browser's bounds, every bad file one sentence ----

PAYLOAD = "![x](http://127.0.0.1:9/pixel.png) <img src=http://127.0.0.1:9/pixel.png> [l](javascript:alert(1)) **bold**"


def _with_history(result, rows: list[tuple], diverged_at, reason: str):
    """``result`` with a history of (epoch, loss, diverged) rows, as a run that diverged at ``diverged_at``."""
    history = pd.DataFrame([{**result.history.iloc[0].to_dict(), "epoch": e, "loss": loss, "diverged": d}
                            for e, loss, d in rows])
    return dataclasses.replace(result, history=history, diverged_at=diverged_at, diverge_reason=reason)


@pytest.mark.parametrize("rows, at", [
    ([(0, math.nan, False)], 0),  # nothing finite was recorded
    ([(0, 9e9, False), (0, math.nan, True)], 0),  # exploded at initialization
    ([(0, 0.7, False), (1, math.nan, True)], 1),  # before its second record
    ([(0, 0.7, False), (1, 0.5, False), (2, math.nan, True)], 2),  # after training a while
])
def test_the_learning_curve_caption_never_quotes_a_runs_reason(good, rows, at):
    from lab.report import summaries

    caption = summaries.loss_caption(_with_history(good[1], rows, at, PAYLOAD))
    assert "diverged" in caption.lower() or "Nothing" in caption
    assert "![" not in caption and "<img" not in caption and "javascript" not in caption and "**" not in caption


def _tables(config: RunConfig):
    (run,) = _honest(config.depth, config.epochs).values()
    return run.history, run.layers


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("BACKPROP_LAB_STORE", str(path))
    return path


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]
    return at


def _upload(at, raw: bytes, name: str = "runs.json"):
    return _ok(at.file_uploader(key="import_file").upload(name, raw, "application/json").run())


def test_a_run_beyond_the_browser_opens_in_train_held_to_the_bounds_and_trains_only_through_the_gate(
        store_path, monkeypatch):
    import tracemalloc

    from apptest import app

    from lab.serving import gate

    cli = RunConfig(dataset="blobs", samples=200_000, input_dim=512, depth=200, width=4, epochs=2, batch_size=500)
    at = app("pages/compare.py")
    _upload(at, runs_json({"cli run": RunResult.from_tables(cli, *_tables(cli), {"steps_per_epoch": 320})}).encode())
    _ok(at.switch_page("pages/runs.py").run())
    run_id = at.session_state["stored_ids"]["cli run"]
    _ok(at.multiselect(key="runs_pick").set_value([run_id]).run())
    tracemalloc.start()
    try:
        _ok(at.button(key="runs_open").click().run())  # it goes on to the Train page
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    shown = at.session_state["result"]
    assert shown.config == cli and shown.data is None  # its charts, without making 200,000 x 512 numbers
    assert peak < 300 * 2**20, peak  # before: the data alone was 800 MB
    assert len(at.get("plotly_chart")) >= 3
    notice = " ".join(t.value for t in at.text)
    assert "depth: '200' is above 100" in notice and "samples: '200000' is above 5000" in notice
    assert at.slider(key="w_depth").value == 100 and at.slider(key="w_samples").value == 5000
    assert at.session_state["train_settings"].samples == 5000 and "trainer" not in at.session_state
    _ok(at.switch_page("pages/train.py").run())  # AppTest's next run is on the page the click went to
    _ok(next(b for b in at.main.button if b.label == "Reset").click().run())  # the opened run cannot go on here
    assert any(i.value.startswith("Not started: samples must be between 100 and 5,000") for i in at.info)
    assert "trainer" not in at.session_state
    admitted = []
    monkeypatch.setattr(gate, "admit", lambda work, limits, admit=gate.admit: admitted.append(work) or
                        admit(work, limits))
    _ok(at.sidebar.form_submit_button[0].click().run())  # Train: now the gate prices what the sidebar holds
    trained = at.session_state["result"]
    assert (trained.config.depth, trained.config.samples, trained.config.input_dim) == (100, 5000, 512)
    assert admitted and all(w.configs == (trained.config,) for w in admitted)


def test_a_stored_run_within_the_bounds_opens_with_its_data(store_path):
    from apptest import app

    from lab.store.runstore import open_store

    with open_store(store_path) as store:
        run_id = store.save(train(RunConfig(samples=100, epochs=1, depth=2, width=4)), "small", "cli")
    at = app("pages/runs.py")
    _ok(at.multiselect(key="runs_pick").set_value([run_id]).run())
    _ok(at.button(key="runs_open").click().run())
    assert at.session_state["result"].data is not None  # the theory line, the diagram and the boundary
    assert not [t.value for t in at.text if "go beyond" in t.value]


def _bad(good, change) -> bytes:
    doc = json.loads(json.dumps(good[0]))
    change(doc["runs"][0])
    return _raw(doc).replace(b"SURROGATE", b"\\ud800")


BAD = {
    "a lone surrogate in the name": (lambda run: run.update(run="SURROGATE"), "not valid text"),
    "steps_per_epoch 1e300": (lambda run: run["result"].update(steps_per_epoch=1e300), "steps_per_epoch"),
    "a list for data_path": (lambda run: run["config"].update(data_path=["a.csv"]), "data_path must be text"),
    "a dict for activation": (lambda run: run["config"].update(activation={"relu": 1}), "activation must be text"),
    "depth 500 with 3 layers' tables": (lambda run: run["config"].update(depth=500), "layers"),
}


@pytest.mark.parametrize("what", list(BAD))
def test_a_bad_import_is_an_error_box_not_a_traceback_and_loses_nothing(good, store_path, what):
    from apptest import app

    change, message = BAD[what]
    at = app("pages/compare.py")
    _upload(at, runs_json({"mine": good[1]}).encode(), "mine.json")
    _upload(at, _bad(good, change), "bad.json")
    assert any("cannot be loaded" in e.value for e in at.error)
    assert message in " ".join(t.value for t in at.text)
    assert list(at.session_state["runs"]) == ["mine"]
    for page in ("pages/runs.py", "pages/compare.py", "pages/train.py", "pages/compare.py"):  # every later visit
        _ok(at.switch_page(page).run())
    assert list(at.session_state["runs"]) == ["mine"]
