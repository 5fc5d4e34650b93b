"""Counting outcomes into the final report."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ingest.model import Outcome, Status

__all__ = ["Report"]


@dataclass(slots=True)
class Report:
    """What a run did. Live while the run goes on; final when it returns.

    Every row read is in exactly one of ``rows_invalid``, ``rows_landed``,
    ``rows_present``, ``rows_failed`` (invalid rows count as failed too) or
    ``rows_resumed`` (done by an earlier run, skipped).
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
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    rows_total: int = 0
    """Records in the file, from the counting pass (0 for an iterable source)."""
    images_total: int = 0
    """Distinct images in the data, from the counting pass (0 while unknown)."""
    grouped: bool = False
    """The file's rows were not grouped by image: they were grouped on disk first."""
    grouping_s: float = 0.0
    """Seconds the counting pass and, when needed, the grouping took before rows went on."""
    grouping_temp_bytes: int = 0
    """Bytes of temp files the grouping wrote (removed at the end)."""
    inputs_patched: int = 0
    """Existing inputs whose labels or metadata were completed (only what differed)."""
    notes: list[str] = field(default_factory=list)
    """What the source has to say about the read (a backend used, rows kept as boxes...)."""
    phase: str = field(default="", repr=False)
    """What the source is doing before rows flow: "scanning", "grouping" or ""."""
    requests_by_method: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic, repr=False)

    def record(self, outcome: Outcome) -> None:
        """Count one row's outcome."""
        if outcome.status is Status.LANDED:
            self.rows_landed += 1
        elif outcome.status is Status.PRESENT:
            self.rows_present += 1
        else:
            self.rows_failed += 1

    @property
    def rows_done(self) -> int:
        """Rows with an outcome so far."""
        return self.rows_landed + self.rows_present + self.rows_failed + self.rows_resumed

    @property
    def ok(self) -> bool:
        """True when every valid row landed or was already there."""
        return self.rows_failed == 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (docs/contracts.md names the keys other tools rely on)."""
        data = asdict(self)
        data.pop("started")
        data.pop("phase")
        data["grouping_s"] = round(self.grouping_s, 3)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["rows_per_s"] = round(self.rows_done / self.elapsed_s, 1) if self.elapsed_s else 0.0
        return data
