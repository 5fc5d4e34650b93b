"""The chunked reader: line numbers, chunk boundaries, file-level errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import SourceError
from ingest.source import csvstream
from ingest.source.csvstream import read_chunks


async def _records(path: Path, chunk_size: int) -> list[tuple[int, list[str], str]]:
    with anyio.fail_after(10):
        return [
            r async for chunk in read_chunks(path, chunk_size=chunk_size) for r in chunk.records
        ]


@pytest.mark.anyio
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 16, 1 << 18])
async def test_line_numbers_with_crlf_and_quoted_newlines(tmp_path: Path, chunk_size: int) -> None:
    text = 'h1,h2\r\na,"x\r\ny"\r\n\r\nb,"1\n2\n3"\nc,d'
    p = tmp_path / "f.csv"
    p.write_bytes(text.encode())
    got = await _records(p, chunk_size)
    assert [(line, cells) for line, cells, _ in got] == [
        (1, ["h1", "h2"]),
        (2, ["a", "x\r\ny"]),
        (4, []),
        (5, ["b", "1\n2\n3"]),
        (8, ["c", "d"]),
    ]


@pytest.mark.anyio
async def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        await _records(tmp_path / "nope.csv", 10)
    with pytest.raises(SourceError, match="is a folder"):
        await _records(tmp_path, 10)


@pytest.mark.anyio
async def test_runaway_quote_is_a_file_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvstream, "MAX_RECORD_CHARS", 1000)
    p = tmp_path / "f.csv"
    p.write_text('a,b\n1,"open\n' + "x,y\n" * 2000)
    with pytest.raises(SourceError, match=r"line 2: a record runs over .*closing quote"):
        await _records(p, 256)


def test_bad_text() -> None:
    assert csvstream.bad_text("fine") == ""
    assert csvstream.bad_text("a\udcff") == "is not valid UTF-8 (byte 0xff at character 2)"
    assert csvstream.bad_text("a\x00") == "contains a NUL byte (at character 2)"


@pytest.mark.anyio
async def test_matches_csv_module_on_writer_output(tmp_path: Path) -> None:
    rows = [["a", "b,c", 'd"e', "f\ng", "", "h\r\ni"] for _ in range(300)]
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    p = tmp_path / "f.csv"
    p.write_text(buf.getvalue(), newline="")
    got = await _records(p, 97)
    assert [cells for _, cells, _ in got] == rows
    assert [line for line, _, _ in got] == list(range(1, 901, 3))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(alphabet='ab,"\r\n é', max_size=120),
    st.integers(min_value=1, max_value=40),
)
def test_any_chunking_reads_what_one_pass_over_the_whole_text_reads(
    tmp_path: Path, text: str, chunk_size: int
) -> None:
    # one pass of the csv module over the whole text, open quote at the end included
    expected, _, _ = csvstream._parse_final(text, 1)
    p = tmp_path / "f.csv"
    p.write_bytes(text.encode())
    got = anyio.run(_records, p, chunk_size)
    assert got == expected
