"""The bad-input corpus, uploaded: each bad row is reported with its exact message
(line and column), and the valid rows of the same file land as the file says.

What the sandbox stores is checked against an expectation read from each file apart from
ingest: Python's ``csv`` module over the file's physical lines, every row whose line
expected.json does not name as invalid taken as written (its URL or the bytes of its
file, box, labels, metadata, input id), compared by content, never by ids ingest
derived.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TypedDict

import anyio
import pytest
from google.protobuf.json_format import MessageToDict

from benchmarks.data import box_key
from ingest import Ingester, IngestError, Status
from ingest.sandbox import Sandbox, SandboxOptions
from tests.helpers import sandbox_config

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).parent / "source" / "corpus"


class Expected(TypedDict, total=False):
    """One entry of expected.json: either ``error``, or ``invalid`` messages and ``valid`` count."""

    error: str
    invalid: list[str]
    valid: int


EXPECTED: dict[str, Expected] = json.loads((CORPUS / "expected.json").read_text())

LINE = re.compile(r"line (\d+)[,:]")

Image = str | bytes
"""An image as the sandbox stores it: its URL, or the bytes of a local file."""
Box = tuple[tuple[float, float, float, float], frozenset[str], frozenset[str]]


def rows_as_written(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Each data row with the physical line it starts on, read by :mod:`csv` (a UTF-8 byte
    order mark dropped, undecodable bytes kept as they are, blank lines skipped)."""
    text = path.read_bytes().decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    out = []
    ended = 0
    for cells in reader:
        start, ended = ended + 1, reader.line_num
        if not cells:
            continue
        if header is None:
            header = cells
            continue
        out.append((start, dict(zip(header, cells, strict=False))))
    return out


class Holds:
    """What a file's valid rows leave on the server, read from the file alone."""

    def __init__(self, path: Path, expected: Expected) -> None:
        invalid = {int(m.group(1)) for m in map(LINE.match, expected["invalid"]) if m}
        valid = [row for line, row in rows_as_written(path) if line not in invalid]
        assert len(valid) == expected["valid"], "the csv module reads the file otherwise"
        self.metadata: dict[Image, dict[str, Any]] = {}
        self.concepts: dict[Image, set[tuple[str, float]]] = {}
        self.boxes: dict[Image, Counter[Box]] = {}
        self.input_ids: dict[Image, str] = {}
        for row in valid:
            image: Image = (
                row["url"] if row.get("url") else (path.parent / row["file"]).read_bytes()
            )
            # strict=False: a line break inside a JSON string, unescaped, is taken as
            # written (quoted_newlines.csv expects that row to land)
            self.metadata.setdefault(image, {}).update(
                json.loads(row["metadata"], strict=False) if row.get("metadata") else {}
            )
            pos = frozenset(c for c in row.get("pos_concepts", "").split("|") if c)
            neg = frozenset(c for c in row.get("neg_concepts", "").split("|") if c)
            self.concepts.setdefault(image, set())
            self.boxes.setdefault(image, Counter())
            if row.get("input_id"):
                self.input_ids[image] = row["input_id"]
            cells = [row.get(k, "") for k in ("left_col", "top_row", "right_col", "bottom_row")]
            if all(cells):
                self.boxes[image][(box_key([float(c) for c in cells]), pos, neg)] += 1
            else:
                self.concepts[image] |= {(c, 1.0) for c in pos} | {(c, 0.0) for c in neg}


def floats(value: Any) -> Any:
    """``value`` with every number a float, as a protobuf Struct gives numbers back."""
    if isinstance(value, dict):
        return {k: floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [floats(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    return float(value) if isinstance(value, int | float) else value


def stored(sb: Sandbox) -> dict[Image, dict[str, Any]]:
    """Each stored input, by its image: id, metadata, concepts, and its annotations' boxes."""
    out: dict[Image, dict[str, Any]] = {}
    for input_id, inp in sb.inputs.items():
        image: Image = inp.data.image.url or inp.data.image.base64
        assert image not in out, f"two inputs hold {image!r}"
        out[image] = {
            "id": input_id,
            "metadata": MessageToDict(inp.data.metadata),
            "concepts": {(c.id, c.value) for c in inp.data.concepts},
            "boxes": Counter(),
        }
    by_id = {v["id"]: k for k, v in out.items()}
    for ann in sb.annotations.values():
        [region] = ann.data.regions
        bb = region.region_info.bounding_box
        labels = region.data.concepts
        out[by_id[ann.input_id]]["boxes"][
            (
                box_key([bb.left_col, bb.top_row, bb.right_col, bb.bottom_row]),
                frozenset(c.id for c in labels if c.value == 1.0),
                frozenset(c.id for c in labels if c.value == 0.0),
            )
        ] += 1
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_every_corpus_file_uploads_its_valid_rows(name: str) -> None:
    """Each file against its own sandbox, which refuses a URL already stored under
    another input id (as Clarifai does): the client reports exactly the invalid rows,
    and the sandbox holds exactly the valid rows, as the file writes them."""
    expected = EXPECTED[name]
    path = CORPUS / name
    options = SandboxOptions(rps=0, processing=(0.0, 0.01))
    with anyio.fail_after(30):
        async with (
            Sandbox(options) as sb,
            Ingester(sandbox_config(sb, linger=0.05, processing_estimate=0.02)) as ing,
        ):
            if "error" in expected:
                with pytest.raises(IngestError) as caught:
                    await ing.run(path)
                message = f"{type(caught.value).__name__}: {caught.value}"
                assert message == expected["error"].format(path=path), name
                assert not sb.inputs and not sb.annotations, name
                return
            failed: list[str] = []
            async with ing.stream(path) as outcomes:
                async for outcome in outcomes:
                    if outcome.status is Status.FAILED:
                        failed.append(outcome.error)
            held = stored(sb)
    assert sorted(failed) == sorted(expected["invalid"]), name
    holds = Holds(path, expected)
    assert set(held) == set(holds.boxes), name  # one input per image of a valid row
    for image, got in held.items():
        assert got["metadata"] == floats(holds.metadata[image]), (name, image)
        assert got["concepts"] == holds.concepts[image], (name, image)
        assert got["boxes"] == holds.boxes[image], (name, image)
        if image in holds.input_ids:
            assert got["id"] == holds.input_ids[image], (name, image)


MESSAGE = re.compile(r"line (\d+), column '([^']*)': (.*)")


def table_rows(text: str) -> set[tuple[str, ...]]:
    """The cells of each row of the command line's tables (drawn with box characters)."""
    return {
        tuple(cell.strip() for cell in line.strip().strip("│").split("│"))
        for line in text.splitlines()
        if line.strip().startswith("│")
    }


def test_the_command_line_shows_messages_never_a_traceback() -> None:
    """Every expected message, whole: an invalid row as the table's (line, column,
    reason) row, a file that cannot be used as its error line."""
    wide = {**os.environ, "COLUMNS": "300"}  # no cell wrapped over two lines
    for name in ("box_nan.csv", "metadata_list.csv", "invalid_utf8.csv", "missing_url_column.csv"):
        path = CORPUS / name
        done = subprocess.run(
            [sys.executable, "-m", "ingest", "validate", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=wide,
        )
        assert "Traceback" not in done.stdout + done.stderr
        expected = EXPECTED[name]
        if "error" in expected:
            assert done.returncode == 2, name
            message = expected["error"].format(path=path).split(": ", 1)[1]
            assert f"ingest: error: {message}" in done.stderr, (name, done.stderr)
            continue
        assert done.returncode == 1, name
        rows = table_rows(done.stdout)
        for message in expected["invalid"]:
            match = MESSAGE.fullmatch(message)
            assert match, message
            assert match.groups() in rows, (name, message, done.stdout)
