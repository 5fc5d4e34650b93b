"""Stage 1: create inputs, up to 128 per PostInputs, several calls in flight."""

from __future__ import annotations

import logging
from typing import Any

import aiofiles
from anyio.streams.memory import MemoryObjectSendStream
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.batching import Batcher
from ingest.client import describe
from ingest.model import Image, Row
from ingest.ratelimit import Priority
from ingest.stages.base import WorkerContext, is_duplicate

__all__ = [
    "CREATED_CODES",
    "JOINED_CODES",
    "MAX_REQUEST_BYTES",
    "add_concept",
    "add_labels",
    "create_worker",
    "datasets_of",
    "fold_metadata",
    "geo_of",
    "labels_of",
    "set_geo",
    "settle",
]

#: Per-input codes meaning "stored, processing under way or done".
CREATED_CODES = frozenset(
    {
        sc.SUCCESS,
        sc.INPUT_DOWNLOAD_PENDING,
        sc.INPUT_DOWNLOAD_IN_PROGRESS,
        sc.INPUT_DOWNLOAD_SUCCESS,
    }
)

#: Per-input codes of PostDatasetInputs meaning "the input is in the dataset".
JOINED_CODES = frozenset({sc.SUCCESS, sc.DATASET_INPUT_SUCCESS, sc.DATASET_INPUT_DUPLICATE})


log = logging.getLogger("ingest.create")

MAX_REQUEST_BYTES = 100 * 2**20
"""Largest PostInputs request sent: Clarifai refuses requests of 128 MB and more (see
docs/clarifai-behaviour.md); a batch past this is sent in halves."""


def merge(batch: list[Image]) -> list[Image]:
    """One image per input id: rows of a URL that came back within the batch join it."""
    if len({image.input_id for image in batch}) == len(batch):
        return batch
    merged: dict[str, Image] = {}
    for image in batch:
        seen = merged.get(image.input_id)
        if seen is None:
            merged[image.input_id] = Image(image.input_id, list(image.rows), image.weight)
        else:
            seen.rows.extend(image.rows)
    return list(merged.values())


async def build_input(target: Any, image: Image, dataset_id: str | None) -> None:
    """Fill ``target`` (an Input being added to a request) from an image's rows."""
    first = image.first
    target.id = image.input_id
    data = target.data
    if first.path:
        async with aiofiles.open(first.path, "rb") as fh:
            data.image.base64 = await fh.read()
    else:
        data.image.url = first.url
    add_labels(data, image)
    set_geo(data, geo_of(image))
    target.dataset_ids.extend(datasets_of(image, dataset_id))


def settle(held: Any, given: Any) -> Any:
    """``given`` as it should be stored over ``held``: objects merge key by key
    (recursively), anything else - lists included - is replaced."""
    if isinstance(held, dict) and isinstance(given, dict):
        out = dict(held)
        for key, value in given.items():
            out[key] = settle(held.get(key), value)
        return out
    return given


def fold_metadata(rows: list[Row], start: dict[str, Any]) -> dict[str, Any]:
    """``start`` with the metadata of ``rows`` settled over it, one row after the other
    (:func:`settle`): what a run of these rows leaves on an input holding ``start``."""
    metadata = start
    last = None
    for row in rows:
        given = row.metadata
        if given and given is not last:  # rows of one image usually share one dict
            metadata = settle(metadata, given) if metadata else given
            last = given
    return metadata


def labels_of(image: Image) -> tuple[dict[str, tuple[float, str]], dict[str, Any]]:
    """The image-level concepts and the metadata that ``image``'s rows carry.

    Concepts map an id to its value (1 positive, 0 negative) and name (the row's
    ``concept_names`` entry, else the id); the first row naming a concept decides. A
    later row's metadata is settled over an earlier one's (:func:`fold_metadata`).
    """
    concepts: dict[str, tuple[float, str]] = {}
    for row in image.rows:
        if not row.annotation_id:
            names = row.concept_names or {}
            for ids, value in ((row.pos_concepts, 1.0), (row.neg_concepts, 0.0)):
                for concept in ids:
                    if concept not in concepts:
                        concepts[concept] = (value, names.get(concept, concept))
    return concepts, fold_metadata(image.rows, {})


def geo_of(image: Image) -> tuple[float, float] | None:
    """The geo point (longitude, latitude) of ``image``: its first row giving one decides."""
    for row in image.rows:
        if row.geo is not None:
            return row.geo
    return None


def set_geo(data: Any, geo: tuple[float, float] | None) -> None:
    """Put the geo point (longitude, latitude) on ``data``, if there is one."""
    if geo is not None:
        data.geo.geo_point.longitude, data.geo.geo_point.latitude = geo


def add_concept(data: Any, concept: str, value: float, name: str) -> None:
    """Add one concept to ``data`` (an input's data being built)."""
    c = data.concepts.add()
    c.id = concept
    c.name = name
    c.value = value


def add_labels(data: Any, image: Image) -> None:
    """Put the image-level concepts and the metadata of ``image``'s rows on ``data``."""
    concepts, metadata = labels_of(image)
    for concept, (value, name) in concepts.items():
        add_concept(data, concept, value, name)
    if metadata:
        data.metadata.update(metadata)


async def create_worker(
    stage: WorkerContext, batcher: Batcher[Image], created: MemoryObjectSendStream[list[Image]]
) -> None:
    """Send batches of new inputs; pass the stored ones on to the processing tracker.

    An input that existed already (a URL seen earlier, an earlier run, a re-sent call)
    goes on too: the tracker's check reads what the service holds for it, and only
    the labels and metadata it lacks are patched (:mod:`ingest.stages.patch`).
    """
    async with created, stage.outcomes:
        while (batch := await batcher.next_batch()) is not None:
            images = merge(batch)
            if stage.turns is not None:
                await stage.turns.enter(images)
            await _send(stage, images, created)
            await stage.flush()


async def _make_datasets(stage: WorkerContext, images: list[Image]) -> None:
    """Make the datasets the rows name (``dataset_id`` column) that are not known yet.

    Once per dataset and run: PostDatasets, where an existing id is refused whole
    (docs/clarifai-behaviour.md), which counts as made. A dataset that cannot be made
    fails nothing here: the inputs naming it fail with the service's own answer.
    """
    wanted = {i.first.dataset_id for i in images if i.first.dataset_id} - stage.datasets
    for dataset_id in sorted(wanted):
        stage.datasets.add(dataset_id)
        request = service_pb2.PostDatasetsRequest()
        request.datasets.add(id=dataset_id)
        reply = await stage.client.call("PostDatasets", request, priority=Priority.CREATE)
        if reply.status.code != sc.SUCCESS and not is_duplicate(reply.status):
            log.warning("dataset %r could not be made: %s", dataset_id, describe(reply.status))


async def _send(
    stage: WorkerContext, images: list[Image], created: MemoryObjectSendStream[list[Image]]
) -> None:
    tally = stage.tallies.create
    await _make_datasets(stage, images)
    request = service_pb2.PostInputsRequest()
    kept: list[Image] = []
    for image in images:
        try:
            await build_input(request.inputs.add(), image, stage.config.dataset_id)
        except OSError as exc:
            del request.inputs[-1]
            _fail(stage, image, f"cannot read {image.first.path}: {exc.strerror}")
            continue
        kept.append(image)
    images = kept
    if not images:
        return
    size = request.ByteSize()
    if size > MAX_REQUEST_BYTES:
        if len(images) > 1:  # too much for one call (large files, huge metadata)
            half = len(images) // 2
            await _send(stage, images[:half], created)
            await _send(stage, images[half:], created)
        else:
            _fail(
                stage,
                images[0],
                f"the input alone makes a request of {size / 2**20:,.0f} MiB, over "
                f"Clarifai's limit of {MAX_REQUEST_BYTES // 2**20} MiB per request",
            )
        return
    verdicts = await stage.client.call_items("PostInputs", request, priority=Priority.CREATE)
    if verdicts.ok:
        tally.new += len(images)
        await created.send(images)
        return
    stored: list[Image] = []
    existing: list[Image] = []
    for image, status in zip(images, verdicts.statuses, strict=True):
        if status.code in CREATED_CODES:
            tally.new += 1
            stored.append(image)
        elif is_duplicate(status):
            tally.existing += 1
            image.existed = True
            existing.append(image)
        else:
            _fail(stage, image, f"input not created: {describe(status)}")
    if existing:
        stored.extend(await _join_datasets(stage, existing))
    if stored:
        await created.send(stored)


def datasets_of(image: Image, dataset_id: str | None) -> list[str]:
    """The datasets an image's input goes into: ``--dataset-id``, then its rows' own."""
    out = [dataset_id] if dataset_id else []
    first = image.first.dataset_id
    if first and first != dataset_id:
        out.append(first)
    return out


async def _join_datasets(stage: WorkerContext, images: list[Image]) -> list[Image]:
    """Put inputs that existed already into the datasets their rows name; return those
    now in every one of them and fail the others' rows.

    A duplicate input's ``dataset_ids`` are refused with it, and listed inputs never say
    which datasets hold them (``Input.dataset_ids`` "is ignored for other endpoints, e.g.
    GetInput, ListInputs", grpc protos), so each such input is added again with
    PostDatasetInputs, one call per dataset and batch: an input already in the dataset
    answers SUCCESS or DATASET_INPUT_DUPLICATE, both meaning it is there
    (docs/clarifai-behaviour.md, "PostDatasetInputs of a member").
    """
    by_dataset: dict[str, list[Image]] = {}
    for image in images:
        for dataset_id in datasets_of(image, stage.config.dataset_id):
            by_dataset.setdefault(dataset_id, []).append(image)
    failed: dict[str, str] = {}
    for dataset_id, members in by_dataset.items():
        request = service_pb2.PostDatasetInputsRequest(dataset_id=dataset_id)
        for image in members:
            request.dataset_inputs.add().input.id = image.input_id
        reply = await stage.client.call("PostDatasetInputs", request, priority=Priority.CREATE)
        if reply.status.code == sc.SUCCESS:
            continue
        # an item the reply does not list takes the reply's status
        by_id = {item.input.id: item.input.status for item in reply.dataset_inputs}
        for image in members:
            status = by_id.get(image.input_id, reply.status)
            if status.code not in JOINED_CODES and image.input_id not in failed:
                failed[image.input_id] = (
                    f"the input exists but was not added to dataset {dataset_id!r}: "
                    f"{describe(status)}"
                )
    kept: list[Image] = []
    for image in images:
        error = failed.get(image.input_id)
        if error is None:
            kept.append(image)
        else:
            _fail(stage, image, error)
    return kept


def _fail(stage: WorkerContext, image: Image, error: str) -> None:
    stage.tallies.create.failed += 1
    stage.fail_rows(image.rows, error)
    stage.settled(image)
