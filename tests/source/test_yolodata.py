"""A YOLO dataset's yaml whatever its name: Ultralytics' coco8 layout lands its class names;
two dataset yamls, no names anywhere, a misspelt key or an ``nc`` that disagrees are
refused before anything is sent; unknown keys are warnings."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from ingest import Ingester, Status
from ingest.cli import run_upload
from ingest.errors import JournalError, SourceError
from ingest.model import Row
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, detect, open_rows
from tests.helpers import sandbox_config
from tests.source.imagefiles import write_png
from tests.source.test_coco import coco, write
from tests.source.test_formats_cli import plan_for

pytestmark = pytest.mark.anyio

# The 80 COCO classes, numbered as Ultralytics' coco8.yaml numbers them.
COCO_NAMES = [
    *("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
    *("traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat"),
    *("dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack"),
    *("umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball"),
    *("kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket"),
    *("bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple"),
    *("sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair"),
    *("couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse"),
    *("remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink"),
    *("refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier"),
    "toothbrush",
]

# coco8.yaml as Ultralytics ships it (ultralytics/cfg/datasets/coco8.yaml): keys, their
# order and values; ``path`` names the folder under Ultralytics' own datasets folder.
COCO8_YAML = (
    "path: coco8 # dataset root dir\n"
    "train: images/train # train images (relative to 'path') 4 images\n"
    "val: images/val # val images (relative to 'path') 4 images\n"
    "test: # test images (optional)\n"
    "\n"
    "# Classes\n"
    "names:\n"
    + "".join(f"  {i}: {name}\n" for i, name in enumerate(COCO_NAMES))
    + "\n# Download script/URL (optional)\n"
    "download: https://github.com/ultralytics/assets/releases/download/v0.0.0/coco8.zip\n"
)

# Two of coco8's label files as published (labels/train/000000000009.txt and
# 000000000025.txt: COCO train2017 images of 640x480 and 640x426 pixels).
LABELS = {
    "000000000009": (
        (640, 480),
        "45 0.479492 0.688771 0.955609 0.5955\n"
        "45 0.736516 0.247188 0.498875 0.476417\n"
        "50 0.637063 0.732938 0.494125 0.510583\n"
        "45 0.339438 0.418896 0.678875 0.7815\n"
        "49 0.646836 0.132552 0.118047 0.0969375\n"
        "49 0.773148 0.129802 0.0907344 0.0972292\n"
        "49 0.668297 0.226906 0.131281 0.146896\n"
        "49 0.642859 0.0792187 0.148063 0.148062\n",
    ),
    "000000000025": (
        (640, 426),
        "23 0.770336 0.489695 0.335891 0.697559\n23 0.185977 0.901608 0.206297 0.129554\n",
    ),
}


def make_coco8(tmp_path: Path) -> Path:
    """coco8's layout: the yaml named after the dataset beside images/ and labels/ (the
    images are PNG files of the real sizes under the real names: the tests write no JPEG),
    and one val image without a label file."""
    root = tmp_path / "coco8"
    for stem, ((w, h), text) in LABELS.items():
        write_png(root / f"images/train/{stem}.jpg", w, h)
        (root / "labels/train").mkdir(parents=True, exist_ok=True)
        (root / f"labels/train/{stem}.txt").write_text(text)
    write_png(root / "images/val/000000000036.jpg", 481, 640)
    (root / "labels/val").mkdir(parents=True)
    (root / "coco8.yaml").write_text(COCO8_YAML)
    return root


def expected_boxes() -> list[tuple[str, tuple[float, ...], str]]:
    """(image, box, class name) of every label line, read apart from the reader."""
    out = []
    for stem, (_, text) in LABELS.items():
        for line in text.splitlines():
            number, cx, cy, w, h = line.split()
            box = (
                float(cx) - float(w) / 2,
                float(cy) - float(h) / 2,
                float(cx) + float(w) / 2,
                float(cy) + float(h) / 2,
            )
            out.append((stem, box, COCO_NAMES[int(number)]))
    return sorted(out)


async def test_coco8_lands_its_class_names_not_numbers(tmp_path: Path) -> None:
    root = make_coco8(tmp_path)
    assert detect(root) == "yolo"
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb:
            async with Ingester(sandbox_config(sb)) as ing, ing.stream(root) as outcomes:
                statuses = [o.status async for o in outcomes]
            assert statuses == [Status.LANDED] * 11  # 10 boxes and the val image
            image_of = {i: p.data.metadata["split"] for i, p in sb.inputs.items()}
            assert sorted(image_of.values()) == ["train", "train", "val"]
            landed: list[tuple[str, tuple[float, ...], str]] = []
            stems = {}
            for row in [r async for r in open_rows(root) if isinstance(r, Row)]:
                stems[row.input_id] = Path(row.path).stem
            for ann in sb.annotations.values():
                assert not isinstance(ann, str)
                region = ann.data.regions[0]
                bb = region.region_info.bounding_box
                box = (bb.left_col, bb.top_row, bb.right_col, bb.bottom_row)
                [concept] = region.data.concepts
                assert concept.id == concept.name.replace(" ", "-")
                landed.append((stems[ann.input_id], box, concept.name))
    landed.sort()
    want = expected_boxes()
    assert [(stem, name) for stem, _, name in landed] == [(stem, name) for stem, _, name in want]
    for (_, got, _), (_, wanted, _) in zip(landed, want, strict=True):
        assert got == pytest.approx(wanted, abs=1e-6)  # float32 in the protos
    assert {name for _, _, name in landed} == {"bowl", "orange", "broccoli", "giraffe"}
    notes = ing.report.notes
    assert (
        f"{root / 'coco8.yaml'}: download is not used: the dataset is read from the files on disk"
        in notes
    )
    assert any("path 'coco8' is not a folder here" in n for n in notes)


def dataset(tmp_path: Path, yaml_text: str | None, name: str = "data.yaml") -> Path:
    root = tmp_path / "ds"
    write_png(root / "images/train/a.png", 10, 10)
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/train/a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    if yaml_text is not None:
        (root / name).write_text(yaml_text)
    return root


async def read(path: Path | DatasetPath) -> list[Row]:
    with anyio.fail_after(20):
        async with open_rows(path) as src:
            return [r async for r in src if isinstance(r, Row)]


async def test_two_dataset_yamls_are_refused_and_listed(tmp_path: Path) -> None:
    root = dataset(tmp_path, "train: images/train\nnames: [a, b]\n", "coco8.yaml")
    (root / "data.yaml").write_text("train: images/train\nnames: [c, d]\n")
    (root / "hyp.yaml").write_text("lr0: 0.01\n")  # not a dataset's yaml: not counted
    with pytest.raises(SourceError) as err:
        await read(root)
    assert str(err.value) == (
        f"{root}: several yaml files describe a dataset (coco8.yaml, data.yaml); give the one "
        "to read as the data path"
    )
    [row] = await read(root / "coco8.yaml")  # given by its own path, one is read
    assert row.pos_concepts == ("b",)


async def test_no_names_anywhere_is_refused_unless_numbers_are_asked_for(tmp_path: Path) -> None:
    root = dataset(tmp_path, "train: images/train\nnc: 2\n", "coco8.yaml")
    with pytest.raises(SourceError) as err:
        await read(root)
    assert str(err.value) == (
        f"{root}: no class names; looked for 'names' in {root / 'coco8.yaml'} and for "
        f"{root / 'classes.txt'} and {root / 'labels/classes.txt'}; add them there, or give "
        "--class-names numbers to make the class numbers the concepts"
    )
    [row] = await read(DatasetPath(root, class_names="numbers"))
    assert row.pos_concepts == ("1",)
    (root / "labels/train/a.txt").write_text("2 0.5 0.5 0.5 0.5\n")  # nc: 2 bounds them
    async with open_rows(DatasetPath(root, class_names="numbers")) as src:
        [bad] = [r async for r in src]
    assert (
        not isinstance(bad, Row)
        and "class 2 is not one of the dataset's classes (0 to 1)" in bad.reason
    )
    (root / "coco8.yaml").unlink()
    (root / "classes.txt").write_text("cat\ndog\nbird\n")  # names beside the folders
    [row] = await read(root)
    assert row.pos_concepts == ("bird",)


async def test_the_numbers_through_the_command_line(tmp_path: Path) -> None:
    """``--class-names numbers`` lands the numbers, even beside names, and a journal kept
    under them is not that of an upload of the names (other concepts, other ids)."""
    root = dataset(tmp_path, "train: images/train\nnames: [cat, dog]\n")
    console = Console(file=io.StringIO())
    async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb:
        result = await run_upload(plan_for(sb, root, class_names="numbers"), console)
        assert result.exit_status == 0
        assert any("the class names of" in note for note in result.notes)
        [ann] = [a for a in sb.annotations.values() if not isinstance(a, str)]
        assert [c.id for c in ann.data.regions[0].data.concepts] == ["1"]
        with pytest.raises(JournalError, match="records an upload to"):
            await run_upload(plan_for(sb, root), console)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "train: images/train\nname: [a, b]\n",
            "key 'name' is not one ingest reads; did you mean 'names'?",
        ),
        (
            "trian: images/train\nnames: [a, b]\n",
            "key 'trian' is not one ingest reads; did you mean 'train'?",
        ),
        (
            "train: images/train\nnames: [a, b]\nnc: 3\n",
            "nc is 3 but names has 2 classes; make them agree",
        ),
        (
            "train: images/train\nnames: {0: a, 2: b}\n",
            "names must number the classes 0, 1, 2... without gaps",
        ),
    ],
)
async def test_a_yaml_that_says_something_else_is_refused(
    tmp_path: Path, text: str, error: str
) -> None:
    root = dataset(tmp_path, text)
    with pytest.raises(SourceError) as err:
        await read(root)
    assert str(err.value) == f"{root / 'data.yaml'}: {error}"


async def test_unknown_keys_and_options_are_warnings(tmp_path: Path) -> None:
    root = dataset(tmp_path, "train: images/train\nnames: [a, b]\nroboflow: {workspace: w}\n")
    async with open_rows(root) as src:
        assert src.stats.warnings == [
            f"{root / 'data.yaml'}: key 'roboflow' is not one ingest reads; not used"
        ]
    async with open_rows(DatasetPath(write(tmp_path, coco()), class_names="numbers")) as src:
        assert src.stats.warnings == [
            "--class-names does not apply to a COCO JSON file; it is not used"
        ]
