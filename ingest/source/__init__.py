"""Readers that yield validated rows: a CSV file, or any (async) iterable of mappings.

::

    async with open_rows("boxes.csv") as src:       # header read and checked here
        async for item in src:                      # Row or InvalidRow, in file order
            ...

The file is streamed in 256 KiB chunks (:mod:`ingest.source.csvstream`), never held
in memory. Decisions, for users and the other stages:

* Header: ``url`` or ``file`` (exactly one) and ``left_col``, ``top_row``,
  ``right_col``, ``bottom_row`` are required; ``pos_concepts``, ``neg_concepts``,
  ``metadata``, ``input_id`` are optional; other columns are kept in ``Row.raw`` and
  otherwise ignored. Names are matched exactly (case matters) after stripping
  surrounding spaces. A missing column raises :class:`~ingest.errors.MissingColumnError`.
* A column name given twice, both ``url`` and ``file``, an empty file, a UTF-16 file
  or a header that is not UTF-8 text raise :class:`~ingest.errors.SourceError`.
  A header with no rows is not an error: zero rows. Blank lines are skipped.
* Each row problem becomes an :class:`~ingest.model.InvalidRow` (line, column,
  reason; ``message()`` gives ``line N, column 'c': reason``) and the run goes on.
  A row whose number of cells differs from the header is invalid.
* Limits: at most :data:`MAX_CONCEPTS` (200) concepts per cell; metadata JSON of at
  most :data:`MAX_METADATA_CHARS` (65,536) characters, an object, no NaN/Infinity;
  local files at most 20 MiB; a record over 64 MiB makes the file unreadable
  (almost always a missing closing quote).

Besides CSV, COCO JSON files, YOLO datasets and Pascal VOC folders are read by
:mod:`ingest.source.formats` and its readers, into the same rows.
"""

from __future__ import annotations

from .cells import MAX_CONCEPTS, MAX_FILE_BYTES, MAX_METADATA_CHARS
from .formats import FORMATS, REGIONS, DatasetPath, FormatOptions, detect, validate_path
from .reader import RowSource, Source, open_rows
from .summary import ValidationSummary, validate_file

__all__ = [
    "FORMATS",
    "MAX_CONCEPTS",
    "MAX_FILE_BYTES",
    "MAX_METADATA_CHARS",
    "REGIONS",
    "DatasetPath",
    "FormatOptions",
    "RowSource",
    "Source",
    "ValidationSummary",
    "detect",
    "open_rows",
    "validate_file",
    "validate_path",
]
