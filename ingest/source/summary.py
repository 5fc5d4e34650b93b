"""Whole-file checks without sending anything: :func:`validate_file`, :func:`count_records`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ingest.model import InvalidRow

from .reader import open_rows

__all__ = ["ValidationSummary", "count_records", "validate_file"]


@dataclass(slots=True)
class ValidationSummary:
    """What a file holds, as the upload would see it.

    ``rows`` counts every data record read (valid or not); ``images`` the distinct
    inputs the valid rows name; ``boxes`` the valid rows with a box; ``labels`` the
    distinct concepts (positive or negative); ``image_level_rows`` the valid rows
    without a box; ``invalid`` every invalid row with its line and reason.
    """

    path: Path | None = None
    columns: list[str] = field(default_factory=list)
    rows: int = 0
    images: int = 0
    boxes: int = 0
    labels: int = 0
    image_level_rows: int = 0
    invalid: list[InvalidRow] = field(default_factory=list)

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
    images: set[int] = set()
    labels: set[str] = set()
    invalid = summary.invalid
    rows = boxes = 0
    async with open_rows(path) as src:
        summary.path = src.path
        summary.columns = list(src.columns)
        async for batch in src.batches():
            rows += len(batch)
            for item in batch:
                if isinstance(item, InvalidRow):
                    invalid.append(item)
                    continue
                images.add(hash(item.input_id))
                if item.box is not None:
                    boxes += 1
                if item.pos_concepts:
                    labels.update(item.pos_concepts)
                if item.neg_concepts:
                    labels.update(item.neg_concepts)
    summary.rows = rows
    summary.boxes = boxes
    summary.image_level_rows = rows - len(invalid) - boxes
    summary.images = len(images)
    summary.labels = len(labels)
    return summary


def count_records(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> int:
    """About how many data records the CSV holds, for a progress total.

    Counts line endings in binary chunks, minus the header; never parses, so quoted
    newlines and blank lines make it an overestimate. 0 when the file is unreadable.
    """
    lines = 0
    last = b""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                lines += chunk.count(b"\n")
                last = chunk
    except OSError:
        return 0
    if last and not last.endswith(b"\n"):
        lines += 1
    return max(0, lines - 1)
