"""The inputs-add job experiment names every input that failed, under each reading.

Whether a job counts the inputs ``PostInputs`` refused is loosely documented
(docs/clarifai-behaviour.md, "Readings"): the job protocol of
:mod:`benchmarks.jobcheck` must name exactly the inputs the sandbox failed, and store
every box of the others, whether the refused inputs (here: inputs that existed before)
count as failed or not; and its requests must be what the protocol says.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from benchmarks.datagen import generate
from benchmarks.jobcheck import BATCH, load_images, measure
from ingest.sandbox import SandboxOptions

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("counts_refused", [False, True])
@pytest.mark.parametrize("boxes", [0, 2])
async def test_every_failed_input_is_named(
    tmp_path: Path, counts_refused: bool, boxes: int
) -> None:
    path = tmp_path / "data.csv"
    generate(
        path,
        images=600,
        seed=5,
        image_level_rate=1.0 if not boxes else 0.0,
        max_boxes=boxes,
        min_boxes=boxes,
    )
    images = load_images(path)
    options = SandboxOptions(
        rps=0,
        processing=(0.05, 0.3),
        download_failure_rate=0.05,
        seed=1,
        job_counts_refused=counts_refused,
    )
    with anyio.fail_after(60):
        got = await measure("test", path, images, options, "job", 2, 0.1)
    assert got["problems"] == []
    assert got["failed_inputs"] > 0 and got["options"]["job_counts_refused"] is counts_refused
    by = got["requests_by_method"]
    windows = -(-len(images) // (2 * BATCH))
    assert by["PostInputs"] == -(-len(images) // BATCH)
    assert by["GetInputsAddJob"] >= windows
    # failed inputs named window by window, and the inputs that existed checked by ids
    assert by["ListInputs"] >= 1
    landed_boxes = got["rows_that_land"] if boxes else 0
    assert by.get("PostAnnotations", 0) == -(-landed_boxes // BATCH)
