"""One way in: :func:`open_rows` recognises what a source is and opens its reader.

This module stands above every reader and no reader imports it: a reader knows its
own format, the factory knows them all.
"""

from __future__ import annotations

import os
from pathlib import Path

from ingest.errors import ConfigError, SourceError
from ingest.report import Report

from .coco import CocoSource
from .formats import DatasetPath, FormatOptions
from .reader import RowSource, Source
from .voc import VocSource
from .yolo import YoloSource

__all__ = ["FORMATS", "detect", "open_rows"]

FORMATS = ("csv", "coco", "yolo", "voc")


def detect(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The format of ``path``: ``format`` when given, else recognised from the path.

    A ``.json`` file is COCO, a ``.yaml``/``.yml`` file a YOLO ``data.yaml``, any other
    file (or a path that does not exist) a CSV; a folder is YOLO when it holds a
    ``data.yaml`` or ``images/`` and ``labels/``, VOC when it holds ``Annotations/``.
    Raises :class:`SourceError` for a folder that is none of them, saying what was
    looked for.
    """
    if format is not None:
        if format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
        return format
    p = Path(path)
    if not p.is_dir():
        suffix = p.suffix.lower()
        if suffix == ".json":
            return "coco"
        if suffix in (".yaml", ".yml"):
            return "yolo"
        return "csv"
    if (p / "data.yaml").is_file() or (p / "data.yml").is_file():
        return "yolo"
    if (p / "images").is_dir() and (p / "labels").is_dir():
        return "yolo"
    if (p / "Annotations").is_dir():
        return "voc"
    raise SourceError(
        f"{p}: a folder ingest cannot read; looked for a YOLO dataset (data.yaml, or "
        "images/ and labels/ folders) and a Pascal VOC dataset (an Annotations/ folder); "
        "a CSV or a COCO JSON file is given by its own path; --format csv|coco|yolo|voc "
        "says which it is"
    )


def open_rows(
    source: Source,
    *,
    dataset_id: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    group: bool = False,
    tmp_dir: str | os.PathLike[str] | None = None,
    report: Report | None = None,
) -> RowSource:
    """The rows of ``source``, validated, in order; use as ``async with`` then ``async for``.

    ``source`` is a CSV path, or an iterable or async iterable of mappings with the
    CSV's column names (values ``str``; ``None`` counts as empty, other values are
    converted with ``str``). For a CSV, ``file`` paths are relative to its folder; for
    an iterable, to ``base_dir`` (default: the current folder). Iterable rows are
    numbered as if written below a header: the first row is line 2.

    ``dataset_id`` is checked here and kept as ``RowSource.dataset_id`` for the stages.

    With ``group``, :meth:`RowSource.batches` of a CSV puts every image's rows
    together: a counting pass first, and when it finds an image's rows scattered, a
    grouping on disk under ``tmp_dir`` (:mod:`ingest.source.grouping`). Rows keep
    their line numbers; ``report`` (if given) shows the counting, the grouping and what
    it cost.

    A path that is not a CSV - a COCO JSON file, a YOLO dataset, a Pascal VOC folder -
    is read by its format's reader; a :class:`~ingest.source.formats.DatasetPath`
    carries the options it is read with.
    """
    concept_ids = "ids"
    if isinstance(source, (str, os.PathLike)):
        options = source.options if isinstance(source, DatasetPath) else FormatOptions()
        source = source.path if isinstance(source, DatasetPath) else source
        kind = detect(source, options.format)
        if kind == "coco":
            return CocoSource(
                source, options, dataset_id=dataset_id, tmp_dir=tmp_dir, report=report
            )
        if kind == "yolo":
            return YoloSource(source, options, dataset_id=dataset_id, report=report)
        if kind == "voc":
            return VocSource(source, options, dataset_id=dataset_id, report=report)
        concept_ids = options.concept_ids
    return RowSource(
        source,
        dataset_id=dataset_id,
        base_dir=base_dir,
        concept_ids=concept_ids,
        group=group,
        tmp_dir=tmp_dir,
        report=report,
    )
