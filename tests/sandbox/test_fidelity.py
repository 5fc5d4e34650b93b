"""The sandbox answers as Clarifai does (docs/clarifai-behaviour.md lists the sources)."""

from __future__ import annotations

import struct
from typing import Any

import anyio
import grpc
import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.servicer import MAX_REQUEST_BYTES
from tests.sandbox.conftest import KEY
from tests.sandbox.helpers import annotation, inputs_request, wait_processed

pytestmark = pytest.mark.anyio


def png(width: int, height: int) -> bytes:
    """The first bytes of a PNG of the given size (enough for its dimensions)."""
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, height)
    )


async def test_input_ids_are_at_most_48_characters(sandbox: Any) -> None:
    async with sandbox() as call:
        reply = await call(
            "PostInputs", inputs_request(("a" * 48, "https://x/1"), ("a" * 49, "https://x/2"))
        )
        assert reply.status.code == sc.MIXED_STATUS
        ok, long = reply.inputs
        assert ok.status.code == sc.INPUT_DOWNLOAD_PENDING
        assert long.status.code == sc.INPUT_INVALID_ARGUMENT
        assert long.status.details == "id must be between 1 and 48 characters long"


async def test_concept_ids_use_letters_digits_underscore_dash(sandbox: Any) -> None:
    async with sandbox() as call:
        req = inputs_request(("c1", "https://x/1"), ("c2", "https://x/2"), ("c3", "https://x/3"))
        req.inputs[0].data.concepts.add(id="Cat_1-b", value=1)
        req.inputs[1].data.concepts.add(id="red car", value=1)
        req.inputs[2].data.concepts.add(id="x" * 129, value=1)
        reply = await call("PostInputs", req)
        codes = [i.status.code for i in reply.inputs]
        assert codes == [sc.INPUT_DOWNLOAD_PENDING] + [sc.INPUT_INVALID_ARGUMENT] * 2
        assert "red car" in reply.inputs[1].status.details
        assert list(call.sb.inputs) == ["c1"]


async def test_duplicate_url_and_duplicate_id_are_told_apart(sandbox: Any) -> None:
    async with sandbox() as call:
        await call("PostInputs", inputs_request(("first", "https://x/same.jpg")))
        reply = await call(
            "PostInputs",
            inputs_request(("first", "https://x/other.jpg"), ("second", "https://x/same.jpg")),
        )
        by_id, by_url = reply.inputs
        # the id is taken: the words clarifai-python looks for
        assert by_id.status.code == sc.INPUT_DUPLICATE
        assert by_id.status.details == "Input has a duplicate ID."
        # the URL is taken by another input: the documented meaning of 30100
        assert by_url.status.code == sc.INPUT_DUPLICATE
        assert "Duplicate URL" in by_url.status.details
        assert "duplicate ID" not in by_url.status.details
        # twice in one request, too
        twice = await call(
            "PostInputs", inputs_request(("t1", "https://x/t.jpg"), ("t2", "https://x/t.jpg"))
        )
        assert [i.status.code for i in twice.inputs] == [
            sc.INPUT_DOWNLOAD_PENDING,
            sc.INPUT_DUPLICATE,
        ]
        allowed = inputs_request(("third", "https://x/same.jpg"))
        allowed.inputs[0].data.image.allow_duplicate_url = True
        assert (await call("PostInputs", allowed)).status.code == sc.SUCCESS
        assert sorted(call.sb.inputs) == ["first", "t1", "third"]
        # a deleted input frees its URL
        await call("DeleteInputs", service_pb2.DeleteInputsRequest(ids=["t1"]))
        again = await call("PostInputs", inputs_request(("t3", "https://x/t.jpg")))
        assert again.status.code == sc.SUCCESS


async def test_processing_goes_pending_in_progress_then_done(sandbox: Any) -> None:
    async with sandbox(processing=(0.6, 0.6)) as call:
        await call("PostInputs", inputs_request(("p1", "https://x/1"), ("p2", "https://x/broken")))
        seen: dict[str, list[int]] = {"p1": [], "p2": []}
        job_in_progress = 0
        for _ in range(400):
            reply = await call("ListInputs", service_pb2.ListInputsRequest(ids=["p1", "p2"]))
            for inp in reply.inputs:
                if not seen[inp.id] or seen[inp.id][-1] != inp.status.code:
                    seen[inp.id].append(inp.status.code)
            if all(len(v) == 3 for v in seen.values()):
                break
            await anyio.sleep(0.01)
        assert seen["p1"] == [
            sc.INPUT_DOWNLOAD_PENDING,
            sc.INPUT_DOWNLOAD_IN_PROGRESS,
            sc.INPUT_DOWNLOAD_SUCCESS,
        ]
        assert seen["p2"] == [
            sc.INPUT_DOWNLOAD_PENDING,
            sc.INPUT_DOWNLOAD_IN_PROGRESS,
            sc.INPUT_DOWNLOAD_FAILED,
        ]
        assert job_in_progress == 0


async def test_add_job_counts_inputs_in_progress(sandbox: Any) -> None:
    async with sandbox(processing=(0.6, 0.6)) as call:
        req = inputs_request(("j1", "https://x/1"))
        req.inputs_add_job_id = "job"
        await call("PostInputs", req)
        counts: set[tuple[int, int, int]] = set()
        for _ in range(400):
            job = await call("GetInputsAddJob", service_pb2.GetInputsAddJobRequest(id="job"))
            p = job.inputs_add_job.progress
            counts.add((p.pending_count, p.in_progress_count, p.success_count))
            if p.success_count:
                break
            await anyio.sleep(0.01)
        assert counts == {(1, 0, 0), (0, 1, 0), (0, 0, 1)}


async def test_post_inputs_with_concepts_makes_an_input_level_annotation(sandbox: Any) -> None:
    async with sandbox() as call:
        req = inputs_request(("l1", "https://x/1"), ("l2", "https://x/2"))
        req.inputs[0].data.concepts.add(id="cat", value=1)
        await call("PostInputs", req)
        await wait_processed(call, ["l1", "l2"])
        await call(
            "PostAnnotations",
            service_pb2.PostAnnotationsRequest(
                annotations=[annotation("box1", "l1", (0.1, 0.1, 0.5, 0.5))]
            ),
        )
        # listed by input id like any other ("all the annotations for 'input_ids'"), as
        # the SDK's own counts show (VOC 28 = 18 boxes + 10 input-level annotations)
        listed = await call("ListAnnotations", service_pb2.ListAnnotationsRequest(input_ids=["l1"]))
        level, box = listed.annotations
        everything = await call("ListAnnotations", service_pb2.ListAnnotationsRequest())
        assert [a.id for a in everything.annotations] == [level.id, "box1"]
        assert [c.id for c in level.data.concepts] == ["cat"]
        assert not level.data.regions
        assert level.input_id == "l1" and level.status.code == sc.ANNOTATION_SUCCESS
        assert box.id == "box1"
        # none for an input without concepts; PostAnnotations' own are apart
        assert set(call.sb.input_annotations) == {"l1"}
        assert list(call.sb.annotations) == ["box1"]
        by_id = await call("ListAnnotations", service_pb2.ListAnnotationsRequest(ids=[level.id]))
        assert [a.id for a in by_id.annotations] == [level.id]


async def test_image_size_limits(sandbox: Any) -> None:
    async with sandbox() as call:
        req = service_pb2.PostInputsRequest()
        req.inputs.add(id="small").data.image.base64 = png(9000, 9000)  # 81 MP
        req.inputs.add(id="huge").data.image.base64 = png(10000, 9000)  # 90 MP
        req.inputs.add(id="heavy").data.image.base64 = b"\0" * (20 * 1024 * 1024 + 1)
        reply = await call("PostInputs", req)
        assert [i.status.code for i in reply.inputs] == [
            sc.INPUT_DOWNLOAD_PENDING,
            sc.INPUT_INVALID_ARGUMENT,
            sc.INPUT_INVALID_ARGUMENT,
        ]
        assert "85 megapixels" in reply.inputs[1].status.details
        assert "20 MB" in reply.inputs[2].status.details


async def test_a_request_of_128_mb_is_refused(sandbox: Any) -> None:
    async with sandbox() as call:
        req = service_pb2.PostInputsRequest()
        for n in range(7):  # 7 x 19 MB, each image within its limit
            req.inputs.add(id=f"big{n}").data.image.base64 = b"\0" * (19 * 1024 * 1024)
        assert req.ByteSize() >= MAX_REQUEST_BYTES
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call("PostInputs", req)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert call.sb.inputs == {}


async def test_auth_answers_with_clarifais_codes_and_words(sandbox: Any) -> None:
    async with sandbox(scoped_keys={"reader": ("Inputs:Get",)}) as call:
        req = inputs_request(("a1", "https://x/1"))
        bad = await call("PostInputs", req, (("authorization", "Key nope"),))
        assert bad.status.code == sc.CONN_KEY_INVALID
        assert bad.status.description == "Invalid API key or Invalid API key/application pair"
        scoped = await call("PostInputs", req, (("authorization", "Key reader"),))
        assert scoped.status.code == sc.CONN_INSUFFICIENT_SCOPES
        assert "Inputs:Add" in scoped.status.details
        unknown = inputs_request(("a1", "https://x/1"))
        unknown.user_app_id.user_id, unknown.user_app_id.app_id = "sandbox", "gone"
        refused = await call("PostInputs", unknown, (("authorization", "Key sandbox-pat"),))
        assert refused.status.code == sc.CONN_DOES_NOT_EXIST
        assert refused.status.description == "Resource does not exist"
        # "me" is the caller's own user id
        me = inputs_request(("m1", "https://x/m"))
        me.user_app_id.user_id, me.user_app_id.app_id = "me", "sandbox-app"
        ok = await call("PostInputs", me, (("authorization", "Key sandbox-pat"),))
        assert ok.status.code == sc.SUCCESS
        assert list(call.sb.inputs) == ["m1"]


async def test_not_found_and_paging_defaults(sandbox: Any) -> None:
    async with sandbox() as call:
        missing = await call("GetInput", service_pb2.GetInputRequest(input_id="nope"))
        assert missing.status.code == sc.CONN_DOES_NOT_EXIST
        specs = [(f"s{n}", f"https://x/{n}") for n in range(30)]
        await call("PostInputs", inputs_request(*specs))
        streamed = await call("StreamInputs", service_pb2.StreamInputsRequest())
        assert len(streamed.inputs) == 20
        listed = await call("ListInputs", service_pb2.ListInputsRequest())
        assert len(listed.inputs) == 30


async def test_dataset_ids_are_honoured(sandbox: Any) -> None:
    async with sandbox(datasets=("train",)) as call:
        req = inputs_request(("d1", "https://x/1"), ("d2", "https://x/2"))
        req.inputs[0].dataset_ids.append("train")
        req.inputs[1].dataset_ids.append("nowhere")
        reply = await call("PostInputs", req)
        assert [i.status.code for i in reply.inputs] == [
            sc.INPUT_DOWNLOAD_PENDING,
            sc.INPUT_INVALID_ARGUMENT,
        ]
        assert "nowhere" in reply.inputs[1].status.details
        made = await call(
            "PostDatasets",
            service_pb2.PostDatasetsRequest(datasets=[resources_pb2.Dataset(id="nowhere")]),
        )
        assert made.status.code == sc.SUCCESS
        again = await call(
            "PostDatasets",
            service_pb2.PostDatasetsRequest(datasets=[resources_pb2.Dataset(id="train")]),
        )
        assert again.status.code == sc.DATABASE_DUPLICATE_KEY
        assert "already exists" in again.status.details
        retry = inputs_request(("d2", "https://x/2"))
        retry.inputs[0].dataset_ids.append("nowhere")
        assert (await call("PostInputs", retry)).status.code == sc.SUCCESS
        members = await call(
            "ListDatasetInputs", service_pb2.ListDatasetInputsRequest(dataset_id="train")
        )
        assert [d.input.id for d in members.dataset_inputs] == ["d1"]
        # PostDatasetInputs adds existing inputs to a dataset
        add = service_pb2.PostDatasetInputsRequest(dataset_id="train")
        add.dataset_inputs.add().input.id = "d2"
        add.dataset_inputs.add().input.id = "ghost"
        added = await call("PostDatasetInputs", add)
        assert added.status.code == sc.MIXED_STATUS
        members = await call(
            "ListDatasetInputs", service_pb2.ListDatasetInputsRequest(dataset_id="train")
        )
        assert [d.input.id for d in members.dataset_inputs] == ["d1", "d2"]
        got = await call("GetDataset", service_pb2.GetDatasetRequest(dataset_id="train"))
        assert got.status.code == sc.SUCCESS and got.dataset.id == "train"
        gone = await call("GetDataset", service_pb2.GetDatasetRequest(dataset_id="nope"))
        assert gone.status.code == sc.CONN_DOES_NOT_EXIST
        app = await call("GetApp", service_pb2.GetAppRequest())
        assert app.status.code == sc.SUCCESS and app.app.id == "sandbox-app"


async def test_without_a_dataset_list_datasets_are_made_on_first_use(sandbox: Any) -> None:
    async with sandbox() as call:
        req = inputs_request(("d1", "https://x/1"))
        req.inputs[0].dataset_ids.append("bench")
        assert (await call("PostInputs", req)).status.code == sc.SUCCESS
        listed = await call("ListDatasets", service_pb2.ListDatasetsRequest())
        assert [d.id for d in listed.datasets] == ["bench"]


async def test_account_faults(sandbox: Any) -> None:
    async with sandbox(input_quota=2) as call:
        specs = [(f"q{n}", f"https://x/{n}") for n in range(3)]
        reply = await call("PostInputs", inputs_request(*specs))
        assert [i.status.code for i in reply.inputs][-1] == sc.INPUT_OVER_LIMIT
        assert len(call.sb.inputs) == 2
    async with sandbox(hourly_limit=1) as call:
        first = await call("ListInputs", service_pb2.ListInputsRequest(), KEY)
        second = await call("ListInputs", service_pb2.ListInputsRequest(), KEY)
        assert first.status.code == sc.SUCCESS
        assert second.status.code == sc.CONN_EXCEED_HOURLY_LIMIT
    async with sandbox(disabled=("PostAnnotations",)) as call:
        req = service_pb2.PostAnnotationsRequest(
            annotations=[annotation("a", "i", (0.1, 0.1, 0.2, 0.2))]
        )
        assert (await call("PostAnnotations", req)).status.code == sc.CONN_ACCOUNT_ISSUES
        assert (await call("ListInputs", service_pb2.ListInputsRequest())).status.code == (
            sc.SUCCESS
        )
    async with sandbox(delete_app_after=1) as call:
        ok = await call("ListInputs", service_pb2.ListInputsRequest(), KEY)
        gone = await call("ListInputs", service_pb2.ListInputsRequest(), KEY)
        assert ok.status.code == sc.SUCCESS
        assert gone.status.code == sc.CONN_DOES_NOT_EXIST
        assert call.sb.stats.account_refusals == 1
