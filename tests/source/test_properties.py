"""Property tests: arbitrary bytes never crash the reader; valid rows round-trip."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import SourceError
from ingest.model import InvalidRow, Row
from ingest.source.csvfile import CsvSource

HEADER = ["url", "left_col", "top_row", "right_col", "bottom_row", "pos_concepts", "metadata"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(data: bytes, chunk_size: int) -> tuple[list[Row | InvalidRow], str | None]:
    """Read ``data`` as a CSV file; (items, file-level error)."""

    async def go(path: Path) -> tuple[list[Row | InvalidRow], str | None]:
        try:
            async with CsvSource(path, chunk_size=chunk_size) as src:
                return [i async for i in src], None
        except SourceError as exc:  # MissingColumnError included
            return [], str(exc)

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.csv"
        p.write_bytes(data)
        return asyncio.run(go(p))


_pieces = st.sampled_from(
    [
        b",",
        b'"',
        b"\n",
        b"\r\n",
        b"\r",
        b"\x00",
        b"\xff",
        b"\xef\xbb\xbf",
        b"0.5",
        b"nan",
        b"https://x/a",
        b"{}",
        b"[",
        b"|",
        b" ",
        b"\xc3\xa9",
        b"\xe2\x82",
    ]
)
_header = (",".join(HEADER) + "\n").encode()


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from([1, 5, 64, 4096]))
def test_arbitrary_bytes_never_crash(data: bytes, chunk_size: int) -> None:
    items, _ = _run(data, chunk_size)
    assert all(isinstance(i, (Row, InvalidRow)) for i in items)


@SETTINGS
@given(st.lists(st.one_of(_pieces, st.binary(max_size=8)), max_size=60), st.sampled_from([3, 64]))
def test_csv_like_bytes_under_a_header_never_crash(parts: list[bytes], chunk_size: int) -> None:
    items, error = _run(_header + b"".join(parts), chunk_size)
    assert error is None
    for item in items:
        assert isinstance(item, (Row, InvalidRow))
        if isinstance(item, InvalidRow):
            assert item.line >= 2 and item.reason
        # Whatever came through is clean text that protobuf can encode.
        for value in item.raw.values() if isinstance(item, Row) else ():
            value.encode("utf-8")


_concept = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_-", min_size=1, max_size=12)
_unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def _rows(draw: st.DrawFn) -> dict[str, object]:
    a, b = sorted(draw(st.lists(_unit, min_size=2, max_size=2, unique=True)))
    c, d = sorted(draw(st.lists(_unit, min_size=2, max_size=2, unique=True)))
    url = "https://img.example/" + draw(st.text(alphabet='abc/\n",é', max_size=15)).replace(
        "\n", "%0A"
    ).replace(" ", "")
    box = draw(st.booleans())
    return {
        "url": url,
        "box": (a, c, b, d) if box else None,
        "pos": tuple(draw(st.lists(_concept, max_size=4, unique=True))),
        "metadata": draw(st.none() | st.dictionaries(st.text(max_size=8), _json, max_size=4)),
        "lead": draw(st.sampled_from(["", "\n", "line1\nline2"])),
    }


@SETTINGS
@given(st.lists(_rows(), min_size=1, max_size=25), st.sampled_from([7, 50, 1 << 18]))
def test_valid_rows_round_trip(rows: list[dict[str, object]], chunk_size: int) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*HEADER, "note"])
    expected_lines = []
    line = 2
    for r in rows:
        box = r["box"]
        cells = [r["url"]]
        cells += [repr(v) for v in box] if isinstance(box, tuple) else ["", "", "", ""]
        cells.append("|".join(r["pos"]))  # type: ignore[arg-type]
        cells.append("" if r["metadata"] is None else json.dumps(r["metadata"]))
        cells.append(r["lead"])  # an extra column with embedded newlines
        w.writerow(cells)
        expected_lines.append(line)
        line += 1 + str(r["lead"]).count("\n") + sum(str(c).count("\n") for c in cells[:-1])
    items, error = _run(buf.getvalue().encode(), chunk_size)
    assert error is None
    assert len(items) == len(rows)
    for item, r, want_line in zip(items, rows, expected_lines, strict=True):
        assert isinstance(item, Row), item
        assert item.line == want_line
        assert item.url == r["url"]
        box = r["box"]
        if isinstance(box, tuple):
            assert item.box is not None
            got = (item.box.left, item.box.top, item.box.right, item.box.bottom)
            assert all(
                math.isclose(x, y, rel_tol=0, abs_tol=0) for x, y in zip(got, box, strict=True)
            )
        else:
            assert item.box is None
        assert item.pos_concepts == r["pos"]
        assert item.metadata == r["metadata"]
        assert item.raw["note"] == r["lead"]
