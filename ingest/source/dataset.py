"""What the format readers share: the :class:`DatasetSource` they build on, and the cells they make.

Every reader (COCO, YOLO, Pascal VOC) turns its annotations into seed-format cells
(normalised box or polygon, concept ids, metadata and ``annotation_info`` as JSON) and
feeds them through the same :class:`~ingest.source.validate.Validator` as a CSV, so a
failed row goes to the failures file as a CSV row that can be fixed and uploaded again.
Each row has a stable position (its ``line``: the journal records finished rows by it),
and the rows of one image always follow each other.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import anyio
import msgspec

from ingest import ids
from ingest.errors import SourceError
from ingest.model import InvalidRow, Row
from ingest.report import Report

from .cells import BOX_COLUMNS, concept_id, format_polygon
from .formats import FormatOptions, require
from .reader import RowSource
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


@dataclass
class Cells:
    """Builds seed-format cells for one source's columns."""

    image_column: str
    columns: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.columns = [
            self.image_column,
            *BOX_COLUMNS,
            "polygon",
            "pos_concepts",
            "metadata",
            "annotation_info",
            "dataset_id",
        ]

    @staticmethod
    def make(
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
        return [image, *b, p, concept, metadata, info, dataset]


# -- the source ----------------------------------------------------------------------


class DatasetSource(RowSource):
    """A dataset read through a format reader; the pipeline reads it like a CSV.

    Subclasses implement :meth:`_prepare` (sync, in a thread: read what must be known
    before any row - class names, the first image - and set ``columns``, ``_root``
    and ``_names``; raise :class:`SourceError` for what makes the dataset unusable) and
    :meth:`_items` (sync generator, run a list at a time in a thread: each image's
    rows, as :data:`Item`, one list per image; an empty list now and then during a long
    pass that yields no rows, so that the upload can be cancelled meanwhile).
    """

    format_name: ClassVar[str] = ""
    notes: list[str]
    """What the report should say about this read (backend, rows left out...)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: FormatOptions,
        *,
        dataset_id: str | None = None,
        report: Report | None = None,
    ) -> None:
        super().__init__(path, dataset_id=dataset_id, report=report)
        self.options = options
        self.notes = self._report.notes  # the report says what the read had to say
        self.row_estimate = 0
        """Rows expected (0 until known)."""
        self._root = Path(path).parent
        self._names: dict[str, str] = {}

    async def _open_file(self, path: Path) -> None:
        await anyio.to_thread.run_sync(self._check_and_prepare, path)
        self._validator = Validator(
            self.columns,
            path=str(path),
            base_dir=self._root,
            concept_names=self._names or None,
        )

    def _check_and_prepare(self, path: Path) -> None:
        require(path)
        self._prepare()

    def _prepare(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _items(self) -> Generator[list[Item], None, None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        """Names, sizes and modification times of every file the rows come from."""
        h = hashlib.sha256()
        files = size = 0
        for p in self._files():
            try:
                st = p.stat()
            except OSError:
                continue
            files += 1
            size += st.st_size
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(errors="surrogateescape"))
        return {"format": self.format_name, "files": files, "bytes": size, "sha256": h.hexdigest()}

    def _files(self) -> Iterator[Path]:
        yield self.path if self.path is not None else Path()

    def _root_with(self, images: Path) -> None:
        """Cell paths relative to the folder the failures file goes to by default (beside
        the dataset's path), or to its common ancestor with ``images`` (said in a note)."""
        assert self.path is not None
        fail_dir = self.path.parent.resolve()
        self._root = Path(os.path.commonpath([fail_dir, images.resolve()]))
        if self._root != fail_dir:
            self.notes.append(
                f"image paths in the failures file are relative to {self._root}: "
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
