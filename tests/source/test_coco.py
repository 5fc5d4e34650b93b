"""COCO files, streamed and grouped on disk: rows per image, polygons, errors with where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.protobuf.json_format import MessageToDict

from ingest import Ingester, Status, ids
from ingest.errors import SourceError
from ingest.model import InvalidRow, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, detect, open_rows, validate_path
from ingest.source.coco import BACKEND
from tests.helpers import sandbox_config
from tests.source.imagefiles import png, write_png

pytestmark = pytest.mark.anyio

SQUARE = [10.0, 10.0, 50.0, 10.0, 50.0, 40.0]  # pixels of a 100x50 image


def coco(urls: bool = True) -> dict[str, Any]:
    def image(i: int, name: str, w: int, h: int) -> dict[str, Any]:
        out: dict[str, Any] = {"id": i, "file_name": name, "width": w, "height": h, "license": 1}
        if urls:
            out["coco_url"] = f"https://images.example.com/{name}"
        return out

    # annotations ordered by category, as COCO files are
    return {
        "info": {"description": "test"},
        "images": [image(1, "a.png", 100, 50), image(2, "b.png", 20, 20), image(3, "c.png", 8, 8)],
        "annotations": [
            {"id": 10, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100},
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [10, 5, 50, 40], "iscrowd": 0},
            {
                "id": 12,
                "image_id": 1,
                "category_id": 2,
                "bbox": [10, 10, 40, 30],
                "segmentation": [SQUARE, [60.0, 10.0, 90.0, 10.0, 90.0, 40.0]],
            },
            {"id": 13, "image_id": 1, "category_id": 2, "bbox": [90, 0, 20, 10]},
            {"id": 14, "image_id": 2, "category_id": 9, "bbox": [0, 0, 5, 5]},
            {"id": 15, "image_id": 99, "category_id": 1, "bbox": [0, 0, 5, 5]},
            {
                "id": 16,
                "image_id": 2,
                "category_id": 2,
                "bbox": [0, 0, 20.5, 20],
                "iscrowd": 1,
                "segmentation": {"counts": [0, 10], "size": [20, 20]},
            },
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "Traffic Light"}],
    }


def write(tmp_path: Path, data: dict[str, Any], name: str = "instances_val.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data, indent=1))
    return p


async def read(path: Path | DatasetPath) -> list[Row | InvalidRow]:
    with anyio.fail_after(20):
        async with open_rows(path) as src:
            return [item async for item in src]


def by_line(items: list[Row | InvalidRow]) -> dict[int, Row | InvalidRow]:
    return {i.line: i for i in items}


def test_the_c_backend_parses() -> None:
    assert BACKEND == "yajl2_c"


async def test_a_coco_file_becomes_rows_grouped_by_image(tmp_path: Path) -> None:
    p = write(tmp_path, coco())
    assert detect(p) == "coco"
    items = await read(p)
    # every image's rows together, though the file orders annotations by category
    order = [i.raw["url"] if isinstance(i, InvalidRow) else i.url for i in items]
    seen: list[str] = []
    for url in order:
        if not seen or seen[-1] != url:
            assert url not in seen
            seen.append(url)
    rows = by_line(items)
    # images are lines 2-4; then each annotation has a position for its box and one per
    # polygon (annotation 12: 7 for its box, 8 and 9 for its polygons, unused here)
    assert set(rows) == {4, 5, 6, 7, 10, 11, 12, 13}
    a = rows[6]
    assert isinstance(a, Row) and a.url == "https://images.example.com/a.png"
    assert a.input_id == ids.input_id("https://images.example.com/a.png")
    assert a.coords == pytest.approx((0.1, 0.1, 0.6, 0.9))
    assert a.info == {"coco_annotation_id": 11, "iscrowd": 0}
    assert a.metadata == {"coco_image_id": 1, "license": 1}
    light = rows[7]
    assert isinstance(light, Row) and light.pos_concepts == ("traffic-light",)
    assert light.concept_names == {"person": "person", "traffic-light": "Traffic Light"}
    outside = rows[10]
    assert isinstance(outside, InvalidRow)
    assert (
        outside.reason == "annotation id 13: the box (90, 0, 110, 10) lies outside the 100x50 image"
    )
    assert outside.raw["pos_concepts"] == "traffic-light"
    unknown = rows[11]
    assert isinstance(unknown, InvalidRow)
    assert unknown.reason == "annotation id 14: category_id 9 is not in categories"
    orphan = rows[12]
    assert isinstance(orphan, InvalidRow) and "its image_id 99 is not in images" in orphan.reason
    crowd = rows[13]  # half a pixel over: clamped; RLE keeps its box
    assert isinstance(crowd, Row) and crowd.coords == (0.0, 0.0, 1.0, 1.0)
    empty = rows[4]  # image 3 has no annotation: an image-level row
    assert isinstance(empty, Row) and empty.annotation_id == ""


async def test_polygons_and_both(tmp_path: Path) -> None:
    p = write(tmp_path, coco())
    rows = by_line(await read(DatasetPath(p, regions="both")))
    # annotation 12 is a box (line 7) and two polygons (8, 9)
    assert set(rows) == {4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
    box, first, second = rows[7], rows[8], rows[9]
    assert isinstance(box, Row) and box.coords is not None
    assert isinstance(first, Row) and first.polygon == pytest.approx((0.1, 0.2, 0.5, 0.2, 0.5, 0.8))
    assert isinstance(second, Row) and second.polygon is not None
    assert first.annotation_id != second.annotation_id != box.annotation_id
    only = by_line(await read(DatasetPath(p, regions="polygons")))
    assert 7 not in only and isinstance(only[8], Row) and only[8].polygon is not None
    assert isinstance(only[13], Row) and only[13].coords is not None  # RLE kept its box
    # a region keeps its position whatever --regions: the journal's record stays true
    for line in set(only) & set(rows):
        a, b = only[line], rows[line]
        assert type(a) is type(b)
        if isinstance(a, Row) and isinstance(b, Row):
            assert a.annotation_id == b.annotation_id


async def test_local_images_beside_the_file(tmp_path: Path) -> None:
    write_png(tmp_path / "images/a.png", 100, 50)
    write_png(tmp_path / "images/b.png", 20, 20)
    p = write(tmp_path, coco(urls=False))
    rows = by_line(await read(p))
    a = rows[6]
    assert isinstance(a, Row) and a.path == str((tmp_path / "images/a.png").resolve())
    assert a.input_id == ids.input_id("file:images/a.png")
    missing = rows[4]  # c.png was never written
    assert isinstance(missing, InvalidRow) and missing.column == "file"
    assert "images/c.png" in missing.reason


async def test_malformed_json_is_an_error_with_its_position(tmp_path: Path) -> None:
    p = write(tmp_path, coco())
    text = p.read_text()
    p.write_text(text.replace('"iscrowd": 0', '"iscrowd": 0,,'))
    with pytest.raises(SourceError, match=r"not valid JSON, before line \d+ \(byte [\d,]+\)"):
        await read(p)


async def test_two_names_for_one_concept_id_stop_before_anything_is_sent(tmp_path: Path) -> None:
    data = coco()
    data["categories"].append({"id": 3, "name": "traffic light"})
    with pytest.raises(SourceError, match="'Traffic Light' and 'traffic light' both become"):
        await read(write(tmp_path, data))


async def test_a_file_without_categories_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no categories"):
        await read(write(tmp_path, {"images": [], "annotations": []}))


async def test_validate_a_coco_file(tmp_path: Path) -> None:
    summary = await validate_path(DatasetPath(write(tmp_path, coco()), regions="both"))
    assert summary.rows == 10 and len(summary.invalid) == 3
    assert summary.images == 3 and summary.image_level_rows == 1 and summary.labels == 2


async def test_a_coco_file_lands_on_the_sandbox(tmp_path: Path) -> None:
    write_png(tmp_path / "images/a.png", 100, 50)
    write_png(tmp_path / "images/b.png", 20, 20)
    write_png(tmp_path / "images/c.png", 8, 8)
    p = write(tmp_path, coco(urls=False))
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.05, 0.2))) as sb:
            config = sandbox_config(sb, tmp_dir=str(tmp_path / "tmp"))
            source = DatasetPath(p, regions="both")
            async with Ingester(config) as ing, ing.stream(source) as stream:
                outcomes = {o.line: o async for o in stream}
            a = ids.input_id("file:images/a.png")
            assert len(sb.inputs) == 3
            assert sb.inputs[a].data.image.base64 == png(100, 50)
            assert MessageToDict(sb.inputs[a].data.metadata) == {
                "coco_image_id": 1.0,
                "license": 1.0,
            }
            stored = [x for x in sb.annotations.values() if not isinstance(x, str)]
            polys = [x for x in stored if x.data.regions[0].region_info.HasField("polygon")]
            assert len(stored) == 6 and len(polys) == 2
            assert {c.name for x in polys for c in x.data.regions[0].data.concepts} == {
                "Traffic Light"
            }
            assert {MessageToDict(x.annotation_info)["coco_annotation_id"] for x in stored} == {
                10.0,
                11.0,
                12.0,
                16.0,
            }
    assert list((tmp_path / "tmp").iterdir()) == []  # the grouping's temp files are gone
    # the report says what the read had to say, the crowd annotation kept as a box included
    assert "1 crowd annotation(s) in RLE have no polygon: they kept their box" in (ing.report.notes)
    assert any(note.startswith("COCO read with ijson's") for note in ing.report.notes)
    failed = {line for line, o in outcomes.items() if o.status is Status.FAILED}
    assert failed == {10, 11, 12}
    assert len(outcomes) == 10


def test_a_read_stopped_while_grouping_leaves_no_temp_file(tmp_path: Path) -> None:
    from benchmarks.coco_memory import generate
    from ingest.source.coco import CocoSource
    from ingest.source.formats import FormatOptions

    coco_path, _ = generate(60_000, tmp_path)
    temp = tmp_path / "tmp"
    src = CocoSource(coco_path, FormatOptions(), tmp_dir=temp)
    src._prepare()
    items = src._items()
    # the first pause of the grouping pass: every image added, annotations under way
    assert next(items) == []
    assert [p for p in temp.iterdir() if p.is_dir()] != []
    items.close()  # what cancelling the upload does to the reader (DatasetSource.batches)
    assert list(temp.iterdir()) == []
