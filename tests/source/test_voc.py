"""Pascal VOC folders: 1-based inclusive pixel boxes, per-object attributes, into seed rows."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from google.protobuf.json_format import MessageToDict

from ingest import Ingester, Status, ids
from ingest.errors import SourceError
from ingest.model import InvalidRow, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, detect, open_rows
from tests.helpers import sandbox_config
from tests.source.imagefiles import write_png

pytestmark = pytest.mark.anyio


def obj(name: str, box: tuple[int, int, int, int], extra: str = "") -> str:
    xmin, ymin, xmax, ymax = box
    return (
        f"<object><name>{name}</name>{extra}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


def doc(filename: str, objects: str = "", size: tuple[int, int] | None = (100, 50)) -> str:
    sz = ""
    if size is not None:
        sz = f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
    return (
        f"<annotation><folder>VOC</folder><filename>{filename}</filename>{sz}{objects}</annotation>"
    )


def make_voc(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    ann = root / "Annotations"
    ann.mkdir(parents=True)
    write_png(root / "JPEGImages/a.png", 100, 50)
    write_png(root / "JPEGImages/b.png", 30, 20)
    objects = (
        obj(
            "dog",
            (11, 6, 60, 45),
            "<pose>Left</pose><truncated>1</truncated><difficult>0</difficult>",
        )
        + obj("Traffic Light", (1, 1, 101, 50))
        + obj("cat", (10, 10, 200, 20))
        + obj("cat", (10, 10, 9, 20))
    )
    (ann / "a.xml").write_text(doc("a.png", objects))
    (ann / "b.xml").write_text(doc("b.png", size=None))
    (ann / "c.xml").write_text(doc("missing.png", obj("dog", (1, 1, 5, 5))))
    return root


async def read(path: Path | DatasetPath) -> list[Row | InvalidRow]:
    with anyio.fail_after(20):
        async with open_rows(path) as src:
            return [item async for item in src]


async def test_a_voc_folder_becomes_rows(tmp_path: Path) -> None:
    root = make_voc(tmp_path)
    assert detect(root) == "voc"
    items = await read(root)
    assert [i.line for i in items] == [2, 3, 4, 5, 6, 7]
    dog, light, outside, flat, empty, missing = items
    assert isinstance(dog, Row)
    assert dog.input_id == ids.input_id("file:voc/JPEGImages/a.png")
    # 1-based inclusive: left = (xmin - 1) / width, right = xmax / width
    assert dog.coords == pytest.approx((0.1, 0.1, 0.6, 0.9))
    assert dog.info == {"truncated": 1, "difficult": 0, "pose": "Left"}
    # one pixel past the right edge is clamped
    assert isinstance(light, Row) and light.coords == (0.0, 0.0, 1.0, 1.0)
    assert light.pos_concepts == ("traffic-light",)
    assert light.concept_names is not None
    assert light.concept_names["traffic-light"] == "Traffic Light"
    assert isinstance(outside, InvalidRow)
    assert outside.reason.startswith("voc/Annotations/a.xml object 3: the box xmin 10 ymin 10")
    assert "outside the 100x50 image" in outside.reason
    assert isinstance(flat, InvalidRow) and "object 4" in flat.reason and "no area" in flat.reason
    assert isinstance(empty, Row) and empty.annotation_id == ""
    assert isinstance(missing, InvalidRow) and missing.column == "file"
    assert "voc/JPEGImages/missing.png" in missing.reason and "does not exist" in missing.reason
    assert outside.raw["file"] == "voc/JPEGImages/a.png"


async def test_malformed_xml_is_an_error_with_its_position(tmp_path: Path) -> None:
    root = make_voc(tmp_path)
    (root / "Annotations/d.xml").write_text("<annotation>\n<object><name>x</name>\n</annotation>")
    with pytest.raises(SourceError, match=r"d.xml: not well-formed XML: .*line 3, column"):
        await read(root)


async def test_two_names_for_one_concept_id_stop_before_anything_is_sent(tmp_path: Path) -> None:
    root = make_voc(tmp_path)
    (root / "Annotations/d.xml").write_text(doc("a.png", obj("Dog", (1, 1, 5, 5))))
    with pytest.raises(SourceError, match="'dog' and 'Dog' both become the concept id 'dog'"):
        await read(root)


async def test_a_voc_folder_lands_on_the_sandbox(tmp_path: Path) -> None:
    root = make_voc(tmp_path)
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.05, 0.2))) as sb:
            config = sandbox_config(sb)
            async with Ingester(config) as ing, ing.stream(DatasetPath(root)) as stream:
                outcomes = {o.line: o async for o in stream}
            a = ids.input_id("file:voc/JPEGImages/a.png")
            assert set(sb.inputs) == {a, ids.input_id("file:voc/JPEGImages/b.png")}
            stored = [x for x in sb.annotations.values() if not isinstance(x, str)]
            assert len(stored) == 2
            infos = [MessageToDict(x.annotation_info) for x in stored]
            assert {"truncated": 1.0, "difficult": 0.0, "pose": "Left"} in infos
            boxes = sorted(
                tuple(round(v, 6) for v in (b.left_col, b.top_row, b.right_col, b.bottom_row))
                for b in (x.data.regions[0].region_info.bounding_box for x in stored)
            )
            assert boxes == [(0.0, 0.0, 1.0, 1.0), (0.1, 0.1, 0.6, 0.9)]
    assert {line for line, o in outcomes.items() if o.status is Status.FAILED} == {4, 5, 7}


def with_splits(root: Path) -> Path:
    """The devkit's ImageSets/Main: split files of image ids, a per-class file (not a
    split), and a split naming an image without an annotation file."""
    main = root / "ImageSets/Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("a\n")
    (main / "val.txt").write_text("b\nc\n")
    (main / "trainval.txt").write_text("a\nb\nc\n")
    (main / "dog_train.txt").write_text("a  1\n")
    (main / "test.txt").write_text("zzz\n")
    return root


async def test_every_input_carries_its_splits(tmp_path: Path) -> None:
    root = with_splits(make_voc(tmp_path))
    async with open_rows(root) as src:
        items = [i async for i in src]
        assert any("test.txt: 1 image id(s) have no annotation file" in n for n in src.stats.notes)
    splits = {i.line: (i.metadata if isinstance(i, Row) else i.raw["metadata"]) for i in items}
    a = {"splits": ["train", "trainval"]}
    assert splits == {
        2: a,
        3: a,
        4: '{"splits":["train","trainval"]}',  # invalid rows keep their cells
        5: '{"splits":["train","trainval"]}',
        6: {"splits": ["trainval", "val"]},
        7: '{"splits":["trainval","val"]}',
    }


async def test_one_split_keeps_every_rows_position(tmp_path: Path) -> None:
    root = with_splits(make_voc(tmp_path))
    every = {i.line: i for i in await read(root)}
    val = await read(DatasetPath(root, split="val"))
    assert [i.line for i in val] == [6, 7]  # b and c, where the whole read puts them
    for item in val:
        assert type(item) is type(every[item.line])
        if isinstance(item, Row):
            assert item.input_id == every[item.line].input_id  # type: ignore[union-attr]
    with pytest.raises(SourceError) as err:
        await read(DatasetPath(root, split="tset"))
    assert str(err.value) == (
        f"{root}: no split 'tset'; ImageSets/Main holds 'test', 'train', 'trainval', 'val'"
    )


async def test_a_split_lands_in_its_own_dataset(tmp_path: Path) -> None:
    """Without --split each input goes into its smallest split's dataset (a: train, b: val);
    with --split trainval into trainval's; metadata lists every split either way."""
    root = with_splits(make_voc(tmp_path))
    a = ids.input_id("file:voc/JPEGImages/a.png")
    b = ids.input_id("file:voc/JPEGImages/b.png")
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01), datasets=())) as sb:
            config = sandbox_config(sb)
            async with Ingester(config) as ing:
                await ing.run(DatasetPath(root, dataset_per_split=True))
            assert {i: list(x.dataset_ids) for i, x in sb.inputs.items()} == {
                a: ["train"],
                b: ["val"],
            }
            assert MessageToDict(sb.inputs[b].data.metadata) == {"splits": ["trainval", "val"]}
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01), datasets=())) as sb:
            async with Ingester(sandbox_config(sb)) as ing:
                report = await ing.run(DatasetPath(root, split="trainval", dataset_per_split=True))
            assert {i: list(x.dataset_ids) for i, x in sb.inputs.items()} == {
                a: ["trainval"],
                b: ["trainval"],
            }
            assert (report.rows_total, report.images_total) == (6, 3)
