"""The same images and boxes as CSV, COCO, YOLO and VOC land as the same inputs and boxes."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import anyio
import pytest

from ingest import Ingester, Status
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath
from tests.helpers import sandbox_config

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"

Landed = set[tuple[str, tuple[float, float, float, float], str, str]]


async def land(source: Path | DatasetPath) -> tuple[Landed, set[str]]:
    """(image sha1, box rounded, concept id, concept name) of every stored box; images."""
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.05, 0.2))) as sb:
            config = sandbox_config(sb)
            async with Ingester(config) as ing, ing.stream(source) as stream:
                assert all([o.status is Status.LANDED async for o in stream])
            images = {
                iid: hashlib.sha1(inp.data.image.base64).hexdigest()
                for iid, inp in sb.inputs.items()
            }
            out: Landed = set()
            for ann in sb.annotations.values():
                assert not isinstance(ann, str)
                region = ann.data.regions[0]
                bb = region.region_info.bounding_box
                box = (bb.left_col, bb.top_row, bb.right_col, bb.bottom_row)
                for c in region.data.concepts:
                    out.add(
                        (images[ann.input_id], tuple(round(v, 4) for v in box), c.id, c.name)  # type: ignore[arg-type]
                    )
            return out, set(images.values())


async def test_one_dataset_in_four_formats_lands_the_same(tmp_path: Path) -> None:
    for name in ("coco", "yolo", "voc"):
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    coco, coco_images = await land(tmp_path / "coco/annotations.json")
    yolo, yolo_images = await land(tmp_path / "yolo")
    voc, voc_images = await land(tmp_path / "voc")
    assert len(coco) == 5 and len(coco_images) == 4
    assert coco == yolo == voc
    assert coco_images == yolo_images == voc_images
    assert ("traffic-light", "Traffic Light") in {(c[2], c[3]) for c in coco}
    # the same rows as a seed CSV of local files, with concept names
    with (tmp_path / "voc/data.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "left_col", "top_row", "right_col", "bottom_row", "pos_concepts"])
        names = {"cat": "cat", "dog": "dog", "traffic-light": "Traffic Light"}
        for sha, box, cid, _ in sorted(coco):
            image = next(
                p
                for p in (tmp_path / "voc/JPEGImages").iterdir()
                if hashlib.sha1(p.read_bytes()).hexdigest() == sha
            )
            writer.writerow([f"JPEGImages/{image.name}", *box, names[cid]])
    csv_rows, csv_images = await land(DatasetPath(tmp_path / "voc/data.csv", concept_ids="names"))
    assert csv_rows == coco and csv_images <= coco_images
