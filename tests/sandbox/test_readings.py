"""The readings of an annotation posted on an input still processing: refused (the
default) or accepted; and ``ingest`` landing every box under each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest import Ingester
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.options import PENDING_ANNOTATIONS
from tests.helpers import make_dataset, sandbox_config
from tests.sandbox.helpers import annotation, inputs_request

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("reading", PENDING_ANNOTATIONS)
async def test_an_annotation_on_a_pending_input(sandbox: Any, reading: str) -> None:
    async with sandbox(processing=(30, 30), pending_annotations=reading) as call:
        await call("PostInputs", inputs_request(("p", "https://x/1.jpg")))
        reply = await call(
            "PostAnnotations",
            service_pb2.PostAnnotationsRequest(
                annotations=[annotation("early", "p", (0.1, 0.1, 0.2, 0.2))]
            ),
        )
        if reading == "refuse":
            assert reply.annotations[0].status.code == sc.ANNOTATION_INVALID_ARGUMENT
            assert reply.annotations[0].status.description == "Input not ready"
            assert call.sb.annotations == {}
        else:
            assert reply.annotations[0].status.code == sc.ANNOTATION_SUCCESS
            assert list(call.sb.annotations) == ["early"]


def test_an_unknown_reading_is_refused() -> None:
    with pytest.raises(ValueError, match="pending_annotations"):
        SandboxOptions(pending_annotations="maybe")


@pytest.mark.parametrize("reading", PENDING_ANNOTATIONS)
async def test_ingest_lands_every_box_under_each_reading(tmp_path: Path, reading: str) -> None:
    data = make_dataset(40)
    csv_path = data.write(tmp_path / "data.csv")
    options = SandboxOptions(rps=0, processing=(0.05, 0.3), pending_annotations=reading)
    with anyio.fail_after(60):
        async with Sandbox(options) as sb, Ingester(sandbox_config(sb)) as ing:
            await ing.run(csv_path)
            assert set(sb.inputs) == set(data.inputs)
            assert set(sb.annotations) == set(data.boxes)
    assert ing.report.annotations_created == len(data.boxes)
