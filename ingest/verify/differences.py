"""What a verification finds: each kind of difference, a row's differences, the report.

A :class:`Difference` is one row of the data that the app does not hold as the data says
(with every kind of difference found for it, and the row's cells, for the CSV of rows to
send again), or one thing the app holds that the data does not have (an *extra*: an
annotation, concepts or metadata keys another tool or a person may have added). Every row
with a difference ends as exactly one :class:`Difference`; rows the app holds as the data
says end as none (they are counted in :attr:`VerifyReport.rows_equal`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ingest.model import NO_CELLS
from ingest.report import RunFigures

__all__ = ["Difference", "DifferenceKind", "VerifyReport"]


class DifferenceKind(enum.Enum):
    """A kind of difference, named as the JSON report counts it.

    ``unit`` is what the report counts for it: ``rows``, ``inputs`` (once per input, however
    many rows the input has) or ``annotations``; ``extra`` kinds are what the app holds and
    the data does not have, which make a difference only in strict mode.
    """

    ROW_INVALID = ("rows_invalid", "rows", False, "rows the upload refuses (invalid)")
    INPUT_MISSING = ("inputs_missing", "inputs", False, "inputs missing")
    INPUT_NOT_PROCESSED = (
        "inputs_not_processed",
        "inputs",
        False,
        "inputs not processed successfully",
    )
    INPUT_CONCEPTS = (
        "inputs_with_other_concepts",
        "inputs",
        False,
        "inputs lacking concepts (or with another value)",
    )
    INPUT_METADATA = (
        "inputs_with_other_metadata",
        "inputs",
        False,
        "inputs with other metadata",
    )
    REGION_MISSING = ("regions_missing", "rows", False, "boxes and polygons missing")
    REGION_MOVED = (
        "regions_moved",
        "rows",
        False,
        "boxes and polygons at other coordinates",
    )
    REGION_CONCEPTS = (
        "regions_with_other_concepts",
        "rows",
        False,
        "boxes and polygons with other concepts",
    )
    ANNOTATION_INFO = (
        "regions_with_other_annotation_info",
        "rows",
        False,
        "boxes and polygons with other annotation_info",
    )
    EXTRA_ANNOTATION = (
        "annotations_extra",
        "annotations",
        True,
        "annotations the data does not have",
    )
    EXTRA_CONCEPTS = (
        "inputs_with_extra_concepts",
        "inputs",
        True,
        "inputs with concepts the data does not name",
    )
    EXTRA_METADATA = (
        "inputs_with_extra_metadata",
        "inputs",
        True,
        "inputs with metadata keys the data does not name",
    )

    def __init__(self, key: str, unit: str, extra: bool, label: str) -> None:
        self.key = key
        self.unit = unit
        self.extra = extra
        self.label = label


class Difference(NamedTuple):
    """A row the app does not hold as the data says, or something the app holds that the
    data does not have (:attr:`extra`).

    ``line`` is the row's line (for an extra: the line of its image's first row);
    ``kinds`` every kind of difference found for the row (one for an extra); ``error``
    says what differs, in words; ``raw`` the row's cells by column (empty for an extra):
    a row with its ``line`` and ``error`` is what the CSV of rows to send again holds.
    """

    line: int
    kinds: tuple[DifferenceKind, ...]
    input_id: str = ""
    annotation_id: str = ""
    error: str = ""
    raw: Mapping[str, str] = NO_CELLS

    @property
    def extra(self) -> bool:
        """True for something the app holds that the data does not have."""
        return all(kind.extra for kind in self.kinds)


@dataclass(slots=True)
class VerifyReport(RunFigures):
    """What a verification found. Live while it goes on; final when it ends.

    Every row read is in exactly one of ``rows_equal`` and ``rows_differing`` once the
    verification has ended (``rows_invalid`` are among the differing ones).
    ``differences`` counts each kind by its unit (:class:`DifferenceKind`): rows, inputs
    or annotations. ``equal``: the app holds everything the data says (with ``strict``,
    and nothing more). The source's and the client's figures are :class:`RunFigures`'.
    """

    strict: bool = False
    rows_read: int = 0
    rows_invalid: int = 0
    rows_equal: int = 0
    rows_differing: int = 0
    images: int = 0
    """Images read (distinct inputs the valid rows name)."""
    images_checked: int = 0
    """Images whose input and annotations were read from the app."""
    inputs_found: int = 0
    """Images the app holds an input for."""
    annotations_read: int = 0
    """Annotations of those inputs read from the app (input-level ones included)."""
    differences: dict[str, int] = field(default_factory=dict)
    """Each kind of difference found (:attr:`DifferenceKind.key`), counted by its unit."""

    def count(self, kind: DifferenceKind, n: int = 1) -> None:
        self.differences[kind.key] = self.differences.get(kind.key, 0) + n

    @property
    def extras(self) -> int:
        """Things the app holds that the data does not have (annotations and inputs)."""
        return sum(self.differences.get(k.key, 0) for k in DifferenceKind if k.extra)

    @property
    def equal(self) -> bool:
        """The app holds everything the data says (and, ``strict``, nothing more)."""
        if self.rows_differing:
            return False
        return not (self.strict and self.extras)

    def summary(self) -> str:
        """The report in a few words."""
        found = ", ".join(f"{n:,} {key}" for key, n in sorted(self.differences.items()) if n)
        return (
            f"{self.rows_read:,} rows read: {self.rows_equal:,} as the app holds them, "
            f"{self.rows_differing:,} differing ({self.rows_invalid:,} invalid); "
            f"{self.images_checked:,} images checked, {self.inputs_found:,} in the app; "
            f"{found or 'no difference'}; {self.requests:,} requests, {self.throttled:,} "
            f"throttled, {self.elapsed_s:.1f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: every count, each kind of difference under ``differences``
        (every kind present, zero included)."""
        return {
            "equal": self.equal,
            "strict": self.strict,
            "rows_read": self.rows_read,
            "rows_invalid": self.rows_invalid,
            "rows_equal": self.rows_equal,
            "rows_differing": self.rows_differing,
            "rows_total": self.rows_total,
            "images": self.images,
            "images_total": self.images_total,
            "images_checked": self.images_checked,
            "inputs_found": self.inputs_found,
            "annotations_read": self.annotations_read,
            "differences": {k.key: self.differences.get(k.key, 0) for k in DifferenceKind},
            "extras": self.extras,
            "requests": self.requests,
            "throttled": self.throttled,
            "retries": self.retries,
            "requests_by_method": dict(self.requests_by_method),
            "grouped": self.grouped,
            "grouping_s": round(self.grouping_s, 3),
            "grouping_temp_bytes": self.grouping_temp_bytes,
            "notes": list(self.notes),
            "elapsed_s": round(self.elapsed_s, 3),
        }
