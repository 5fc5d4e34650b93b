"""Every source is opened once per run: the files each reader opens in one upload and one
``ingest validate``, counted through Python's audit events (``open``, ``os.scandir``,
``os.listdir``), so every way of opening a file is seen (aiofiles' threads, ijson,
ElementTree, PyYAML, pathlib).

What each number is made of: a CSV is opened by the recognition of its header (the
official SDK's CSV is recognised by it: its first 64 KiB), the journal's fingerprint, the
counting pass and the read; a COCO file by the factory's look at its first keys (a LabelMe
file is a ``.json`` too), the two passes of opening (categories, first image), the images
and annotations passes, and the journal's fingerprint; a YOLO dataset's
folder (for its yaml), yaml, label files and image folders once each; a VOC dataset's
XML files twice (the opening pass for class names and the rows). Opened once more by
the command line, each count would double.
"""

from __future__ import annotations

import io
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.console import Console

from ingest.cli import main, run_upload
from ingest.sandbox import Sandbox, SandboxOptions
from tests.helpers import sandbox_config
from tests.source.test_classfolders import make_splits
from tests.source.test_coco import coco, write
from tests.source.test_formats_cli import plan_for
from tests.source.test_sdkcsv import URLS
from tests.source.test_voc import make_voc
from tests.source.test_yolo import make_yolo

_seen: list[tuple[str, str]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _seen is not None and event in ("open", "os.scandir", "os.listdir") and args:
        target = args[0]
        if isinstance(target, (str, bytes, os.PathLike)):
            _seen.append((event, os.path.abspath(os.fsdecode(target))))


sys.addaudithook(_audit)  # for the life of the process: it records only within opens()


@contextmanager
def opens(root: Path) -> Iterator[Counter[str]]:
    """Count what is opened (files) and listed (folders) under ``root``, by path
    relative to it (``path/`` for a folder listed)."""
    global _seen
    counts: Counter[str] = Counter()
    _seen = []
    try:
        yield counts
    finally:
        seen, _seen = _seen, None
        base = str(root.resolve())
        for event, path in seen:
            resolved = os.path.realpath(path)
            if resolved.startswith(base + os.sep):
                name = os.path.relpath(resolved, base)
                counts[name + "/" if event != "open" else name] += 1


async def upload(root: Path, data: Path, **options: Any) -> Counter[str]:
    console = Console(file=io.StringIO())
    async with Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb:
        plan = plan_for(sb, data, **options)
        plan.config = sandbox_config(sb, tmp_dir=str(root / "tmp"))
        with anyio.fail_after(60), opens(root) as counts:
            result = await run_upload(plan, console)
    assert result.exit_status in (0, 1)
    return counts


async def validate(root: Path, data: Path) -> Counter[str]:
    """``ingest validate DATA`` (in a thread: it runs its own event loop)."""
    with opens(root) as counts:
        assert await anyio.to_thread.run_sync(main, ["validate", str(data)]) in (0, 1)
    return counts


def of(counts: Counter[str], *suffixes: str) -> dict[str, int]:
    return {name: n for name, n in counts.items() if name.endswith(suffixes)}


@pytest.mark.anyio
async def test_a_csv_is_read_by_its_counting_pass_its_read_and_the_journal(tmp_path: Path) -> None:
    data = tmp_path / "boxes.csv"
    data.write_text(
        "url,left_col,top_row,right_col,bottom_row,pos_concepts\n"
        "https://x.example/a.jpg,0.1,0.1,0.5,0.5,cat\n"
        "https://x.example/b.jpg,,,,,dog\n"
        "https://x.example/a.jpg,0.2,0.2,0.6,0.6,cat\n"  # scattered: grouped on disk
    )
    assert of(await upload(tmp_path, data), ".csv") == {"boxes.csv": 4}
    assert of(await validate(tmp_path, data), ".csv") == {"boxes.csv": 2}


@pytest.mark.anyio
async def test_a_coco_file_is_read_by_its_passes_once_each(tmp_path: Path) -> None:
    data = write(tmp_path, coco())
    assert of(await upload(tmp_path, data), ".json") == {data.name: 6}
    assert of(await validate(tmp_path, data), ".json") == {data.name: 5}


@pytest.mark.anyio
async def test_a_yolo_dataset_is_walked_once_and_each_file_read_once(tmp_path: Path) -> None:
    root = make_yolo(tmp_path)
    for counts in (await upload(tmp_path, root), await validate(tmp_path, root)):
        assert of(counts, ".yaml", ".txt") == {
            "ds/data.yaml": 1,
            "ds/labels/train/a.txt": 1,
            "ds/labels/train/b.txt": 1,  # tried: b.png has no label file
            "ds/labels/val/c.txt": 1,
        }
        assert of(counts, "/") == {"ds/": 1, "ds/images/train/": 1, "ds/images/val/": 1}


@pytest.mark.anyio
async def test_a_voc_dataset_reads_each_file_for_its_names_then_its_rows(tmp_path: Path) -> None:
    root = make_voc(tmp_path)
    for counts in (await upload(tmp_path, root), await validate(tmp_path, root)):
        assert of(counts, ".xml") == {f"voc/Annotations/{x}.xml": 2 for x in "abc"}
        assert of(counts, "/") == {"voc/Annotations/": 1}


@pytest.mark.anyio
async def test_class_folders_open_each_image_once(tmp_path: Path) -> None:
    """Each image is opened once (its bytes sent); its folder is listed by the opening pass
    and by the read (and looked into, up to its first image, to recognise the layout)."""
    root = make_splits(tmp_path)
    counts = await upload(tmp_path, root)
    images = of(counts, ".png", ".PNG", ".jpg")
    assert images and set(images.values()) == {1}
    assert of(counts, "pets/train/cat/", "pets/val/cat/") == {
        "pets/train/cat/": 2,
        "pets/val/cat/": 2,
    }
    assert of(await validate(tmp_path, root), ".png", ".PNG", ".jpg") == {}


@pytest.mark.anyio
async def test_the_sdks_csv_is_read_as_a_csv_is(tmp_path: Path) -> None:
    data = tmp_path / "inputs.csv"
    data.write_text(URLS)
    # recognised by its header, then as a CSV: the journal, the counting pass, the read
    assert of(await upload(tmp_path, data), ".csv") == {"inputs.csv": 4}
    assert of(await validate(tmp_path, data), ".csv") == {"inputs.csv": 3}
