"""Dataset versions: snapshots of a dataset's inputs and annotations, their metrics and
their exports.

A version is made READY at once (Clarifai computes it asynchronously: the SDK polls
ListDatasetVersionMetricsGroups until groups appear, which here is the first time). Its
metrics are counted over the inputs of the dataset when it was made; its export
(``CLARIFAI_DATA_PROTOBUF`` only) is a zip the data host (:mod:`.hosting`) serves. Where
each behaviour comes from is listed in ``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from clarifai_grpc.grpc.api.status import status_pb2

from ingest.sandbox.datasets import no_dataset
from ingest.sandbox.replies import page_of, set_status
from ingest.sandbox.rpc import ServicerBase, rpc
from ingest.sandbox.state import KINDS, AppState

__all__ = ["EXPORT_MIMETYPE", "Version", "VersionRPCs", "export_path"]

EXPORT_MIMETYPE = b"application/x.clarifai-data+protobuf"
"""The ``mimetype`` entry of a CLARIFAI_DATA_PROTOBUF archive (the SDK checks it)."""
ROOT = "/"
"""The parent path of the metrics of a whole version."""
_COUNTS = (
    "inputs_count",
    "unlabeled_inputs_count",
    "inputs_with_metadata_count",
    "inputs_with_geo_count",
    "regions_count",
    "bounding_boxes_count",
    "polygons_count",
    "points_count",
    "masks_count",
    "positive_input_tags_count",
    "positive_region_tags_count",
)
"""The metrics the sandbox counts (each set, zero included, as a UInt64Value)."""
_PROTOBUF = resources_pb2.DatasetVersionExportFormat.Value("CLARIFAI_DATA_PROTOBUF")


@dataclass
class Version:
    """A dataset version: its message, the inputs it froze (as an export shows them,
    annotations folded into ``data``), and its export archive once made."""

    message: Any
    inputs: list[Any] = field(default_factory=list)
    archive: bytes | None = None


def export_path(state: AppState, dataset_id: str, version_id: str) -> str:
    """Where the data host serves a version's export (after the host's prefix)."""
    return (
        f"/exports/users/{state.user_id}/apps/{state.app_id}/datasets/{dataset_id}"
        f"/versions/{version_id}/clarifai-data-protobuf.zip"
    )


def _frozen(state: AppState, dataset_id: str) -> list[Any]:
    """The dataset's inputs as an export shows them: listed (bytes replaced by their
    hosted URL), with their annotations' concepts and regions folded into ``data``."""
    out = []
    for input_id in state.dataset_inputs.get(dataset_id, {}):
        stored = state.inputs.get(input_id)
        if stored is None:
            continue
        inp = state.listed(stored)
        for ann_id in state.by_input.get(input_id, ()):
            ann = state.annotations.get(ann_id)
            if ann is not None and not isinstance(ann, str):
                inp.data.regions.extend(ann.data.regions)
                inp.data.concepts.extend(ann.data.concepts)
        out.append(inp)
    return out


def _metrics(metrics: Any, inputs: list[Any]) -> None:
    """Count ``inputs`` into a DatasetVersionMetrics."""
    counts: Counter[str] = Counter()
    for inp in inputs:
        data = inp.data
        counts["inputs_count"] += 1
        boxes = sum(r.region_info.HasField("bounding_box") for r in data.regions)
        polygons = sum(r.region_info.HasField("polygon") for r in data.regions)
        tags = sum(c.value > 0 for c in data.concepts)
        region_tags = sum(c.value > 0 for r in data.regions for c in r.data.concepts)
        counts["unlabeled_inputs_count"] += not (tags or region_tags)
        counts["inputs_with_metadata_count"] += bool(data.metadata.fields)
        counts["inputs_with_geo_count"] += data.HasField("geo")
        counts["regions_count"] += len(data.regions)
        counts["bounding_boxes_count"] += boxes
        counts["polygons_count"] += polygons
        counts["positive_input_tags_count"] += tags
        counts["positive_region_tags_count"] += region_tags
    for name in _COUNTS:
        getattr(metrics, name).value = counts[name]


def _kind(inp: Any) -> str:
    return next((k for k in KINDS if inp.data.HasField(k)), "")


def _groups(reply: Any, inputs: list[Any]) -> None:
    """The metrics groups of a version: by input type (each kind present, and ``total``:
    the value the SDK's upload status reads) and by concept."""
    by_kind: dict[str, list[Any]] = {"total": inputs}
    for inp in inputs:
        by_kind.setdefault(_kind(inp), []).append(inp)
    for value, members in by_kind.items():
        group = reply.dataset_version_metrics_groups.add(
            parent_path=ROOT, type=resources_pb2.INPUT_TYPE
        )
        group.value.string_value = value
        _metrics(group.metrics, members)
    by_concept: dict[str, list[Any]] = {}
    for inp in inputs:
        named = {c.id for c in inp.data.concepts}
        named |= {c.id for r in inp.data.regions for c in r.data.concepts}
        for concept_id in sorted(named):
            by_concept.setdefault(concept_id, []).append(_only(inp, concept_id))
    for concept_id, members in by_concept.items():
        group = reply.dataset_version_metrics_groups.add(
            parent_path=ROOT, type=resources_pb2.CONCEPT_ID
        )
        group.value.string_value = concept_id
        _metrics(group.metrics, members)


def _only(inp: Any, concept_id: str) -> Any:
    """An input keeping only what names ``concept_id`` (for that concept's metrics)."""
    out = resources_pb2.Input()
    out.CopyFrom(inp)
    kept = [c for c in out.data.concepts if c.id == concept_id]
    regions = [r for r in out.data.regions if any(c.id == concept_id for c in r.data.concepts)]
    del out.data.concepts[:], out.data.regions[:]
    out.data.concepts.extend(kept)
    out.data.regions.extend(regions)
    return out


def _archive(inputs: list[Any]) -> bytes:
    """A CLARIFAI_DATA_PROTOBUF export: ``mimetype``, then batches of serialized
    ``InputBatch`` named ``all/batch-<n>_n<count>`` (the SDK sums the counts after ``_n``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", EXPORT_MIMETYPE)
        for n in range(0, len(inputs), 128):
            batch = resources_pb2.InputBatch(inputs=inputs[n : n + 128])
            archive.writestr(
                f"all/batch-{n // 128}_n{len(batch.inputs)}", batch.SerializeToString()
            )
    return buffer.getvalue()


def _no_version(state: AppState, dataset_id: str, version_id: str, reply: Any) -> bool:
    """True (and the reply says so) when the dataset or its version does not exist."""
    if no_dataset(state, dataset_id, reply):
        return True
    if version_id in state.versions.get(dataset_id, {}):
        return False
    set_status(
        reply.status,
        sc.CONN_DOES_NOT_EXIST,
        "Resource does not exist",
        f"dataset version {version_id!r} of dataset {dataset_id!r} not found",
    )
    return True


class VersionRPCs(ServicerBase):
    """PostDatasetVersions, ListDatasetVersions, GetDatasetVersion, DeleteDatasetVersions,
    ListDatasetVersionMetricsGroups, PutDatasetVersionExports."""

    @rpc(service_pb2.MultiDatasetVersionResponse)
    def PostDatasetVersions(self, state: AppState, request: Any, reply: Any) -> None:
        dataset_id = request.dataset_id
        if no_dataset(state, dataset_id, reply):
            return
        versions = state.versions.setdefault(dataset_id, {})
        for given in request.dataset_versions:
            if given.id in versions:
                set_status(
                    reply.status,
                    sc.DATABASE_DUPLICATE_KEY,
                    "Dataset version already exists",
                    f"dataset {dataset_id!r} already has a version {given.id!r}",
                )
                return
        for given in request.dataset_versions:
            message = resources_pb2.DatasetVersion()
            message.CopyFrom(given)
            message.id = given.id or uuid.uuid4().hex
            message.app_id, message.user_id = state.app_id, state.user_id
            message.dataset_id = dataset_id
            message.created_at.GetCurrentTime()
            message.modified_at.CopyFrom(message.created_at)
            set_status(message.status, sc.DATASET_VERSION_READY, "Dataset version ready")
            version = Version(message, _frozen(state, dataset_id))
            _metrics(message.metrics[ROOT], version.inputs)
            versions[message.id] = version
            state.datasets[dataset_id].version.CopyFrom(message)
            reply.dataset_versions.append(message)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiDatasetVersionResponse)
    def ListDatasetVersions(self, state: AppState, request: Any, reply: Any) -> None:
        if no_dataset(state, request.dataset_id, reply):
            return
        versions = state.versions.get(request.dataset_id, {}).values()
        reply.dataset_versions.extend(v.message for v in page_of(versions, request))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.SingleDatasetVersionResponse)
    def GetDatasetVersion(self, state: AppState, request: Any, reply: Any) -> None:
        if _no_version(state, request.dataset_id, request.dataset_version_id, reply):
            return
        version = state.versions[request.dataset_id][request.dataset_version_id]
        reply.dataset_version.CopyFrom(version.message)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(status_pb2.BaseResponse)
    def DeleteDatasetVersions(self, state: AppState, request: Any, reply: Any) -> None:
        for version_id in request.dataset_version_ids:
            if _no_version(state, request.dataset_id, version_id, reply):
                return
        versions = state.versions[request.dataset_id]
        for version_id in request.dataset_version_ids:
            del versions[version_id]
        dataset = state.datasets[request.dataset_id]
        dataset.ClearField("version")
        if versions:
            dataset.version.CopyFrom(list(versions.values())[-1].message)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiDatasetVersionMetricsGroupResponse)
    def ListDatasetVersionMetricsGroups(self, state: AppState, request: Any, reply: Any) -> None:
        if _no_version(state, request.dataset_id, request.dataset_version_id, reply):
            return
        version = state.versions[request.dataset_id][request.dataset_version_id]
        _groups(reply, version.inputs)
        wanted_types, wanted_paths = set(request.types), set(request.parent_paths)
        kept = [
            g
            for g in reply.dataset_version_metrics_groups
            if (not wanted_types or g.type in wanted_types)
            and (not wanted_paths or g.parent_path in wanted_paths)
        ]
        del reply.dataset_version_metrics_groups[:]
        reply.dataset_version_metrics_groups.extend(page_of(kept, request))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiDatasetVersionExportResponse)
    def PutDatasetVersionExports(self, state: AppState, request: Any, reply: Any) -> None:
        """``CLARIFAI_DATA_PROTOBUF`` is made at once and served by the data host; the other
        formats, or any without a data host, fail plainly (DATASET_VERSION_EXPORT_FAILED)."""
        if _no_version(state, request.dataset_id, request.dataset_version_id, reply):
            return
        version = state.versions[request.dataset_id][request.dataset_version_id]
        for given in request.exports:
            item = reply.exports.add()
            item.CopyFrom(given)
            if given.format != _PROTOBUF or not state.hosted_prefix:
                why = (
                    "the sandbox exports only CLARIFAI_DATA_PROTOBUF"
                    if given.format != _PROTOBUF
                    else "the sandbox serves no data host (data_host=False)"
                )
                set_status(item.status, sc.DATASET_VERSION_EXPORT_FAILED, "Export failed", why)
                continue
            if version.archive is None:
                version.archive = _archive(version.inputs)
            path = export_path(state, request.dataset_id, request.dataset_version_id)
            item.url = state.hosted_prefix + path
            item.size = len(version.archive)
            set_status(item.status, sc.DATASET_VERSION_EXPORT_SUCCESS, "Export success")
            version.message.export_info.clarifai_data_protobuf.CopyFrom(item)
        set_status(reply.status, sc.SUCCESS, "Ok")
