"""What a run did: the report the library returns and the command line shows.

The ingester assembles it, in one place, from what the parts of a run count: the
stages' tallies (rows read, their outcomes, inputs and annotations), the client's
counts (requests, throttled replies, retries) and what the source says of its read.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["ReadFigures", "Report", "RunFigures"]


@dataclass(slots=True)
class ReadFigures:
    """What a source says of its read: kept up to date by the source while it reads
    (``ingest.source.SourceStats``), and copied into each run's figures."""

    rows_total: int = 0
    """Records (positions) in the data, from the counting pass (0 for an iterable source
    or while unknown)."""
    images_total: int = 0
    """Distinct images in the data, from the counting pass (0 while unknown)."""
    grouped: bool = False
    """The rows of some image were scattered: they were grouped on disk first."""
    grouping_s: float = 0.0
    """Seconds the counting pass and, when needed, the grouping took before rows went on."""
    grouping_temp_bytes: int = 0
    """Bytes of temp files the grouping wrote (removed at the end)."""
    notes: list[str] = field(default_factory=list)
    """What the source has to say about the read (a backend used, rows kept as boxes...),
    its warnings included."""
    phase: str = field(default="", repr=False)
    """What the source is doing before rows flow: "scanning", "grouping" or ""."""

    def take_read(self, source: ReadFigures) -> None:
        """Copy what ``source`` says of its read (its notes as a list of this one's own)."""
        for f in fields(ReadFigures):
            value = getattr(source, f.name)
            setattr(self, f.name, list(value) if isinstance(value, list) else value)


@dataclass(slots=True)
class RunFigures(ReadFigures):
    """What every run over some data reports besides its own counts (an upload's
    :class:`Report`, a verification's ``VerifyReport``): what the source says of its read,
    the client's calls, the time. Assembled in one place, ``Ingester``'s run record."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    requests_by_method: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic, repr=False)


@dataclass(slots=True)
class Report(RunFigures):
    """What a run did. Live while the run goes on; final when it returns.

    Every row read is in exactly one of ``rows_landed``, ``rows_present``,
    ``rows_failed`` or ``rows_resumed`` (done by an earlier run, skipped):
    ``rows_read`` is their sum once the run has ended. ``rows_invalid`` is not a bucket
    of its own: it counts the failed rows that did not pass validation (a part of
    ``rows_failed``; they are in the failures file with the others).
    """

    rows_read: int = 0
    rows_invalid: int = 0
    rows_landed: int = 0
    rows_present: int = 0
    rows_failed: int = 0
    rows_resumed: int = 0
    images: int = 0
    inputs_created: int = 0
    inputs_existing: int = 0
    inputs_failed: int = 0
    inputs_processed: int = 0
    annotations_created: int = 0
    annotations_existing: int = 0
    annotations_failed: int = 0
    inputs_patched: int = 0
    """Existing inputs whose labels or metadata were completed (only what differed)."""

    @property
    def rows_done(self) -> int:
        """Rows with an outcome so far."""
        return self.rows_landed + self.rows_present + self.rows_failed + self.rows_resumed

    @property
    def ok(self) -> bool:
        """True when every valid row landed or was already there."""
        return self.rows_failed == 0

    def summary(self) -> str:
        """The report in a few words: how the rows ended, what was stored, what it took."""
        resumed = f", {self.rows_resumed:,} done earlier" if self.rows_resumed else ""
        return (
            f"{self.rows_read:,} rows read: {self.rows_landed:,} landed, "
            f"{self.rows_present:,} already there, {self.rows_failed:,} failed "
            f"({self.rows_invalid:,} invalid){resumed}; {self.inputs_created:,} inputs and "
            f"{self.annotations_created:,} annotations created; {self.requests:,} requests, "
            f"{self.throttled:,} throttled, {self.retries:,} retried, {self.elapsed_s:.1f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (docs/contracts.md names the keys other tools rely on)."""
        data = asdict(self)
        data.pop("started")
        data.pop("phase")
        data["grouping_s"] = round(self.grouping_s, 3)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["rows_per_s"] = round(self.rows_done / self.elapsed_s, 1) if self.elapsed_s else 0.0
        return data
