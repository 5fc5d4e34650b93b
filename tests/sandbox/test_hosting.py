"""Inputs of every kind, listed as Clarifai lists them (bytes replaced by a hosted URL),
and the data host that serves those URLs; inputs-add jobs and the status filter."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import anyio
import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from tests.sandbox.helpers import inputs_request, wait_processed

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def fetch(url: str, key: str | None = "sandbox-pat") -> tuple[int, bytes, str]:
    """GET ``url`` (a loopback address) with the key; status, body, content type."""
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Key {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read(), reply.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, b"", ""


async def test_every_kind_is_stored_and_bytes_come_back_as_a_hosted_url(sandbox: Any) -> None:
    async with sandbox() as call:
        req = service_pb2.PostInputsRequest()
        req.inputs.add(id="img").data.image.base64 = PNG
        req.inputs.add(id="vid").data.video.url = "https://x/v.mp4"
        req.inputs.add(id="aud").data.audio.base64 = b"ID3 audio"
        req.inputs.add(id="txt").data.text.raw = "some text"
        req.inputs.add(id="txu").data.text.url = "https://x/t.txt"
        req.inputs.add(id="none")
        reply = await call("PostInputs", req)
        assert [i.status.code for i in reply.inputs] == [sc.INPUT_DOWNLOAD_PENDING] * 5 + [
            sc.INPUT_INVALID_ARGUMENT
        ]
        codes = await wait_processed(call, ["img", "vid", "aud", "txt", "txu"])
        assert set(codes.values()) == {sc.INPUT_DOWNLOAD_SUCCESS}
        # the Python view keeps what was stored
        assert call.sb.inputs["img"].data.image.base64 == PNG
        listed = {
            i.id: i for i in (await call("ListInputs", service_pb2.ListInputsRequest())).inputs
        }
        img, aud = listed["img"].data.image, listed["aud"].data.audio
        assert not img.base64 and not aud.base64
        assert img.url == f"{img.hosted.prefix}/orig/{img.hosted.suffix}"
        assert img.hosted.prefix == call.sb.data_url and list(img.hosted.sizes) == ["orig"]
        assert listed["vid"].data.video.url == "https://x/v.mp4"  # a URL stays as given
        assert not listed["vid"].data.video.hosted.prefix  # the sandbox never fetches it
        assert listed["txt"].data.text.raw == "some text"
        got = (await call("GetInput", service_pb2.GetInputRequest(input_id="img"))).input
        assert got.data.image.url == img.url and not got.data.image.base64

        status, body, ctype = await anyio.to_thread.run_sync(fetch, img.url)
        assert (status, body, ctype) == (200, PNG, "image/png")
        assert (await anyio.to_thread.run_sync(fetch, aud.url))[1] == b"ID3 audio"
        text = listed["txt"].data.text.url
        assert (await anyio.to_thread.run_sync(fetch, text))[1] == b"some text"
        assert (await anyio.to_thread.run_sync(fetch, img.url, None))[0] == 401
        assert (await anyio.to_thread.run_sync(fetch, img.url, "nope"))[0] == 401
        missing = img.url.replace("/img", "/gone")
        assert (await anyio.to_thread.run_sync(fetch, missing))[0] == 404
        await call("DeleteInputs", service_pb2.DeleteInputsRequest(ids=["img"]))
        assert (await anyio.to_thread.run_sync(fetch, img.url))[0] == 404


async def test_without_a_data_host_listed_inputs_carry_no_bytes(sandbox: Any) -> None:
    async with sandbox(data_host=False) as call:
        req = service_pb2.PostInputsRequest()
        req.inputs.add(id="img").data.image.base64 = PNG
        await call("PostInputs", req)
        got = (await call("GetInput", service_pb2.GetInputRequest(input_id="img"))).input
        assert not got.data.image.base64 and not got.data.image.url
        assert call.sb.data_url == ""


async def test_a_job_exists_whatever_its_inputs_fate_and_merges_calls(sandbox: Any) -> None:
    async with sandbox(processing=(0.05, 0.1)) as call:
        first = inputs_request(("j1", "https://x/1.jpg"), ("j2", "https://x/broken.jpg"))
        first.inputs_add_job_id = "job"
        assert (await call("PostInputs", first)).inputs_add_job.id == "job"
        # the same job id again: "new inputs statistics are merged with previous" ones
        second = inputs_request(("j3", "https://x/3.jpg"), ("j1", "https://x/1.jpg"))
        second.inputs_add_job_id = "job"
        await call("PostInputs", second)
        refused = inputs_request(("j1", "https://x/1.jpg"))
        refused.inputs_add_job_id = "all-refused"
        assert (await call("PostInputs", refused)).status.code == sc.FAILURE
        await wait_processed(call, ["j1", "j2", "j3"])
        job = (
            await call("GetInputsAddJob", service_pb2.GetInputsAddJobRequest(id="job"))
        ).inputs_add_job
        p = job.progress
        assert (p.pending_count, p.in_progress_count, p.success_count, p.failed_count) == (
            0,
            0,
            2,
            1,
        )
        empty = await call("GetInputsAddJob", service_pb2.GetInputsAddJobRequest(id="all-refused"))
        assert empty.status.code == sc.SUCCESS
        assert empty.inputs_add_job.progress.failed_count == 0
        # the status filter, with and without ids
        ok = service_pb2.ListInputsRequest(ids=["j1", "j2", "j3"])
        ok.status.code = sc.INPUT_DOWNLOAD_SUCCESS
        assert [i.id for i in (await call("ListInputs", ok)).inputs] == ["j1", "j3"]
        bad = service_pb2.ListInputsRequest()
        bad.status.code = sc.INPUT_DOWNLOAD_FAILED
        assert [i.id for i in (await call("ListInputs", bad)).inputs] == ["j2"]


async def test_a_job_may_count_refused_inputs_as_failed(sandbox: Any) -> None:
    async with sandbox(job_counts_refused=True) as call:
        await call("PostInputs", inputs_request(("j1", "https://x/1.jpg")))
        refused = inputs_request(("j1", "https://x/1.jpg"), ("", "ftp://x/2.jpg"))
        refused.inputs_add_job_id = "all-refused"
        await call("PostInputs", refused)
        job = await call("GetInputsAddJob", service_pb2.GetInputsAddJobRequest(id="all-refused"))
        assert job.inputs_add_job.progress.failed_count == 2
