"""``RowSource``: the validated rows of a CSV file or of any (async) iterable of mappings."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Self, TypeAlias, cast

from anyio.abc import AsyncResource

from ingest import ids
from ingest.errors import ConfigError, SourceError
from ingest.model import InvalidRow, Row
from ingest.report import Report

from .csvstream import CHUNK_SIZE, Chunk, Record, bad_text, read_chunks
from .grouping import DiskGrouper, image_key, scan_order
from .validate import Validator

__all__ = ["RowSource", "Source"]

Check: TypeAlias = Callable[[int, list[str], bool], "Row | InvalidRow"]

Source: TypeAlias = (
    "str | os.PathLike[str] | Iterable[Mapping[str, str]] | AsyncIterable[Mapping[str, str]]"
)


class RowSource(AsyncResource):
    """An open source of rows: header first (on ``async with``), then each row.

    Yields :class:`~ingest.model.Row` for a valid row and
    :class:`~ingest.model.InvalidRow` for an invalid one, in file order. Opening
    raises :class:`~ingest.errors.MissingColumnError` or
    :class:`~ingest.errors.SourceError` before any row is read.
    """

    columns: list[str]
    """The header as read (names stripped of surrounding spaces)."""
    path: Path | None
    """The CSV file, or ``None`` for an iterable source."""
    dataset_id: str | None

    def __init__(
        self,
        source: Source,
        *,
        dataset_id: str | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        counting: bool = False,
        concept_ids: str = "ids",
        chunk_size: int = CHUNK_SIZE,
        group: bool = False,
        tmp_dir: str | os.PathLike[str] | None = None,
        report: Report | None = None,
    ) -> None:
        self._chunk_size = chunk_size
        self._group = group
        self._tmp_dir = tmp_dir
        self._report = report if report is not None else Report()
        self._grouper: DiskGrouper | None = None
        self._header_line = 1
        self._counting = counting
        self._concept_ids = concept_ids
        if dataset_id is not None and not ids.is_valid_id(dataset_id):
            raise ConfigError(
                f"dataset id {dataset_id!r} is not valid: "
                "use only A-Z, a-z, 0-9, '_' and '-', 1 to 128 characters"
            )
        self.dataset_id = dataset_id
        self.columns = []
        self._source = source
        self._validator: Validator | None = None
        self._chunks: AsyncIterator[Chunk] | None = None
        self._pending: list[Record] = []
        self._pending_dirty = False
        self._grouped_dirty = False
        self._sync: Iterator[Mapping[str, object]] | None = None
        self._async: AsyncIterator[Mapping[str, object]] | None = None
        self._first: Mapping[str, object] | None = None
        self._opened = False
        self._used = False
        if isinstance(source, (str, os.PathLike)):
            self.path = Path(source)
            self._base = Path(base_dir) if base_dir is not None else self.path.parent
        else:
            self.path = None
            self._base = Path(base_dir) if base_dir is not None else Path(".")

    # -- opening ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._opened:
            raise RuntimeError("a RowSource can be opened only once")
        self._opened = True
        try:
            if self.path is not None:
                await self._open_file(self.path)
            else:
                await self._open_iterable()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def aclose(self) -> None:
        """Close the file and remove any temp files (idempotent)."""
        grouper, self._grouper = self._grouper, None
        if grouper is not None:
            grouper.close()
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            await chunks.aclose()  # type: ignore[attr-defined]
        agen, self._async = self._async, None
        if agen is not None and hasattr(agen, "aclose"):
            await agen.aclose()

    async def _open_file(self, path: Path) -> None:
        shown = str(path)
        chunks = self._chunks = read_chunks(path, chunk_size=self._chunk_size)
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
                self._validator = Validator(
                    self.columns,
                    path=shown,
                    base_dir=self._base,
                    counting=self._counting,
                    concept_ids=self._concept_ids,
                )
                self._pending = records[i + 1 :]
                self._pending_dirty = chunk.dirty
                return
        raise SourceError(
            f"{shown}: the file is empty; expected a header line naming the columns "
            "url (or file), left_col, top_row, right_col, bottom_row"
        )

    async def _open_iterable(self) -> None:
        source = self._source
        first: Mapping[str, object] | None = None
        if isinstance(source, AsyncIterable):
            self._async = aiter(source)
            try:
                first = await anext(self._async)
            except StopAsyncIteration:
                first = None
        elif isinstance(source, Iterable):
            sync = iter(cast("Iterable[Mapping[str, object]]", source))
            self._sync = sync
            first = next(sync, None)
        else:
            raise SourceError(
                f"cannot read rows from a {type(source).__name__}: "
                "give a CSV path or an iterable of mappings"
            )
        if first is None:
            return  # no rows: nothing to check, nothing to send
        if not isinstance(first, Mapping):
            raise SourceError(
                f"rows must be mappings of column name to value, not {type(first).__name__}"
            )
        self._first = first
        self.columns = [str(k) for k in first]
        self._validator = Validator(
            self.columns, path=None, base_dir=self._base, concept_ids=self._concept_ids
        )

    # -- rows ------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Row | InvalidRow]:
        if self._used:
            raise RuntimeError("a RowSource can be iterated only once")
        self._used = True
        return self._rows()

    async def _rows(self) -> AsyncIterator[Row | InvalidRow]:
        if not self._opened:
            async with self:
                async for item in self._iterate():
                    yield item
        else:
            async for item in self._iterate():
                yield item

    async def _iterate(self) -> AsyncIterator[Row | InvalidRow]:
        if self.path is not None:
            async for batch in self.batches():
                for item in batch:
                    yield item
            return
        validator = self._validator
        if validator is None:
            return
        columns = validator.columns
        check = validator.check
        line = 2
        if self._first is not None:
            first, self._first = self._first, None
            yield _check_mapping(check, line, first, columns)
        if self._sync is not None:
            for row in self._sync:
                line += 1
                yield _check_mapping(check, line, row, columns)
        elif self._async is not None:
            async for row in self._async:
                line += 1
                yield _check_mapping(check, line, row, columns)

    @property
    def header_line(self) -> int:
        """The line of a CSV file's header (blank lines may come before it)."""
        return self._header_line

    @property
    def validator(self) -> Validator | None:
        """The header's validator (``None`` before opening or for an empty iterable)."""
        return self._validator

    async def batches(self) -> AsyncIterator[list[Row | InvalidRow]]:
        """The rows of a CSV source, one list per chunk read (faster than one by one)."""
        validator = self._validator
        if validator is None or self._chunks is None:
            return
        columns = validator.columns
        check = validator.check
        if self._group and self.path is not None:
            started = time.monotonic()
            report = self._report
            report.phase = "scanning"
            scan = await scan_order(
                self.path, validator.image_index, validator.id_index, header_line=self.header_line
            )
            report.rows_total = scan.records
            if not scan.grouped:
                report.phase = "grouping"
                grouper = await self._group_on_disk(scan.size, validator)
                report.grouped = True
                report.grouping_temp_bytes = grouper.bytes_written
            report.grouping_s = time.monotonic() - started
            report.phase = ""
            if not scan.grouped:
                async for batch in self._grouped(validator):
                    yield batch
                return
        pending, self._pending = self._pending, []
        if pending:
            yield _validate(pending, self._pending_dirty, check, columns)
        async for chunk in self._chunks:
            yield _validate(chunk.records, chunk.dirty, check, columns)

    async def _group_on_disk(self, size: int, validator: Validator) -> DiskGrouper:
        """Read the rest of the file into a :class:`DiskGrouper` (records, not rows)."""
        image_i, id_i = validator.image_index, validator.id_index

        def key(record: Record) -> str:
            return image_key(record[1], image_i, id_i)

        grouper = self._grouper = DiskGrouper(
            self._tmp_dir, expected_bytes=size, key=key, what=f"the rows of {self.path}"
        )
        add = grouper.add
        dirty = self._pending_dirty
        pending, self._pending = self._pending, []
        for record in pending:
            if record[1] or record[2]:
                add(record)
        assert self._chunks is not None
        async for chunk in self._chunks:
            dirty = dirty or chunk.dirty
            for record in chunk.records:
                if record[1] or record[2]:
                    add(record)
        self._grouped_dirty = dirty
        grouper.seal()
        return grouper

    async def _grouped(self, validator: Validator) -> AsyncIterator[list[Row | InvalidRow]]:
        """The grouped records, validated, a few thousand rows per list."""
        grouper = self._grouper
        assert grouper is not None
        check, columns, dirty = validator.check, validator.columns, self._grouped_dirty
        batch: list[Record] = []
        for group in grouper.groups():
            batch.extend(group)
            if len(batch) >= _GROUPED_BATCH:
                yield _validate(batch, dirty, check, columns)
                batch = []
        if batch:
            yield _validate(batch, dirty, check, columns)
        self._grouper = None
        grouper.close()


_GROUPED_BATCH = 2048
"""Rows per list handed on from grouped records (about one chunk of the file)."""


def _validate(
    records: list[Record],
    dirty: bool,
    check: Check,
    columns: list[str],
) -> list[Row | InvalidRow]:
    out: list[Row | InvalidRow] = []
    append = out.append
    for line, cells, problem in records:
        if problem:
            append(InvalidRow(line, "", problem, dict(zip(columns, cells, strict=False))))
        elif cells:
            item = check(line, cells, dirty)
            if item is not None:  # None: a valid row tallied by a counting validator
                append(item)
    return out


def _check_mapping(check: Check, line: int, row: object, columns: list[str]) -> Row | InvalidRow:
    if not isinstance(row, Mapping):
        reason = f"the row is a {type(row).__name__}, not a mapping of column name to value"
        return InvalidRow(line, "", reason, {})
    cells = []
    for name in columns:
        v = row.get(name)
        cells.append(v if isinstance(v, str) else "" if v is None else str(v))
    # one search over the row instead of one per cell: most rows are clean text
    return check(line, cells, bad_text("\x1f".join(cells)) != "")
