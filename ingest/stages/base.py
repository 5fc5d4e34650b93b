"""What every stage shares: the client, the options, the tallies, the outcome stream."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.client import Client
from ingest.config import Config
from ingest.model import NO_CELLS, Image, Outcome, Row, Status

__all__ = [
    "DUPLICATE_CODES",
    "DUPLICATE_ID_DETAILS",
    "ReadTally",
    "RowTally",
    "Tallies",
    "Tally",
    "Turns",
    "WorkerContext",
    "is_duplicate",
]

#: Per-item codes that may mean "an item with this id is already stored".
DUPLICATE_CODES = frozenset({sc.INPUT_DUPLICATE, sc.DATABASE_DUPLICATE_KEY})

#: The details Clarifai gives an input whose id is taken (clarifai-python looks for it).
DUPLICATE_ID_DETAILS = "Input has a duplicate ID."


def is_duplicate(status: Any) -> bool:
    """True when a per-item status says an item with *this id* already exists.

    INPUT_DUPLICATE (30100) is documented as "duplicate URL in your application": the
    same code answers an input whose URL another input already has, under another id
    (a row with its own ``input_id``). That input is not ours and does not exist, so
    only the id's own wording counts for inputs - "Input has a duplicate ID." - and a
    status that speaks of a URL never does.
    """
    text = f"{status.description} {status.details}".lower()
    if "url" in text:
        return False
    if status.code == sc.INPUT_DUPLICATE:
        return "duplicate id" in text
    if status.code in DUPLICATE_CODES:
        return True
    return "already exist" in text or "duplicate" in text


@dataclass(slots=True)
class Tally:
    """What one stage did with its items (inputs or annotations)."""

    new: int = 0
    """Items it made: inputs created, processed or patched, annotations created."""
    existing: int = 0
    """Items the service held already."""
    failed: int = 0
    """Items that failed here (their rows fail with the reason)."""


@dataclass(slots=True)
class ReadTally:
    """What the reading side of the pipeline saw."""

    rows: int = 0
    invalid: int = 0
    resumed: int = 0
    """Rows an earlier run finished, skipped."""
    images: int = 0


@dataclass(slots=True)
class RowTally:
    """How the rows ended, counted from the outcomes as they go out (and only there)."""

    landed: int = 0
    present: int = 0
    failed: int = 0

    def count(self, outcomes: list[Outcome]) -> None:
        statuses = list(map(_STATUS, outcomes))
        present = statuses.count(Status.PRESENT)
        failed = statuses.count(Status.FAILED)
        self.landed += len(outcomes) - present - failed
        self.present += present
        self.failed += failed


_STATUS = operator.itemgetter(1)
"""An outcome's status (its second field)."""


@dataclass(slots=True)
class Tallies:
    """Every count a run's report needs from the pipeline, each kept by the stage that
    knows it; the ingester assembles the report from them (:mod:`ingest.ingester`)."""

    read: ReadTally = field(default_factory=ReadTally)
    rows: RowTally = field(default_factory=RowTally)
    create: Tally = field(default_factory=Tally)
    """Inputs created, found existing, or failed at creation."""
    processing: Tally = field(default_factory=Tally)
    """Inputs processed (``new``), or failed: download failed, timed out, not found."""
    patch: Tally = field(default_factory=Tally)
    """Existing inputs completed with what they lacked (``new``), or failed to be."""
    annotate: Tally = field(default_factory=Tally)
    """Annotations created, found existing, or failed."""


class _SeenIds:
    """Input ids met in this run, in fixed memory: a Bloom filter of 2**26 bits (8 MiB)
    probed three times per id (double hashing of Python's own string hash, which is
    stable within a process). An id added is always reported seen; one never added is
    reported seen about once in 10,000 after a million ids."""

    _MASK = (1 << 26) - 1

    def __init__(self) -> None:
        self._bits = bytearray((self._MASK + 1) >> 3)

    def add(self, key: str) -> bool:
        """Remember ``key``; True if it was (very probably) met before."""
        h = hash(key)
        first, step = h & self._MASK, ((h >> 32) | 1) & self._MASK
        a, b, c = first, (first + step) & self._MASK, (first + 2 * step) & self._MASK
        bits = self._bits
        ma, mb, mc = 1 << (a & 7), 1 << (b & 7), 1 << (c & 7)
        a, b, c = a >> 3, b >> 3, c >> 3
        seen = bool(bits[a] & ma and bits[b] & mb and bits[c] & mc)
        bits[a] |= ma
        bits[b] |= mb
        bits[c] |= mc
        return seen


class Turns:
    """Stretches of one input's rows go through the stages one at a time, in order.

    Rows from an iterable can reach the pipeline in several stretches per input (the
    window let the image go before its last row came). Each stretch after the first finds
    the input existing and completes it from what the service holds, so it must read that
    after the stretches before it landed: the create stage :meth:`enter` s each batch
    (waiting for earlier stretches of the same inputs), and whichever stage finishes an
    image's labels :meth:`leave` s it. An image also learns whether rows of its input came
    earlier in the run (:attr:`~ingest.model.Image.continued`).
    """

    def __init__(self) -> None:
        self._last: dict[str, Image] = {}
        """The latest stretch of each input still going through."""
        self._through: dict[int, anyio.Event] = {}
        """Set when the stretch (by ``id()``) is through, for the stretches waiting on it."""
        self._seen = _SeenIds()

    async def enter(self, images: list[Image]) -> None:
        """Register ``images`` (in the order they were taken), then wait for the earlier
        stretches of the same inputs to be through."""
        before: list[anyio.Event] = []
        for image in images:
            image.continued = self._seen.add(image.input_id)
            earlier = self._last.get(image.input_id)
            self._last[image.input_id] = image
            if earlier is not None:
                before.append(self._through.setdefault(id(earlier), anyio.Event()))
        for through in before:
            await through.wait()

    def leave(self, image: Image) -> None:
        """``image``'s labels are settled (or failed): the next stretch may go."""
        through = self._through.pop(id(image), None)
        if through is not None:
            through.set()
        if self._last.get(image.input_id) is image:
            del self._last[image.input_id]


@dataclass(slots=True)
class WorkerContext:
    """Context handed to each stage's workers.

    Outcomes are gathered per worker and sent as one list per batch handled
    (:meth:`flush`): one stream operation per call, not one per row.
    """

    client: Client
    config: Config
    tallies: Tallies
    outcomes: MemoryObjectSendStream[list[Outcome]]
    ended: list[Outcome] = field(default_factory=list)
    datasets: set[str] = field(default_factory=set)
    """Datasets made (or found) in this run, shared by every worker."""
    turns: Turns | None = None
    """For rows that may come in several stretches per input (an iterable), else None."""

    def clone(self) -> WorkerContext:
        """The same context with its own handle on the outcome stream (one per worker)."""
        return WorkerContext(
            self.client,
            self.config,
            self.tallies,
            self.outcomes.clone(),
            datasets=self.datasets,
            turns=self.turns,
        )

    def settled(self, image: Image) -> None:
        """``image``'s labels are through (see :class:`Turns`)."""
        if self.turns is not None:
            self.turns.leave(image)

    def end(self, outcome: Outcome) -> None:
        """End one row; its outcome goes out (and is counted) with the next :meth:`flush`."""
        self.ended.append(outcome)

    def finish(self, row: Row, status: Status, error: str = "") -> None:
        """End one row (a failed one keeps its cells, for the failures file)."""
        raw = row.raw if status is Status.FAILED else NO_CELLS
        self.end(Outcome(row.line, status, row.input_id, row.annotation_id, error, raw))

    def finish_all(self, rows: list[Row], status: Status) -> None:
        """End rows that landed or were present, all alike."""
        self.ended.extend(
            [Outcome(r.line, status, r.input_id, r.annotation_id, "", NO_CELLS) for r in rows]
        )

    def fail_rows(self, rows: list[Row], error: str) -> None:
        for row in rows:
            self.finish(row, Status.FAILED, error)

    async def flush(self) -> None:
        """Count and send the outcomes gathered since the last flush."""
        if self.ended:
            batch, self.ended = self.ended, []
            self.tallies.rows.count(batch)
            await self.outcomes.send(batch)
