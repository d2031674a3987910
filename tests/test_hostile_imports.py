"""The import box treats a file as untrusted: every hostile file gets a message, cheaply, and changes nothing."""
import io
import json
import struct
import time
import zipfile
import zlib

import pandas as pd
import pytest

from lab import RunConfig, train
from lab.export import (
    MAX_IMPORT_JSON_BYTES,
    MAX_IMPORT_RUNS,
    ImportFormatError,
    csv_text,
    history_table,
    load_runs,
    runs_json,
    runs_zip,
)


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


def _zip_with(name: str, data: bytes, method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(name, data)
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
    with pytest.raises(ImportFormatError):
        load_runs(bytes(raw))
    assert zlib  # the error class the loader maps
