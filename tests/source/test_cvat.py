"""CVAT for images 1.1: real exports land in the sandbox as an independent reading of their
XML says; rotated boxes, ellipses, tags, subsets and the image rules as the README states;
bad shapes named by image and shape; the file streamed in flat memory."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.console import Console

from ingest import Ingester
from ingest.cli import run_upload
from ingest.errors import SourceError
from ingest.journal import default_state_path
from ingest.model import InvalidRow, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, detect, open_rows
from ingest.source.cvat import _Xml
from tests.helpers import input_id, sandbox_config
from tests.source.imagefiles import write_png
from tests.source.test_export import land, write_csv
from tests.source.test_formats_cli import plan_for
from tests.source.test_labelme import concept, floats, held, read, same_regions
from tests.source.test_roundtrip import EXAMPLES
from tests.source.test_roundtrip import land as roundtrip_land

pytestmark = pytest.mark.anyio

EXPORTS = Path(__file__).parent / "exports" / "cvat"
STORED = ("box", "polygon")


def copy_export(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(EXPORTS / name, root)
    return root


class Expected:
    """What a CVAT XML file says, read here with ElementTree alone (the images found in
    ``images/<subset>/``, ``images/`` or beside the file; ``by_file``: the dataset was given
    by its XML file, not by its folder)."""

    def __init__(
        self, xml: Path, regions: str = "both", *, per_split: bool = False, by_file: bool = False
    ) -> None:
        doc = ET.parse(xml).getroot()
        types = {
            (label.findtext("name"), a.findtext("name")): a.findtext("input_type")
            for label in doc.iter("label")
            for a in label.iter("attribute")
        }
        subsets = [s.text for s in doc.find("meta").iter("subset")]  # type: ignore[union-attr]
        default = (subsets[0] or "") if len(subsets) == 1 else ""
        # cell paths are relative to the folder the dataset's path is in
        base = xml.parent if by_file else xml.parent.parent
        self.inputs: dict[str, Any] = {}
        self.regions: list[Any] = []
        self.skipped: list[str] = []
        for image in doc.iter("image"):
            name, subset = image.get("name", ""), image.get("subset", default)
            images = xml.parent / "images"
            path = next(
                p for p in (images / subset / name, images / name, xml.parent / name) if p.is_file()
            )
            iid = input_id("file:" + path.relative_to(base).as_posix())
            w, h = float(image.get("width", "")), float(image.get("height", ""))
            metadata: dict[str, Any] = {"cvat_image_id": float(image.get("id", ""))}
            if subset:
                metadata["split"] = subset
            if image.get("task_id"):
                metadata["cvat_task_id"] = float(image.get("task_id", ""))
            tags = [(concept(t.get("label", "")), t.get("label")) for t in image.iter("tag")]
            described = {
                t.get("label"): {k: v for k, v in t.attrib.items() if k == "source"}
                for t in image.iter("tag")
                if t.get("source")
            }
            if described:
                metadata["tags"] = described
            where = f"image {name!r} (id {image.get('id')}" + (
                f", subset {subset})" if image.get("subset") else ")"
            )
            landed = False
            for k, child in enumerate(image, start=1):
                label = child.get("label", "")
                if child.tag == "tag":
                    continue
                if child.tag not in STORED:
                    self.skipped.append(f"{where} shape {k}")
                    continue
                if not label:
                    continue  # an invalid row
                info: dict[str, Any] = {"shape_type": child.tag}
                for key in ("occluded", "z_order", "group_id"):
                    if child.get(key) is not None:
                        info[key] = float(child.get(key, ""))
                if child.get("source") is not None:
                    info["source"] = child.get("source")
                attributes = {}
                for a in child.iter("attribute"):
                    kind, text = types.get((label, a.get("name"))), a.text or ""
                    value: Any = text
                    if kind == "checkbox":
                        value = text == "true"
                    elif kind == "number":
                        value = float(text)
                    attributes[a.get("name")] = value
                if attributes:
                    info["attributes"] = attributes
                if child.tag == "box":
                    box = tuple(float(child.get(k, "")) for k in ("xtl", "ytl", "xbr", "ybr"))
                    self.add(
                        iid, "box", (box[0] / w, box[1] / h, box[2] / w, box[3] / h), label, info
                    )
                else:
                    pairs = [p.split(",") for p in child.get("points", "").split(";")]
                    flat = tuple(
                        float(v) / (w if i % 2 == 0 else h) for p in pairs for i, v in enumerate(p)
                    )
                    if regions != "polygons":
                        xs, ys = flat[0::2], flat[1::2]
                        self.add(iid, "box", (min(xs), min(ys), max(xs), max(ys)), label, info)
                    if regions != "boxes":
                        self.add(iid, "polygon", flat, label, info)
                landed = True
            if landed or tags or not any(c.tag in STORED for c in image):
                data = hashlib.sha1(path.read_bytes()).hexdigest()
                datasets = [subset] if per_split and subset else []
                self.inputs[iid] = (data, metadata, sorted(tags), datasets)

    def add(self, iid: str, kind: str, coords: tuple[float, ...], label: str, info: Any) -> None:
        clamped = tuple(min(max(v, 0.0), 1.0) for v in coords)
        self.regions.append((iid, kind, clamped, concept(label), label, floats(info)))


async def upload(data: DatasetPath) -> tuple[Any, dict[str, Any], list[Any]]:
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01), datasets=())) as sb:
            async with Ingester(sandbox_config(sb)) as ing:
                report = await ing.run(data)
            inputs, regions = held(sb)
            with_datasets = {
                iid: (*value, sorted(sb.inputs[iid].dataset_ids)) for iid, value in inputs.items()
            }
            return report, with_datasets, regions


def skipped_of(report: Any) -> list[str]:
    return [
        re.sub(r": [^:]*; not uploaded$", "", n)
        for n in report.notes
        if n.endswith("; not uploaded")
    ]


@pytest.mark.parametrize("regions", ["boxes", "polygons", "both"])
async def test_a_cvat_project_export_lands_as_its_xml_says(tmp_path: Path, regions: str) -> None:
    """Three subsets whose images share names and ids; a box with typed attributes."""
    root = copy_export(tmp_path, "project")
    assert detect(root) == "cvat"
    data = DatasetPath(root, regions=regions, dataset_per_split=True)
    report, inputs, regions_held = await upload(data)
    want = Expected(root / "annotations.xml", regions, per_split=True)
    assert inputs == want.inputs
    assert len(inputs) == 6
    same_regions(regions_held, want.regions)
    box = next(r for r in regions_held if r[5]["shape_type"] == "box" and r[1] == "box")
    assert box[5]["attributes"] == {"a1": True, "a2": "v3", "a3": "0003", "a4": 2.4}
    assert skipped_of(report) == want.skipped
    assert len(want.skipped) == 6  # a polyline and points in each subset, each named
    assert report.rows_failed == 0 and report.rows_invalid == 0


async def test_the_documentations_example_lands_as_it_says(tmp_path: Path) -> None:
    """Every element of the format on one image: a box and a polygon land, the tag is the
    input's concept, the polylines, points, skeleton and mask are named as not uploaded."""
    root = copy_export(tmp_path, "docs")
    report, inputs, regions_held = await upload(DatasetPath(root, regions="both"))
    want = Expected(root / "annotations.xml", "both")
    assert inputs == want.inputs
    ((_, _, concepts, _),) = inputs.values()
    assert concepts == [("good_frame", "good_frame")]
    same_regions(regions_held, want.regions)
    assert skipped_of(report) == [
        f"image 'filename000.jpg' (id 0) shape {k}" for k in (3, 4, 5, 7, 8)
    ]
    kinds = {3: "a polyline", 4: "a polyline", 5: "points", 7: "a skeleton", 8: "a mask"}
    tags = {3: "polyline", 4: "polyline", 5: "points", 7: "skeleton", 8: "mask"}
    assert [n for n in report.notes if n.endswith("not uploaded")] == [
        f"image 'filename000.jpg' (id 0) shape {k}: {kind} (<{tags[k]}>) is not a box or a "
        "polygon; not uploaded"
        for k, kind in kinds.items()
    ]


async def test_a_task_export_with_an_empty_label_and_a_video_export(tmp_path: Path) -> None:
    root = copy_export(tmp_path, "task")
    xml = root / "train.xml"
    assert detect(xml) == "cvat"
    async with open_rows(DatasetPath(xml, regions="both")) as src:
        items = [i async for i in src]
    bad = [i for i in items if isinstance(i, InvalidRow)]
    assert [(i.line, i.column, i.reason) for i in bad] == [
        (8, "pos_concepts", "image 'img1.jpg' (id 1) shape 1: the shape has no label")
    ]
    report, inputs, regions_held = await upload(DatasetPath(xml, regions="both"))
    want = Expected(xml, "both", by_file=True)
    assert inputs == want.inputs and len(inputs) == 1  # img1's only shape is invalid
    same_regions(regions_held, want.regions)
    assert report.rows_invalid == 1
    video = copy_export(tmp_path, "video")
    with pytest.raises(SourceError, match=r"a CVAT for video file .* 'CVAT for images 1\.1'"):
        async with open_rows(video):
            pass


def cvat(images: str, meta: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
        f"  <meta><task><labels>{meta}</labels></task></meta>\n{images}</annotations>\n"
    )


async def test_rotated_boxes_ellipses_groups_and_tracks(tmp_path: Path) -> None:
    root = tmp_path / "task"
    write_png(root / "images/a.png", 100, 50)
    (root / "annotations.xml").write_text(
        cvat(
            '<image id="0" name="a.png" width="100" height="50">\n'
            '<box label="car" source="manual" occluded="0" xtl="40" ytl="20" xbr="60" ybr="30"'
            ' rotation="90.00" z_order="0" group_id="2" track_id="7"></box>\n'
            '<ellipse label="cell" source="auto" occluded="1" cx="50" cy="25" rx="10" ry="5"'
            ' rotation="0.00" z_order="1"></ellipse>\n'
            '<ellipse label="cell" cx="95" cy="25" rx="10" ry="5"></ellipse>\n'
            '<box label="car" outside="1" xtl="1" ytl="1" xbr="5" ybr="5"></box>\n'
            '<polygon label="car" points="1,1;2,2;3,x"></polygon>\n'
            '<box label="car" xtl="1" ytl="1" xbr="5" ybr="5" score="0.5"></box>\n'
            "</image>\n"
        )
    )
    items, stats = await read(DatasetPath(root, regions="both"))
    got = {i.line: i for i in items}
    rotated_box, rotated = got[3], got[4]
    assert isinstance(rotated_box, Row) and isinstance(rotated, Row)
    # turned a quarter about its centre (50, 25): 10 wide, 20 high
    assert rotated_box.coords == pytest.approx((0.45, 0.3, 0.55, 0.7))
    assert rotated.polygon is not None and len(rotated.polygon) == 8
    assert rotated.info == {
        "shape_type": "box",
        "z_order": 0,
        "occluded": 0,
        "group_id": 2,
        "track_id": 7,
        "source": "manual",
        "rotation": 90,
    }
    ellipse = got[5]
    assert isinstance(ellipse, Row) and ellipse.coords == pytest.approx((0.4, 0.4, 0.6, 0.6))
    edge = got[8]  # reaching past the right edge: cut there
    assert isinstance(edge, Row) and edge.polygon is not None and max(edge.polygon[0::2]) == 1.0
    assert 9 not in got and 10 not in got  # outside="1": not uploaded
    bad = got[11]
    assert isinstance(bad, InvalidRow) and bad.column == "polygon"
    assert bad.reason == "image 'a.png' (id 0) shape 5: the point '3,x' is not two numbers"
    assert stats.warnings == [
        "image 'a.png' (id 0) shape 4: the shape is marked outside (not visible in the image); "
        "not uploaded",
        "image 'a.png' (id 0) shape 6: the <box> attribute 'score' is not one ingest reads; "
        "not uploaded",
    ]


async def test_where_images_are_looked_for(tmp_path: Path) -> None:
    root = tmp_path / "export"
    write_png(root / "images/Train/a.png", 100, 50)
    write_png(root / "b.png", 100, 50)  # beside the XML
    box = '<box label="car" xtl="1" ytl="1" xbr="5" ybr="5"></box>'
    (root / "annotations.xml").write_text(
        cvat(
            f'<image id="0" name="a.png" subset="Train" width="100" height="50">{box}</image>\n'
            f'<image id="1" name="b.png" subset="Train" width="100" height="50">{box}</image>\n'
            f'<image id="2" name="c.png" subset="Val" width="100" height="50">{box}</image>\n'
            f'<image id="3" name="a.png" subset="Train" width="100" height="50">{box}</image>\n'
        )
    )
    items, _ = await read(root)
    a, b, c, again = items
    assert isinstance(a, Row) and a.raw["file"] == "export/images/Train/a.png"
    assert isinstance(b, Row) and b.raw["file"] == "export/b.png"
    assert isinstance(c, InvalidRow) and c.column == "file"
    assert c.reason == (
        "image 'c.png' (id 2, subset Val): the image is not there; looked for "
        "export/images/Val/c.png, export/images/c.png, export/c.png"
    )
    assert isinstance(again, InvalidRow) and again.reason == (
        "image 'a.png' (id 3, subset Train): an earlier <image> of the file names the same "
        "image file"
    )
    # --images DIR: looked for there instead
    other = tmp_path / "pictures"
    write_png(other / "Val/c.png", 100, 50)
    items, _ = await read(DatasetPath(root, images=str(other)))
    c = items[2]
    assert isinstance(c, Row) and c.raw["file"] == "pictures/Val/c.png"


async def test_one_subset_keeps_every_rows_position(tmp_path: Path) -> None:
    root = copy_export(tmp_path, "project")
    every = {i.line: i for i in (await read(DatasetPath(root, regions="both")))[0]}
    train, stats = await read(DatasetPath(root, regions="both", split="Train"))
    assert train and all(i.line in every for i in train)
    assert len(stats.warnings) == 2  # its polyline and points; the other subsets' not named
    assert all("subset Train" in w for w in stats.warnings)
    for item in train:
        assert isinstance(item, Row) and item.metadata is not None
        assert item.metadata["split"] == "Train"
        assert item.annotation_id == every[item.line].annotation_id  # type: ignore[union-attr]
    with pytest.raises(
        SourceError,
        match="no subset 'train'; its images' subsets are 'Test', 'Train', 'Validation'",
    ):
        await read(DatasetPath(root, split="train"))


async def test_what_is_not_cvat_is_refused_with_where(tmp_path: Path) -> None:
    voc = tmp_path / "a.xml"
    voc.write_text("<annotation><filename>a.png</filename></annotation>")
    with pytest.raises(
        SourceError, match=r"its root element is <annotation>, CVAT's is <annotations>"
    ):
        await read(voc)
    bad = tmp_path / "b.xml"
    bad.write_text(cvat('<image id="0" name="a.png">\n<box label="x">\n</image>\n'))
    with pytest.raises(SourceError, match=r"b.xml: not well-formed XML: mismatched tag: line 7"):
        await read(bad)
    typo = tmp_path / "d.xml"
    typo.write_text(
        cvat('<image id="0" name="a.png"><box label="x" xtl="1" ytl="1" xbt="5" ybr="5"/></image>')
    )
    with pytest.raises(SourceError) as err:
        await read(typo)
    assert str(err.value) == (
        "image 'a.png' (id 0) shape 1: the <box> attribute 'xbt' is not one ingest reads; "
        "did you mean 'xbr'?"
    )
    two = tmp_path / "c.xml"
    two.write_text(cvat('<image id="0" name="a.png"><tag label="Dog"/><tag label="dog"/></image>'))
    with pytest.raises(SourceError, match="'Dog' and 'dog' both become the concept id 'dog'"):
        await read(two)


def test_a_large_file_is_read_in_flat_memory(tmp_path: Path) -> None:
    """The XML is parsed one <image> at a time, each freed: ten times the images, about the
    same peak memory."""

    def peak(images: int) -> int:
        xml = tmp_path / f"{images}.xml"
        with xml.open("w") as f:
            f.write("<annotations><version>1.1</version><meta/>")
            for i in range(images):
                f.write(
                    f'<image id="{i}" name="{i}.png" width="100" height="50">'
                    '<box label="car" xtl="1" ytl="1" xbr="5" ybr="5"/>'
                    '<polygon label="car" points="1,1;20,2;3,30"/></image>'
                )
            f.write("</annotations>")
        tracemalloc.start()
        try:
            seen = sum(1 for _ in _Xml(xml).images())
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert seen == images

    small, large = peak(2_000), peak(20_000)
    assert large < 1.5 * small


async def test_resumed_through_the_command_line_and_written_as_csv(tmp_path: Path) -> None:
    root = copy_export(tmp_path, "project")
    console = Console(file=io.StringIO())
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb:
            first = await run_upload(plan_for(sb, root, regions="both"), console)
            assert first.exit_status == 0
            manifest = Path(str(default_state_path(root)) + ".files")
            assert json.loads(await anyio.Path(manifest).read_text())["files"] == 7
            again = await run_upload(plan_for(sb, root, regions="both"), console)
            assert again.report.rows_resumed == first.report.rows_read == 9
            assert again.report.inputs_created == again.report.annotations_created == 0
    out = tmp_path / "rows.csv"
    flags = ["--regions", "both", "--dataset-per-split"]
    assert await write_csv(root, out, *flags) == 0
    data = DatasetPath(root, regions="both", dataset_per_split=True)
    assert await land(out) == await land(data)


async def test_the_example_lands_as_the_coco_example_does(tmp_path: Path) -> None:
    """``examples/cvat`` holds the images and boxes of ``examples/coco``."""
    for name in ("coco", "cvat"):
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    coco = await roundtrip_land(tmp_path / "coco/annotations.json")
    cvat = await roundtrip_land(tmp_path / "cvat")
    assert cvat == coco and len(coco[0]) == 5 and len(coco[1]) == 4


async def test_tags_are_image_level_concepts_their_attributes_in_the_metadata(
    tmp_path: Path,
) -> None:
    root = tmp_path / "task"
    write_png(root / "images/a.png", 100, 50)
    meta = (
        "<label><name>Sunny Day</name><type>tag</type><attributes><attribute><name>clear</name>"
        "<input_type>checkbox</input_type></attribute></attributes></label>"
    )
    (root / "annotations.xml").write_text(
        cvat(
            '<image id="7" name="a.png" width="100" height="50">'
            '<tag label="Sunny Day" source="manual" group_id="3">'
            '<attribute name="clear">true</attribute></tag>'
            '<tag label="outdoor" source="auto"></tag></image>\n',
            meta,
        )
    )
    items, _ = await read(root)
    assert [(i.line, i.pos_concepts, i.annotation_id) for i in items if isinstance(i, Row)] == [
        (2, ("sunny-day",), ""),
        (3, ("outdoor",), ""),
    ]
    first = items[0]
    assert isinstance(first, Row) and first.metadata == {
        "cvat_image_id": 7,
        "tags": {
            "Sunny Day": {"source": "manual", "group_id": 3, "attributes": {"clear": True}},
            "outdoor": {"source": "auto"},
        },
    }
    assert first.concept_names is not None and first.concept_names["sunny-day"] == "Sunny Day"
