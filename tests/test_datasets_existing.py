"""Inputs that exist already go into the datasets their rows name.

An upload of rows whose inputs the app holds (an earlier run without ``--dataset-id``, a
file uploaded again into a new dataset) must leave those inputs in the dataset, or a
dataset version made from it misses them. Under each reading of a repeated
PostDatasetInputs (accepted, or refused as DATASET_INPUT_DUPLICATE) the rows count as
already there, nothing fails, and a dataset that does not exist fails the rows with the
service's answer instead of stopping the run as if the app were gone.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from ingest import Ingester, Outcome
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.options import DATASET_MEMBER_AGAIN
from tests.helpers import sandbox_config

FAST: dict[str, Any] = {"rps": 0, "processing": (0.01, 0.05)}


def rows(n: int, **extra: str) -> list[dict[str, str]]:
    """Two boxes on each of ``n`` images, each image's rows apart in the list."""
    out = []
    for box in ("0.1", "0.5"):
        for i in range(n):
            right = f"{float(box) + 0.3:.1f}"
            out.append(
                {
                    "url": f"https://images.example.com/{i}.jpg",
                    "left_col": box,
                    "top_row": box,
                    "right_col": right,
                    "bottom_row": right,
                    "pos_concepts": "cat",
                    **extra,
                }
            )
    return out


async def upload(sb: Sandbox, data: list[dict[str, str]], **options: Any) -> list[Outcome]:
    outcomes: list[Outcome] = []
    async with Ingester(sandbox_config(sb, **options)) as ing, ing.stream(data) as stream:
        async for batch in stream.batches():
            outcomes.extend(batch)
    return outcomes


def members(sb: Sandbox, dataset_id: str) -> set[str]:
    return set(sb.servicer.state.dataset_inputs.get(dataset_id, {}))


@pytest.mark.anyio
@pytest.mark.parametrize("again", DATASET_MEMBER_AGAIN)
async def test_existing_inputs_join_the_dataset(again: str) -> None:
    options = SandboxOptions(**FAST, datasets=("train",), dataset_member_again=again)
    with anyio.fail_after(60):
        async with Sandbox(options) as sb:
            first = await upload(sb, rows(150))
            assert all(o.ok for o in first)
            inputs = {o.input_id for o in first}
            assert len(inputs) == 150 and members(sb, "train") == set()

            # the same rows into a dataset: every input joins it, nothing fails
            into = await upload(sb, rows(150), dataset_id="train")
            assert [o.error for o in into if not o.ok] == []
            assert members(sb, "train") == inputs
            joined = sb.stats.requests.get("PostDatasetInputs", 0)
            assert joined == 2  # 150 inputs: one call per batch of 128

            # once more: they are members already, under either reading nothing fails
            again_run = await upload(sb, rows(150), dataset_id="train")
            assert [o.error for o in again_run if not o.ok] == []
            assert members(sb, "train") == inputs
            assert len(sb.servicer.state.inputs) == 150


@pytest.mark.anyio
@pytest.mark.parametrize("again", DATASET_MEMBER_AGAIN)
async def test_the_dataset_column_and_the_option_both_count(again: str) -> None:
    options = SandboxOptions(**FAST, datasets=("train", "a"), dataset_member_again=again)
    with anyio.fail_after(60):
        async with Sandbox(options) as sb:
            await upload(sb, rows(20))
            done = await upload(sb, rows(20, dataset_id="a"), dataset_id="train")
            assert [o.error for o in done if not o.ok] == []
            assert members(sb, "a") == members(sb, "train") == {o.input_id for o in done}
            assert len(members(sb, "a")) == 20


@pytest.mark.anyio
async def test_a_missing_dataset_fails_the_rows_and_the_run_goes_on() -> None:
    options = SandboxOptions(**FAST, datasets=("train",))
    with anyio.fail_after(60):
        async with Sandbox(options) as sb:
            await upload(sb, rows(10))
            # --dataset-id names a dataset the app lacks (ingest makes only those the data
            # names): five existing inputs and five new ones
            data = rows(10)[:5] + rows(15)[10:15]
            done = await upload(sb, data, dataset_id="absent")
            failed = [o for o in done if not o.ok]
            assert len(failed) == len(done) == 10
            existing = [o for o in failed if "exists but was not added" in o.error]
            assert len(existing) == 5
            assert all("'absent'" in o.error and "CONN_DOES_NOT_EXIST" in o.error for o in existing)
            assert members(sb, "absent") == set()
