"""The failures file: streamed, replaces an old one, and reads back as exactly those rows."""

from __future__ import annotations

import csv
from pathlib import Path

import anyio
import pytest

from ingest.failures import FailuresWriter, default_failures_path
from ingest.model import InvalidRow, Row, Status
from ingest.source import open_rows

pytestmark = pytest.mark.anyio

DATA = """\
url,left_col,top_row,right_col,bottom_row,pos_concepts,neg_concepts,metadata,extra
https://e.com/1.jpg,0.1,0.1,0.5,0.5,cat|dog,,"{""a"": 1}",x
https://e.com/broken-2.jpg,0.2,0.2,0.6,"0.6",car,bike,,"multi
line"
https://e.com/3.jpg,0.5,0.1,0.4,0.2,cat,,,
https://e.com/4.jpg,,,,,tree,,"{""b"": [1, 2]}",
"""


def test_default_path(tmp_path: Path) -> None:
    assert default_failures_path(tmp_path / "d.csv") == tmp_path / "d.failures.csv"
    assert default_failures_path(tmp_path / "d.CSV") == tmp_path / "d.failures.csv"
    assert default_failures_path(tmp_path / "d") == tmp_path / "d.failures.csv"


async def read_all(path: Path) -> tuple[list[str], list[Row | InvalidRow]]:
    with anyio.fail_after(10):
        async with open_rows(path) as rows:
            items = [item async for item in rows]
            return list(rows.columns), items


async def test_round_trip_yields_exactly_the_failed_rows(tmp_path: Path) -> None:
    from ingest.model import Outcome

    source = tmp_path / "data.csv"
    source.write_text(DATA, encoding="utf-8")
    columns, items = await read_all(source)
    by_line = {item.line: item for item in items}
    assert isinstance(by_line[5], InvalidRow)  # left > right
    failed = [
        Outcome(line=3, status=Status.FAILED, error="download failed:\n404", raw=by_line[3].raw),
        Outcome(line=5, status=Status.FAILED, error=by_line[5].message(), raw=by_line[5].raw),
    ]
    out = default_failures_path(source)
    with FailuresWriter(out, columns) as writer:
        for outcome in failed:
            writer.write(outcome)
        writer.flush()
        assert writer.written and writer.count == 2

    with out.open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert [r["line"] for r in table] == ["3", "5"]
    assert table[0]["error"] == "download failed: 404"  # one line per error
    assert table[0]["extra"] == "multi\nline"  # unknown columns kept

    # fed back to the reader: the same rows, with the same cells
    again_columns, again = await read_all(out)
    assert again_columns == [*columns, "line", "error"]
    assert len(again) == 2
    first, second = again
    assert isinstance(first, Row) and isinstance(by_line[3], Row)
    assert (first.url, first.box, first.pos_concepts, first.neg_concepts) == (
        by_line[3].url,
        by_line[3].box,
        by_line[3].pos_concepts,
        by_line[3].neg_concepts,
    )
    assert first.input_id == by_line[3].input_id
    assert first.annotation_id == by_line[3].annotation_id
    assert isinstance(second, InvalidRow) and second.column == by_line[5].column  # type: ignore[union-attr]


def test_retrying_a_failures_file_replaces_line_and_error(tmp_path: Path) -> None:
    from ingest.model import Outcome

    first = tmp_path / "f1.csv"
    with FailuresWriter(first, ["url", "left_col"]) as w:
        w.write(Outcome(line=7, status=Status.FAILED, error="e1", raw={"url": "u", "left_col": ""}))
    columns = header_of(first)
    second = tmp_path / "f2.csv"
    with FailuresWriter(second, columns) as w:
        w.write(Outcome(line=2, status=Status.FAILED, error="e2", raw={"url": "u", "line": "7"}))
    assert second.read_text().splitlines() == ["url,left_col,line,error", "u,,2,e2"]


def header_of(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return next(csv.reader(fh))


def test_nothing_failed_removes_a_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "d.failures.csv"
    out.write_text("old\n")
    with FailuresWriter(out, ["url"]) as w:
        assert not w.written
    assert not out.exists()


def test_interrupted_run_keeps_an_old_file(tmp_path: Path) -> None:
    out = tmp_path / "d.failures.csv"
    out.write_text("old\n")
    w = FailuresWriter(out, ["url"])
    w.close(remove_stale=False)
    assert out.read_text() == "old\n"


def test_old_file_is_replaced_at_the_first_failure(tmp_path: Path) -> None:
    from ingest.model import Outcome

    out = tmp_path / "d.failures.csv"
    out.write_text("url,line,error\nold,9,old\n")
    with FailuresWriter(out, ["url"]) as w:
        w.write(Outcome(line=3, status=Status.FAILED, error="new", raw={"url": "a"}))
    assert out.read_text().splitlines() == ["url,line,error", "a,3,new"]
