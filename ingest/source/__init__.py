"""Readers that yield validated rows: a CSV file, a COCO, YOLO, Pascal VOC, LabelMe or CVAT
dataset, class folders, the official SDK's CSV, or any (async) iterable of mappings, each
behind one protocol (:class:`RowSource`).

::

    async with open_rows("boxes.csv") as src:       # header read and checked here
        async for batch in src.batches():           # lists of Row | InvalidRow
            ...

:func:`open_rows` (:mod:`.factory`) recognises the source and opens its reader:
:mod:`.csvfile`, :mod:`.iterable`, :mod:`.coco`, :mod:`.yolo`, :mod:`.voc`,
:mod:`.labelme`, :mod:`.cvat` (the last two share :mod:`.shapes`), :mod:`.classfolders`
(a folder of class folders), :mod:`.sdkcsv` (the official SDK's CSV). A CSV file is
streamed in 256 KiB chunks (:mod:`.csvstream`), never held in memory; every format becomes
the same seed-format rows (:mod:`.dataset`), checked by one
:class:`~ingest.source.validate.Validator`. Decisions, for users and the other stages:

* Header: ``url`` or ``file`` (exactly one) is required; ``left_col``, ``top_row``,
  ``right_col``, ``bottom_row`` are all four there or none (a file without them is a
  classification set: every row image-level); ``pos_concepts``, ``neg_concepts``,
  ``concept_names`` (a JSON object naming the row's concept ids), ``metadata``,
  ``input_id``, ``polygon`` (a polygon region instead of a box), ``annotation_info`` (a
  JSON object for the annotation), ``dataset_id`` (a dataset the row's input also goes
  into) and ``geo`` (the input's ``longitude,latitude``) are optional; ``line`` and
  ``error`` (the failures file's) are known and not uploaded. Names are matched exactly
  (case matters) after stripping surrounding spaces. A missing column raises
  :class:`~ingest.errors.MissingColumnError`; a cell that is a near miss of a column
  ingest reads (``pos_concept``, ``URL``) raises :class:`~ingest.errors.SourceError`
  with a "did you mean" (:mod:`.columns`); any other column is kept in ``Row.raw`` (it
  comes back with a failed row), not uploaded, and said as a warning in the source's
  ``stats`` (``strict`` refuses it).
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

A source says what it knows about its read in its ``stats`` (:class:`SourceStats`:
the counting pass's rows and images, the grouping on disk, notes and warnings); the
ingester copies them into its report. :func:`validate_path` checks a whole dataset
without sending anything (:mod:`.summary`), and can write the rows it would send as a CSV
that uploads the same (:mod:`.export`).
"""

from __future__ import annotations

from .base import RowSource, Source, SourceStats
from .cells import MAX_CONCEPTS, MAX_FILE_BYTES, MAX_METADATA_CHARS
from .factory import FORMATS, detect, open_rows
from .formats import REGIONS, DatasetPath, FormatOptions
from .summary import ValidationSummary, validate_file, validate_path

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
    "SourceStats",
    "ValidationSummary",
    "detect",
    "open_rows",
    "validate_file",
    "validate_path",
]
