"""What the format readers share: the :class:`DatasetSource` they build on, and the cells they make.

Every reader (COCO, YOLO, Pascal VOC, LabelMe, CVAT) turns its annotations into
seed-format cells (normalised box or polygon, concept ids, metadata and
``annotation_info`` as JSON) and feeds them through the same
:class:`~ingest.source.validate.Validator` as a CSV, so a failed row goes to the failures
file as a CSV row that can be fixed and uploaded again. Each row has a stable position
(its ``line``: the journal records finished rows by it), and the rows of one image always
follow each other.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import anyio
import msgspec

from ingest import ids
from ingest.errors import SourceError
from ingest.model import InvalidRow, Row

from .base import SourceBase
from .cells import BOX_COLUMNS, concept_id, format_polygon
from .formats import DatasetPath, FormatOptions, require
from .validate import Validator

__all__ = [
    "BATCH_ROWS",
    "Cells",
    "DatasetSource",
    "Item",
    "concept_map",
    "dump",
    "relative",
]

#: Rows handed on per list (the readers work in a thread a list at a time).
BATCH_ROWS = 2048

Item: TypeAlias = tuple[int, list[str], str, str]
"""One row from a reader: (line, cells, column, problem); ``problem`` empty when the
cells are to be validated, else the row is invalid for that reason."""


def concept_map(names: Iterable[str], where: str) -> dict[str, str]:
    """Concept id -> name for class names; two names making one id raise :class:`SourceError`."""
    out: dict[str, str] = {}
    for name in names:
        cid = concept_id(name)
        if not cid or not ids.is_valid_id(cid):
            raise SourceError(
                f"{where}: the class name {name!r} gives no usable concept id "
                "(ids are 1 to 128 characters of a-z, 0-9, '_' and '-')"
            )
        had = out.setdefault(cid, name)
        if had != name:
            raise SourceError(
                f"{where}: the class names {had!r} and {name!r} both become the concept id "
                f"{cid!r} (lower case, characters outside a-z0-9_- become '-'); "
                "rename one before uploading"
            )
    return out


def relative(p: Path, root: Path) -> str:
    """A cell's path: ``p`` relative to ``root`` (the failures file's folder), else as given."""
    try:
        return p.resolve().relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


_encode_json = msgspec.json.Encoder().encode


def dump(value: Mapping[str, Any]) -> str:
    """A metadata or annotation_info cell (compact JSON)."""
    return _encode_json(value).decode() if value else ""


class Cells:
    """Builds seed-format cells for one source's columns.

    ``names``: concept id -> class name; a concept whose name differs from its id gets a
    ``concept_names`` cell, so that a failed row (or ``validate --write-csv``) uploaded
    as a CSV keeps the names.
    """

    def __init__(self, image_column: str, names: Mapping[str, str] | None = None) -> None:
        self.image_column = image_column
        self.columns = [
            image_column,
            *BOX_COLUMNS,
            "polygon",
            "pos_concepts",
            "concept_names",
            "metadata",
            "annotation_info",
            "dataset_id",
        ]
        self._names = {cid: dump({cid: n}) for cid, n in (names or {}).items() if n != cid}

    def make(
        self,
        image: str,
        *,
        box: Sequence[float] | None = None,
        polygon: Sequence[float] | None = None,
        concept: str = "",
        metadata: str = "",
        info: str = "",
        dataset: str = "",
    ) -> list[str]:
        b = [repr(float(v)) for v in box] if box is not None else ["", "", "", ""]
        p = format_polygon(polygon) if polygon is not None else ""
        named = self._names.get(concept, "") if concept else ""
        return [image, *b, p, concept, named, metadata, info, dataset]


# -- the source ----------------------------------------------------------------------


class DatasetSource(SourceBase):
    """A dataset read through a format reader; the pipeline reads it like a CSV.

    Subclasses implement :meth:`_prepare` (sync, in a thread: read what must be known
    before any row - class names, the first image - and set ``columns``, ``base_dir``
    and ``_names``; raise :class:`SourceError` for what makes the dataset unusable) and
    :meth:`_items` (sync generator, run a list at a time in a thread: each image's
    rows, as :data:`Item`, one list per image; an empty list now and then during a long
    pass that yields no rows, so that the upload can be cancelled meanwhile).
    ``tmp_dir`` is where a reader that groups on disk puts its temp files.

    A reader also says how the factory recognises its data (:meth:`recognises`), what
    it looked for (``describe``, in the error for a folder no reader reads) and which
    format options it reads (``options_read``).
    """

    folder: ClassVar[bool] = True
    """The dataset is given as a folder (else by its own file)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: FormatOptions,
        *,
        tmp_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(DatasetPath(path, options), Path(path).parent)
        self.options = options
        self._tmp_dir = tmp_dir
        self._names: dict[str, str] = {}
        self._validator: Validator | None = None

    async def _open(self) -> None:
        await anyio.to_thread.run_sync(self._check_and_prepare)
        self._validator = Validator(
            self.columns,
            path=str(self.path),
            base_dir=self.base_dir,
            concept_names=self._names or None,
        )

    def _check_and_prepare(self) -> None:
        assert self.path is not None
        require(self.path)
        self._prepare()

    @staticmethod
    def recognises(path: Path) -> bool:  # pragma: no cover - abstract
        """True when ``path`` (a file or a folder) holds this reader's format."""
        raise NotImplementedError

    def _prepare(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _items(self) -> Generator[list[Item], None, None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _root_with(self, images: Path) -> None:
        """Cell paths relative to the folder the failures file goes to by default (beside
        the dataset's path), or to its common ancestor with ``images`` (said in a note)."""
        assert self.path is not None
        fail_dir = self.path.parent.resolve()
        self.base_dir = Path(os.path.commonpath([fail_dir, images.resolve()]))
        if self.base_dir != fail_dir:
            self.stats.note(
                f"image paths in the failures file are relative to {self.base_dir}: "
                "write it there (--failures) to upload it again"
            )

    async def batches(self) -> AsyncIterator[list[Row | InvalidRow]]:
        """Lists of rows, every image's rows together (a reader's list at a time)."""
        validator = self._validator
        if validator is None:
            return
        items = self._items()
        try:
            while True:
                batch = await anyio.to_thread.run_sync(self._next_batch, items, validator)
                if batch is None:
                    break
                if batch:
                    yield batch
                else:
                    await anyio.lowlevel.checkpoint()  # a reader's long pass: cancellable here
        finally:
            items.close()

    def _next_batch(
        self, items: Generator[list[Item], None, None], validator: Validator
    ) -> list[Row | InvalidRow] | None:
        out: list[Row | InvalidRow] = []
        check, columns = validator.check, validator.columns
        for group in items:
            if not group:
                return out  # a reader's pause in a long pass (see :meth:`_items`)
            for line, cells, column, problem in group:
                if problem:
                    out.append(
                        InvalidRow(line, column, problem, dict(zip(columns, cells, strict=False)))
                    )
                else:
                    item = check(line, cells, False)
                    if item is not None:
                        out.append(item)
            if len(out) >= BATCH_ROWS:
                return out
        return out or None
