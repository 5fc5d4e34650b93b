"""The benchmark's audit and ceiling arithmetic, fed a known state.

The sandbox's state is built through real gRPC calls on loopback: a known loss, a
duplicated input, a duplicated annotation, a download failure and a known number of
requests; :func:`benchmarks.audit.analyse` must give them back.
"""

from __future__ import annotations

import math
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from benchmarks.audit import analyse, ceiling, ceiling_requests
from benchmarks.data import BoxKey, Data, box_key
from ingest.sandbox import Sandbox, SandboxOptions

pytestmark = pytest.mark.anyio

AUTH = (("authorization", "Key sandbox-pat"),)
APP = resources_pb2.UserAppIDSet(user_id="sandbox", app_id="sandbox-app")

A, B, C = (f"https://img.example.com/{n}.jpg" for n in "abc")
BROKEN = "https://img.example.com/broken-d.jpg"
BOXES: dict[str, list[tuple[float, float, float, float]]] = {
    A: [(0.1, 0.1, 0.4, 0.4), (0.5, 0.5, 0.9, 0.9)],
    B: [(0.2, 0.2, 0.3, 0.3)],
    C: [(0.1, 0.2, 0.3, 0.4), (0.3, 0.4, 0.5, 0.6)],
    BROKEN: [(0.1, 0.1, 0.2, 0.2)],
}


def known_data(tmp_path: Path) -> Data:
    boxes: dict[str, set[BoxKey]] = {u: {box_key(b) for b in bs} for u, bs in BOXES.items()}
    rows = sum(len(b) for b in boxes.values())
    return Data(tmp_path / "unused.csv", {"rows": rows, "images": len(boxes)}, boxes)


@asynccontextmanager
async def stub(options: SandboxOptions) -> AsyncIterator[tuple[Sandbox, Any]]:
    async with Sandbox(options) as sb:
        channel = ClarifaiChannel.get_aio_insecure_grpc_channel(sb.options.host, sb.port)
        try:
            yield sb, service_pb2_grpc.V2Stub(channel)
        finally:
            await channel.close()


def annotation(ann_id: str, input_id: str, box: tuple[float, float, float, float]) -> Any:
    ann = resources_pb2.Annotation(id=ann_id, input_id=input_id)
    bb = ann.data.regions.add().region_info.bounding_box
    bb.left_col, bb.top_row, bb.right_col, bb.bottom_row = box
    return ann


async def test_analyse_gives_back_a_known_loss_and_duplicates(tmp_path: Path) -> None:
    options = SandboxOptions(rps=0, processing=(0.0, 0.0), seed=5)
    async with stub(options) as (sb, v2):
        with anyio.fail_after(20):
            inputs = service_pb2.PostInputsRequest(user_app_id=APP)
            for input_id, url in (("ia", A), ("ia2", A), ("ib", B), ("ic", C), ("id", BROKEN)):
                inp = inputs.inputs.add(id=input_id)
                inp.data.image.url = url
                inp.data.image.allow_duplicate_url = True  # "ia2": a second copy of A
            reply = await v2.PostInputs(inputs, metadata=AUTH, timeout=10)
            assert reply.status.code == sc.SUCCESS, reply.status
            anns = service_pb2.PostAnnotationsRequest(user_app_id=APP)
            anns.annotations.extend(
                [
                    annotation("a0", "ia", BOXES[A][0]),
                    annotation("a1", "ia", BOXES[A][1]),
                    annotation("b0", "ib", BOXES[B][0]),
                    annotation("b0-again", "ib", BOXES[B][0]),  # a duplicated annotation
                    annotation("c0", "ic", BOXES[C][0]),  # C's second box never sent: lost
                ]
            )
            reply = await v2.PostAnnotations(anns, metadata=AUTH, timeout=10)
            assert reply.status.code == sc.SUCCESS, reply.status
            listed = await v2.ListInputs(
                service_pb2.ListInputsRequest(user_app_id=APP), metadata=AUTH, timeout=10
            )
            assert len(listed.inputs) == 5
        out = analyse(sb, known_data(tmp_path), "url", finished=True)

    assert out["requests"] == 3
    assert out["requests_by_method"] == {"ListInputs": 1, "PostAnnotations": 1, "PostInputs": 1}
    assert out["throttled"] == 0
    assert out["inputs_stored"] == 5 and out["annotations_stored"] == 5
    assert out["rows_landed"] == 4  # A's two boxes, B's box, C's first box
    assert out["rows_expected"] == 5  # the broken image's box is excused
    assert out["rows_on_failed_downloads"] == 1
    assert out["rows_on_stuck_inputs"] == 0
    assert out["rows_lost"] == 1
    assert out["inputs_duplicated"] == 1
    assert out["annotations_duplicated"] == 1
    assert out["rows_duplicated"] == 2
    # a run stopped at its cap cannot be judged for losses
    assert analyse(sb, known_data(tmp_path), "url", finished=False)["rows_lost"] is None


async def test_analyse_counts_throttled_requests(tmp_path: Path) -> None:
    """A bucket of one request refilled once in 100 s: the second and third calls are
    refused, and every call counts as a request."""
    async with stub(SandboxOptions(rps=0.01, processing=(0.0, 0.0))) as (sb, v2):
        codes = []
        with anyio.fail_after(20):
            for _ in range(3):
                reply = await v2.ListInputs(
                    service_pb2.ListInputsRequest(user_app_id=APP), metadata=AUTH, timeout=10
                )
                codes.append(reply.status.code)
        out = analyse(sb, known_data(tmp_path), "url", finished=True)
    assert codes == [sc.SUCCESS, sc.CONN_THROTTLED, sc.CONN_THROTTLED]
    assert out["requests"] == 3 and out["throttled"] == 2
    assert out["rows_landed"] == 0 and out["rows_lost"] == 5


def test_ceiling_requests_are_creates_checks_and_annotations() -> None:
    assert ceiling_requests(1, 1) == 3
    assert ceiling_requests(128, 128) == 3
    assert ceiling_requests(129, 128) == 5
    assert ceiling_requests(128, 129) == 4
    # the full realistic scenario: 20,000 images, 59,441 rows on images that download
    assert ceiling_requests(20_000, 59_441) == 2 * 157 + 465 == 779


def test_ceiling_counts_the_rows_that_can_land_and_the_full_bucket() -> None:
    c = ceiling(20_000, 59_441, 15.0)
    assert (c.inputs, c.rows, c.requests, c.burst) == (20_000, 59_441, 779, 15)
    assert c.rows_per_s == pytest.approx(15 * 59_441 / 779)  # 1,144.6
    assert round(c.rows_per_s) == 1_145
    assert c.rows_per_s_with_burst == pytest.approx(15 * 59_441 / (779 - 15))
    assert c.fraction(1_100.0) == round(1_100 / (15 * 59_441 / 779), 3) == 0.961
    assert c.fraction(c.rows_per_s_with_burst) == 1.02  # the burst's two points
    # a budget below one request per second still grants one request at once
    assert ceiling(10, 10, 0.5).burst == 1
    # data that fits in the first second's burst has no finite bound with it
    assert math.isinf(ceiling(100, 300, 15.0).rows_per_s_with_burst)


async def test_a_sandbox_keeping_ids_only_is_judged_by_counts(tmp_path: Path) -> None:
    """Image 0 gets its two boxes, image 1 one of its three (a loss of two), image 2 its
    box twice under two ids (a duplicate)."""
    urls = [f"https://images.example.com/{n}.jpg" for n in range(3)]
    data = Data(tmp_path / "unused.csv", {"rows": 6, "images": 3}, per_image=bytearray([2, 3, 1]))
    options = SandboxOptions(rps=0, processing=(0.0, 0.0), store=False)
    async with stub(options) as (sb, v2):
        with anyio.fail_after(20):
            inputs = service_pb2.PostInputsRequest(user_app_id=APP)
            for n, url in enumerate(urls):
                inputs.inputs.add(id=f"i{n}").data.image.url = url
            reply = await v2.PostInputs(inputs, metadata=AUTH, timeout=10)
            assert reply.status.code == sc.SUCCESS, reply.status
            anns = service_pb2.PostAnnotationsRequest(user_app_id=APP)
            box = (0.1, 0.1, 0.2, 0.2)
            for ann_id, input_id in (
                ("a", "i0"),
                ("b", "i0"),
                ("c", "i1"),
                ("d", "i2"),
                ("e", "i2"),
            ):
                anns.annotations.append(annotation(ann_id, input_id, box))
            reply = await v2.PostAnnotations(anns, metadata=AUTH, timeout=10)
            assert reply.status.code == sc.SUCCESS, reply.status
        out = analyse(sb, data, "url", finished=True)
    assert (out["rows_landed"], out["rows_expected"], out["rows_lost"]) == (4, 6, 2)
    assert (out["inputs_duplicated"], out["annotations_duplicated"]) == (0, 1)
    assert out["rows_duplicated"] == 1


def test_a_box_keys_the_same_from_the_file_and_from_the_server() -> None:
    """The file's float64 text and the server's float32 value of one box give one key,
    however many decimals the file wrote (a COCO box divided by the image's size)."""
    written = (123.45 / 640, 67.89 / 480, (123.45 + 50.5) / 640, (67.89 + 20.25) / 480)
    stored = tuple(struct.unpack("<4f", struct.pack("<4f", *written)))
    assert box_key(written) == box_key(stored)
    assert box_key((0.1, 0.25, 0.5, 0.75)) == (0.1, 0.25, 0.5, 0.75)
