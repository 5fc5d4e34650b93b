"""Stage 3: post the boxes, up to 128 per PostAnnotations, several calls in flight.

Each annotation carries its deterministic id, so a call sent again after a lost
reply (or a re-run) finds its boxes already there instead of adding copies. The
requests are built by :mod:`ingest.wire`.
"""

from __future__ import annotations

from collections.abc import Callable

from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.batching import Batcher
from ingest.client import describe
from ingest.model import Row, Status
from ingest.ratelimit import Priority
from ingest.stages.base import WorkerContext, is_duplicate
from ingest.wire import AnnotationEncoder, annotations_request

__all__ = ["annotate_worker"]

_STORED = frozenset({sc.SUCCESS, sc.ANNOTATION_SUCCESS, sc.ANNOTATION_PENDING})


async def annotate_worker(
    stage: WorkerContext,
    batcher: Batcher[Row],
    backlog: Callable[[], int],
    encoder: AnnotationEncoder,
) -> None:
    """Send batches of boxes until the stage's stream ends.

    While fewer than ``backlog()`` boxes wait, annotations yield their request slots
    to new inputs (:attr:`Priority.BACKFILL`); past it they go first
    (:attr:`Priority.DRAIN`); calls already waiting at BACKFILL are promoted when
    the backlog grows past it (the pipeline watches the batcher). The backlog kept
    is what fills the request slots while the last inputs are processed, at the end
    of a run.
    """
    async with stage.outcomes:
        while (batch := await batcher.next_batch()) is not None:
            short = batcher.buffered + len(batch) < backlog() and not batcher.closed
            await _send(stage, batch, encoder, Priority.BACKFILL if short else Priority.DRAIN)
            await stage.flush()


async def _send(
    stage: WorkerContext, rows: list[Row], encoder: AnnotationEncoder, priority: Priority
) -> None:
    tally = stage.tallies.annotate
    # the same box twice in one call: send it once, report both rows
    first: dict[str, Row] = {}
    for row in rows:
        first.setdefault(row.annotation_id, row)
    unique = list(first.values())
    request = annotations_request(encoder.encode(unique))
    verdicts = await stage.client.call_items("PostAnnotations", request, priority=priority)
    if verdicts.ok and len(unique) == len(rows):
        # the common case: every box stored, no twin to sort out
        tally.new += len(rows)
        stage.finish_all(rows, Status.LANDED)
        return
    done: dict[str, tuple[Status, str]] = {}
    for row, status in zip(unique, verdicts.statuses, strict=True):
        if status.code in _STORED:
            tally.new += 1
            done[row.annotation_id] = (Status.LANDED, "")
        elif is_duplicate(status):
            tally.existing += 1
            done[row.annotation_id] = (Status.PRESENT, "")
        else:
            tally.failed += 1
            done[row.annotation_id] = (Status.FAILED, f"annotation not created: {describe(status)}")
    for row in rows:
        result = done[row.annotation_id]
        if row is first[row.annotation_id] or result[0] is Status.FAILED:
            stage.finish(row, *result)
        else:
            # a second row with the same box and labels: it is there already
            stage.finish(row, Status.PRESENT)
