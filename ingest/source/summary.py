"""Whole-dataset checks without sending anything: :func:`validate_path`, and
:func:`validate_file`, its fast path for a CSV."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ingest.model import InvalidRow

from .csvfile import CsvSource
from .export import CsvExport
from .factory import detect, open_rows
from .formats import DatasetPath

__all__ = ["ValidationSummary", "validate_file", "validate_path"]


@dataclass(slots=True)
class ValidationSummary:
    """What a file holds, as the upload would see it.

    ``rows`` counts every data record read (valid or not); ``images`` the distinct
    inputs the valid rows name; ``boxes`` the valid rows with a region (a box or a
    polygon), of which ``polygons`` the polygons; ``labels`` the distinct concepts
    (positive or negative); ``image_level_rows`` the valid rows without a region;
    ``datasets`` the datasets the rows name (``dataset_id``); ``invalid`` every invalid
    row with its line and reason; ``warnings`` what the data holds that would not be
    uploaded (a column ingest does not read...) and ``notes`` what else the read has to
    say (the warnings among them).
    """

    path: Path | None = None
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    images: int = 0
    boxes: int = 0
    labels: int = 0
    image_level_rows: int = 0
    polygons: int = 0
    datasets: set[str] = field(default_factory=set)
    invalid: list[InvalidRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: int = 0
    """Rows written to the CSV of ``validate_path(write_csv=...)``."""

    @property
    def valid(self) -> int:
        """Rows that would be sent."""
        return self.rows - len(self.invalid)


async def validate_file(path: str | os.PathLike[str]) -> ValidationSummary:
    """Read and check the whole CSV at ``path``; nothing is sent.

    Raises :class:`~ingest.errors.MissingColumnError` or
    :class:`~ingest.errors.SourceError` for a file-level problem; row problems are
    listed in ``invalid``. Memory grows with the number of distinct images (one
    64-bit hash each, about 70 bytes) and of distinct concepts, not with the file.
    """
    summary = ValidationSummary()
    invalid = summary.invalid
    # A counting validator tallies valid rows instead of building them (twice as fast).
    async with CsvSource(path, counting=True) as src:
        summary.path = src.path
        summary.columns = list(src.columns)
        async for batch in src.batches():
            for item in batch:
                if isinstance(item, InvalidRow):
                    invalid.append(item)
        validator = src.validator
        if validator is not None:
            summary.boxes = validator.boxes
            summary.polygons = validator.polygons
            summary.datasets = set(validator.datasets)
            summary.image_level_rows = validator.image_level_rows
            summary.images = len(validator.images)
            summary.labels = len(validator.labels())
        summary.warnings, summary.notes = list(src.stats.warnings), list(src.stats.notes)
    summary.rows = len(invalid) + summary.boxes + summary.image_level_rows
    return summary


async def validate_path(
    path: str | os.PathLike[str], *, write_csv: str | os.PathLike[str] | None = None
) -> ValidationSummary:
    """Check every row of a dataset (any format) without sending anything.

    With ``write_csv``, the valid rows are also written there as ingest's own CSV
    (:class:`~ingest.source.export.CsvExport`): uploading it stores what uploading
    ``path`` stores.
    """
    data = DatasetPath.of(path)
    options = data.options
    kind = detect(data.path, options.format)
    counting = write_csv is None and options.concept_ids == "ids"  # the fast path
    if counting and kind == "csv":
        return await validate_file(data.path)
    data = DatasetPath(data.path, options, format=kind)  # recognised once
    summary = ValidationSummary()
    images: set[str] = set()
    labels: set[str] = set()
    async with open_rows(data) as src:
        summary.path = src.path
        summary.columns = list(src.columns)
        export = CsvExport(write_csv, src) if write_csv is not None else None
        try:
            async for batch in src.batches():
                if export is not None:
                    export.write(batch)
                for item in batch:
                    summary.rows += 1
                    if isinstance(item, InvalidRow):
                        summary.invalid.append(item)
                        continue
                    images.add(item.input_id)
                    labels.update(item.pos_concepts)
                    labels.update(item.neg_concepts)
                    if item.annotation_id:
                        summary.boxes += 1
                        summary.polygons += item.polygon is not None
                    else:
                        summary.image_level_rows += 1
                    if item.dataset_id:
                        summary.datasets.add(item.dataset_id)
            if export is not None:
                export.commit()
                summary.written = export.rows
        finally:
            if export is not None:
                export.discard()
        summary.warnings, summary.notes = list(src.stats.warnings), list(src.stats.notes)
    summary.images = len(images)
    summary.labels = len(labels)
    return summary
