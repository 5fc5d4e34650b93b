"""Datasets patched, deleted and merged; dataset versions, their metrics and exports;
concepts; annotations patched and deleted."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import anyio
import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from tests.sandbox.helpers import annotation, inputs_request, wait_processed
from tests.sandbox.test_hosting import fetch

pytestmark = pytest.mark.anyio


async def _two_labelled_inputs(call: Any) -> None:
    req = inputs_request(("a", "https://x/1.jpg"), ("b", "https://x/2.jpg"))
    for inp in req.inputs:
        inp.dataset_ids.append("ds")
    req.inputs[0].data.concepts.add(id="cat", value=1)
    req.inputs[1].data.metadata.update({"filename": "2.jpg"})
    await call("PostInputs", req)
    await wait_processed(call, ["a", "b"])
    box = annotation("box", "b", (0.1, 0.1, 0.5, 0.5))
    box.data.regions[0].data.concepts.add(id="dog", value=1)
    await call("PostAnnotations", service_pb2.PostAnnotationsRequest(annotations=[box]))


async def test_datasets_are_patched_merged_and_deleted_without_their_inputs(sandbox: Any) -> None:
    async with sandbox() as call:
        await _two_labelled_inputs(call)
        patch = service_pb2.PatchDatasetsRequest(action="merge")
        patch.datasets.add(id="ds", description="d", notes="n").visibility.gettable = 10
        reply = await call("PatchDatasets", patch)
        assert reply.status.code == sc.SUCCESS
        got = (await call("GetDataset", service_pb2.GetDatasetRequest(dataset_id="ds"))).dataset
        assert (got.description, got.notes, got.visibility.gettable) == ("d", "n", 10)
        assert (got.app_id, got.user_id) == ("sandbox-app", "sandbox")
        missing = service_pb2.PatchDatasetsRequest(datasets=[resources_pb2.Dataset(id="zz")])
        assert (await call("PatchDatasets", missing)).status.code == sc.CONN_DOES_NOT_EXIST

        await call("PostDatasets", service_pb2.PostDatasetsRequest(datasets=[{"id": "copy"}]))
        search = service_pb2.PostDatasetInputsRequest(dataset_id="copy")
        search.search.query.filters.add().input.dataset_ids.append("ds")
        merged = await call("PostDatasetInputs", search)
        assert merged.status.code == sc.SUCCESS
        listed = await call(
            "ListDatasetInputs", service_pb2.ListDatasetInputsRequest(dataset_id="copy")
        )
        assert [d.input.id for d in listed.dataset_inputs] == ["a", "b"]
        other = service_pb2.PostDatasetInputsRequest(dataset_id="copy")
        other.search.query.filters.add().annotation.data.concepts.add(id="cat")
        refused = await call("PostDatasetInputs", other)
        assert refused.status.code == sc.NOT_IMPLEMENTED and not refused.dataset_inputs

        gone = await call("DeleteDatasets", service_pb2.DeleteDatasetsRequest(dataset_ids=["ds"]))
        assert gone.status.code == sc.SUCCESS
        assert set(call.sb.inputs) == {"a", "b"}
        assert list(call.sb.inputs["a"].dataset_ids) == ["copy"]
        again = await call("GetDataset", service_pb2.GetDatasetRequest(dataset_id="ds"))
        assert again.status.code == sc.CONN_DOES_NOT_EXIST


async def test_a_version_freezes_the_dataset_with_its_metrics_and_export(sandbox: Any) -> None:
    async with sandbox() as call:
        await _two_labelled_inputs(call)
        made = await call(
            "PostDatasetVersions",
            service_pb2.PostDatasetVersionsRequest(
                dataset_id="ds", dataset_versions=[resources_pb2.DatasetVersion(id="v1")]
            ),
        )
        version = made.dataset_versions[0]
        assert version.status.code == sc.DATASET_VERSION_READY
        whole = version.metrics["/"]
        assert (whole.inputs_count.value, whole.bounding_boxes_count.value) == (2, 1)
        assert whole.positive_input_tags_count.value == 1
        assert whole.inputs_with_metadata_count.value == 1
        # later inputs are not in it
        late = inputs_request(("c", "https://x/3.jpg"))
        late.inputs[0].dataset_ids.append("ds")
        await call("PostInputs", late)
        groups = await call(
            "ListDatasetVersionMetricsGroups",
            service_pb2.ListDatasetVersionMetricsGroupsRequest(
                dataset_id="ds", dataset_version_id="v1"
            ),
        )
        by_value = {g.value.string_value: g for g in groups.dataset_version_metrics_groups}
        assert by_value["total"].metrics.inputs_count.value == 2
        assert by_value["image"].type == resources_pb2.INPUT_TYPE
        assert by_value["dog"].type == resources_pb2.CONCEPT_ID
        assert by_value["dog"].metrics.bounding_boxes_count.value == 1
        assert by_value["cat"].metrics.positive_input_tags_count.value == 1
        listed = await call(
            "ListDatasetVersions", service_pb2.ListDatasetVersionsRequest(dataset_id="ds")
        )
        assert [v.id for v in listed.dataset_versions] == ["v1"]
        dataset = (await call("GetDataset", service_pb2.GetDatasetRequest(dataset_id="ds"))).dataset
        assert dataset.version.id == "v1"

        export = service_pb2.PutDatasetVersionExportsRequest(
            dataset_id="ds", dataset_version_id="v1"
        )
        export.exports.add(format=resources_pb2.CLARIFAI_DATA_PROTOBUF)
        export.exports.add(format=resources_pb2.COCO)
        reply = await call("PutDatasetVersionExports", export)
        done, coco = reply.exports
        assert done.status.code == sc.DATASET_VERSION_EXPORT_SUCCESS
        assert coco.status.code == sc.DATASET_VERSION_EXPORT_FAILED
        status, body, ctype = await anyio.to_thread.run_sync(fetch, done.url)
        assert (status, ctype, len(body)) == (200, "application/zip", done.size)
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            assert archive.read("mimetype") == b"application/x.clarifai-data+protobuf"
            (name,) = [n for n in archive.namelist() if n != "mimetype"]
            assert name.endswith("_n2")
            batch = resources_pb2.InputBatch.FromString(archive.read(name))
        assert [i.id for i in batch.inputs] == ["a", "b"]
        assert batch.inputs[1].data.regions[0].data.concepts[0].id == "dog"

        gone = await call(
            "DeleteDatasetVersions",
            service_pb2.DeleteDatasetVersionsRequest(dataset_id="ds", dataset_version_ids=["v1"]),
        )
        assert gone.status.code == sc.SUCCESS
        get = await call(
            "GetDatasetVersion",
            service_pb2.GetDatasetVersionRequest(dataset_id="ds", dataset_version_id="v1"),
        )
        assert get.status.code == sc.CONN_DOES_NOT_EXIST


async def test_concepts_are_made_on_first_use_patched_and_outlive_their_inputs(
    sandbox: Any,
) -> None:
    async with sandbox() as call:
        await _two_labelled_inputs(call)
        await call(
            "PostConcepts",
            service_pb2.PostConceptsRequest(
                concepts=[resources_pb2.Concept(id="bird", name="Bird")]
            ),
        )
        listed = await call("ListConcepts", service_pb2.ListConceptsRequest())
        assert [(c.id, c.name) for c in listed.concepts] == [
            ("cat", "cat"),
            ("dog", "dog"),
            ("bird", "Bird"),
        ]
        patch = service_pb2.PatchConceptsRequest(action="overwrite")
        patch.concepts.add(id="dog", name="Hound")
        assert (await call("PatchConcepts", patch)).status.code == sc.SUCCESS
        await call("DeleteInputs", service_pb2.DeleteInputsRequest(ids=["a", "b"]))
        got = await call("GetConcept", service_pb2.GetConceptRequest(concept_id="dog"))
        assert got.concept.name == "Hound"
        missing = service_pb2.PatchConceptsRequest(action="overwrite")
        missing.concepts.add(id="nope", name="x")
        assert (await call("PatchConcepts", missing)).status.code == sc.CONN_DOES_NOT_EXIST


async def test_annotations_are_patched_and_deleted_input_level_ones_too(sandbox: Any) -> None:
    async with sandbox() as call:
        await _two_labelled_inputs(call)
        moved = annotation("box", "b", (0.4, 0.4, 0.6, 0.6))
        patch = service_pb2.PatchAnnotationsRequest(action="merge", annotations=[moved])
        patch.annotations.add(id="nope", input_id="b")
        reply = await call("PatchAnnotations", patch)
        assert reply.status.code == sc.MIXED_STATUS
        (box,) = (
            await call("ListAnnotations", service_pb2.ListAnnotationsRequest(ids=["box"]))
        ).annotations
        bb = box.data.regions[0].region_info.bounding_box
        assert (bb.left_col, bb.right_col) == pytest.approx((0.4, 0.6))
        assert len(box.data.regions) == 1

        of_b = await call("ListAnnotations", service_pb2.ListAnnotationsRequest(input_ids=["b"]))
        assert len(of_b.annotations) == 2  # its metadata's input-level annotation, the box
        assert of_b.annotations[0].data.metadata["filename"] == "2.jpg"
        gone = await call(
            "DeleteAnnotations", service_pb2.DeleteAnnotationsRequest(input_ids=["a", "b"])
        )
        assert gone.status.code == sc.SUCCESS
        everything = await call("ListAnnotations", service_pb2.ListAnnotationsRequest())
        assert not everything.annotations
        assert call.sb.annotations == {} and call.sb.input_annotations == {}
        assert set(call.sb.inputs) == {"a", "b"}
