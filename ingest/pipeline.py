"""The data path, in one place.

::

    source ──rows──▶ group by image ──Image──▶ [create inputs] ──Image──▶ [await processing]
                                                                              │        │
    outcomes ◀── every stage ends rows ◀── [post annotations] ◀── Row (boxes) ┘        │
                                       ◀── [patch existing inputs] ◀── LabelPatch ─────┘

A file's rows reach this module already grouped by image (:mod:`ingest.source.grouping`);
rows from an iterable (a source that ``needs_window``) are gathered within a bounded
window (:func:`_coalesce`).

Each arrow is a bounded anyio memory object stream, so a slow stage holds back the
ones above it and memory stays flat however large the file. The streams carry
lists (a chunk of the file, a batch's results): one stream operation per batch,
not per row. Every worker holds its
own clone of the streams it sends into; when the last clone closes, the stage
below drains and ends. Everything runs in one task group: cancelling it stops
new requests and cancels the calls in flight.

The stages build requests and read the client's verdicts (every retry is the client's,
:mod:`ingest.client`); they count what they do into :class:`Tallies`, from which the
ingester assembles the report.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ingest.batching import Batcher
from ingest.client import Client
from ingest.config import Config
from ingest.model import Image, InvalidRow, Outcome, Row, Status
from ingest.ratelimit import Priority
from ingest.source import RowSource
from ingest.stages.annotate import annotate_worker
from ingest.stages.base import Tallies, Turns, WorkerContext
from ingest.stages.create import create_worker
from ingest.stages.patch import LabelPatch, patch_worker
from ingest.stages.processing import Tracker
from ingest.wire import AnnotationEncoder

__all__ = ["Tallies", "run_pipeline"]

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
    tallies: Tallies,
    outcomes: MemoryObjectSendStream[list[Outcome]],
    *,
    skip: Callable[[int], bool] | None = None,
) -> None:
    """Send every row of ``rows``; each ends as one outcome on ``outcomes`` (closed at the
    end). The stages count what they do into ``tallies`` (the report is made of them)."""
    # rows from an iterable may reach the stages in several stretches per input
    turns = Turns() if rows.needs_window else None
    stage = WorkerContext(client, config, tallies, outcomes, turns=turns)
    depth = max(2, config.queue_size // config.batch_size)
    to_create_send, to_create = anyio.create_memory_object_stream[list[Image]](depth)
    to_track_send, to_track = anyio.create_memory_object_stream[list[Image]](depth)
    to_annotate_send, to_annotate = anyio.create_memory_object_stream[list[Row]](depth)
    to_patch_send, to_patch = anyio.create_memory_object_stream[list[LabelPatch]](depth)

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
        async with to_annotate_send, to_patch_send:
            for _ in range(max(1, config.concurrency // 2)):
                tg.start_soon(
                    tracker.checker,
                    stage.clone(),
                    to_annotate_send.clone(),
                    to_patch_send.clone(),
                )

        # 2b. complete inputs that existed before with what they lack (rare: batched)
        patching = Batcher(to_patch, size=config.batch_size, linger=config.linger)
        tg.start_soon(patching.pump)
        for _ in range(max(1, config.concurrency // 2)):
            tg.start_soon(patch_worker, stage.clone(), patching)

        # 3. post annotations. While the budget sets the pace, about one settle time's
        # worth of calls (the last inputs' first check and one recheck) is kept in
        # reserve for the end of the run, when nothing else can use the budget's slots
        # (bounded: memory stays flat); while the client sets it, none is.
        size = config.annotation_batch_size
        limiter = client.limiter

        def backlog() -> int:
            if not limiter.binding:
                return 0
            calls = math.ceil(limiter.rate * tracker.settle_time())
            return size * min(calls, _MAX_BACKLOG_CALLS)

        def room() -> int:
            return backlog() + size * (config.concurrency + 1)

        def backlog_grew() -> None:
            # calls already waiting at BACKFILL go first once the backlog is long
            # (or complete): the same rule annotate_worker applies to each new batch
            if annotating.closed or annotating.buffered + size >= backlog():
                client.limiter.promote(Priority.BACKFILL, Priority.DRAIN)

        annotating = Batcher(
            to_annotate,
            size=size,
            linger=config.linger,
            capacity=room,
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
    stage: WorkerContext,
    rows: RowSource,
    send: MemoryObjectSendStream[list[Image]],
    skip: Callable[[int], bool] | None,
) -> None:
    """Contiguous rows of one input become one Image; invalid rows end here.

    Every source is read a list at a time. A source whose images come grouped (a file)
    sends its images on as one list per list read; one that says it needs the window
    (an iterable: an image's rows may come apart) goes through :func:`_coalesce`.
    """
    if rows.needs_window:
        await _coalesce(stage, rows, send, skip)
        return
    size = stage.config.batch_size
    current: Image | None = None
    iid = None
    async for chunk in rows.batches():
        ready: list[Image] = []
        for item in _admit(stage, chunk, skip):
            if item.input_id == iid:
                current.rows.append(item)  # type: ignore[union-attr]
                continue
            if current is not None:
                ready.append(current)
            iid = item.input_id
            current = Image(iid, [item], _weight(item, size) if item.path else 1)
        stage.tallies.read.images += len(ready)
        await stage.flush()
        for start in range(0, len(ready), size):  # a queue holds images, not chunks
            await send.send(ready[start : start + size])
    if current is not None:
        stage.tallies.read.images += 1
        await send.send([current])


def _admit(
    stage: WorkerContext, chunk: list[Row | InvalidRow], skip: Callable[[int], bool] | None
) -> list[Row]:
    """The rows of ``chunk`` to send: invalid rows end, rows done earlier are skipped."""
    read = stage.tallies.read
    read.rows += len(chunk)
    out: list[Row] = []
    append = out.append
    for item in chunk:
        if isinstance(item, InvalidRow):
            read.invalid += 1
            stage.end(
                Outcome(line=item.line, status=Status.FAILED, error=item.message(), raw=item.raw)
            )
        elif skip is not None and skip(item.line):
            read.resumed += 1
        else:
            append(item)
    return out


#: Seconds an image from an iterable may wait in the window while rows keep coming.
_WINDOW_AGE = 10.0

#: Rows an iterable may get ahead of the window by.
_INBOX_ROWS = 1024


class _Inbox:
    """Rows from the source's own task, taken all at once by the window.

    A source that yields without waiting fills it with its lists up to ``size`` rows
    before its task waits for room; one that trickles hands over each row as it comes.
    Either way the window takes what has arrived in one go: no stream operation per row.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: list[Row | InvalidRow] = []
        self._closed = False
        self._arrived = anyio.Event()
        self._room = anyio.Event()

    async def put(self, items: list[Row | InvalidRow]) -> None:
        self._items += items
        self._arrived.set()
        if len(self._items) >= self.size:
            self._room = anyio.Event()
            await self._room.wait()

    def close(self) -> None:
        """No more rows will come."""
        self._closed = True
        self._arrived.set()

    async def take(self, patience: float) -> list[Row | InvalidRow] | None:
        """What has arrived; ``None`` if nothing did within ``patience`` seconds, an
        empty list once the source has ended and everything was taken."""
        if not self._items and not self._closed:
            with anyio.move_on_after(patience):
                await self._arrived.wait()
        self._arrived = anyio.Event()
        items, self._items = self._items, []
        self._room.set()
        if not items and not self._closed:
            return None
        return items


async def _coalesce(
    stage: WorkerContext,
    rows: RowSource,
    send: MemoryObjectSendStream[list[Image]],
    skip: Callable[[int], bool] | None,
) -> None:
    """Gather an iterable's rows by image within a window of ``config.window`` rows.

    An iterable cannot be sorted, but rows of one image often come close together
    (a partition of a table, a queue fed per image). Images wait in an ordered
    window; the oldest goes on when the window is full, when it has waited
    ``_WINDOW_AGE`` seconds, or when the source pauses for ``config.linger``
    seconds, so a slow source is not held back. An image whose rows come after it
    went on is sent again with just those rows: the create stage finds it
    existing, and only what the service lacks is patched.
    """
    config = stage.config
    size = config.batch_size
    window: dict[str, tuple[float, Image]] = {}
    held = 0
    inbox = _Inbox(_INBOX_ROWS)

    async def produce() -> None:
        try:
            async for batch in rows.batches():
                await inbox.put(batch)
        finally:
            inbox.close()

    async def release(ready: list[Image]) -> None:
        await stage.flush()
        if ready:
            await send.send(ready)

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        while True:
            chunk = await inbox.take(config.linger if window else math.inf)
            if chunk is None:  # the source paused: nothing waits for it
                ready = [image for _, image in window.values()]
                window.clear()
                held = 0
                await release(ready)
                continue
            if not chunk:
                break
            now = time.monotonic()
            ready = []
            for item in _admit(stage, chunk, skip):
                entry = window.get(item.input_id)
                if entry is None:
                    stage.tallies.read.images += 1
                    window[item.input_id] = (now, Image(item.input_id, [item], _weight(item, size)))
                else:
                    entry[1].rows.append(item)
                held += 1
                while held > config.window:
                    image = window.pop(next(iter(window)))[1]
                    held -= len(image.rows)
                    ready.append(image)
            while window and now - next(iter(window.values()))[0] >= _WINDOW_AGE:
                image = window.pop(next(iter(window)))[1]
                held -= len(image.rows)
                ready.append(image)
            await release(ready)
        await release([image for _, image in window.values()])
