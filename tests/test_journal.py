"""The resume journal: round trip, torn lines, fingerprints, memory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import JournalError
from ingest.journal import Bitmap, Journal, default_state_path

TARGET: dict[str, Any] = {
    "base": "http://127.0.0.1:1",
    "user_id": "u",
    "app_id": "a",
    "dataset_id": None,
}


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("url,left_col,top_row,right_col,bottom_row\n" + "x,,,,\n" * 50)
    return path


def test_default_path_is_beside_the_csv(tmp_path: Path) -> None:
    assert default_state_path(tmp_path / "d.csv") == tmp_path / "d.csv.ingest-state"


def test_round_trip_skips_recorded_lines(csv_path: Path) -> None:
    with Journal.open(csv_path, target=TARGET) as j:
        assert j.resumed == 0
        for line in (5, 2, 3, 4, 9):
            j.add(line)
        j.flush()
        j.add(40)
    again = Journal.open(csv_path, target=TARGET)
    try:
        assert again.resumed == 6
        assert [n for n in range(60) if again.skip(n)] == [2, 3, 4, 5, 9, 40]
    finally:
        again.close()
    lines = again.path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "ingest-journal" and header["target"] == TARGET
    assert lines[1:] == ["2-5 9", "40"]  # ranges keep the file small


def test_appending_after_resume_keeps_old_lines(csv_path: Path) -> None:
    with Journal.open(csv_path, target=TARGET) as j:
        j.add(2)
    with Journal.open(csv_path, target=TARGET) as j:
        j.add(3)
    with Journal.open(csv_path, target=TARGET) as j:
        assert j.skip(2) and j.skip(3) and j.resumed == 2


def test_torn_last_line_is_ignored_and_truncated(csv_path: Path) -> None:
    with Journal.open(csv_path, target=TARGET) as j:
        j.add(2)
        j.add(3)
    path = default_state_path(csv_path)
    with path.open("ab") as fh:
        fh.write(b"7 8-1")  # killed mid-write: no newline
    with Journal.open(csv_path, target=TARGET) as j:
        assert j.resumed == 2 and not j.skip(7)
        j.add(10)
    assert path.read_text().splitlines()[1:] == ["2-3", "10"]


def test_damaged_last_line_is_ignored(csv_path: Path) -> None:
    with Journal.open(csv_path, target=TARGET) as j:
        j.add(2)
    path = default_state_path(csv_path)
    with path.open("ab") as fh:
        fh.write(b"\x00\x00garbage\n")
    with Journal.open(csv_path, target=TARGET) as j:
        assert j.resumed == 1


def test_header_torn_means_start_afresh(csv_path: Path) -> None:
    path = default_state_path(csv_path)
    path.write_bytes(b'{"format": "ingest-jou')
    with Journal.open(csv_path, target=TARGET) as j:
        assert j.resumed == 0
    assert json.loads(path.read_text().splitlines()[0])["format"] == "ingest-journal"


def test_changed_csv_is_refused_with_a_way_out(csv_path: Path) -> None:
    with Journal.open(csv_path, target=TARGET) as j:
        j.add(2)
    with csv_path.open("a") as fh:
        fh.write("y,,,,\n")
    with pytest.raises(JournalError, match=r"changed since.*size.*--restart") as info:
        Journal.open(csv_path, target=TARGET)
    assert str(csv_path) in str(info.value)
    with Journal.open(csv_path, target=TARGET, restart=True) as j:
        assert j.resumed == 0 and not j.skip(2)


def test_same_size_edit_is_noticed(csv_path: Path) -> None:
    with Journal.open(csv_path, target=TARGET) as j:
        j.add(2)
    text = csv_path.read_text()
    csv_path.write_text(text.replace("x,", "z,", 1))
    with pytest.raises(JournalError, match="content differs"):
        Journal.open(csv_path, target=TARGET)


def test_touched_csv_is_noticed(csv_path: Path) -> None:
    with Journal.open(csv_path, target=TARGET):
        pass
    st = csv_path.stat()
    os.utime(csv_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(JournalError, match="modified"):
        Journal.open(csv_path, target=TARGET)


def test_other_target_is_refused(csv_path: Path) -> None:
    with Journal.open(csv_path, target=TARGET):
        pass
    other = {**TARGET, "app_id": "b"}
    with pytest.raises(JournalError, match=r"app 'a'.*not to.*app 'b'.*--restart"):
        Journal.open(csv_path, target=other)


def test_target_never_holds_the_token(csv_path: Path) -> None:
    from ingest.config import Config

    config = Config(pat="secret-token-123", user_id="u", app_id="a", base="http://h:1")
    with Journal.open(csv_path, target=Journal.target_of(config)) as j:
        j.add(2)
    assert "secret-token-123" not in default_state_path(csv_path).read_text()


def test_not_a_journal_is_refused(csv_path: Path) -> None:
    default_state_path(csv_path).write_text("hello\n")
    with pytest.raises(JournalError, match="not an ingest journal"):
        Journal.open(csv_path, target=TARGET)


def test_custom_state_path(csv_path: Path, tmp_path: Path) -> None:
    where = tmp_path / "sub" / "state"
    with Journal.open(csv_path, target=TARGET, state_path=where) as j:
        j.add(3)
    assert where.exists() and not default_state_path(csv_path).exists()


def test_bitmap_of_five_million_rows_stays_small() -> None:
    bits = Bitmap()
    for n in range(0, 5_000_000, 3):
        bits.add(n)
    assert bits.count == len(range(0, 5_000_000, 3))
    assert sys.getsizeof(bits) < 1_000_000  # about 625 KB, growth slack included
    assert 4_999_998 in bits and 4_999_999 not in bits and -1 not in bits
    bits.add(3)  # already there: counted once
    assert bits.count == len(range(0, 5_000_000, 3))


def test_large_journal_loads_compactly(csv_path: Path) -> None:
    path = default_state_path(csv_path)
    with Journal.open(csv_path, target=TARGET) as j:
        for start in range(2, 1_000_002, 1000):
            for line in range(start, start + 999):  # one row in 1000 missing
                j.add(line)
            j.flush()
    with Journal.open(csv_path, target=TARGET) as j:
        assert j.resumed == 999_000
        assert j.skip(2) and not j.skip(1001) and j.skip(1002)
        assert sys.getsizeof(j.done) < 200_000
    assert path.stat().st_size < 30_000
