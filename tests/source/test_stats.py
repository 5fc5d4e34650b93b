"""What a source says about its read reaches the ingester's report before the first row is
sent: the counting pass's rows and images, the grouping, the notes."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ingest import Ingester
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import DatasetPath
from tests.helpers import make_dataset, sandbox_config
from tests.source.test_coco import coco, write
from tests.source.test_grouping import shuffled
from tests.source.test_voc import make_voc
from tests.source.test_yolo import make_yolo

pytestmark = pytest.mark.anyio


async def totals_at_the_first_outcome(source: Path | DatasetPath, tmp: Path) -> tuple[int, ...]:
    """(rows_total, images_total, grouped) of the report when the first outcome lands,
    and the report's images and rows read at the end."""
    with anyio.fail_after(60):
        async with (
            Sandbox(SandboxOptions(rps=0, processing=(0.0, 0.01))) as sb,
            Ingester(sandbox_config(sb, tmp_dir=str(tmp))) as ing,
            ing.stream(source) as outcomes,
        ):
            async for _ in outcomes.batches():
                early = (ing.report.rows_total, ing.report.images_total, ing.report.grouped)
                break
            async for _ in outcomes.batches():
                pass
    return (*early, ing.report.images, ing.report.rows_read)


async def test_a_scattered_csv_counts_its_rows_and_images_first(tmp_path: Path) -> None:
    data = make_dataset(120, seed=4)
    path = shuffled(data.write(tmp_path / "raw.csv"), tmp_path / "shuffled.csv")
    rows, images, grouped, sent, read = await totals_at_the_first_outcome(path, tmp_path)
    assert (rows, images, grouped) == (len(data.rows), len({r["url"] for r in data.rows}), True)
    assert read == rows and sent <= images


@pytest.mark.parametrize("kind", ["coco", "yolo", "voc"])
async def test_a_dataset_counts_its_images_before_any_row(tmp_path: Path, kind: str) -> None:
    if kind == "coco":
        source: Path = write(tmp_path, coco())
        want_rows, want_images = 9, 3  # positions of 7 annotations and 2 polygons
    elif kind == "yolo":
        source, want_rows, want_images = make_yolo(tmp_path), 0, 3  # rows: not counted ahead
    else:
        source, want_rows, want_images = make_voc(tmp_path), 6, 3
    rows, images, _, sent, _ = await totals_at_the_first_outcome(source, tmp_path / "tmp")
    assert (rows, images) == (want_rows, want_images)
    assert sent <= images
