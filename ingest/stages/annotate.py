"""Stage 3: post the boxes, up to 128 per PostAnnotations, several calls in flight.

Each annotation carries its deterministic id, so a call sent again after a lost
reply (or a re-run) finds its boxes already there instead of adding copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.batching import Batcher
from ingest.client import describe, is_retryable
from ingest.model import Row, Status
from ingest.ratelimit import Priority
from ingest.stages.base import Stage, is_duplicate

__all__ = ["Labels", "annotate_worker", "build_annotation"]

_STORED = frozenset({sc.SUCCESS, sc.ANNOTATION_SUCCESS, sc.ANNOTATION_PENDING})


class Labels:
    """The concepts of each label set, built once as region data to copy from.

    Most boxes of a file share a few label sets; copying a prepared message costs a
    fraction of adding each concept field by field. Holds at most ``limit`` sets.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._data: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
        self._limit = limit

    def data(self, pos: tuple[str, ...], neg: tuple[str, ...]) -> Any:
        """A ``Data`` message holding ``pos`` (value 1) and ``neg`` (value 0) as concepts."""
        key = (pos, neg)
        data = self._data.get(key)
        if data is None:
            data = resources_pb2.Data()
            for names, value in ((pos, 1.0), (neg, 0.0)):
                for name in names:
                    c = data.concepts.add()
                    c.id = name
                    c.name = name
                    c.value = value
            if len(self._data) < self._limit:
                self._data[key] = data
        return data


def build_annotation(target: Any, row: Row, labels: Labels) -> None:
    """Fill ``target`` (an Annotation being added to a request) from a box row."""
    box = row.coords
    assert box is not None
    target.id = row.annotation_id
    target.input_id = row.input_id
    region = target.data.regions.add()
    bb = region.region_info.bounding_box
    bb.left_col, bb.top_row, bb.right_col, bb.bottom_row = box
    if row.pos_concepts or row.neg_concepts:
        region.data.CopyFrom(labels.data(row.pos_concepts, row.neg_concepts))


async def annotate_worker(stage: Stage, batcher: Batcher[Row], backlog: Callable[[], int]) -> None:
    """Send batches of boxes until the stage's stream ends.

    While fewer than ``backlog()`` boxes wait, annotations yield their request slots
    to new inputs (:attr:`Priority.BACKFILL`); past it they go first
    (:attr:`Priority.DRAIN`); calls already waiting at BACKFILL are promoted when
    the backlog grows past it (the pipeline watches the batcher). The backlog kept
    is what fills the request slots while the last inputs are processed, at the end
    of a run.
    """
    labels = Labels()
    async with stage.outcomes:
        while (batch := await batcher.next_batch()) is not None:
            short = batcher.buffered + len(batch) < backlog() and not batcher.closed
            await _send(stage, batch, labels, Priority.BACKFILL if short else Priority.DRAIN)
            await stage.flush()


async def _send(stage: Stage, rows: list[Row], labels: Labels, priority: Priority) -> None:
    attempt = 0
    while rows:
        # the same box twice in one call: send it once, report both rows
        first: dict[str, Row] = {}
        for row in rows:
            first.setdefault(row.annotation_id, row)
        unique = list(first.values())
        request = service_pb2.PostAnnotationsRequest()
        add = request.annotations.add
        for row in unique:
            build_annotation(add(), row, labels)
        reply = await stage.client.call("PostAnnotations", request, priority=priority)
        if reply.status.code == sc.SUCCESS:
            stage.report.annotations_created += len(unique)
            if len(unique) == len(rows):
                stage.finish_all(rows, Status.LANDED)
            else:
                for row in rows:
                    landed = row is first[row.annotation_id]
                    stage.finish(row, Status.LANDED if landed else Status.PRESENT)
            return
        statuses = {a.id: a.status for a in reply.annotations}
        retry: list[Row] = []
        done: dict[str, tuple[Status, str]] = {}
        for row in unique:
            status = statuses.get(row.annotation_id)
            if status is None:
                status, code = reply.status, reply.status.code
            else:
                code = status.code
            if code in _STORED:
                stage.report.annotations_created += 1
                done[row.annotation_id] = (Status.LANDED, "")
            elif is_duplicate(status):
                stage.report.annotations_existing += 1
                done[row.annotation_id] = (Status.PRESENT, "")
            elif is_retryable(code) and attempt + 1 < stage.config.max_attempts:
                retry.append(row)
            else:
                stage.report.annotations_failed += 1
                done[row.annotation_id] = (
                    Status.FAILED,
                    f"annotation not created: {describe(status)}",
                )
        waiting: list[Row] = []
        for row in rows:
            result = done.get(row.annotation_id)
            if result is None:
                waiting.append(row)
            elif row is first[row.annotation_id] or result[0] is Status.FAILED:
                stage.finish(row, *result)
            else:
                # a second row with the same box and labels: it is there already
                stage.finish(row, Status.PRESENT)
        rows = waiting
        if rows:
            attempt += 1
            stage.client.stats.retries += 1
            await stage.client.backoff(attempt)
