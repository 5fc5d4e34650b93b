"""The entry points: :class:`Ingester` for async services, :func:`run` for scripts."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, Self

import anyio
from anyio.abc import AsyncResource
from anyio.streams.memory import MemoryObjectReceiveStream

from ingest.client import Client
from ingest.config import Config
from ingest.errors import ConfigError, InvalidRowsError, SourceError, first_error
from ingest.model import Outcome
from ingest.pipeline import run_pipeline
from ingest.report import Report
from ingest.source import RowSource, Source, SourceStats, open_rows, validate_path

__all__ = ["Ingester", "Outcomes", "Source", "run"]


class Ingester(AsyncResource):
    """Uploads rows into one Clarifai app over one channel.

    ::

        async with Ingester(Config.from_env(app_id="my-app")) as ing:
            report = await ing.run("boxes.csv")

    or, to see each row's outcome as it lands::

        async with Ingester(config) as ing, ing.stream(rows) as outcomes:
            async for outcome in outcomes:
                ...

    or, to read what the source says (columns, files, notes) before sending it::

        async with ing.open("boxes.csv") as rows:
            ...
            async with ing.stream(rows) as outcomes:
                ...

    Installs no signal handlers: cancel the surrounding task to stop it.
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else Config.from_env()
        self.client = Client(self.config)
        self.report = Report()
        self._open = False

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        self._open = True
        return self

    async def aclose(self) -> None:
        """Close the channel (``async with`` does it on leaving the block)."""
        self._open = False
        await self.client.aclose()

    def open(
        self, source: Source | RowSource, *, base_dir: str | os.PathLike[str] | None = None
    ) -> RowSource:
        """``source`` as this ingester reads it: a file's rows grouped by image (on disk
        under ``Config.tmp_dir`` when scattered). Enter it (``async with``: the header
        is read and checked there) to read its ``columns``, ``stats`` and files, then
        hand it to :meth:`stream`; it is read once, by the stream. A source already
        made is returned as it is."""
        if isinstance(source, RowSource):
            return source
        return open_rows(source, base_dir=base_dir, group=True, tmp_dir=self.config.tmp_dir)

    async def run(
        self,
        source: Source | RowSource,
        *,
        skip: Callable[[int], bool] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> Report:
        """Upload every row of ``source`` and return the report (see :meth:`stream`)."""
        async with self.stream(source, skip=skip, base_dir=base_dir) as outcomes:
            async for _ in outcomes.batches():
                pass
        return self.report

    @asynccontextmanager
    async def stream(
        self,
        source: Source | RowSource,
        *,
        skip: Callable[[int], bool] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> AsyncIterator[Outcomes]:
        """Start uploading ``source``; yield the per-row outcomes as they land.

        The upload runs while the block runs; leaving the block early cancels it.
        ``self.report`` is complete once the stream has ended. A missing column or
        an unreadable file raises before any request; ``skip(line)`` leaves out rows
        an earlier run already finished. ``base_dir`` is the folder relative ``file``
        paths are read from (default: a CSV's own folder, the current one for an
        iterable). ``source`` may be one :meth:`open` made, entered or not: the source
        is opened once either way (and closed here only if it was opened here).
        """
        if not self._open:
            raise RuntimeError("use 'async with Ingester(config)' before stream() or run()")
        config = self.config
        rows = self.open(source, base_dir=base_dir)
        report = self.report = Report()
        rows.stats.on_change = partial(_source_into, report)
        _source_into(report, rows.stats)
        before = _snapshot(self.client)
        depth = max(2, config.queue_size // config.batch_size)
        send, receive = anyio.create_memory_object_stream[list[Outcome]](depth)
        try:
            async with AsyncExitStack() as opened:
                if not rows.opened:
                    await opened.enter_async_context(rows)
                if config.strict:
                    await _strict(rows)
                async with anyio.create_task_group() as tg, receive:
                    tg.start_soon(
                        partial(run_pipeline, skip=skip), self.client, config, rows, report, send
                    )
                    try:
                        yield Outcomes(receive)
                    finally:
                        if not _drained(receive):
                            tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        finally:
            send.close()  # also when opening the source failed and no task took them
            receive.close()
            rows.stats.on_change = None
            _source_into(report, rows.stats)
            _finish(report, self.client, before)


class Outcomes:
    """The outcomes of a run as they land: ``async for outcome in outcomes``.

    :meth:`batches` gives them a list at a time, as the stages produce them.
    """

    def __init__(self, receive: MemoryObjectReceiveStream[list[Outcome]]) -> None:
        self._receive = receive

    def batches(self) -> MemoryObjectReceiveStream[list[Outcome]]:
        return self._receive

    async def __aiter__(self) -> AsyncIterator[Outcome]:
        async for batch in self._receive:
            for outcome in batch:
                yield outcome


async def _strict(rows: RowSource) -> None:
    """``Config.strict``: nothing is sent unless ingest reads everything the data holds
    and every row is valid (the data is read once more, to the end, to know)."""
    if rows.dataset is None:
        raise ConfigError("strict mode needs a file path: it reads the file twice")
    if rows.stats.warnings:
        raise SourceError(
            f"{rows.stats.warnings[0]}; nothing sent (strict mode refuses what it would not "
            "upload: Config.strict)"
        )
    summary = await validate_path(rows.dataset)
    if summary.invalid:
        raise InvalidRowsError(len(summary.invalid), summary.invalid[0].message())


def _source_into(report: Report, stats: SourceStats) -> None:
    """What the source says about its read, copied into the report (live)."""
    report.phase = stats.phase
    report.rows_total = stats.rows_total
    report.images_total = stats.images_total
    report.grouped = stats.grouped
    report.grouping_s = stats.grouping_s
    report.grouping_temp_bytes = stats.grouping_temp_bytes
    report.notes.extend(note for note in stats.notes if note not in report.notes)


def _drained(receive: MemoryObjectReceiveStream[list[Outcome]]) -> bool:
    stats = receive.statistics()
    return stats.open_send_streams == 0 and stats.current_buffer_used == 0


def _snapshot(client: Client) -> tuple[int, int, int, dict[str, int]]:
    s = client.stats
    return s.requests, s.throttled, s.retries, dict(s.by_method)


def _finish(report: Report, client: Client, before: tuple[int, int, int, dict[str, int]]) -> None:
    s = client.stats
    report.requests = s.requests - before[0]
    report.throttled = s.throttled - before[1]
    report.retries = s.retries - before[2]
    report.requests_by_method = {
        k: v - before[3].get(k, 0) for k, v in s.by_method.items() if v - before[3].get(k, 0)
    }
    report.elapsed_s = time.monotonic() - report.started


def run(source: Source, config: Config | None = None, **options: Any) -> Report:
    """Upload ``source`` and return the report; blocks (for scripts and the CLI).

    ``options`` are :class:`Config` fields. Without ``config`` the SDK's environment
    variables fill what they leave out (:meth:`Config.from_env`); with ``config`` they
    override its fields (:meth:`Config.with_options`, validated again). Either way an
    option given as None counts as not given.
    """
    if config is None:
        cfg = Config.from_env(**options)
    else:
        cfg = config.with_options(**{k: v for k, v in options.items() if v is not None})

    async def main() -> Report:
        async with Ingester(cfg) as ing:
            return await ing.run(source)

    return anyio.run(main, backend="asyncio")
