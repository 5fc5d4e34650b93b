"""Stage 2: wait for Clarifai to process the new inputs.

One tracker holds every pending input and checks them in batched
``ListInputs(ids=...)`` calls. It asks only once an input has had about as long as
processing usually takes (an estimate it adapts to what the checks find), so that
nearly every check finds its inputs done and no request is wasted. An input still
pending at its deadline fails with "processing timeout"; DOWNLOAD_FAILED fails with
Clarifai's description; a successful input's boxes go on to the annotation stage. For
an input that existed before, the check's reply also tells what the service holds:
labels and metadata the rows carry and it lacks go on to the patch stage.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.client import describe
from ingest.model import Image, Row, Status
from ingest.ratelimit import Priority
from ingest.stages.base import WorkerContext
from ingest.stages.patch import LabelPatch, label_patch

__all__ = ["Tracker"]

log = logging.getLogger("ingest.processing")

_MISSING_LIMIT = 3

#: Seconds between two readings of the rate inputs end at.
_RATE_EVERY = 0.5

#: Check batches the tracker may always hold.
_LEAST_BATCHES = 8


@dataclass(slots=True)
class _Entry:
    image: Image
    deadline: float
    waited: float = 0.0
    """The estimate its first check was scheduled with."""
    checks: int = 0
    missing: int = 0


class Tracker:
    """Tracks pending inputs until each succeeds, fails or times out.

    It holds at most :meth:`limit` inputs (the create stage waits past it): what the
    request budget can create in one settle time while the budget sets the pace, else
    twice what comes through in one settle time (Little's law: what is held is what
    passes in a second times the seconds it stays), and never more than
    ``Config.max_pending``.
    """

    def __init__(self, stage: WorkerContext) -> None:
        self.config = stage.config
        self.limiter = stage.client.limiter
        self.estimate = self.config.processing_estimate
        self._through = 0
        """Inputs that ended here (processed, failed, timed out)."""
        self._rate = 0.0
        """Inputs ending per second, smoothed."""
        self._rate_at = (time.monotonic(), 0)
        self._due: list[tuple[float, int]] = []
        self._entries: dict[int, _Entry] = {}
        self._seq = itertools.count()
        self._closed = False
        self._changed = anyio.Event()

    @property
    def pending(self) -> int:
        return len(self._entries)

    def recheck_delay(self) -> float:
        """How long an input found still processing waits for its next check."""
        return max(0.5, self.estimate / 2)

    def settle_time(self) -> float:
        """About how long a new input takes to come through: its first check and one more."""
        return self.estimate + self.recheck_delay()

    def limit(self) -> int:
        """How many inputs may await processing at once (see the class)."""
        now = time.monotonic()
        since, through = self._rate_at
        if now - since >= _RATE_EVERY:
            rate = (self._through - through) / (now - since)
            self._rate = rate if not self._rate else (self._rate + rate) / 2
            self._rate_at = (now, self._through)
        size = self.config.check_batch_size
        need = 2 * self._rate * self.settle_time()
        if self.limiter.binding:
            need = max(need, self.limiter.rate * self.settle_time() * self.config.batch_size)
        return int(min(self.config.max_pending, max(need, _LEAST_BATCHES * size)))

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _schedule(self, entry_id: int, due: float) -> None:
        entry = self._entries[entry_id]
        heapq.heappush(self._due, (min(due, entry.deadline), entry_id))

    async def receive(self, stored: MemoryObjectReceiveStream[list[Image]]) -> None:
        """Take stored inputs from the create stage, holding back when too many wait."""
        try:
            async with stored:
                async for images in stored:
                    while len(self._entries) >= self.limit():
                        with anyio.move_on_after(_RATE_EVERY):
                            await self._changed.wait()
                    now = time.monotonic()
                    wake = False
                    for image in images:
                        entry_id = next(self._seq)
                        self._entries[entry_id] = _Entry(
                            image, now + self.config.processing_timeout, self.estimate
                        )
                        # an input that existed before is probably processed already
                        due = now if image.existed else now + self.estimate
                        wake = wake or not self._due or due < self._due[0][0]
                        self._schedule(entry_id, due)
                    if wake:
                        self._notify()
        finally:
            self._closed = True
            self._notify()

    def _count_due(self, until: float, cap: int) -> int:
        """Entries due by ``until``, counting no further than ``cap``.

        Walks only the heap's nodes that are due (a child is never due before its
        parent), so the cost is the answer's size, not the heap's.
        """
        heap = self._due
        size = len(heap)
        count = 0
        stack = [0] if heap else []
        while stack and count < cap:
            i = stack.pop()
            if heap[i][0] <= until:
                count += 1
                child = 2 * i + 1
                if child < size:
                    stack.append(child)
                    if child + 1 < size:
                        stack.append(child + 1)
        return count

    async def _next_batch(self) -> list[int] | None:
        """Entry ids to check next: a full batch of due ones, or the due rest when it is time."""
        size = self.config.check_batch_size
        while True:
            if not self._entries:
                if self._closed:
                    return None
                await self._changed.wait()
                continue
            now = time.monotonic()
            earliest = self._due[0][0] if self._due else now + 1.0
            if earliest <= now:
                due = self._count_due(now, size + 1)
                quiet = self._closed or due >= size
                # a partial batch goes once its oldest has lingered, or when nothing
                # else will come due soon
                soon = self._count_due(now + self.config.linger, size + 1) - due
                if quiet or now - earliest >= self.config.linger or soon <= 0:
                    return self._pop(now, size)
                wait = min(self.config.linger - (now - earliest), 0.25)
            else:
                wait = earliest - now
            with anyio.move_on_after(wait):
                await self._changed.wait()

    def _pop(self, now: float, size: int) -> list[int]:
        batch: list[int] = []
        ids: set[str] = set()
        while self._due and self._due[0][0] <= now and len(ids) < size:
            _, entry_id = heapq.heappop(self._due)
            entry = self._entries.get(entry_id)
            if entry is None:
                continue
            batch.append(entry_id)
            ids.add(entry.image.input_id)
        return batch

    async def checker(
        self,
        stage: WorkerContext,
        annotate: MemoryObjectSendStream[list[Row]],
        patch: MemoryObjectSendStream[list[LabelPatch]],
    ) -> None:
        """Run checks until every input has ended (one of several in parallel).

        ``stage``, ``annotate`` and ``patch`` are this checker's own clones; they close
        with it.
        """
        async with annotate, patch, stage.outcomes:
            while (batch := await self._next_batch()) is not None:
                if batch:
                    boxes: list[Row] = []
                    patches: list[LabelPatch] = []
                    await self._check(stage, boxes, patches, batch)
                    await stage.flush()
                    if patches:
                        await patch.send(patches)
                    if boxes:
                        await annotate.send(boxes)

    async def _check(
        self, stage: WorkerContext, boxes: list[Row], patches: list[LabelPatch], batch: list[int]
    ) -> None:
        """Check one batch of entries; successful boxes go into ``boxes``, and what
        existing inputs lack into ``patches``."""
        entries = [(i, self._entries[i]) for i in batch]
        ids = list(dict.fromkeys(e.image.input_id for _, e in entries))
        request = service_pb2.ListInputsRequest(ids=ids, per_page=len(ids))
        reply = await stage.client.call("ListInputs", request, priority=Priority.DRAIN)
        now = time.monotonic()
        if reply.status.code != sc.SUCCESS:
            # the check itself failed for a reason retries could not cure: ask again later
            for entry_id, _ in entries:
                self._schedule(entry_id, now + max(1.0, self.estimate))
            self._notify()
            return
        found = {inp.id: inp for inp in reply.inputs}
        # first checks of inputs that waited the current estimate tell how good it is
        first_checks = done_first = timed_out = 0
        for entry_id, entry in entries:
            entry.checks += 1
            stored = found.get(entry.image.input_id)
            judged = entry.checks == 1 and not entry.image.existed
            judged = judged and entry.waited >= self.estimate
            if judged:
                first_checks += 1
            if stored is None:
                entry.missing += 1
                if entry.missing >= _MISSING_LIMIT:
                    self._end(stage, entry_id, "input not found when checking its processing")
                else:
                    self._schedule(entry_id, now + max(1.0, self.estimate))
                continue
            status = stored.status
            if status.code == sc.INPUT_DOWNLOAD_SUCCESS:
                if judged:
                    done_first += 1
                self._succeed(stage, boxes, patches, entry_id, stored)
            elif status.code == sc.INPUT_DOWNLOAD_FAILED:
                if judged:
                    done_first += 1
                self._end(stage, entry_id, f"download failed: {describe(status)}")
            elif now >= entry.deadline:
                timed_out += 1
                self._end(
                    stage,
                    entry_id,
                    f"processing timeout: still {sc.StatusCode.Name(status.code)} after "
                    f"{self.config.processing_timeout:g} s",
                )
            else:
                self._schedule(entry_id, now + self.recheck_delay())
        if timed_out:
            log.warning(
                "%d input(s) still unprocessed after %g s fail with 'processing timeout' "
                "(their rows go to the failures file)",
                timed_out,
                self.config.processing_timeout,
            )
        self._adapt(first_checks, done_first)
        self._notify()

    def _adapt(self, checked: int, done: int) -> None:
        """Wait longer before first checks when they find work unfinished, shorter when not.

        While the budget sets the pace a check that finds work unfinished costs a request
        slot, so the wait shortens slowly; while it does not, such a check costs nothing
        but the call, and the wait shortens as fast as it lengthens (otherwise a first
        guess far above the service's processing time would hold every input that long
        until enough checks had told it, and the tracker would hold them all).
        """
        if not checked:
            return
        if done < 0.9 * checked:
            self.estimate = min(self.estimate * 1.25, 60.0)
        elif done == checked:
            shorter = 0.97 if self.limiter.binding else 0.8
            self.estimate = max(self.estimate * shorter, 0.2)

    def _succeed(
        self,
        stage: WorkerContext,
        boxes: list[Row],
        patches: list[LabelPatch],
        entry_id: int,
        stored: Any,
    ) -> None:
        entry = self._entries.pop(entry_id)
        self._through += 1
        image = entry.image
        stage.tallies.processing.new += 1
        status = Status.PRESENT if image.existed else Status.LANDED
        if image.existed:
            lacking = label_patch(image, stored)
            if lacking is not None:
                patches.append(lacking)
                boxes.extend(row for row in image.rows if row.annotation_id)
                return
        for row in image.rows:
            if not row.annotation_id:
                stage.finish(row, status)
            else:
                boxes.append(row)
        stage.settled(image)

    def _end(self, stage: WorkerContext, entry_id: int, error: str) -> None:
        entry = self._entries.pop(entry_id)
        self._through += 1
        stage.tallies.processing.failed += 1
        stage.fail_rows(entry.image.rows, error)
        stage.settled(entry.image)
