"""Classification sets: a CSV without box columns is image-level rows; the ``geo`` column.

A header with none of the four box columns reads every row as labels and metadata for
the whole image; one with some of them and not the others is still refused, with the
"did you mean" of a misspelt one. The ``geo`` column (``longitude,latitude``, the SDK's
``geopoints`` cell) becomes the input's ``data.geo.geo_point``; a re-sent input holding
it is not patched, and a patch of its metadata keeps it, under every reading of
PatchInputs ``overwrite``.
"""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from ingest import Ingester, ids
from ingest.cli import main, run_upload
from ingest.errors import MissingColumnError, SourceError
from ingest.failures import default_failures_path
from ingest.model import InvalidRow, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.patching import OVERWRITE_READINGS
from ingest.source import open_rows, validate_path
from ingest.source.cells import parse_geo
from tests.helpers import sandbox_config
from tests.source.imagefiles import write_png
from tests.source.test_formats_cli import plan_for

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"rps": 0, "processing": (0.02, 0.1)}
A, B, C = (f"https://img.example.com/{n}.jpg" for n in ("a", "b", "c"))
BROKEN = "https://img.example.com/broken/d.jpg"  # the sandbox fails every URL with 'broken'

# the rows of one image scattered (a's first and last rows), one invalid row (line 5),
# one image the sandbox cannot download (line 6)
LABELS = f"""\
url,pos_concepts,neg_concepts,metadata,geo
{A},cat|pet,,"{{""split"": ""train""}}","-73.98,40.75"
{B},dog,cat,,
{C},,,"{{""note"": ""no label""}}",
{B},two words,,,
{BROKEN},cat,,,
{A},outdoor,dog,"{{""source"": ""camera""}}",
"""


def write(tmp_path: Path, text: str, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def float32(value: float) -> float:
    (out,) = struct.unpack("<f", struct.pack("<f", value))
    return float(out)


def expected(path: Path) -> dict[str, dict[str, Any]]:
    """What the sandbox must hold per URL, from the file read by the csv module: each
    valid row's concepts (the first row naming one decides), its metadata's keys (the
    rows' keys differ here, so one dict update per row) and its geo point."""
    out: dict[str, dict[str, Any]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if " " in row["pos_concepts"]:
                continue  # the invalid row (the broken image is stored, and fails processing)
            held = out.setdefault(row["url"], {"concepts": {}, "metadata": {}, "geo": None})
            for cell, value in (("pos_concepts", 1.0), ("neg_concepts", 0.0)):
                for concept in filter(None, row[cell].split("|")):
                    held["concepts"].setdefault(concept, value)
            held["metadata"].update(json.loads(row["metadata"] or "{}"))
            if row["geo"] and held["geo"] is None:
                lon, lat = (float(v) for v in row["geo"].split(","))
                held["geo"] = (float32(lon), float32(lat))
    return out


def held(sb: Sandbox) -> dict[str, dict[str, Any]]:
    """What the sandbox holds per URL, in the terms of :func:`expected`."""
    out: dict[str, dict[str, Any]] = {}
    for inp in sb.inputs.values():
        data = inp.data
        point = data.geo.geo_point
        out[data.image.url] = {
            "concepts": {c.id: c.value for c in data.concepts},
            "metadata": MessageToDict(data.metadata),
            "geo": (point.longitude, point.latitude) if data.HasField("geo") else None,
        }
    return out


async def read(path: Path) -> list[Row | InvalidRow]:
    with anyio.fail_after(20):
        async with open_rows(path) as src:
            return [item async for item in src]


async def test_a_csv_without_box_columns_gives_image_level_rows(tmp_path: Path) -> None:
    items = await read(write(tmp_path, LABELS))
    assert [i.line for i in items] == [2, 3, 4, 5, 6, 7]
    a, b, c, bad, broken, a_again = items
    assert isinstance(a, Row) and a.url == A and a.input_id == ids.input_id(A)
    assert (a.coords, a.polygon, a.annotation_id) == (None, None, "")
    assert a.pos_concepts == ("cat", "pet") and a.metadata == {"split": "train"}
    assert a.geo == (-73.98, 40.75)
    assert isinstance(b, Row) and (b.pos_concepts, b.neg_concepts, b.geo) == (
        ("dog",),
        ("cat",),
        None,
    )
    assert isinstance(c, Row) and c.pos_concepts == () and c.metadata == {"note": "no label"}
    assert isinstance(bad, InvalidRow)
    assert bad.message() == (
        "line 5, column 'pos_concepts': concept 'two words' contains a space; ids may use "
        "only A-Z, a-z, 0-9, '_' and '-', 1 to 128 characters"
    )
    assert isinstance(broken, Row) and isinstance(a_again, Row)
    # local files: the file column, with metadata
    write_png(tmp_path / "img/x.png", 8, 8)
    rows = await read(
        write(tmp_path, 'file,pos_concepts,metadata\nimg/x.png,cat,"{""k"": 1}"\n', "files.csv")
    )
    [x] = rows
    assert isinstance(x, Row) and x.path == str((tmp_path / "img/x.png").resolve())
    assert (x.pos_concepts, x.metadata, x.annotation_id) == (("cat",), {"k": 1}, "")


async def test_some_box_columns_without_the_others_are_still_refused(tmp_path: Path) -> None:
    with pytest.raises(MissingColumnError) as missing:
        await read(write(tmp_path, f"url,left_col,top_row,pos_concepts\n{A},0.1,0.1,cat\n"))
    assert missing.value.column == "right_col"
    # a misspelt box column in a header without the others: the "did you mean"
    with pytest.raises(
        SourceError, match="column 'left' is not one ingest reads; did you mean 'left_col'"
    ):
        await read(write(tmp_path, f"url,left,pos_concepts\n{A},0.1,cat\n"))
    with pytest.raises(MissingColumnError, match="did you mean 'bottom_row'"):
        await read(
            write(tmp_path, f"url,left_col,top_row,right_col,botom_row\n{A},0.1,0.1,0.2,0.2\n")
        )


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("1,2,3", "geo '1,2,3' has 3 value(s)"),
        ("40.75", "geo '40.75' has 1 value(s)"),
        ("east,40", "the longitude 'east' is not a number"),
        ("-200,40", "the longitude -200 is outside [-180, 180]"),
        ("10,nan", "the latitude nan is outside [-90, 90]"),
        ("10, 95", "the latitude 95 is outside [-90, 90]"),
    ],
)
def test_a_geo_cell_is_longitude_and_latitude(cell: str, reason: str) -> None:
    got = parse_geo(cell)
    assert isinstance(got, str) and got.startswith(reason)
    assert got.endswith("a geo point is 'longitude,latitude' in degrees (the SDK's geopoints cell)")
    assert parse_geo(" 2.35 , 48.85 ") == (2.35, 48.85)


async def test_validate_counts_a_classification_set(tmp_path: Path) -> None:
    path = write(tmp_path, LABELS)
    fast = await validate_path(path)  # the counting validator
    full = await validate_path(path, write_csv=tmp_path / "written.csv")  # every row built
    for summary in (fast, full):
        assert (summary.rows, summary.images, summary.boxes) == (6, 4, 0)
        assert (summary.image_level_rows, summary.labels) == (5, 4)  # cat pet dog outdoor
        assert [i.line for i in summary.invalid] == [5]
    with (tmp_path / "written.csv").open(newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [r["geo"] for r in written] == ["-73.98,40.75", "", "", "", ""]


async def test_a_classification_set_lands_as_the_file_says(tmp_path: Path) -> None:
    path = write(tmp_path, LABELS)
    console = Console(file=io.StringIO())
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:
            first = await run_upload(plan_for(sb, path), console)
            assert first.exit_status == 1  # the invalid row and the broken image
            report = first.report
            assert report.rows_failed == 2 and report.rows_landed == 4
            assert report.annotations_created == 0
            assert report.grouped  # a's rows, scattered, were grouped on disk first
            assert held(sb) == expected(path)
            # every annotation is the input-level one PostInputs makes: no region anywhere
            assert not sb.annotations
            # the failures file: the CSV's own columns, each failed row with its line
            with default_failures_path(path).open(newline="") as fh:
                failed = list(csv.DictReader(fh))
            assert [(r["line"], r["url"]) for r in failed] == [("5", B), ("6", BROKEN)]
            assert list(failed[0]) == [
                "url", "pos_concepts", "neg_concepts", "metadata", "geo", "line", "error",
            ]  # fmt: skip
            # a fixed failures file uploads
            failed[0]["pos_concepts"] = "two_words"
            fixed = tmp_path / "fixed.csv"
            with fixed.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, list(failed[0]))
                writer.writeheader()
                writer.writerow(failed[0])
            again = await run_upload(plan_for(sb, fixed), console)
            assert again.exit_status == 0 and again.report.inputs_patched == 1
            assert held(sb)[B]["concepts"] == {"dog": 1.0, "cat": 0.0, "two_words": 1.0}
            # the same command again: the journal knows what landed; nothing changes
            before = held(sb)
            resumed = await run_upload(plan_for(sb, path), console)
            assert resumed.report.rows_resumed == 4 and resumed.report.inputs_patched == 0
            assert held(sb) == before


def test_validate_reads_a_classification_set_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, f"url,pos_concepts,notes\n{A},cat,seen twice\n")
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert "column 'notes' is not one ingest reads" in captured.err
    assert "every row is valid" in captured.out


async def upload_strictly(sb: Sandbox, path: Path) -> None:
    """``ingest upload PATH --strict`` into ``sb``."""
    plan = plan_for(sb, path)
    plan.config = sandbox_config(sb, strict=True)
    await run_upload(plan, Console(file=io.StringIO()))


async def test_strict_refuses_a_column_a_classification_set_would_not_upload(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, f"url,pos_concepts,notes\n{A},cat,seen twice\n")
    async with Sandbox(SandboxOptions(**FAST)) as sb:
        with pytest.raises(SourceError, match=r"'notes' is not one ingest reads.*strict"):
            await upload_strictly(sb, path)
        assert not sb.inputs


async def upload_rows(sb: Sandbox, rows: list[dict[str, str]]) -> Any:
    async with Ingester(sandbox_config(sb)) as ing:
        return await ing.run(rows)


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_a_geo_point_is_patched_in_once_and_kept_by_a_metadata_patch(reading: str) -> None:
    plain = {"url": A, "pos_concepts": "cat", "metadata": '{"v": 1}'}
    located = {**plain, "geo": "2.35,48.85"}
    point = (float32(2.35), float32(48.85))
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST, patch_overwrite=reading)) as sb:
            await upload_rows(sb, [plain])
            assert held(sb)[A]["geo"] is None
            # the input exists without a geo point: the rows' one is merged in
            report = await upload_rows(sb, [located])
            assert report.inputs_patched == 1 and held(sb)[A]["geo"] == point
            # sent again: nothing differs, nothing is patched
            patches = sb.stats.requests.get("PatchInputs")
            report = await upload_rows(sb, [located])
            assert report.inputs_patched == 0
            assert sb.stats.requests.get("PatchInputs") == patches
            # new metadata, same point: the overwrite that sets the metadata keeps the point
            # (under 'whole' an overwrite without it would lose it)
            report = await upload_rows(sb, [{**located, "metadata": '{"v": 2}'}])
            assert report.inputs_patched == 1
            assert held(sb)[A] == {"concepts": {"cat": 1.0}, "metadata": {"v": 2}, "geo": point}
            # rows without a geo column leave a stored point alone
            report = await upload_rows(sb, [{**plain, "metadata": '{"v": 3}'}])
            assert held(sb)[A]["geo"] == point and held(sb)[A]["metadata"] == {"v": 3}
