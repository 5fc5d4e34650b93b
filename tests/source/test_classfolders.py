"""Class folders (``train/cat/*.jpg``, ``cat/*.jpg``): each image with its folder's name as
concept, its split in metadata; what is not read is said; the SDK's ImageNet sample."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from ingest import ids
from ingest.cli import main, run_upload
from ingest.errors import JournalError, SourceError
from ingest.failures import default_failures_path
from ingest.model import InvalidRow, Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, detect, open_rows
from ingest.source.imagesize import IMAGE_SUFFIXES
from tests.helpers import cli_env
from tests.source.imagefiles import write_png
from tests.source.test_classification import upload_strictly
from tests.source.test_formats_cli import plan_for
from tests.source.test_sdkcsv import extract_sdk_assets, sdk_missing

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"rps": 0, "processing": (0.02, 0.1)}


def make_splits(tmp_path: Path) -> Path:
    """train/ and val/, each with class folders, and what a real folder also holds."""
    root = tmp_path / "pets"
    for i, rel in enumerate(
        [
            "train/cat/b.png",
            "train/cat/a.PNG",  # any letter case
            "train/Golden Retriever/g1.jpg",
            "val/cat/c.png",
            "val/loose.png",  # in a split, in no class folder
        ]
    ):
        write_png(root / rel, 4 + i, 4)
    (root / "train/cat/notes.txt").write_text("seen twice\n")  # not an image
    (root / "train/cat/.DS_Store").write_bytes(b"\0")  # litter
    write_png(root / "train/cat/crops/c1.png", 2, 2)  # a folder inside a class folder
    (root / "val/dog").mkdir(parents=True)  # an empty class folder
    (root / "README.md").write_text("pets\n")
    return root


def walk(root: Path) -> Iterator[tuple[str, str, str]]:
    """(relative path, split, class) of every image where it should land, read with
    os.walk: the independent reading of the layout."""
    for top, _, files in os.walk(root):
        parts = Path(top).relative_to(root).parts
        if len(parts) != 2:
            continue  # only SPLIT/CLASS folders hold labelled images here
        for name in files:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield str(Path(top, name).relative_to(root.parent)), parts[0], parts[1]


async def read(path: Path | DatasetPath) -> tuple[list[Row | InvalidRow], Any]:
    with anyio.fail_after(20):
        async with open_rows(path) as src:
            return [item async for item in src], src.stats


async def valid(path: Path | DatasetPath) -> tuple[list[Row], Any]:
    """The rows of ``path``, every one valid."""
    items, stats = await read(path)
    rows = [i for i in items if isinstance(i, Row)]
    assert rows == items
    return rows, stats


async def test_split_and_class_folders_become_labelled_rows(tmp_path: Path) -> None:
    root = make_splits(tmp_path)
    assert detect(root) == "classes"
    rows, stats = await valid(root)
    got = [
        (r.line, str(Path(r.path).relative_to(tmp_path)), r.pos_concepts, r.metadata) for r in rows
    ]
    assert got == [
        # train: its class folders by name ("Golden Retriever" sorts first), files by name
        (2, "pets/train/Golden Retriever/g1.jpg", ("golden-retriever",), {"split": "train"}),
        (3, "pets/train/cat/a.PNG", ("cat",), {"split": "train"}),
        (4, "pets/train/cat/b.png", ("cat",), {"split": "train"}),
        # val: its image outside a class folder first, without a concept
        (5, "pets/val/loose.png", (), {"split": "val"}),
        (6, "pets/val/cat/c.png", ("cat",), {"split": "val"}),
    ]
    assert rows[0].concept_names is not None
    assert rows[0].concept_names["golden-retriever"] == "Golden Retriever"
    assert rows[0].input_id == ids.input_id("file:pets/train/Golden Retriever/g1.jpg")
    assert all(r.annotation_id == "" and r.dataset_id == "" for r in rows)
    assert (stats.rows_total, stats.images_total) == (5, 5)
    assert stats.warnings == [
        "pets: 1 file(s) that are not images are not uploaded: README.md",
        "pets/train/cat: 1 file(s) that are not images are not uploaded: notes.txt",
        "1 folder(s) inside class folders are not read (a class folder holds its images "
        "directly): pets/train/cat/crops",
        "1 folder(s) hold no images: pets/val/dog",
    ]
    assert "pets/val: 1 image(s) in no class folder are uploaded without a concept" in stats.notes
    assert any(".DS_Store" in n for n in stats.notes)


async def test_one_split_keeps_every_position_and_datasets_per_split(tmp_path: Path) -> None:
    root = make_splits(tmp_path)
    every, _ = await read(root)
    val, stats = await read(DatasetPath(root, split="val", dataset_per_split=True))
    assert [(i.line, i.raw["file"]) for i in val] == [(i.line, i.raw["file"]) for i in every[3:]]
    assert {i.dataset_id for i in val if isinstance(i, Row)} == {"val"}
    assert stats.rows_total == 2
    with pytest.raises(SourceError, match=r"no split 'test'; its splits are 'train', 'val'"):
        await read(DatasetPath(root, split="test"))


async def test_class_folders_without_splits_and_a_folder_of_images_alone(tmp_path: Path) -> None:
    root = tmp_path / "animals"
    write_png(root / "dog/1.png", 3, 3)
    write_png(root / "cat/1.png", 3, 3)
    rows, stats = await valid(root)
    assert [(r.raw["file"], r.pos_concepts, r.metadata) for r in rows] == [
        ("animals/cat/1.png", ("cat",), None),
        ("animals/dog/1.png", ("dog",), None),
    ]
    with pytest.raises(SourceError, match="no split 'train'; its splits are none"):
        await read(DatasetPath(root, split="train"))
    _, stats = await read(DatasetPath(root, dataset_per_split=True))
    assert any("has no split folders" in w for w in stats.warnings)
    # a folder of images alone is not recognised; --format classes makes it one class
    flat = root / "cat"
    with pytest.raises(SourceError, match="a folder ingest cannot read"):
        detect(flat)
    [one], stats = await read(DatasetPath(flat, format="classes"))
    assert isinstance(one, Row) and one.pos_concepts == ("cat",)
    assert any("is their class" in n for n in stats.notes)


async def test_splits_without_class_folders_are_warned_about(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_png(root / "train/1.png", 3, 3)
    write_png(root / "val/2.png", 3, 3)
    rows, stats = await valid(root)
    assert [r.pos_concepts for r in rows] == [("train",), ("val",)]
    assert stats.warnings == [
        f"{root}: the class folders 'train', 'val' are named like splits; their images get "
        "those names as concepts (split folders hold class folders: SPLIT/CLASS/*.jpg)"
    ]


async def test_what_other_formats_hold_is_not_taken_for_class_folders(tmp_path: Path) -> None:
    labelme = tmp_path / "labelme"
    write_png(labelme / "batch1/x.png", 3, 3)
    (labelme / "batch1/x.json").write_text("{}")
    coco = tmp_path / "coco"
    write_png(coco / "train2017/x.png", 3, 3)
    (coco / "annotations").mkdir()
    for path in (labelme, coco):
        with pytest.raises(SourceError, match="a folder ingest cannot read"):
            detect(path)
    # --format classes reads it anyway, and says what it does not upload
    rows, stats = await valid(DatasetPath(labelme, format="classes"))
    assert [r.pos_concepts for r in rows] == [("batch1",)]
    assert stats.warnings == [
        "labelme/batch1: 1 file(s) that are not images are not uploaded: x.json"
    ]


async def test_two_folders_making_one_concept_id_stop_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ds"
    write_png(root / "Traffic Light/1.png", 3, 3)
    write_png(root / "traffic light/2.png", 3, 3)
    with pytest.raises(SourceError, match="'Traffic Light' and 'traffic light' both become"):
        await read(root)


async def test_class_folders_land_as_the_folders_say(tmp_path: Path) -> None:
    root = make_splits(tmp_path)
    (root / "train/cat/empty.png").write_bytes(b"")  # a bad row: named by file and position
    console = Console(file=io.StringIO())
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:
            first = await run_upload(plan_for(sb, root, dataset_per_split=True), console)
            assert first.exit_status == 1 and first.report.rows_failed == 1
            held = {
                inp.id: (
                    [(c.id, c.name, c.value) for c in inp.data.concepts],
                    MessageToDict(inp.data.metadata),
                    list(inp.dataset_ids),
                )
                for inp in sb.inputs.values()
            }
            want = {
                ids.input_id("file:" + rel): (
                    [(cls.lower().replace(" ", "-"), cls, 1.0)],
                    {"split": split},
                    [split],
                )
                for rel, split, cls in walk(root)
                if not rel.endswith("empty.png")
            }
            loose = ids.input_id("file:pets/val/loose.png")
            want[loose] = ([], {"split": "val"}, ["val"])
            assert held == want
            # the failed row, in ingest's CSV: its file, its position, why
            with default_failures_path(root).open(newline="") as fh:
                [failed] = list(csv.DictReader(fh))
            assert (failed["file"], failed["line"]) == ("pets/train/cat/empty.png", "5")
            assert (
                failed["error"] == "line 5, column 'file': file 'pets/train/cat/empty.png' is empty"
            )
            assert failed["pos_concepts"] == "cat"
            assert failed["metadata"] == '{"split":"train"}'
            # the same command again: the journal knows what landed, the bad row fails again
            again = await run_upload(plan_for(sb, root, dataset_per_split=True), console)
            assert again.report.rows_resumed == 5 and again.report.rows_failed == 1
            assert again.report.inputs_created == 0
            # fixed, the failures file uploads as a CSV
            write_png(root / "train/cat/empty.png", 5, 5)
            fixed = await run_upload(plan_for(sb, default_failures_path(root)), console)
            assert fixed.exit_status == 0
            # the folders changed since the journal was written: resuming is refused
            with pytest.raises(JournalError, match="changed since its journal"):
                await run_upload(plan_for(sb, root, dataset_per_split=True), console)
            assert [
                c.id for c in sb.inputs[ids.input_id("file:pets/train/cat/empty.png")].data.concepts
            ] == ["cat"]


def test_validate_names_what_is_not_read_and_format_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_splits(tmp_path)
    assert main(["validate", str(root)]) == 0
    captured = capsys.readouterr()
    assert "warning: pets/train/cat: 1 file(s) that are not images" in captured.err
    assert "every row is valid" in captured.out
    assert main(["validate", str(root / "train" / "cat"), "--format", "classes"]) == 0
    assert main(["validate", str(root), "--format", "yolo"]) == 2
    assert "pets/images: cannot list the folder" in capsys.readouterr().err  # read as YOLO


async def test_strict_refuses_what_class_folders_would_not_upload(tmp_path: Path) -> None:
    root = make_splits(tmp_path)
    async with Sandbox(SandboxOptions(**FAST)) as sb:
        with pytest.raises(SourceError, match=r"README.md; nothing sent \(strict"):
            await upload_strictly(sb, root)
        assert not sb.inputs


LOADER = """
import json, sys
from clarifai.datasets.upload.loaders.imagenet_classification import ImageNetDataLoader
loader = ImageNetDataLoader(data_dir=sys.argv[1])
print(json.dumps(list(zip(loader.image_paths, loader.concepts))))
"""
"""The SDK's ImageNet loader reading a folder, in its own process (its globals stay out of
this one): each image's path and labels."""


async def sdk_imagenet(folder: Path) -> list[tuple[str, list[str]]]:
    why = sdk_missing()
    if why is not None:  # pragma: no cover
        pytest.skip(why)
    done = await anyio.run_process(
        [sys.executable, "-c", LOADER, str(folder)], env=cli_env(), check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    out: list[tuple[str, list[str]]] = json.loads(done.stdout.decode().splitlines()[-1])
    return out


@pytest.fixture
def imagenet(tmp_path: Path) -> Path:
    """The SDK's own ImageNet sample, from its tests' tarball (never copied here)."""
    return extract_sdk_assets(tmp_path, "imagenet_classification")


async def test_the_sdks_imagenet_sample_lands_as_its_own_loader_reads_it(imagenet: Path) -> None:
    sdk = {Path(p): labels for p, labels in await sdk_imagenet(imagenet)}
    assert detect(imagenet) == "classes"
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:
            result = await run_upload(plan_for(sb, imagenet), Console(file=io.StringIO()))
            assert result.exit_status == 0 and result.report.inputs_created == len(sdk) == 10
            for path, labels in sdk.items():
                rel = str(path.relative_to(imagenet.parent))
                stored = sb.inputs[ids.input_id("file:" + rel)]
                [concept] = stored.data.concepts
                synset = Path(path).parent.name
                # the folder is the id, the mapping's words the name; the SDK's loader
                # takes the words with their spaces removed as its concepts
                assert concept.id == synset
                assert concept.name.replace(" ", "") in labels
                assert MessageToDict(stored.data.metadata) == {"split": "train"}
                assert stored.data.image.base64 == await anyio.Path(path).read_bytes()
