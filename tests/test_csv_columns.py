"""The uploaded CSV's header, read for the Train page's label picker (lab.data.datasets.csv_columns)."""
import pytest

from lab.data.datasets import DataError, csv_columns


def test_header_names_in_order():
    assert csv_columns(b"x1,x2,species\n1,2,setosa\n") == ["x1", "x2", "species"]
    assert csv_columns(b"a,a\n") == ["a", "a.1"]  # pandas' names for a repeated column


@pytest.mark.parametrize("data, message", [
    (b"", r"^the file is empty$"),
    (b"\n\n", r"^the file is empty$"),
    (b"\xff\xfe,a\n", r"^the file is UTF-16 text; save it as UTF-8$"),
    (b"a,\xe9\n", r"^line 1 is not UTF-8 text \(byte 0xe9\); save the file as UTF-8$"),
    (b'a,"b\n', r"^the quoted field that starts on line 1 is never closed$"),
])
def test_an_unreadable_header_raises_data_error_naming_why(data, message):
    with pytest.raises(DataError, match=message):
        csv_columns(data)


def test_other_errors_are_not_hidden():
    with pytest.raises(TypeError):
        csv_columns("x1,x2\n")  # text, not bytes: a caller's bug, not the user's file
