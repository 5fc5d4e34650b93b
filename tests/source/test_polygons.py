"""Polygon regions, annotation_info and concept names through the CSV path."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from clarifai_grpc.grpc.api import service_pb2

from ingest import Ingester, Status, ids
from ingest.failures import FailuresWriter
from ingest.model import InvalidRow, Outcome, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, open_rows
from ingest.source.cells import concept_id, format_polygon
from ingest.wire import AnnotationEncoder, annotations_request
from tests.helpers import sandbox_config

HEADER = "url,left_col,top_row,right_col,bottom_row,polygon,pos_concepts,annotation_info\n"
URL = "https://x.example/a.jpg"
FAST = {"rps": 0, "processing": (0.05, 0.2)}


async def _items(path: Path | DatasetPath, **kw: object) -> list[Row | InvalidRow]:
    with anyio.fail_after(10):
        async with open_rows(path, **kw) as src:  # type: ignore[arg-type]
            return [item async for item in src]


def _write(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    p = tmp_path / "data.csv"
    p.write_text(header + "".join(line + "\n" for line in lines), encoding="utf-8")
    return p


def test_concept_ids_follow_the_coco_loaders_rule() -> None:
    assert concept_id("Traffic Light") == "traffic-light"
    assert concept_id("potted_plant") == "potted_plant"
    assert concept_id("Ünïcode/Name!") == "-n-code-name-"
    assert concept_id("  ") == ""


@pytest.mark.anyio
async def test_a_polygon_row_has_its_points_and_its_own_id(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        f'{URL},,,,,0.1 0.2 0.5 0.2 0.3 0.7,cat,"{{""iscrowd"": 0}}"',
        f"{URL},0.1,0.2,0.5,0.7,,cat,",
    )
    poly, box = await _items(p)
    assert isinstance(poly, Row) and isinstance(box, Row)
    assert poly.polygon == (0.1, 0.2, 0.5, 0.2, 0.3, 0.7) and poly.coords is None
    assert poly.info == {"iscrowd": 0}
    key = ids.input_key(poly.input_id)
    labels = ids.labels_part(("cat",)) + ids.labels_part(())
    assert poly.annotation_id == ids.polygon_id(key, poly.polygon, labels)
    # a box keeps exactly the id it always had
    assert box.annotation_id == ids.annotation_id(box.input_id, (0.1, 0.2, 0.5, 0.7), ("cat",), ())
    assert poly.annotation_id != box.annotation_id
    assert format_polygon(poly.polygon) == "0.1 0.2 0.5 0.2 0.3 0.7"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("0.1 0.2 0.5 0.2", "2 point(s); at least 3"),
        ("0.1 0.2 0.5 0.2 0.3", "odd count"),
        ("0.1 0.2 0.5 x 0.3 0.7", "'x' is not a number"),
        ("0.1 0.2 1.5 0.2 0.3 0.7", "point 2 of the polygon has x = 1.5, outside [0, 1]"),
        ("0.1 0.2 0.5 0.2 0.3 nan", "point 3 of the polygon has y = nan"),
        ("0.1 0.1 0.2 0.2 0.3 0.3", "no area"),
    ],
)
async def test_bad_polygons_are_reported_with_line_and_column(
    tmp_path: Path, cell: str, reason: str
) -> None:
    [item] = await _items(_write(tmp_path, f"{URL},,,,,{cell},cat,"))
    assert isinstance(item, InvalidRow)
    assert (item.line, item.column) == (2, "polygon")
    assert reason in item.reason


@pytest.mark.anyio
async def test_a_row_with_both_a_box_and_a_polygon_is_invalid(tmp_path: Path) -> None:
    [item] = await _items(_write(tmp_path, f"{URL},0.1,0.1,0.2,0.2,0.1 0.2 0.5 0.2 0.3 0.7,cat,"))
    assert isinstance(item, InvalidRow) and item.column == "polygon"
    assert "both a box and a polygon" in item.message()


@pytest.mark.anyio
async def test_annotation_info_must_be_an_object_on_a_region_row(tmp_path: Path) -> None:
    bad, lonely = await _items(
        _write(tmp_path, f"{URL},0.1,0.1,0.2,0.2,,cat,[1]", f'{URL},,,,,,cat,"{{""a"": 1}}"')
    )
    assert isinstance(bad, InvalidRow) and bad.column == "annotation_info"
    assert "must be a JSON object" in bad.reason
    assert isinstance(lonely, InvalidRow) and "needs a region" in lonely.reason


@pytest.mark.anyio
async def test_concept_names_become_ids_and_keep_their_names(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        f"{URL},0.1,0.1,0.2,0.2,,Traffic Light|person,",
        f"{URL},0.3,0.1,0.4,0.2,,traffic light,",
    )
    assert isinstance((await _items(p))[0], InvalidRow)  # spaces refused by default
    ok, clash = await _items(DatasetPath(p, concept_ids="names"))
    assert isinstance(ok, Row)
    assert ok.pos_concepts == ("traffic-light", "person")
    assert ok.concept_names is not None and ok.concept_names["traffic-light"] == "Traffic Light"
    assert isinstance(clash, InvalidRow) and clash.column == "pos_concepts"
    assert "'Traffic Light' and 'traffic light' both become the id 'traffic-light'" in clash.reason


def test_polygons_info_and_names_encode_as_the_message_api_builds_them() -> None:
    names = {"traffic-light": "Traffic Light"}
    row = Row(
        2,
        "i" * 32,
        URL,
        annotation_id="a1",
        pos_concepts=("traffic-light",),
        polygon=(0.1, 0.2, 0.5, 0.2, 0.3, 0.7),
        info={"iscrowd": 0, "pose": "Left"},
        concept_names=names,
    )
    expected = service_pb2.PostAnnotationsRequest()
    ann = expected.annotations.add(id="a1", input_id="i" * 32)
    region = ann.data.regions.add()
    for x, y in ((0.1, 0.2), (0.5, 0.2), (0.3, 0.7)):
        region.region_info.polygon.points.add(row=y, col=x)
    region.data.concepts.add(id="traffic-light", name="Traffic Light", value=1.0)
    ann.annotation_info.update({"iscrowd": 0, "pose": "Left"})
    got = annotations_request(AnnotationEncoder().encode([row]))
    assert got == expected


@pytest.mark.anyio
async def test_polygons_land_on_the_sandbox_and_bad_ones_go_to_the_failures_file(
    tmp_path: Path,
) -> None:
    p = _write(
        tmp_path,
        f'{URL},,,,,0.1 0.2 0.5 0.2 0.3 0.7,cat,"{{""area"": 12.5}}"',
        f"{URL},0.1,0.2,0.5,0.7,,dog,",
        f"{URL},,,,,0.1 0.2 0.5,cat,",
    )
    outcomes: list[Outcome] = []
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
            async with Ingester(sandbox_config(sb)) as ing, ing.stream(p) as stream:
                outcomes = [o async for o in stream]
            iid = ids.input_id(URL)
            anns = {a.id: a for a in sb.annotations.values() if not isinstance(a, str)}
            assert len(anns) == 2
            polys = [a for a in anns.values() if a.data.regions[0].region_info.HasField("polygon")]
            [poly] = polys
            assert poly.input_id == iid
            points = [
                v
                for pt in poly.data.regions[0].region_info.polygon.points
                for v in (pt.col, pt.row)
            ]
            assert points == pytest.approx([0.1, 0.2, 0.5, 0.2, 0.3, 0.7])
            assert dict(poly.annotation_info) == {"area": 12.5}
    by_line = {o.line: o for o in outcomes}
    assert by_line[2].status is Status.LANDED and by_line[3].status is Status.LANDED
    assert by_line[4].status is Status.FAILED and "polygon" in by_line[4].error
    # the failed row goes back out as a CSV row that reads the same
    with FailuresWriter(tmp_path / "f.csv", HEADER.strip().split(",")) as fw:
        fw.write(by_line[4])
    [again] = await _items(tmp_path / "f.csv")
    assert isinstance(again, InvalidRow) and again.column == "polygon"


@pytest.mark.parametrize(
    "info",
    [
        {"coco_annotation_id": 12, "iscrowd": 0, "area": 1.5},
        {"pose": "Left", "difficult": True, "none": None, "name": "ünï"},
        {"nested": {"a": [1, "x"]}, "n": 2},
    ],
)
def test_annotation_info_encodes_as_protobufs_struct(info: dict[str, object]) -> None:
    row = Row(2, "i", URL, coords=(0.1, 0.1, 0.2, 0.2), annotation_id="a", info=info)
    expected = service_pb2.PostAnnotationsRequest()
    ann = expected.annotations.add(id="a", input_id="i")
    bb = ann.data.regions.add().region_info.bounding_box
    bb.left_col, bb.top_row, bb.right_col, bb.bottom_row = 0.1, 0.1, 0.2, 0.2
    ann.annotation_info.update(info)
    assert annotations_request(AnnotationEncoder().encode([row])) == expected
