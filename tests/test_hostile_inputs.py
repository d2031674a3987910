"""Untrusted input read with bounded effort (issue 21): every bad file or setting gets one sentence, exit
status 2 on the command line and an error box in the app, never a traceback."""
import dataclasses
import json
import os
import re
import tracemalloc

import pytest
from test_cli_hostile import FAST, _one_line_error

from lab.cli.main import main
from lab.data.datasets import MAX_COLUMNS, MAX_FEATURES, DataError, csv_columns, read_csv_table
from lab.engine.config import MAY_BE_UNSET, TEXT_FIELDS, RunConfig
from lab.engine.settings import SETTINGS, Choice, ConfigError, Interval

WIDE_COLUMNS = 10**6  # a 7.9 MB header: pandas took 62 s and 3.2 GB to read it, the app 2 minutes and 6 GB


# ---------------------------------------------------------------- the CSV header's column limit

def _header(n_columns: int) -> bytes:
    return (",".join(f"c{i}" for i in range(n_columns - 1)) + ",label\n").encode()


@pytest.fixture(scope="module")
def wide() -> bytes:
    return _header(WIDE_COLUMNS)


def _limit_message(columns: int) -> str:
    return f"the header has {columns:,} columns; the limit is {MAX_COLUMNS:,} ({MAX_FEATURES:,} features and the label)"


@pytest.mark.parametrize("reader", ["csv_columns", "read_csv_table"])
def test_a_header_of_a_million_columns_is_refused_by_its_count_in_little_memory(wide, reader):
    """Both readers count the header's commas before anything else parses it: no string per column."""
    read = csv_columns if reader == "csv_columns" else lambda data: read_csv_table(data, "label")
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as info:
            read(wide)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == _limit_message(WIDE_COLUMNS)
    assert peak < 2**20, f"{peak:,} bytes traced for a {len(wide):,}-byte header"


def test_the_column_limit_is_the_engines_input_dimension_and_the_label():
    assert MAX_FEATURES == SETTINGS["input_dim"].high and MAX_COLUMNS == MAX_FEATURES + 1
    rows = "".join(",".join([str(r)] * MAX_FEATURES) + f",{r % 2}\n" for r in range(4))
    X, y, names, classes = read_csv_table(_header(MAX_COLUMNS) + rows.encode(), "label")
    assert X.shape == (4, MAX_FEATURES) and len(csv_columns(_header(MAX_COLUMNS))) == MAX_COLUMNS
    for data in (_header(MAX_COLUMNS + 1),
                 b",".join(b'"c,%d"' % i for i in range(MAX_COLUMNS + 1)) + b"\n"):  # quoted names with commas
        with pytest.raises(DataError) as info:
            csv_columns(data)
        assert str(info.value) == _limit_message(MAX_COLUMNS + 1)


def test_a_quoted_header_is_counted_within_a_bounded_length():
    names = b",".join(b'"c%d"' % i for i in range(300_000)) + b"\n"  # 2.5 MB: counted on its first megabyte
    with pytest.raises(DataError, match=rf"^the header has at least [\d,]+ columns; the limit is {MAX_COLUMNS:,}"):
        csv_columns(names)
    with pytest.raises(DataError, match=r"^the header is longer than 1\.0 MB, the limit$"):
        csv_columns(b'label,"' + b"x" * 2**20 + b'"\n1,2\n')


def test_the_command_line_refuses_the_wide_header_in_one_line(tmp_path, capsys, wide):
    path = tmp_path / "wide.csv"
    path.write_bytes(wide)
    _one_line_error(capsys, ["train", "--data", str(path), "--label", "label", "--out", str(tmp_path / "o")],
                    _limit_message(WIDE_COLUMNS))


# ---------------------------------------------------------------- malformed CSV files: one sentence each

BAD_CSVS = {
    # case: (content, the DataError's message, from its start)
    "row longer than the header": (b"a,b,label\n1,2,0\n1,2,a,9,9\n3,4,1\n", "line 3 has 5 fields; the header has 3"),
    "first row longer": (b"a,b,label\n1,2,a,9,9\n3,4,1\n", "line 2 has 5 fields; the header has 3"),
    # pandas made an index of the extra first field and shifted every column: this trained, on the wrong columns
    "every row one longer": (b"a,b,label\n0,1,2,0\n1,3,4,1\n2,5,6,0\n", "line 2 has 4 fields; the header has 3"),
    "row shorter than the header": (b"a,b,label\n1,2,0\n3,4\n5,6,1\n", "line 3 has 2 fields; the header has 3"),
    "ragged after a quoted newline": (b'a,b,label\n1,2,"x\ny"\n1,2\n', "line 4 has 2 fields; the header has 3"),
    "non-numeric cell": (b'a,b,label\n\n1,2,"x\ny"\n3,oops,z\n', "column 'b' is not numeric (line 5: 'oops')"),
    "long non-numeric cell": (b"a,label\n" + b"x" * 10_000 + b",0\n1,1\n", "column 'a' is not numeric (line 2: 'xxx"),
    "a 400-digit number": (b"a,label\n1,0\n" + b"9" * 400 + b",1\n", "column 'a' holds inf on line 3"),
    "boolean column": (b"a,b,label\n1,True,0\n2,False,1\n", "column 'b' is not numeric (it holds True and False)"),
    "empty file": (b"", "the file is empty"),
    "only blank lines": (b" \n\t\r\n\n", "the file is empty"),
    "only a header": (b"a,b,label\n\n", "the file has a header but no rows"),
    "UTF-16": ("a,label\n1,0\n2,1\n".encode("utf-16"), "the file is UTF-16 text; save it as UTF-8"),
    "NUL byte past the start": (b"a,b,label\n" + b"1,2,0\n" * 1000 + b"3,4\x00,1\n", "this is not a CSV file"),
    "Latin-1 byte": ("a,label\n1,x\n2,é\n".encode("latin-1"), "line 3 is not UTF-8 text (byte 0xe9); save the file as UTF-8"),
    "quote never closed": (b'a,b,label\n1,2,0\n3,4,"x\n5,6,1\n', "the quoted field that starts on line 3 is never closed"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_a_malformed_csv_is_one_sentence(case):
    content, message = BAD_CSVS[case]
    with pytest.raises(DataError) as info:
        read_csv_table(content, "label")
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text and len(text) < 200, text
    try:
        csv_columns(content)  # the label picker: columns, or the same kind of sentence
    except DataError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_the_command_line_says_the_same_sentence(tmp_path, capsys, case):
    content, message = BAD_CSVS[case]
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    _one_line_error(capsys, ["train", *FAST, "--data", str(path), "--label", "label", "--out", str(tmp_path / "o")],
                    f"python -m lab: error: {message}")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content, classes", [
    (b"\xef\xbb\xbfa,label\n1,x\n2,y\n", ("x", "y")),  # a byte-order mark before the header
    (b'a,label\n1,"x\ny"\n2,z\n', ("x\ny", "z")),  # a quoted newline in a label
    (b"a,label\r\n1,x\r\n2,y\r\n", ("x", "y")),
    (b"a,label\r1,x\r2,y\r", ("x", "y")),
    (b"\n\na,label\n\n1,x\n   \n2,y\n", ("x", "y")),  # blank lines, as pandas skips them
])
def test_well_formed_variants_still_load(content, classes):
    X, _, names, got = read_csv_table(content, "label")
    assert names == ("a",) and got == classes and X.tolist() == [[1.0], [2.0]]
    assert csv_columns(content) == ["a", "label"]


# ---------------------------------------------------------------- the Train page

@pytest.mark.parametrize("content, expected", [
    (BAD_CSVS["first row longer"][0], "line 2 has 5 fields; the header has 3"),
    (BAD_CSVS["row longer than the header"][0], "line 3 has 5 fields; the header has 3"),
])
def test_a_ragged_upload_gets_an_error_box(content, expected):
    pytest.importorskip("streamlit")
    from apptest import app

    from lab import RunConfig

    at = app("pages/train.py", RunConfig(samples=200, epochs=3, depth=3, width=8))
    at.sidebar.file_uploader[0].upload("data.csv", content, "text/csv").run()
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join([e.value for e in at.error] + [t.value for t in at.text])
    assert "cannot be used" in shown and expected in shown


def test_a_wide_upload_is_refused_before_the_label_picker(wide):
    pytest.importorskip("streamlit")
    from apptest import app

    at = app("pages/train.py")
    at.sidebar.file_uploader[0].upload("wide.csv", wide, "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(_limit_message(WIDE_COLUMNS) in e.value for e in at.error)
    assert at.selectbox(key="w_dataset").value != "csv"


# ---------------------------------------------------------------- config.json values of the wrong type

WRONG = {"list": ["relu"], "dict": {"a": 1}, "bool": True, "null": None, "text": "0.1", "huge int": 10**400,
         "NaN": float("nan")}  # json.dumps writes NaN, which json.loads reads back


def _fits(field, value) -> bool:
    """True where ``value`` is of a right type for ``field`` (these are not wrong)."""
    constraint = SETTINGS.get(field)
    if isinstance(value, bool):
        return isinstance(constraint, Choice) and constraint.options == (True, False)
    if value is None:
        return field in (*MAY_BE_UNSET, *TEXT_FIELDS)
    return isinstance(value, str) and field in TEXT_FIELDS


WRONGLY_TYPED = [(f.name, kind) for f in dataclasses.fields(RunConfig) for kind, value in WRONG.items()
                 if not _fits(f.name, value)]


def _sentence_naming(message: str, field: str) -> None:
    assert "\n" not in message and len(message) < 300 and re.search(rf"\b{field}\b", message), message


@pytest.mark.parametrize("field, kind", WRONGLY_TYPED)
def test_a_wrongly_typed_setting_is_one_sentence_naming_it(field, kind):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({field: WRONG[kind]})
    _sentence_naming(str(info.value), field)


@pytest.mark.parametrize("field, kind", WRONGLY_TYPED)
def test_config_file_with_a_wrongly_typed_setting_exits_2(tmp_path, capsys, field, kind):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"format": 1, "config": {field: WRONG[kind]}}))
    err = _one_line_error(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "o")], "error: ")
    _sentence_naming(err, field)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", [n for n, c in SETTINGS.items() if isinstance(c, Interval)])
def test_text_is_not_a_number_for_any_numeric_setting(name):
    """'"depth": "3"' was refused while '"noise": "0.1"' was read as 0.1: now neither is."""
    with pytest.raises(ConfigError, match=rf"^{name} must be (a whole number|a number)"):
        RunConfig.from_dict({name: "1"})


@pytest.mark.parametrize("name", [n for n, c in SETTINGS.items() if isinstance(c, Interval)])
def test_a_bool_is_not_a_number(name):
    with pytest.raises(ConfigError, match=rf"^{name} must be (a whole number|a number).*not True$"):
        RunConfig.from_dict({name: True})


def test_the_right_types_still_pass():
    config = RunConfig.from_dict({"lr": 1, "noise": None, "gain": "auto", "standardize": False, "seed": 3,
                                  "dataset": "csv", "data_path": "x.csv", "label": "kind", "init": "kaiming_normal"})
    assert config.lr == 1.0 and isinstance(config.lr, float) and config.gain == "auto"
    assert config.init == "he_normal" and config.standardize is False
    with pytest.raises(ConfigError, match="^standardize must be one of True, False; got 1$"):
        RunConfig.from_dict({"standardize": 1})


def test_the_command_line_still_turns_its_text_into_numbers(tmp_path):
    """argparse hands --gain over as text ('auto' or a number); the other options are typed by argparse."""
    for gain in ("auto", "1.5"):
        assert main(["train", *FAST, "--gain", gain, "--no-store", "--out", str(tmp_path / gain)]) == 0
        written = json.loads((tmp_path / gain / "config.json").read_text())["config"]
        assert written["gain"] == ("auto" if gain == "auto" else 1.5) and written["lr"] == 0.003
    assert main(["compare", *FAST, "--gain", "0.5", "2", "--no-store", "--out", str(tmp_path / "c")]) == 0


# ---------------------------------------------------------------- --out, checked before any training

@pytest.fixture
def no_training(monkeypatch):
    """train and compare must refuse --out before they train: training fails the test."""
    import lab.engine.training

    def train(*args, **kwargs):
        raise AssertionError("trained before --out was refused")

    monkeypatch.setattr(lab.engine.training, "train", train)


@pytest.mark.parametrize("command", [["train"], ["compare", "--seed", "1", "2"]])
def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch, no_training, command):
    """Path("") is the current directory: --out "" wrote the run there."""
    monkeypatch.chdir(tmp_path)
    for out in ("", "  "):
        _one_line_error(capsys, [*command, *FAST, "--out", out], "--out needs a directory name")
    assert list(tmp_path.iterdir()) == []


def test_an_out_under_a_file_is_refused_before_training(tmp_path, capsys, no_training):
    """As --out /etc/hostname/x: refused only after training, when the run could not be written."""
    a_file = tmp_path / "hostname"
    a_file.write_text("keep me")
    for out in (a_file / "x", a_file / "x" / "y"):
        _one_line_error(capsys, ["train", *FAST, "--out", str(out)], f"--out {out} cannot be made: {a_file} is a file")
    assert a_file.read_text() == "keep me"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc")
def test_an_out_where_no_file_can_be_made_is_refused_before_training(capsys, no_training):
    """/proc takes no new files, even from root, whose permission bits would say yes."""
    _one_line_error(capsys, ["train", *FAST, "--out", "/proc/backprop-lab/x"],
                    "--out /proc/backprop-lab/x cannot be written (/proc: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only directory")
def test_an_out_in_a_read_only_directory_is_refused_before_training(tmp_path, capsys, no_training):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        _one_line_error(capsys, ["train", *FAST, "--out", str(read_only / "run")],
                        f"cannot be written ({read_only}: Permission denied)")
    finally:
        read_only.chmod(0o755)


def test_a_new_nested_out_is_still_made(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    assert main(["train", *FAST, "--no-store", "--out", str(out)]) == 0
    assert (out / "layers.csv").is_file()
