"""A CSV file's rows: :class:`CsvSource`.

The file is streamed in 256 KiB chunks (:mod:`ingest.source.csvstream`), never held in
memory; opening reads and checks the header, and :meth:`CsvSource.batches` validates
the rest a chunk at a time. With an :class:`~ingest.source.grouping.ImageGrouping`
(what an upload uses), every image's rows come together, whatever the file's order.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

from ingest.errors import SourceError
from ingest.model import InvalidRow, Row

from .base import SourceBase
from .csvstream import CHUNK_SIZE, Chunk, Record, bad_text, read_chunks
from .formats import DatasetPath
from .grouping import ImageGrouping
from .validate import Validator

__all__ = ["CsvSource"]


class CsvSource(SourceBase):
    """The rows of the CSV file at ``path``: header first (on ``async with``), then each row.

    Yields :class:`~ingest.model.Row` for a valid row and
    :class:`~ingest.model.InvalidRow` for an invalid one, in file order (or each
    image's rows together, with ``grouping``). Opening raises
    :class:`~ingest.errors.MissingColumnError` or :class:`~ingest.errors.SourceError`
    before any row is read. ``path`` may be a :class:`~ingest.source.DatasetPath`: with
    ``concept_ids="names"`` its concept cells hold names (made ids, the name kept).
    ``file`` cells are relative to ``base_dir`` (default: the CSV's folder).
    ``counting``: valid rows are tallied by the validator instead of built (the fast
    path of :func:`~ingest.source.validate_file`).
    """

    format_name = "csv"
    describe = "a CSV file"
    options_read = frozenset({"concept_ids"})

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        base_dir: str | os.PathLike[str] | None = None,
        counting: bool = False,
        chunk_size: int = CHUNK_SIZE,
        grouping: ImageGrouping | None = None,
    ) -> None:
        dataset = DatasetPath.of(path)
        super().__init__(dataset, Path(base_dir) if base_dir is not None else dataset.path.parent)
        self._file = dataset.path
        self._concept_ids = dataset.options.concept_ids
        self._counting = counting
        self._chunk_size = chunk_size
        self._grouping = grouping
        self._validator: Validator | None = None
        self._chunks: AsyncIterator[Chunk] | None = None
        self._pending: list[Record] = []
        self._pending_dirty = False
        self._header_line = 1

    @property
    def needs_window(self) -> bool:
        """A CSV read without grouping may scatter an image's rows."""
        return self._grouping is None

    @property
    def header_line(self) -> int:
        """The line of the header (blank lines may come before it)."""
        return self._header_line

    @property
    def validator(self) -> Validator | None:
        """The header's validator (``None`` before opening)."""
        return self._validator

    async def aclose(self) -> None:
        if self._grouping is not None:
            self._grouping.close()
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            await chunks.aclose()  # type: ignore[attr-defined]

    async def _open(self) -> None:
        shown = str(self._file)
        chunks = self._chunks = read_chunks(self._file, chunk_size=self._chunk_size)
        async for chunk in chunks:
            records = chunk.records
            for i, (line, cells, problem) in enumerate(records):
                if not cells and not problem:
                    continue  # blank lines before the header
                if problem:
                    raise SourceError(f"{shown}: line {line}: the header cannot be read: {problem}")
                if chunk.dirty:
                    for cell in cells:
                        why = bad_text(cell)
                        if why:
                            raise SourceError(
                                f"{shown}: line {line}: the header {why}; "
                                "is this a CSV file saved as UTF-8?"
                            )
                self.columns = [c.strip() for c in cells]
                self._header_line = line
                self._pending = records[i + 1 :]
                self._pending_dirty = chunk.dirty
                self._validator = await self._validator_for(shown)
                self._unknown_columns(shown)
                return
        raise SourceError(
            f"{shown}: the file is empty; expected a header line naming the columns "
            "url (or file), and for boxes left_col, top_row, right_col, bottom_row"
        )

    async def _validator_for(self, shown: str) -> Validator:
        """The validator of the header just read (``columns``; the records after it wait
        in ``_pending``, which a subclass may extend from the chunks to look at them)."""
        return Validator(
            self.columns,
            path=shown,
            base_dir=self.base_dir,
            counting=self._counting,
            concept_ids=self._concept_ids,
        )

    async def _records(self) -> AsyncIterator[tuple[list[Record], bool]]:
        """The records after the header, a chunk at a time, with their ``dirty`` flag."""
        pending, self._pending = self._pending, []
        if pending:
            yield pending, self._pending_dirty
        assert self._chunks is not None
        async for chunk in self._chunks:
            yield chunk.records, chunk.dirty

    async def batches(self) -> AsyncIterator[list[Row | InvalidRow]]:
        """The rows, one list per chunk read (or per few thousand grouped rows)."""
        validator = self._validator
        if validator is None or self._chunks is None:
            return
        if self._grouping is not None:
            grouped = self._grouping.batches(
                self._file, self._header_line, validator, self._records(), self.stats
            )
            async for batch in grouped:
                yield batch
            return
        async for records, dirty in self._records():
            yield validator.rows(records, dirty)
