"""The finer points: stored fields, id rules, paging, faults, seeds, helpers."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox import SandboxOptions
from tests.sandbox.conftest import KEY
from tests.sandbox.helpers import annotation, inputs_request, wait_processed

pytestmark = pytest.mark.anyio


async def test_concepts_metadata_and_dataset_ids_are_stored(sandbox: Any) -> None:
    async with sandbox() as call:
        req = inputs_request(("a1", "https://x/1.jpg"))
        inp = req.inputs[0]
        inp.data.concepts.add(id="cat", value=1.0)
        inp.data.concepts.add(id="dog", value=0.0)
        inp.data.metadata.update({"source": "unit", "n": 3})
        inp.dataset_ids.append("ds1")
        assert (await call("PostInputs", req)).status.code == sc.SUCCESS
        got = (await call("GetInput", service_pb2.GetInputRequest(input_id="a1"))).input
        assert [(c.id, c.value) for c in got.data.concepts] == [("cat", 1.0), ("dog", 0.0)]
        assert dict(got.data.metadata) == {"source": "unit", "n": 3.0}
        assert list(got.dataset_ids) == ["ds1"]
        assert call.sb.inputs["a1"].data.metadata["source"] == "unit"


async def test_patch_inputs_merges_concepts_by_id_and_metadata_deeply(sandbox: Any) -> None:
    async with sandbox() as call:
        req = inputs_request(("p1", "https://x/1.jpg"))
        req.inputs[0].data.concepts.add(id="cat", value=1.0)
        req.inputs[0].data.metadata.update({"a": {"x": 1}, "keep": True})
        assert (await call("PostInputs", req)).status.code == sc.SUCCESS

        patch = service_pb2.PatchInputsRequest(action="merge")
        inp = patch.inputs.add(id="p1")
        inp.data.concepts.add(id="cat", value=0.0)  # same id: its value changes
        inp.data.concepts.add(id="dog", value=1.0)  # new id: appended
        inp.data.metadata.update({"a": {"y": 2}, "n": 3})
        patch.inputs.add(id="nope").data.concepts.add(id="cat", value=1.0)
        reply = await call("PatchInputs", patch)
        assert reply.status.code == sc.MIXED_STATUS
        assert [i.status.code for i in reply.inputs] == [sc.SUCCESS, sc.INPUT_INVALID_ARGUMENT]

        got = (await call("GetInput", service_pb2.GetInputRequest(input_id="p1"))).input
        assert [(c.id, c.value) for c in got.data.concepts] == [("cat", 0.0), ("dog", 1.0)]
        meta = json.loads(json.dumps(dict(got.data.metadata), default=dict))
        assert meta == {"a": {"x": 1.0, "y": 2.0}, "keep": True, "n": 3.0}
        assert "nope" not in call.sb.inputs

        over = service_pb2.PatchInputsRequest(action="overwrite")
        over.inputs.add(id="p1").data.concepts.add(id="bird", value=1.0)
        assert (await call("PatchInputs", over)).status.code == sc.SUCCESS
        got = (await call("GetInput", service_pb2.GetInputRequest(input_id="p1"))).input
        assert [c.id for c in got.data.concepts] == ["bird"]
        bad = service_pb2.PatchInputsRequest(action="explode")
        bad.inputs.add(id="p1")
        assert (await call("PatchInputs", bad)).status.code == sc.BAD_REQUEST


async def test_id_rules_and_a_full_batch_of_128(sandbox: Any) -> None:
    async with sandbox() as call:
        req = inputs_request(
            ("x" * 48, "https://x/1.jpg"),
            ("x" * 49, "https://x/2.jpg"),
            ("dot.id", "https://x/3.jpg"),
            ("ok_id-1", "https://x/4.jpg"),
            ("no-scheme", "x/5.jpg"),
        )
        reply = await call("PostInputs", req)
        assert [i.status.code for i in reply.inputs] == [
            sc.INPUT_DOWNLOAD_PENDING,
            sc.INPUT_INVALID_ARGUMENT,
            sc.INPUT_INVALID_ARGUMENT,
            sc.INPUT_DOWNLOAD_PENDING,
            sc.INPUT_INVALID_URL,
        ]
        # Clarifai's own words for the length
        assert reply.inputs[1].status.details == "id must be between 1 and 48 characters long"
        full = inputs_request(*[(f"b{n}", f"https://x/b{n}.jpg") for n in range(128)])
        assert (await call("PostInputs", full)).status.code == sc.SUCCESS
        assert len(call.sb.inputs) == 130
        assert call.sb.stats.inputs_stored == 130
        assert call.sb.stats.inputs_rejected == 3


async def test_get_unknown_input_and_delete_inputs(sandbox: Any) -> None:
    async with sandbox() as call:
        missing = await call("GetInput", service_pb2.GetInputRequest(input_id="nope"))
        assert missing.status.code == sc.CONN_DOES_NOT_EXIST
        await call("PostInputs", inputs_request(("a", "https://x/a"), ("b", "https://x/b")))
        deleted = await call("DeleteInputs", service_pb2.DeleteInputsRequest(ids=["a"]))
        assert deleted.status.code == sc.SUCCESS
        assert list(call.sb.inputs) == ["b"]
        # a deleted id can be used again
        again = await call("PostInputs", inputs_request(("a", "https://x/a2")))
        assert again.status.code == sc.SUCCESS
        assert list(call.sb.inputs) == ["b", "a"]


async def test_stream_inputs_pages_by_last_id_both_ways(sandbox: Any) -> None:
    async with sandbox() as call:
        await call("PostInputs", inputs_request(*[(f"i{n}", f"https://x/{n}") for n in range(7)]))
        await call("DeleteInputs", service_pb2.DeleteInputsRequest(ids=["i3"]))
        seen: list[str] = []
        last = ""
        for _ in range(10):
            req = service_pb2.StreamInputsRequest(per_page=2, last_id=last)
            page = [i.id for i in (await call("StreamInputs", req)).inputs]
            if not page:
                break
            seen += page
            last = page[-1]
        assert seen == ["i0", "i1", "i2", "i4", "i5", "i6"]
        down = service_pb2.StreamInputsRequest(per_page=3, last_id="i5", descending=True)
        assert [i.id for i in (await call("StreamInputs", down)).inputs] == ["i4", "i2", "i1"]
        top = service_pb2.StreamInputsRequest(per_page=2, descending=True)
        assert [i.id for i in (await call("StreamInputs", top)).inputs] == ["i6", "i5"]


async def test_per_page_is_capped_at_1000(sandbox: Any) -> None:
    async with sandbox() as call:
        for batch in range(8):
            specs = [(f"i{batch}_{n}", f"https://x/{batch}/{n}") for n in range(128)]
            await call("PostInputs", inputs_request(*specs))
        big = await call("ListInputs", service_pb2.ListInputsRequest(per_page=5000))
        assert len(big.inputs) == 1000
        default = await call("ListInputs", service_pb2.ListInputsRequest())
        assert len(default.inputs) == 128
        last = await call("ListInputs", service_pb2.ListInputsRequest(page=2, per_page=1000))
        assert [i.id for i in last.inputs] == [f"i7_{n}" for n in range(104, 128)]


async def test_list_annotations_by_ids_and_pages(sandbox: Any) -> None:
    async with sandbox() as call:
        await call("PostInputs", inputs_request(("a", "https://x/a"), ("b", "https://x/b")))
        await wait_processed(call, ["a", "b"])
        anns = [annotation(f"n{k}", "ab"[k % 2], (0.1, 0.1, 0.2, 0.2)) for k in range(6)]
        reply = await call("PostAnnotations", service_pb2.PostAnnotationsRequest(annotations=anns))
        assert reply.status.code == sc.SUCCESS
        by_ids = await call("ListAnnotations", service_pb2.ListAnnotationsRequest(ids=["n4", "n1"]))
        assert [a.id for a in by_ids.annotations] == ["n4", "n1"]
        page2 = await call(
            "ListAnnotations", service_pb2.ListAnnotationsRequest(page=2, per_page=4)
        )
        assert [a.id for a in page2.annotations] == ["n4", "n5"]
        of_b = await call("ListAnnotations", service_pb2.ListAnnotationsRequest(input_ids=["b"]))
        assert [a.id for a in of_b.annotations] == ["n1", "n3", "n5"]
        assert of_b.annotations[0].status.code == sc.ANNOTATION_SUCCESS
        assert call.sb.annotations["n1"].input_id == "b"


async def test_annotation_ids_server_generated_and_duplicates_in_one_call(sandbox: Any) -> None:
    async with sandbox() as call:
        await call("PostInputs", inputs_request(("a", "https://x/a")))
        await wait_processed(call, ["a"])
        anns = [
            annotation("", "a", (0.1, 0.1, 0.2, 0.2)),
            annotation("same", "a", (0.1, 0.1, 0.2, 0.2)),
            annotation("same", "a", (0.2, 0.2, 0.3, 0.3)),
            annotation("bad id", "a", (0.2, 0.2, 0.3, 0.3)),
        ]
        reply = await call("PostAnnotations", service_pb2.PostAnnotationsRequest(annotations=anns))
        assert reply.status.code == sc.MIXED_STATUS
        codes = [a.status.code for a in reply.annotations]
        assert codes == [
            sc.ANNOTATION_SUCCESS,
            sc.ANNOTATION_SUCCESS,
            sc.DATABASE_DUPLICATE_KEY,
            sc.ANNOTATION_INVALID_ARGUMENT,
        ]
        assert len(reply.annotations[0].id) == 32
        assert call.sb.stats.annotations_stored == 2
        assert call.sb.stats.annotations_rejected == 2


async def test_add_job_unknown_ids(sandbox: Any) -> None:
    async with sandbox() as call:
        get = await call("GetInputsAddJob", service_pb2.GetInputsAddJobRequest(id="nope"))
        assert get.status.code == sc.CONN_DOES_NOT_EXIST
        cancel = await call("CancelInputsAddJob", service_pb2.CancelInputsAddJobRequest(id="nope"))
        assert cancel.status.code == sc.CONN_DOES_NOT_EXIST


async def test_wait_processed_leaves_stuck_inputs_pending(sandbox: Any) -> None:
    async with sandbox(processing=(0.05, 0.1), stuck_rate=0.3, seed=2) as call:
        specs = [(f"i{n}", f"https://x/{n}.jpg") for n in range(40)]
        await call("PostInputs", inputs_request(*specs))
        await call.sb.wait_processed()
        codes = {i: inp.status.code for i, inp in call.sb.inputs.items()}
        stuck = [i for i, c in codes.items() if c == sc.INPUT_DOWNLOAD_PENDING]
        assert 2 <= len(stuck) <= 25
        assert set(codes.values()) <= {sc.INPUT_DOWNLOAD_PENDING, sc.INPUT_DOWNLOAD_SUCCESS}
        pending = service_pb2.ListInputsRequest(per_page=100)
        pending.status.code = sc.INPUT_DOWNLOAD_PENDING
        listed = await call("ListInputs", pending)
        assert sorted(i.id for i in listed.inputs) == sorted(stuck)
        # stuck inputs cannot be annotated: they never finish
        reply = await call(
            "PostAnnotations",
            service_pb2.PostAnnotationsRequest(
                annotations=[annotation("s", stuck[0], (0.1, 0.1, 0.2, 0.2))]
            ),
        )
        assert reply.status.code == sc.FAILURE


async def test_failed_download_says_why(sandbox: Any) -> None:
    async with sandbox() as call:
        await call("PostInputs", inputs_request(("b", "https://x/broken.jpg")))
        await call.sb.wait_processed()
        got = (await call("GetInput", service_pb2.GetInputRequest(input_id="b"))).input
        assert got.status.code == sc.INPUT_DOWNLOAD_FAILED
        assert "broken.jpg" in got.status.details


async def test_throttled_calls_recover_as_the_bucket_refills(sandbox: Any) -> None:
    async with sandbox(rps=20) as call:
        codes = []
        for _ in range(25):
            codes.append((await call("ListInputs", service_pb2.ListInputsRequest())).status.code)
        assert codes[:20] == [sc.SUCCESS] * 20
        assert sc.CONN_THROTTLED in codes[20:]
        for _ in range(200):  # bounded: 20 tokens/s come back within a tenth of a second
            reply = await call("ListInputs", service_pb2.ListInputsRequest())
            if reply.status.code == sc.SUCCESS:
                break
            assert reply.status.details == "exceeded limit of 20 requests per second"
            await anyio.sleep(0.01)
        assert reply.status.code == sc.SUCCESS


async def test_a_rate_below_one_per_second_still_admits_a_call(sandbox: Any) -> None:
    async with sandbox(rps=0.5) as call:
        first = await call("ListInputs", service_pb2.ListInputsRequest())
        second = await call("ListInputs", service_pb2.ListInputsRequest())
        assert (first.status.code, second.status.code) == (sc.SUCCESS, sc.CONN_THROTTLED)
        assert second.status.details == "exceeded limit of 0.5 requests per second"


async def test_throttled_and_refused_calls_have_no_side_effect(sandbox: Any) -> None:
    async with sandbox(rps=1) as call:
        await call("ListInputs", service_pb2.ListInputsRequest())  # empties the bucket
        reply = await call("PostInputs", inputs_request(("a", "https://x/a")))
        assert reply.status.code == sc.CONN_THROTTLED
        assert not reply.inputs
        refused = await call(
            "PostInputs", inputs_request(("b", "https://x/b")), (("authorization", "Bearer x"),)
        )
        assert refused.status.code == sc.CONN_KEY_INVALID
        assert call.sb.inputs == {}
        assert call.sb.stats.inputs_stored == 0
        assert call.sb.stats.throttled == 1


@pytest.mark.parametrize(
    ("fault", "injected", "stored"),
    [
        ("unavailable_rate", "unavailable_injected", []),
        # stored once; the channel's own retries found the id taken
        ("lost_reply_rate", "lost_replies_injected", ["a"]),
    ],
    ids=["unavailable-before-acting-changes-nothing", "lost-reply-acts-then-fails"],
)
async def test_a_call_failing_unavailable(
    sandbox: Any, fault: str, injected: str, stored: list[str]
) -> None:
    async with sandbox(**{fault: 1.0}) as call:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call("PostInputs", inputs_request(("a", "https://x/a")))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        stats = call.sb.stats
        calls = stats.requests["PostInputs"]
        assert getattr(stats, injected) == calls >= 1
        assert list(call.sb.inputs) == stored
        assert stats.inputs_stored == len(stored)
        # every call after the one that acted (if one did) finds the id taken
        assert stats.inputs_rejected == (calls - 1 if stored else 0)
        assert stats.throttled == 0


async def _fault_pattern(sandbox: Any, seed: int) -> tuple[int, int, int, int]:
    async with sandbox(
        unavailable_rate=0.3, lost_reply_rate=0.3, spike_rate=0.3, seed=seed
    ) as call:
        for n in range(10):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call("ListInputs", service_pb2.ListInputsRequest(ids=[str(n)]))
        s = call.sb.stats
        return (
            s.requests["ListInputs"],
            s.unavailable_injected,
            s.lost_replies_injected,
            s.spikes_injected,
        )


async def test_faults_are_deterministic_from_the_seed(sandbox: Any) -> None:
    first = await _fault_pattern(sandbox, 7)
    assert first == await _fault_pattern(sandbox, 7)
    assert first[1] and first[2] and first[3]


async def test_latency_jitter_stays_within_its_range(sandbox: Any) -> None:
    async with sandbox(latency=0.04, latency_jitter=0.02) as call:
        for _ in range(3):
            started = anyio.current_time()
            await call("ListInputs", service_pb2.ListInputsRequest())
            assert 0.02 <= anyio.current_time() - started < 1.0


async def test_address_stats_dump_and_api_key_without_app(sandbox: Any, tmp_path: Path) -> None:
    async with sandbox() as call:
        sb = call.sb
        assert sb.port > 0
        assert sb.address == f"127.0.0.1:{sb.port}"
        assert sb.base_url == f"http://127.0.0.1:{sb.port}"
        reply = await call("ListInputs", service_pb2.ListInputsRequest(), KEY)
        assert reply.status.code == sc.SUCCESS
        path = tmp_path / "now.json"
        sb.dump_stats(str(path))
        data = json.loads(path.read_text())
        assert data["requests"] == {"ListInputs": 1}
        assert data["requests_total"] == 1
        assert sb.stats.to_dict()["throttled"] == 0


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="download_failure_rate"):
        SandboxOptions(download_failure_rate=1.5)
    with pytest.raises(ValueError, match="processing"):
        SandboxOptions(processing=(2.0, 1.0))
    with pytest.raises(ValueError, match="latency"):
        SandboxOptions(latency=-1)
    with pytest.raises(TypeError):
        SandboxOptions("127.0.0.1")  # type: ignore[misc]
