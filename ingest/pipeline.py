"""The data path, in one place.

::

    source ──rows──▶ group by image ──Image──▶ [create inputs] ──Image──▶ [await processing]
                                                                              │ Row (boxes)
    outcomes ◀── every stage ends rows ◀── [post annotations] ◀──────────────┘

Each arrow is a bounded anyio memory object stream, so a slow stage holds back the
ones above it and memory stays flat however large the file. The streams carry
lists (a chunk of the file, a batch's results): one stream operation per batch,
not per row. Every worker holds its
own clone of the streams it sends into; when the last clone closes, the stage
below drains and ends. Everything runs in one task group: cancelling it stops
new requests and cancels the calls in flight.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ingest.batching import Batcher
from ingest.client import Client
from ingest.config import Config
from ingest.model import Image, InvalidRow, Outcome, Row, Status
from ingest.ratelimit import Priority
from ingest.report import Report
from ingest.source import RowSource
from ingest.stages.annotate import annotate_worker
from ingest.stages.base import Stage
from ingest.stages.create import create_worker
from ingest.stages.processing import Tracker
from ingest.wire import AnnotationEncoder

__all__ = ["run_pipeline"]

#: Most annotation calls held back to fill the end of a run.
_MAX_BACKLOG_CALLS = 32

#: Bytes of local image data that count as one input's share of a batch.
_FILE_UNIT = 512 * 1024


def _weight(row: Row, batch_size: int) -> int:
    if not row.path:
        return 1
    try:
        size = os.stat(row.path).st_size
    except OSError:
        return 1
    return min(batch_size, max(1, math.ceil(size / _FILE_UNIT)))


async def run_pipeline(
    client: Client,
    config: Config,
    rows: RowSource,
    report: Report,
    outcomes: MemoryObjectSendStream[list[Outcome]],
    *,
    skip: Callable[[int], bool] | None = None,
) -> None:
    """Send every row of ``rows``; each ends as one outcome on ``outcomes`` (closed at the end)."""
    stage = Stage(client, config, report, outcomes)
    depth = max(2, config.queue_size // config.batch_size)
    to_create_send, to_create = anyio.create_memory_object_stream[list[Image]](depth)
    to_track_send, to_track = anyio.create_memory_object_stream[list[Image]](depth)
    to_annotate_send, to_annotate = anyio.create_memory_object_stream[list[Row]](depth)

    async with outcomes, anyio.create_task_group() as tg:
        # 1. create inputs
        creating = Batcher(
            to_create,
            size=config.batch_size,
            linger=config.linger,
            weight=lambda image: image.weight,
        )
        tg.start_soon(creating.pump)
        async with to_track_send:
            for _ in range(config.concurrency):
                tg.start_soon(create_worker, stage.clone(), creating, to_track_send.clone())

        # 2. await processing
        tracker = Tracker(stage)
        tg.start_soon(tracker.receive, to_track)
        async with to_annotate_send:
            for _ in range(max(1, config.concurrency // 2)):
                tg.start_soon(tracker.checker, stage.clone(), to_annotate_send.clone())

        # 3. post annotations, keeping about one settle time's worth of calls (the
        # last inputs' first check and one recheck) in reserve for the end of the
        # run (bounded: memory stays flat)
        size = config.annotation_batch_size

        def backlog() -> int:
            calls = math.ceil(client.limiter.rate * tracker.settle_time())
            return size * min(calls, _MAX_BACKLOG_CALLS)

        def backlog_grew() -> None:
            # calls already waiting at BACKFILL go first once the backlog is long
            # (or complete): the same rule annotate_worker applies to each new batch
            if annotating.closed or annotating.buffered + size >= backlog():
                client.limiter.promote(Priority.BACKFILL, Priority.DRAIN)

        annotating = Batcher(
            to_annotate,
            size=size,
            linger=config.linger,
            capacity=size * (_MAX_BACKLOG_CALLS + 4),
            on_fill=backlog_grew,
        )
        tg.start_soon(annotating.pump)
        encoder = AnnotationEncoder()
        for _ in range(config.concurrency):
            tg.start_soon(annotate_worker, stage.clone(), annotating, backlog, encoder)

        # the reader runs here; closing its stream ends the stages one by one
        async with to_create_send:
            await _read(stage, rows, to_create_send, skip)


async def _read(
    stage: Stage,
    rows: RowSource,
    send: MemoryObjectSendStream[list[Image]],
    skip: Callable[[int], bool] | None,
) -> None:
    """Group contiguous rows of one input into an Image; invalid rows end here.

    A file is read a chunk at a time and its images go on as one list per chunk;
    rows from an iterable go on image by image (they may come slowly).
    """
    report = stage.report
    size = stage.config.batch_size
    current: Image | None = None
    chunks: AsyncIterable[list[Row | InvalidRow]] = (
        rows.batches() if rows.path is not None else _singles(rows)
    )
    async for chunk in chunks:
        ready: list[Image] = []
        report.rows_read += len(chunk)
        for item in chunk:
            if isinstance(item, InvalidRow):
                report.rows_invalid += 1
                stage.end(
                    Outcome(
                        line=item.line, status=Status.FAILED, error=item.message(), raw=item.raw
                    )
                )
                continue
            if skip is not None and skip(item.line):
                report.rows_resumed += 1
                continue
            if current is not None and current.input_id == item.input_id:
                current.rows.append(item)
                continue
            if current is not None:
                ready.append(current)
            report.images += 1
            current = Image(item.input_id, [item], _weight(item, size))
        await stage.flush()
        if rows.path is None and current is not None:
            # an iterable may pause between rows: don't hold its last image back
            ready.append(current)
            current = None
        if ready:
            await send.send(ready)
    if current is not None:
        await send.send([current])


async def _singles(rows: RowSource) -> AsyncIterator[list[Row | InvalidRow]]:
    async for item in rows:
        yield [item]
