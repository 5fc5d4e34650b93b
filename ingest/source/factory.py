"""One way in: :func:`open_rows` recognises what a source is and opens its reader.

This module stands above every reader and no reader imports it: a reader knows its
own format, the factory knows them all. Adding a format is one module (a
:class:`~ingest.source.dataset.DatasetSource` with its ``format_name``, ``describe``,
``folder`` and ``recognises``) and one entry in :data:`READERS`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Iterable
from pathlib import Path

from ingest.errors import ConfigError, SourceError

from .base import RowSource, Source
from .classfolders import ClassFolderSource
from .coco import CocoSource
from .csvfile import CsvSource
from .cvat import CvatSource
from .dataset import DatasetSource
from .formats import DatasetPath
from .grouping import ImageGrouping
from .iterable import AsyncIterableSource, IterableSource
from .labelme import LabelmeSource
from .sdkcsv import SdkCsvSource
from .voc import VocSource
from .yolo import YoloSource

__all__ = ["FORMATS", "READERS", "detect", "open_rows"]

READERS: tuple[type[DatasetSource] | type[SdkCsvSource], ...] = (
    LabelmeSource,  # before COCO: a LabelMe file is a .json file too
    CocoSource,
    YoloSource,
    VocSource,
    CvatSource,
    ClassFolderSource,  # after the folder formats: any folder of image folders
    SdkCsvSource,  # a CSV with the official SDK's header
)
"""The format readers, in the order :func:`detect` asks them."""

FORMATS: tuple[str, ...] = ("csv", *(r.format_name for r in READERS))
"""Every format's name (``--format``)."""


def detect(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The format of ``path``: ``format`` when given, else recognised from the path.

    Each reader in :data:`READERS` is asked in turn (a LabelMe ``.json`` file, or a folder
    of them, is LabelMe; any other ``.json`` is COCO; a ``.yaml`` or a folder with
    ``data.yaml`` or ``images/`` and ``labels/`` is YOLO; a folder with ``Annotations/`` is
    VOC; an ``.xml`` file or a folder with ``annotations.xml`` is CVAT; a folder of folders
    of images is class folders; a file whose header is ``inputid,input,concepts...`` is the
    official SDK's CSV); any other file (or
    a path that does not exist) is a CSV.
    Raises :class:`SourceError` for a folder that no reader reads, saying what was
    looked for.
    """
    if format is not None:
        if format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
        return format
    p = Path(path)
    for reader in READERS:
        if reader.recognises(p):
            return reader.format_name
    if not p.is_dir():
        return "csv"
    folders = " and ".join(r.describe for r in READERS if r.folder)
    files = " or ".join(["a CSV", *(r.describe for r in READERS if not r.folder)])
    raise SourceError(
        f"{p}: a folder ingest cannot read; looked for {folders}; {files} is given by its "
        f"own path; --format {'|'.join(FORMATS)} says which it is"
    )


def open_rows(
    source: Source,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    group: bool = False,
    tmp_dir: str | os.PathLike[str] | None = None,
) -> RowSource:
    """The rows of ``source``, validated; use as ``async with``, then ``batches()`` or
    ``async for``.

    ``source`` is a data path (a :class:`~ingest.source.formats.DatasetPath` carries the
    options it is read with): a CSV, a COCO JSON file, a YOLO dataset, a Pascal VOC
    folder, a LabelMe folder or file, a CVAT for images XML file (or its folder); or an
    iterable or async iterable of mappings with the CSV's column names
    (:mod:`ingest.source.iterable`). For a CSV, ``file`` paths are relative to its
    folder; for an iterable, to ``base_dir`` (default: the current folder).

    With ``group``, a CSV's rows come grouped by image: a counting pass first, and when
    it finds an image's rows scattered, a grouping on disk under ``tmp_dir``
    (:class:`~ingest.source.grouping.ImageGrouping`); rows keep their line numbers and
    the source's ``stats`` say what the counting and the grouping found and cost. The
    format readers always give an image's rows together (COCO groups on disk under
    ``tmp_dir`` too).
    """
    if isinstance(source, (str, os.PathLike)):
        data = DatasetPath.of(source)
        kind = detect(data.path, data.options.format)
        for reader in READERS:
            if reader.format_name == kind:
                return reader(data.path, data.options, tmp_dir=tmp_dir)
        grouping = ImageGrouping(tmp_dir) if group else None
        return CsvSource(data, base_dir=base_dir, grouping=grouping)
    if isinstance(source, AsyncIterable):
        return AsyncIterableSource(source, base_dir=base_dir)
    if isinstance(source, Iterable):
        return IterableSource(source, base_dir=base_dir)
    raise SourceError(
        f"cannot read rows from a {type(source).__name__}: "
        "give a CSV path or an iterable of mappings"
    )
