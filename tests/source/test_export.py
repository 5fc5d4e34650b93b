"""``ingest validate DATA --write-csv OUT``: the rows ingest would send, as its own CSV;
uploading OUT stores exactly what uploading DATA stores (the same inputs, annotations,
ids, regions, concepts and their names, metadata, annotation_info and datasets)."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.protobuf.json_format import MessageToDict

from ingest import Ingester
from ingest.cli import main
from ingest.errors import SourceError
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath, validate_path
from tests.helpers import sandbox_config
from tests.source.imagefiles import write_png
from tests.source.test_coco import coco, write
from tests.source.test_voc import make_voc, with_splits
from tests.source.test_yolo import make_yolo

pytestmark = pytest.mark.anyio

Held = tuple[dict[str, Any], dict[str, Any]]


async def land(source: Path | DatasetPath) -> Held:
    """What a fresh sandbox (no dataset made yet) holds after uploading ``source``."""
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01), datasets=())) as sb:
            async with Ingester(sandbox_config(sb)) as ing:
                await ing.run(source)
            inputs = {
                iid: (
                    inp.data.image.url,
                    hashlib.sha1(inp.data.image.base64).hexdigest(),
                    MessageToDict(inp.data.metadata),
                    sorted(inp.dataset_ids),
                    sorted((c.id, c.name, c.value) for c in inp.data.concepts),
                )
                for iid, inp in sb.inputs.items()
            }
            annotations = {}
            for aid, ann in sb.annotations.items():
                assert not isinstance(ann, str)
                region = ann.data.regions[0]
                annotations[aid] = (
                    ann.input_id,
                    MessageToDict(region.region_info),
                    sorted((c.id, c.name, c.value) for c in region.data.concepts),
                    MessageToDict(ann.annotation_info),
                )
    return inputs, annotations


async def write_csv(data: Path, out: Path, *flags: str) -> int:
    """``ingest validate DATA --write-csv OUT FLAGS`` (in a thread: it runs its own loop)."""
    args = ["validate", str(data), "--write-csv", str(out), *flags]
    status: int = await anyio.to_thread.run_sync(main, args)
    return status


def csv_data(tmp_path: Path) -> Path:
    """Local files named by concept names, in a folder below the one OUT goes to."""
    folder = tmp_path / "data"
    write_png(folder / "img/a.png", 40, 20)
    write_png(folder / "img/b.png", 8, 8)
    path = folder / "boxes.csv"
    path.write_text(
        "file,left_col,top_row,right_col,bottom_row,pos_concepts,metadata,line,error\n"
        'img/a.png,0.1,0.2,0.5,0.6,Traffic Light|dog,"{""k"": [1, 2]}",3,was broken\n'
        "img/b.png,,,,,Traffic Light,,4,\n"
        "img/a.png,2,0,1,1,dog,,5,\n"  # invalid: not written
    )
    return path


def coco_data(tmp_path: Path) -> Path:
    for name, (w, h) in {"a.png": (100, 50), "b.png": (20, 20), "c.png": (8, 8)}.items():
        write_png(tmp_path / "images" / name, w, h)
    return write(tmp_path, coco(urls=False))


def voc_data(tmp_path: Path) -> Path:
    return with_splits(make_voc(tmp_path))


CASES: dict[str, tuple[Callable[[Path], Path], dict[str, Any], list[str]]] = {
    # format: (make the data, its options, the same as command-line flags)
    "coco": (coco_data, {"regions": "both"}, ["--regions", "both"]),
    "yolo": (
        make_yolo,
        {"regions": "both", "dataset_per_split": True},
        ["--regions", "both", "--dataset-per-split"],
    ),
    "voc": (voc_data, {"dataset_per_split": True}, ["--dataset-per-split"]),
    "csv": (csv_data, {"concept_ids": "names"}, ["--concept-ids", "names"]),
}


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_the_written_csv_uploads_the_same_as_the_data(tmp_path: Path, kind: str) -> None:
    make, options, flags = CASES[kind]
    data = make(tmp_path)
    out = tmp_path / "rows.csv"
    assert await write_csv(data, out, *flags) == 1  # each has invalid rows, left out
    direct = await land(DatasetPath(data, **options))
    assert direct[0] and direct[1]
    assert await land(out) == direct
    with out.open(newline="") as fh:
        header = next(csv.reader(fh))
    assert "line" not in header and "error" not in header


async def test_a_csv_written_elsewhere_keeps_the_ids(tmp_path: Path) -> None:
    data = csv_data(tmp_path)
    summary = await validate_path(
        DatasetPath(data, concept_ids="names"), write_csv=tmp_path / "x.csv"
    )
    assert summary.written == 2 and len(summary.invalid) == 1
    with (tmp_path / "x.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    # paths relative to the CSV's new folder, ids kept, concept ids with their names
    assert [r["file"] for r in rows] == ["data/img/a.png", "data/img/b.png"]
    assert all(r["input_id"] for r in rows)
    assert rows[0]["pos_concepts"] == "traffic-light|dog"
    assert rows[0]["concept_names"] == '{"traffic-light":"Traffic Light"}'
    with pytest.raises(SourceError, match="write it there or in a folder above it"):
        await validate_path(
            DatasetPath(data, concept_ids="names"), write_csv=tmp_path / "data/img/x.csv"
        )
    assert not (tmp_path / "data/img/x.csv").exists()
    assert not list((tmp_path / "data/img").glob("*.part"))
