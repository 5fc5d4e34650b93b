"""``Ingester.verify`` against a sandbox: nothing differs after a clean upload; every change
made in the app behind its back is found, exactly, and nothing else; it never writes.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from clarifai_grpc.grpc.api import service_pb2

from ingest import ConfigError, Ingester
from ingest.sandbox.auth import READ_SCOPES, is_write
from ingest.verify import Difference, DifferenceKind
from tests.helpers import input_id, sandbox_config
from tests.sandbox.conftest import SandboxStub, connect
from tests.verify.data import Data, box_annotation, patch_annotations, write_data

pytestmark = pytest.mark.anyio


async def verify(stub: SandboxStub, data: Data, **options: Any) -> tuple[list[Difference], Any]:
    config = sandbox_config(stub.sb, **options)
    async with Ingester(config) as ing, ing.verify(data.path) as found:
        differences = [d async for d in found]
    return differences, found.report


async def upload(stub: SandboxStub, data: Data) -> None:
    async with Ingester(sandbox_config(stub.sb)) as ing:
        report = await ing.run(data.path)
    assert report.rows_failed == 0 and report.rows_landed == data.rows


def writes(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The calls of writing methods between two readings of the sandbox's counts."""
    return {
        m: n - before.get(m, 0) for m, n in after.items() if is_write(m) and n > before.get(m, 0)
    }


async def test_after_a_clean_upload_nothing_differs(tmp_path: Path) -> None:
    data = write_data(tmp_path / "rows.csv", images=300)
    with anyio.fail_after(60):
        async with connect(processing=(0.01, 0.05)) as stub:
            await upload(stub, data)
            before = dict(stub.sb.stats.requests)
            differences, report = await verify(stub, data)
            calls = {m: n - before.get(m, 0) for m, n in stub.sb.stats.requests.items()}
    assert differences == []
    assert report.equal and report.rows_differing == 0
    assert report.rows_equal == report.rows_read == data.rows
    assert report.images_checked == report.inputs_found == 300
    assert report.grouped  # the rows are shuffled: grouped on disk first, as by the upload
    assert not writes(before, {m: before.get(m, 0) + n for m, n in calls.items()})
    # one ListInputs by ids per 128 images, and their annotations in one page each
    batches = math.ceil(300 / 128)
    assert {m: n for m, n in calls.items() if n} == {
        "ListInputs": batches,
        "ListAnnotations": batches,
    }
    assert report.requests == 2 * batches


async def test_every_change_behind_its_back_is_found_and_nothing_else(tmp_path: Path) -> None:
    data = write_data(tmp_path / "rows.csv", images=24)
    img = data.images
    with anyio.fail_after(60):
        async with connect(processing=(0.01, 0.05)) as stub:
            await upload(stub, data)
            held = stub.sb.annotations
            # 1: a box deleted
            gone, _, _ = img[1].boxes[0]
            await stub(
                "DeleteAnnotations",
                service_pb2.DeleteAnnotationsRequest(ids=[gone], input_ids=[img[1].input_id]),
            )
            # 2: a box moved, under its own id (PatchAnnotations)
            moved, box, concepts = img[2].boxes[0]
            shifted = (box[0] + 0.05, box[1], box[2] + 0.05, box[3])
            await stub(
                "PatchAnnotations",
                patch_annotations(
                    "merge", box_annotation(moved, img[2].input_id, shifted, concepts)
                ),
            )
            # 3: the input's metadata changed
            patch = service_pb2.PatchInputsRequest(action="merge")
            target = patch.inputs.add(id=img[3].input_id)
            target.data.metadata.update({"split": "changed"})
            await stub("PatchInputs", patch)
            # 4: the input deleted, its annotations with it
            await stub("DeleteInputs", service_pb2.DeleteInputsRequest(ids=[img[4].input_id]))
            # 5: an annotation added by someone else
            extra = box_annotation("someone-else", img[5].input_id, (0.6, 0.6, 0.9, 0.9), ["dog"])
            await stub("PostAnnotations", service_pb2.PostAnnotationsRequest(annotations=[extra]))
            # 6: other concepts on a box, same box, same id
            relabelled, box6, _ = img[7].boxes[0]
            await stub(
                "PatchAnnotations",
                patch_annotations(
                    "merge", box_annotation(relabelled, img[7].input_id, box6, ["person"])
                ),
            )
            # 7: a concept of the whole image removed from the input (image 9 has labels)
            assert img[9].labels
            patch = service_pb2.PatchInputsRequest(action="remove")
            patch.inputs.add(id=img[9].input_id).data.concepts.add(id=img[9].labels[0])
            await stub("PatchInputs", patch)
            # 8: other annotation_info
            annotated, box8, concepts8 = img[10].boxes[0]
            info = box_annotation(annotated, img[10].input_id, box8, concepts8, {"checked": True})
            await stub("PatchAnnotations", patch_annotations("merge", info))
            # 9: a box re-made elsewhere under another id (as a tool that moves by re-creating)
            remade, box9, concepts9 = img[11].boxes[0]
            await stub(
                "DeleteAnnotations",
                service_pb2.DeleteAnnotationsRequest(ids=[remade], input_ids=[img[11].input_id]),
            )
            elsewhere = (box9[0] + 0.1, box9[1], box9[2] + 0.1, box9[3])
            made = box_annotation("remade", img[11].input_id, elsewhere, concepts9)
            await stub("PostAnnotations", service_pb2.PostAnnotationsRequest(annotations=[made]))
            assert held  # the changes were made through the API, on what the upload stored

            before = dict(stub.sb.stats.requests)
            differences, report = await verify(stub, data)
            assert not writes(before, stub.sb.stats.requests)

    line_of = {aid: image.box_line(n) for image in img for n, (aid, _, _) in enumerate(image.boxes)}
    found = {(d.line, d.kinds) for d in differences if not d.extra}
    expected = {
        (line_of[gone], (DifferenceKind.REGION_MISSING,)),
        (line_of[moved], (DifferenceKind.REGION_MOVED,)),
        *((line, (DifferenceKind.INPUT_METADATA,)) for line in img[3].lines),
        *((line, (DifferenceKind.INPUT_MISSING,)) for line in img[4].lines),
        (line_of[relabelled], (DifferenceKind.REGION_CONCEPTS,)),
        *((line, (DifferenceKind.INPUT_CONCEPTS,)) for line in img[9].lines),
        (line_of[annotated], (DifferenceKind.ANNOTATION_INFO,)),
        (line_of[remade], (DifferenceKind.REGION_MISSING,)),
    }
    assert found == expected
    extras = {(d.input_id, d.annotation_id, d.kinds) for d in differences if d.extra}
    assert extras == {
        (img[5].input_id, "someone-else", (DifferenceKind.EXTRA_ANNOTATION,)),
        (img[11].input_id, "remade", (DifferenceKind.EXTRA_ANNOTATION,)),
    }
    # every differing row comes with its cells, to send it again; extras with none
    by_line = data.by_line()
    for d in differences:
        if d.extra:
            assert not d.raw
        else:
            assert d.raw["url"] == by_line[d.line].url and d.error
    counts = report.differences
    assert counts == {
        "regions_missing": 2,
        "regions_moved": 1,
        "inputs_with_other_metadata": 1,
        "inputs_missing": 1,
        "regions_with_other_concepts": 1,
        "inputs_with_other_concepts": 1,
        "regions_with_other_annotation_info": 1,
        "annotations_extra": 2,
    }
    assert report.rows_differing == len(expected)
    assert report.rows_equal == data.rows - len(expected)
    assert not report.equal and report.extras == 2


async def test_extras_alone_differ_only_in_strict_mode(tmp_path: Path) -> None:
    data = write_data(tmp_path / "rows.csv", images=6)
    with anyio.fail_after(60):
        async with connect(processing=(0.01, 0.05)) as stub:
            await upload(stub, data)
            image = data.images[0]
            extra = box_annotation("extra", image.input_id, (0.6, 0.6, 0.9, 0.9), ["dog"])
            await stub("PostAnnotations", service_pb2.PostAnnotationsRequest(annotations=[extra]))
            patch = service_pb2.PatchInputsRequest(action="merge")
            target = patch.inputs.add(id=data.images[1].input_id)
            target.data.metadata.update({"added_by": "a person"})
            target.data.concepts.add(id="reviewed", value=1.0)
            await stub("PatchInputs", patch)
            lenient, report = await verify(stub, data)
            config = sandbox_config(stub.sb)
            async with Ingester(config) as ing, ing.verify(data.path, strict=True) as found:
                strict = [d async for d in found]
    kinds = Counter(k for d in lenient for k in d.kinds)
    assert kinds == {
        DifferenceKind.EXTRA_ANNOTATION: 1,
        DifferenceKind.EXTRA_METADATA: 1,
        DifferenceKind.EXTRA_CONCEPTS: 1,
    }
    assert all(d.extra for d in lenient) and report.equal and report.rows_differing == 0
    assert strict == lenient and not found.report.equal


async def test_a_read_only_key_verifies_and_no_write_is_made(tmp_path: Path) -> None:
    data = write_data(tmp_path / "rows.csv", images=20)
    options = {"processing": (0.01, 0.05), "scoped_keys": {"ro-key": READ_SCOPES}}
    with anyio.fail_after(60):
        async with connect(**options) as stub:
            await upload(stub, data)
            # the read-only key cannot write: the sandbox refuses it
            refused = await stub(
                "DeleteInputs",
                service_pb2.DeleteInputsRequest(ids=[data.images[0].input_id]),
                metadata=(("authorization", "Key ro-key"),),
            )
            assert refused.status.description == "API key has insufficient scopes"
            before = dict(stub.sb.stats.requests)
            config = sandbox_config(stub.sb, pat=None, user_id=None, app_id=None, api_key="ro-key")
            async with Ingester(config) as ing, ing.verify(data.path) as found:
                differences = [d async for d in found]
            after = dict(stub.sb.stats.requests)
    assert differences == [] and found.report.equal
    assert not writes(before, after)
    assert stub.sb.stats.auth_failures == 1  # the refused delete only


async def test_rows_from_an_iterable_are_refused(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with connect() as stub, Ingester(sandbox_config(stub.sb)) as ing:
            with pytest.raises(ConfigError, match="verify reads a data path"):
                async with ing.verify([{"url": "https://img.example.com/a.jpg"}]):
                    pass


async def test_a_missing_input_and_an_unprocessed_one(tmp_path: Path) -> None:
    """An input the app lacks, and one whose download failed: every row of each differs,
    and the failed one's status is said."""
    path = tmp_path / "rows.csv"
    path.write_text(
        "url,left_col,top_row,right_col,bottom_row,pos_concepts\n"
        "https://img.example.com/broken-1.jpg,0.1,0.1,0.5,0.5,cat\n"
        "https://img.example.com/2.jpg,0.1,0.1,0.5,0.5,cat\n"
        "https://img.example.com/broken-1.jpg,0.2,0.2,0.6,0.6,dog\n"
    )
    with anyio.fail_after(60):
        async with connect(processing=(0.01, 0.05)) as stub:
            request = service_pb2.PostInputsRequest()
            broken = "https://img.example.com/broken-1.jpg"
            request.inputs.add(id=input_id(broken)).data.image.url = broken
            await stub("PostInputs", request)
            await stub.sb.wait_processed()
            async with Ingester(sandbox_config(stub.sb)) as ing, ing.verify(path) as found:
                differences = sorted([d async for d in found])
    assert [(d.line, d.kinds) for d in differences] == [
        (2, (DifferenceKind.INPUT_NOT_PROCESSED,)),
        (3, (DifferenceKind.INPUT_MISSING,)),
        (4, (DifferenceKind.INPUT_NOT_PROCESSED,)),
    ]
    assert "INPUT_DOWNLOAD_FAILED" in differences[0].error or "download failed" in (
        differences[0].error.lower()
    )
    assert found.report.differences == {"inputs_not_processed": 1, "inputs_missing": 1}
