"""What every source is: the :class:`RowSource` protocol, and what all sources share.

A source is opened once (``async with``: the header or the dataset's description is
read and checked there, before any row), then read once, a list of rows at a time::

    async with open_rows("boxes.csv") as src:     # header read and checked here
        async for batch in src.batches():         # lists of Row | InvalidRow
            ...

(``async for item in src`` gives the same rows one by one). Every kind of source
answers the same questions: its ``columns`` (the failures file's header), whether the
pipeline must gather an image's rows in a window (``needs_window``: rows from an
iterable may come in any order; a file's come grouped by image), the files the rows come
from (:meth:`RowSource.fingerprint`, for the resume journal), and what it has to say
about its read (:class:`SourceStats`: totals, phase, the grouping's cost, notes and
warnings), live: the ingester copies it into its report as it changes.

A new kind of source is a class with these members; :class:`SourceBase` gives the
opening and iteration rules all of them share.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeAlias, runtime_checkable

from anyio.abc import AsyncResource

from ingest.model import InvalidRow, Row
from ingest.report import ReadFigures

from .columns import unknown_columns, unknown_warning
from .fingerprint import FileList
from .formats import DatasetPath, FormatOptions

__all__ = ["RowSource", "Source", "SourceBase", "SourceStats"]

Source: TypeAlias = (
    "str | os.PathLike[str] | Iterable[Mapping[str, str]] | AsyncIterable[Mapping[str, str]]"
)
"""What :func:`~ingest.source.open_rows` takes: a data path, or rows as mappings."""


@dataclass(slots=True)
class SourceStats(ReadFigures):
    """What a source says about its read (:class:`~ingest.report.ReadFigures`), kept up to
    date while it reads.

    Sources change it through :meth:`update`, :meth:`note` and :meth:`warn` (a reader
    working in a thread, from that thread); the ingester reads it into its report
    whenever the report is read.
    """

    warnings: list[str] = field(default_factory=list)
    """What the data holds that is not uploaded (a column ingest does not read...):
    ``strict`` refuses a source with any."""

    def update(self, **changes: Any) -> None:
        """Set fields."""
        for name, value in changes.items():
            setattr(self, name, value)

    def note(self, text: str) -> None:
        """Add a note (once)."""
        if text not in self.notes:
            self.notes.append(text)

    def warn(self, text: str) -> None:
        """Add a warning (once); it is a note too."""
        if text not in self.warnings:
            self.warnings.append(text)
            self.notes.append(text)


@runtime_checkable
class RowSource(Protocol):
    """An open source of validated rows (see the module docs)."""

    columns: list[str]
    """The header as read (names stripped of surrounding spaces); empty before opening."""
    dataset: DatasetPath | None
    """The data path and the options it is read with; ``None`` for an iterable."""
    base_dir: Path
    """The folder ``file`` cells are relative to."""
    stats: SourceStats

    @property
    def path(self) -> Path | None:
        """The data path (a file or a folder), or ``None`` for an iterable."""
        ...

    @property
    def needs_window(self) -> bool:
        """True when one image's rows may come apart: the pipeline gathers them."""
        ...

    @property
    def opened(self) -> bool:
        """True once ``async with`` has begun."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None: ...

    def batches(self) -> AsyncIterator[list[Row | InvalidRow]]:
        """The rows, in lists (in file order, or every image's rows together)."""
        ...

    def __aiter__(self) -> AsyncIterator[Row | InvalidRow]: ...

    def fingerprint(self) -> dict[str, Any]:
        """Names, sizes and modification times of every file the rows come from."""
        ...


class SourceBase(AsyncResource):
    """Opened once, read once: the rules every source follows.

    Subclasses implement :meth:`_open` (read and check what must be known before any
    row; set ``columns``), :meth:`batches` and, when they hold files or tasks,
    :meth:`aclose`.
    """

    format_name: ClassVar[str] = ""
    """The format's name (``csv``, ``coco``...; empty for an iterable)."""
    describe: ClassVar[str] = ""
    """What the source reads, in words: "a CSV file", "a COCO JSON file"..."""
    options_read: ClassVar[frozenset[str]] = frozenset()
    """The :class:`~ingest.source.formats.FormatOptions` fields this kind reads (any
    other one given is a warning: it would not be used)."""

    def __init__(self, dataset: DatasetPath | None, base_dir: Path) -> None:
        self.columns: list[str] = []
        self.dataset = dataset
        self.base_dir = base_dir
        self.stats = SourceStats()
        self._opened = False
        self._used = False

    @property
    def path(self) -> Path | None:
        return self.dataset.path if self.dataset is not None else None

    @property
    def needs_window(self) -> bool:
        return False

    @property
    def opened(self) -> bool:
        return self._opened

    async def __aenter__(self) -> Self:
        if self._opened:
            raise RuntimeError("a source can be opened only once")
        self._opened = True
        self._unused_options()
        try:
            await self._open()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def _open(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close files and remove temp files (idempotent)."""

    def batches(self) -> AsyncIterator[list[Row | InvalidRow]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __aiter__(self) -> AsyncIterator[Row | InvalidRow]:
        if self._used:
            raise RuntimeError("a source can be iterated only once")
        self._used = True
        return self._rows()

    async def _rows(self) -> AsyncIterator[Row | InvalidRow]:
        async with AsyncExitStack() as stack:
            if not self._opened:  # iterated without ``async with``: opened and closed here
                await stack.enter_async_context(self)
            async for batch in self.batches():
                for item in batch:
                    yield item

    def _unused_options(self) -> None:
        """Warn of each format option given that this kind of source does not read."""
        if self.dataset is None:
            return
        given, default = self.dataset.options, FormatOptions()
        for option in fields(FormatOptions):
            name = option.name
            if name == "format" or name in self.options_read:
                continue
            if getattr(given, name) != getattr(default, name):
                flag = "--" + name.replace("_", "-")
                self.stats.warn(f"{flag} does not apply to {self.describe}; it is not used")

    def _unknown_columns(self, shown: str | None) -> None:
        """Warn of each header cell ingest does not read (``shown``: the file, if any)."""
        for position, name in unknown_columns(self.columns):
            self.stats.warn(unknown_warning(position, name, shown))

    def fingerprint(self) -> dict[str, Any]:
        files = FileList()
        for p in self._files():
            files.add(p)
        return files.fingerprint(self.format_name)

    def _files(self) -> Iterator[Path]:
        """The files the rows come from (the data file itself, unless a reader says more)."""
        if self.path is not None:
            yield self.path
