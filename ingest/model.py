"""The values that flow between the reader, the stages and the report.

A :class:`Row` is one valid line of the data file; an :class:`InvalidRow` one that
failed validation. Rows of one image are gathered into an :class:`Image` (one
Clarifai input). Every row ends as exactly one :class:`Outcome`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["NO_CELLS", "Box", "Image", "InvalidRow", "Outcome", "Row", "Status"]

NO_CELLS: Mapping[str, str] = MappingProxyType({})
"""The empty, read-only ``raw`` of an outcome that needs none."""


class Box(NamedTuple):
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
    empty for a row without a box. ``coords`` are the box's (left, top, right, bottom)
    as a plain tuple (:attr:`box` names them). ``polygon`` is a polygon region instead
    of a box: its points as flat normalised ``(x0, y0, x1, y1, ...)``; a row has a box,
    a polygon or neither (an image-level row: its ``annotation_id`` is empty).
    ``cells`` are the row's cells as read, under the header's ``columns``; :attr:`raw`
    pairs them up (for the failures file). ``info`` goes to the annotation's
    ``annotation_info``; ``concept_names`` maps concept ids to the names shown in
    ``Concept.name`` (an id not in it is its own name; one mapping shared by the rows
    of a source).

    Rows wait in the pipeline by the thousand, so they hold no object they need not:
    plain tuples of numbers and strings are left alone by Python's cycle collector.
    """

    line: int
    input_id: str
    url: str = ""
    path: str = ""
    coords: tuple[float, float, float, float] | None = None
    annotation_id: str = ""
    pos_concepts: tuple[str, ...] = ()
    neg_concepts: tuple[str, ...] = ()
    metadata: dict[str, Any] | None = None
    cells: Sequence[str] = ()
    columns: Sequence[str] = ()
    polygon: tuple[float, ...] | None = None
    info: dict[str, Any] | None = None
    concept_names: Mapping[str, str] | None = None
    dataset_id: str = ""
    """A dataset the row's input also goes into (the ``dataset_id`` column), or ""."""
    geo: tuple[float, float] | None = None
    """The input's geo point (longitude, latitude), or ``None`` (the ``geo`` column)."""

    @property
    def box(self) -> Box | None:
        """The bounding box, or ``None`` for an image-level row."""
        return None if self.coords is None else Box(*self.coords)

    @property
    def raw(self) -> dict[str, str]:
        """The cells as read, by column name."""
        return dict(zip(self.columns, self.cells, strict=False))


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
    continued: bool = False
    """Set by the create stage when rows of this input came earlier in the same run (rows
    from an iterable, in several stretches): what the service holds came from them."""

    @property
    def first(self) -> Row:
        return self.rows[0]


class Status(enum.Enum):
    """How a row ended."""

    LANDED = "landed"
    """Sent in this run and stored by the service."""
    PRESENT = "present"
    """Already stored before (an earlier run, a repeated URL or a retried call)."""
    FAILED = "failed"
    """Not stored; ``Outcome.error`` says why."""


class Outcome(NamedTuple):
    """The end of one row: its line, how it ended, and why if it failed.

    ``raw`` holds a failed row's cells by column name (what the failures file
    writes back); it is empty for a row that landed or was already present.
    A named tuple: one is made for every row, and it is immutable.
    """

    line: int
    status: Status
    input_id: str = ""
    annotation_id: str = ""
    error: str = ""
    raw: Mapping[str, str] = NO_CELLS

    @property
    def ok(self) -> bool:
        """True when the row landed or was already there."""
        return self.status is not Status.FAILED
