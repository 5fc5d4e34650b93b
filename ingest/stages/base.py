"""What every stage shares: the client, the options, the report, the outcome stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from anyio.streams.memory import MemoryObjectSendStream
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.client import Client
from ingest.config import Config
from ingest.model import NO_CELLS, Outcome, Row, Status
from ingest.report import Report

__all__ = ["DUPLICATE_CODES", "DUPLICATE_ID_DETAILS", "WorkerContext", "is_duplicate"]

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
class WorkerContext:
    """Context handed to each stage's workers.

    Outcomes are gathered per worker and sent as one list per batch handled
    (:meth:`flush`): one stream operation per call, not one per row.
    """

    client: Client
    config: Config
    report: Report
    outcomes: MemoryObjectSendStream[list[Outcome]]
    ended: list[Outcome] = field(default_factory=list)
    datasets: set[str] = field(default_factory=set)
    """Datasets made (or found) in this run, shared by every worker."""

    def clone(self) -> WorkerContext:
        """The same context with its own handle on the outcome stream (one per worker)."""
        return WorkerContext(
            self.client, self.config, self.report, self.outcomes.clone(), datasets=self.datasets
        )

    def end(self, outcome: Outcome) -> None:
        """Count one row's outcome; it goes out with the next :meth:`flush`."""
        self.report.record(outcome)
        self.ended.append(outcome)

    def finish(self, row: Row, status: Status, error: str = "") -> None:
        """End one row (a failed one keeps its cells, for the failures file)."""
        raw = row.raw if status is Status.FAILED else NO_CELLS
        self.end(Outcome(row.line, status, row.input_id, row.annotation_id, error, raw))

    def finish_all(self, rows: list[Row], status: Status) -> None:
        """End rows that landed or were present, all alike."""
        report = self.report
        if status is Status.LANDED:
            report.rows_landed += len(rows)
        else:
            report.rows_present += len(rows)
        self.ended.extend(
            [Outcome(r.line, status, r.input_id, r.annotation_id, "", NO_CELLS) for r in rows]
        )

    def fail_rows(self, rows: list[Row], error: str) -> None:
        for row in rows:
            self.finish(row, Status.FAILED, error)

    async def flush(self) -> None:
        """Send the outcomes gathered since the last flush."""
        if self.ended:
            batch, self.ended = self.ended, []
            await self.outcomes.send(batch)
