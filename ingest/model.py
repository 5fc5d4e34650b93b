"""The values that flow between the reader, the stages and the report.

A :class:`Row` is one valid line of the data file; an :class:`InvalidRow` one that
failed validation. Rows of one image are gathered into an :class:`Image` (one
Clarifai input). Every row ends as exactly one :class:`Outcome`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Box", "Image", "InvalidRow", "Outcome", "Row", "Status"]


@dataclass(frozen=True, slots=True)
class Box:
    """A bounding box, normalised to [0, 1], ``left < right`` and ``top < bottom``."""

    left: float
    top: float
    right: float
    bottom: float


@dataclass(slots=True)
class Row:
    """One valid row of the data file.

    ``line`` is the 1-based line of the file where the record starts (the header is
    line 1). ``url`` or ``path`` names the image (``path`` is absolute, resolved
    against the CSV's folder). ``input_id`` is derived from the URL or path unless the
    file gives one; ``annotation_id`` is derived from the input id and the box, and is
    empty for a row without a box. ``raw`` keeps the cells as read, for the failures
    file.
    """

    line: int
    input_id: str
    url: str = ""
    path: str = ""
    box: Box | None = None
    annotation_id: str = ""
    pos_concepts: tuple[str, ...] = ()
    neg_concepts: tuple[str, ...] = ()
    metadata: dict[str, Any] | None = None
    raw: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class InvalidRow:
    """A row that failed validation: where, which column, and why."""

    line: int
    column: str
    reason: str
    raw: Mapping[str, str] = field(default_factory=dict)

    def message(self) -> str:
        col = f", column {self.column!r}" if self.column else ""
        return f"line {self.line}{col}: {self.reason}"


@dataclass(slots=True)
class Image:
    """All rows of one input: the input is created once, then each box is posted."""

    input_id: str
    rows: list[Row]
    weight: int = 1
    """Share of a create batch: 1, or more for a large local file."""
    existed: bool = False
    """Set by the create stage when the service already had this input."""

    @property
    def first(self) -> Row:
        return self.rows[0]

    @property
    def boxes(self) -> list[Row]:
        return [r for r in self.rows if r.box is not None]


class Status(enum.Enum):
    """How a row ended."""

    LANDED = "landed"
    """Sent in this run and stored by the service."""
    PRESENT = "present"
    """Already stored before (an earlier run, a repeated URL or a retried call)."""
    FAILED = "failed"
    """Not stored; ``Outcome.error`` says why."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one row: its line, how it ended, and why if it failed."""

    line: int
    status: Status
    input_id: str = ""
    annotation_id: str = ""
    error: str = ""
    raw: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not Status.FAILED
