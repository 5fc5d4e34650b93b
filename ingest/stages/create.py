"""Stage 1: create inputs, up to 128 per PostInputs, several calls in flight."""

from __future__ import annotations

from typing import Any

import aiofiles
from anyio.streams.memory import MemoryObjectSendStream
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.batching import Batcher
from ingest.client import describe, is_retryable
from ingest.model import Image
from ingest.ratelimit import Priority
from ingest.stages.base import Stage, is_duplicate

__all__ = ["CREATED_CODES", "create_worker"]

#: Per-input codes meaning "stored, processing under way or done".
CREATED_CODES = frozenset(
    {
        sc.SUCCESS,
        sc.INPUT_DOWNLOAD_PENDING,
        sc.INPUT_DOWNLOAD_IN_PROGRESS,
        sc.INPUT_DOWNLOAD_SUCCESS,
    }
)


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
    if dataset_id:
        target.dataset_ids.append(dataset_id)


def add_labels(data: Any, image: Image) -> bool:
    """Put the image-level concepts and the metadata of ``image``'s rows on ``data``.

    Returns whether there was anything to put.
    """
    metadata: dict[str, Any] = {}
    seen: set[str] = set()
    for row in image.rows:
        if row.metadata:
            metadata.update(row.metadata)
        if not row.annotation_id:
            for concepts, value in ((row.pos_concepts, 1.0), (row.neg_concepts, 0.0)):
                for concept in concepts:
                    if concept not in seen:
                        seen.add(concept)
                        c = data.concepts.add()
                        c.id = concept
                        c.name = concept
                        c.value = value
    if metadata:
        data.metadata.update(metadata)
    return bool(seen or metadata)


async def create_worker(
    stage: Stage, batcher: Batcher[Image], created: MemoryObjectSendStream[list[Image]]
) -> None:
    """Send batches of new inputs; pass the stored ones on to the processing tracker."""
    async with created, stage.outcomes:
        while (batch := await batcher.next_batch()) is not None:
            await _send(stage, merge(batch), created)
            await stage.flush()


async def _send(
    stage: Stage, images: list[Image], created: MemoryObjectSendStream[list[Image]]
) -> None:
    client = stage.client
    attempt = 0
    while images:
        request = service_pb2.PostInputsRequest()
        kept: list[Image] = []
        for image in images:
            try:
                await build_input(request.inputs.add(), image, stage.config.dataset_id)
            except OSError as exc:
                del request.inputs[-1]
                stage.report.inputs_failed += 1
                stage.fail_rows(image.rows, f"cannot read {image.first.path}: {exc.strerror}")
                continue
            kept.append(image)
        images = kept
        if not images:
            return
        reply = await client.call("PostInputs", request, priority=Priority.CREATE)
        if reply.status.code == sc.SUCCESS:
            stage.report.inputs_created += len(images)
            await created.send(images)
            return
        statuses = {inp.id: inp.status for inp in reply.inputs}
        retry: list[Image] = []
        stored: list[Image] = []
        for image in images:
            status = statuses.get(image.input_id)
            if status is None:
                code = reply.status.code
                status = reply.status
            else:
                code = status.code
            if code in CREATED_CODES:
                stage.report.inputs_created += 1
                stored.append(image)
            elif is_duplicate(status):
                stage.report.inputs_existing += 1
                image.existed = True
                stored.append(image)
            elif is_retryable(code) and attempt + 1 < stage.config.max_attempts:
                retry.append(image)
            else:
                stage.report.inputs_failed += 1
                stage.fail_rows(image.rows, f"input not created: {describe(status)}")
        existing = [image for image in stored if image.existed]
        if existing:
            failed = await _merge_labels(stage, existing)
            if failed:
                stored = [image for image in stored if image.input_id not in failed]
        if stored:
            await created.send(stored)
        images = retry
        if images:
            attempt += 1
            stage.client.stats.retries += 1
            await client.backoff(attempt)


async def _merge_labels(stage: Stage, images: list[Image]) -> set[str]:
    """Merge the image-level concepts and metadata of ``images`` onto their inputs.

    The inputs already existed (a URL seen earlier in the file, an earlier run, a
    re-sent call): whatever this group of rows carries must still reach them, so one
    ``PatchInputs`` with action ``merge`` sends it (concepts merge by id, metadata
    deeply: sending the same again changes nothing); the rows still count as already
    present. Returns the ids of the inputs it could not patch, whose rows it failed.
    """
    request = service_pb2.PatchInputsRequest(action="merge")
    todo: dict[str, Image] = {}
    for image in images:
        target = request.inputs.add()
        if add_labels(target.data, image):
            target.id = image.input_id
            todo[image.input_id] = image
        else:
            del request.inputs[-1]
    failed: set[str] = set()
    attempt = 0
    while todo:
        reply = await stage.client.call("PatchInputs", request, priority=Priority.CREATE)
        statuses = {inp.id: inp.status for inp in reply.inputs}
        again = service_pb2.PatchInputsRequest(action="merge")
        for input_id, image in list(todo.items()):
            status = statuses.get(input_id, reply.status)
            code = sc.SUCCESS if reply.status.code == sc.SUCCESS else status.code
            if code == sc.SUCCESS:
                del todo[input_id]
            elif is_retryable(code) and attempt + 1 < stage.config.max_attempts:
                add_labels(again.inputs.add(id=input_id).data, image)
            else:
                del todo[input_id]
                failed.add(input_id)
                stage.report.inputs_failed += 1
                stage.fail_rows(
                    image.rows,
                    "the input exists but its labels and metadata could not be added: "
                    + describe(status),
                )
        request = again
        if todo:
            attempt += 1
            stage.client.stats.retries += 1
            await stage.client.backoff(attempt)
    return failed
