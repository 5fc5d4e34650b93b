"""Rows given as mappings: :class:`IterableSource` and :class:`AsyncIterableSource`.

Each row is a mapping of column name to value (``str``; ``None`` counts as empty, other
values are converted with ``str``); the first row's keys are the header. Rows are
numbered as if written below a header: the first row is line 2. ``file`` cells are
relative to ``base_dir`` (default: the current folder).

An iterable cannot be sorted, so the rows of one image may come apart: these sources
say so (``needs_window``) and the pipeline gathers an image's rows within a window. A
plain iterable is read a thousand rows at a time; an async one row by row (it may
trickle: a row waits for no other).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ingest.errors import SourceError
from ingest.model import InvalidRow, Row

from .base import SourceBase
from .csvstream import bad_text
from .validate import Validator

__all__ = ["AsyncIterableSource", "IterableSource"]

_BATCH = 1024
"""Rows of a plain iterable per list."""


class _MappingSource(SourceBase):
    """What both kinds share: the header from the first row, and checking a mapping."""

    def __init__(self, *, base_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(None, Path(base_dir) if base_dir is not None else Path("."))
        self._validator: Validator | None = None
        self._first: Mapping[str, object] | None = None

    @property
    def needs_window(self) -> bool:
        return True

    def _header(self, first: object) -> None:
        """Read the header from the first row (``None``: no rows, nothing to check)."""
        if first is None:
            return
        if not isinstance(first, Mapping):
            raise SourceError(
                f"rows must be mappings of column name to value, not {type(first).__name__}"
            )
        self._first = first
        self.columns = [str(k) for k in first]
        self._validator = Validator(self.columns, path=None, base_dir=self.base_dir)
        self._unknown_columns(None)

    def _check(self, line: int, row: object) -> Row | InvalidRow:
        validator = self._validator
        assert validator is not None
        if not isinstance(row, Mapping):
            reason = f"the row is a {type(row).__name__}, not a mapping of column name to value"
            return InvalidRow(line, "", reason, {})
        cells = []
        for name in validator.columns:
            v = row.get(name)
            cells.append(v if isinstance(v, str) else "" if v is None else str(v))
        # one search over the row instead of one per cell: most rows are clean text
        item = validator.check(line, cells, bad_text("\x1f".join(cells)) != "")
        return item

    def _take_first(self) -> Row | InvalidRow | None:
        first, self._first = self._first, None
        return None if first is None else self._check(2, first)


class IterableSource(_MappingSource):
    """The rows of a plain iterable of mappings (see the module docs)."""

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(base_dir=base_dir)
        self._rows_in: Iterable[Mapping[str, Any]] = rows
        self._it: Iterator[Mapping[str, Any]] | None = None

    async def _open(self) -> None:
        self._it = iter(self._rows_in)
        self._header(next(self._it, None))

    async def batches(self) -> AsyncIterator[list[Row | InvalidRow]]:
        first = self._take_first()
        if first is None or self._it is None:
            return
        batch = [first]
        check = self._check
        line = 2
        for row in self._it:
            line += 1
            batch.append(check(line, row))
            if len(batch) >= _BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


class AsyncIterableSource(_MappingSource):
    """The rows of an async iterable of mappings, handed on as each arrives."""

    def __init__(
        self,
        rows: AsyncIterable[Mapping[str, Any]],
        *,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(base_dir=base_dir)
        self._rows_in: AsyncIterable[Mapping[str, Any]] = rows
        self._it: AsyncIterator[Mapping[str, Any]] | None = None

    async def _open(self) -> None:
        it = self._it = aiter(self._rows_in)
        try:
            first: Mapping[str, Any] | None = await anext(it)
        except StopAsyncIteration:
            first = None
        self._header(first)

    async def aclose(self) -> None:
        it, self._it = self._it, None
        if it is not None and hasattr(it, "aclose"):
            await it.aclose()

    async def batches(self) -> AsyncIterator[list[Row | InvalidRow]]:
        first = self._take_first()
        if first is None or self._it is None:
            return
        yield [first]
        check = self._check
        line = 2
        async for row in self._it:
            line += 1
            yield [check(line, row)]
