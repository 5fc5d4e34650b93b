"""YOLO datasets: data.yaml or images/ + labels/, boxes and segments, into seed rows."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from google.protobuf.json_format import MessageToDict

from ingest import Ingester, Status, ids
from ingest.errors import SourceError
from ingest.model import InvalidRow, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, FormatOptions, detect, open_rows, validate_path
from tests.helpers import sandbox_config
from tests.source.imagefiles import png, write_png

pytestmark = pytest.mark.anyio

YAML = """\
path: .
train: images/train
val: images/val
names: ["person", "Traffic Light", "car"]
"""


def make_yolo(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    root.mkdir()
    (root / "data.yaml").write_text(YAML)
    write_png(root / "images/train/a.png", 100, 50)
    write_png(root / "images/train/b.png", 40, 40)
    write_png(root / "images/val/c.png", 20, 20)
    labels = root / "labels"
    (labels / "train").mkdir(parents=True)
    (labels / "val").mkdir()
    (labels / "train/a.txt").write_text(
        "0 0.5 0.5 0.2 0.4\n"
        "1 0.1 0.1 0.3 0.1 0.2 0.3\n"
        "\n"
        "7 0.5 0.5 0.1 0.1\n"
        "2 0.5 0.5 1.4 0.2\n"
        "0 0.5025 0.5 0.995 0.2\n"
    )
    (labels / "val/c.txt").write_text("2 0.5 0.5 0.5 0.5\n")
    return root


async def read(path: Path | DatasetPath) -> list[Row | InvalidRow]:
    with anyio.fail_after(20):
        async with open_rows(path) as src:
            assert src.path is not None
            return [item async for item in src]


async def test_a_yolo_dataset_becomes_rows_with_positions_splits_and_names(tmp_path: Path) -> None:
    root = make_yolo(tmp_path)
    assert detect(root) == "yolo" and detect(root / "data.yaml") == "yolo"
    items = await read(root)
    # a segment row has two positions (its box's and its polygon's): 3 and 4
    assert [i.line for i in items] == [2, 3, 5, 6, 7, 8, 9]
    box, seg, bad_class, outside, clamped, empty, val = items
    assert isinstance(box, Row)
    assert box.path == str((root / "images/train/a.png").resolve())
    assert box.input_id == ids.input_id("file:ds/images/train/a.png")
    assert box.coords == pytest.approx((0.4, 0.3, 0.6, 0.7))
    assert box.pos_concepts == ("person",) and box.metadata == {"split": "train"}
    # a segment row becomes its bounding box by default
    assert isinstance(seg, Row) and seg.coords == pytest.approx((0.1, 0.1, 0.3, 0.3))
    assert seg.pos_concepts == ("traffic-light",)
    assert seg.concept_names is not None and seg.concept_names["traffic-light"] == "Traffic Light"
    assert isinstance(bad_class, InvalidRow)
    assert "ds/labels/train/a.txt line 4: class 7 is not one of the dataset's classes" in (
        bad_class.reason
    )
    assert isinstance(outside, InvalidRow) and "line 5" in outside.reason
    assert "outside the image" in outside.reason
    # half a pixel over the right edge of a 100-pixel image: clamped
    assert isinstance(clamped, Row) and clamped.coords is not None
    assert clamped.coords[2] == 1.0
    assert isinstance(empty, Row) and empty.annotation_id == "" and empty.coords is None
    assert isinstance(val, Row) and val.metadata == {"split": "val"}
    # the failed rows are seed-format CSV rows
    assert bad_class.raw["file"] == "ds/images/train/a.png"
    assert outside.raw["pos_concepts"] == "car"


async def test_segments_become_polygons_or_both(tmp_path: Path) -> None:
    root = make_yolo(tmp_path)
    items = await read(DatasetPath(root, regions="both"))
    seg_box, seg_poly = items[1], items[2]
    assert isinstance(seg_box, Row) and seg_box.coords is not None
    assert isinstance(seg_poly, Row) and seg_poly.polygon == pytest.approx(
        (0.1, 0.1, 0.3, 0.1, 0.2, 0.3)
    )
    only = await read(DatasetPath(root, regions="polygons"))
    assert isinstance(only[1], Row) and only[1].polygon is not None
    assert isinstance(only[0], Row) and only[0].coords is not None  # a box stays a box


async def test_a_folder_without_data_yaml_uses_classes_txt(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write_png(root / "images/x.png", 10, 10)
    (root / "labels").mkdir()
    (root / "labels/x.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (root / "classes.txt").write_text("cat\ndog\n")
    [row] = await read(root)
    assert isinstance(row, Row) and row.pos_concepts == ("dog",) and row.metadata is None


async def test_two_names_for_one_concept_id_stop_before_anything_is_sent(tmp_path: Path) -> None:
    root = make_yolo(tmp_path)
    (root / "data.yaml").write_text(YAML.replace('"car"', '"traffic light"'))
    with pytest.raises(SourceError, match="'Traffic Light' and 'traffic light' both become"):
        await read(root)


async def test_malformed_yaml_is_an_error_with_its_position(tmp_path: Path) -> None:
    root = make_yolo(tmp_path)
    (root / "data.yaml").write_text("names: [a, b\ntrain: images/train\n")
    with pytest.raises(SourceError, match=r"data.yaml: line \d+, column \d+: not valid YAML"):
        await read(root)


async def test_an_unknown_folder_says_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"looked for .*a YOLO dataset .* Pascal VOC"):
        detect(tmp_path)


async def test_validate_counts_a_yolo_dataset(tmp_path: Path) -> None:
    summary = await validate_path(make_yolo(tmp_path))
    assert (summary.rows, summary.images, summary.boxes, summary.image_level_rows) == (7, 3, 4, 1)
    assert len(summary.invalid) == 2 and summary.labels == 3


async def test_a_yolo_dataset_lands_on_the_sandbox(tmp_path: Path) -> None:
    root = make_yolo(tmp_path)
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.05, 0.2))) as sb:
            config = sandbox_config(sb)
            async with Ingester(config) as ing, ing.stream(DatasetPath(root)) as stream:
                outcomes = {o.line: o async for o in stream}
            a = ids.input_id("file:ds/images/train/a.png")
            assert set(sb.inputs) == {
                a,
                ids.input_id("file:ds/images/train/b.png"),
                ids.input_id("file:ds/images/val/c.png"),
            }
            assert sb.inputs[a].data.image.base64 == png(100, 50)
            assert MessageToDict(sb.inputs[a].data.metadata) == {"split": "train"}
            stored = [x for x in sb.annotations.values() if not isinstance(x, str)]
            assert len(stored) == 4
            concepts = {(c.id, c.name) for x in stored for c in x.data.regions[0].data.concepts}
            assert ("traffic-light", "Traffic Light") in concepts
    failed = {line for line, o in outcomes.items() if o.status is Status.FAILED}
    assert failed == {5, 6}
    assert len(outcomes) == 7


async def test_dataset_per_split_makes_the_datasets_and_fills_them(tmp_path: Path) -> None:
    """On an app that has no dataset yet (a strict sandbox), train and val are made once
    and each input lands in its split's dataset; a re-run makes nothing again."""
    root = make_yolo(tmp_path)
    source = DatasetPath(root, FormatOptions(dataset_per_split=True))
    options = SandboxOptions(rps=0, processing=(0.05, 0.2), datasets=())
    async with Sandbox(options) as sb:
        config = sandbox_config(sb)
        for _ in range(2):
            async with Ingester(config) as ing:
                report = await ing.run(source)
            assert report.rows_failed == 2  # the two bad label lines, as without datasets
        assert sb.stats.requests["PostDatasets"] == 2 + 2  # once per run and dataset
        assert set(sb.servicer.state.datasets) == {"train", "val"}
        split_of = {
            ids.input_id("file:ds/images/train/a.png"): ["train"],
            ids.input_id("file:ds/images/train/b.png"): ["train"],
            ids.input_id("file:ds/images/val/c.png"): ["val"],
        }
        assert {i: list(x.dataset_ids) for i, x in sb.inputs.items()} == split_of


async def test_one_split_keeps_every_rows_position(tmp_path: Path) -> None:
    root = make_yolo(tmp_path)
    every = {i.line: i for i in await read(root)}
    [val] = await read(DatasetPath(root, split="val"))
    assert isinstance(val, Row) and val.line == 9 and val.metadata == {"split": "val"}
    assert val.input_id == every[9].input_id  # type: ignore[union-attr]
    train = await read(DatasetPath(root, split="train"))
    assert [i.line for i in train] == [2, 3, 5, 6, 7, 8]
    with pytest.raises(SourceError) as err:
        await read(DatasetPath(root, split="test"))
    assert str(err.value) == f"{root}: no split 'test'; the dataset's splits are 'train', 'val'"
