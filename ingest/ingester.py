"""The entry points: :class:`Ingester` for async services, :func:`run` for scripts."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, Generic, Self, TypeVar

import anyio
from anyio.abc import AsyncResource
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.client import Client, describe
from ingest.config import Config
from ingest.errors import ClarifaiError, ConfigError, InvalidRowsError, SourceError, first_error
from ingest.model import Outcome
from ingest.pipeline import Tallies, run_pipeline
from ingest.plan import Plan, make_plan
from ingest.report import Report, RunFigures
from ingest.source import DatasetPath, RowSource, Source, SourceStats, open_rows, validate_path
from ingest.verify import Difference, VerifyReport, check_rows

__all__ = ["Differences", "Ingester", "Outcomes", "Source", "run"]

_T = TypeVar("_T")


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
        self._report = Report()
        self._run: _Run | None = None
        self._open = False

    @property
    def report(self) -> Report:
        """The last run's report: live while the run goes on (brought up to date at each
        read), final once it has ended."""
        if self._run is not None:
            self._run.assemble(self._report)
        return self._report

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
        self._check_open()
        config = self.config
        rows = self.open(source, base_dir=base_dir)
        report = self._report = Report()
        run = self._run = _Run(self.client, rows.stats)

        async def strict() -> None:
            if config.strict:
                await _strict(rows)

        work = partial(run_pipeline, self.client, config, rows, run.tallies, skip=skip)
        try:
            async with self._flowing(rows, work, config.batch_size, before=strict) as receive:
                yield Outcomes(receive)
        finally:
            run.assemble(report)
            self._run = None  # the report is final

    @asynccontextmanager
    async def verify(
        self,
        source: Source | RowSource,
        *,
        strict: bool = False,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> AsyncIterator[Differences]:
        """Compare ``source`` with what the app holds; yield the differences as found.

        Read-only: it reads each image's input (``ListInputs`` by ids, 128 at a time) and
        its annotations (``ListAnnotations``, paged) and compares them with what an upload
        of the rows would store (:mod:`ingest.verify`). Every row that differs ends as one
        :class:`~ingest.verify.Difference` (with the row's cells, to send it again), and so
        does every annotation, concept or metadata key the app holds and the data does not
        have (an *extra*; a difference only with ``strict``). ``differences.report`` is the
        :class:`~ingest.verify.VerifyReport`, live, final once the stream has ended.

        ``source`` is a data path (a file or dataset folder, read as :meth:`open` reads
        it: a scattered file is grouped on disk first) or a source :meth:`open` made;
        rows from an iterable are refused (an image's rows must all be at hand).
        """
        self._check_open()
        config = self.config
        rows = self.open(source, base_dir=base_dir)
        if rows.needs_window:
            raise ConfigError(
                "verify reads a data path (a file or a dataset folder): rows from an iterable "
                "may split an image's rows, which must all be at hand to compare them; write "
                "them to a CSV first"
            )
        report = VerifyReport(strict=strict)
        run = _Run(self.client, rows.stats)
        work = partial(check_rows, self.client, config, rows, report)
        try:
            async with self._flowing(rows, work, config.check_batch_size) as receive:
                yield Differences(receive, run, report)
        finally:
            run.record(report)

    async def plan(
        self,
        source: str | os.PathLike[str],
        *,
        check_existing: bool = False,
        dataset_version: bool = False,
    ) -> Plan:
        """Check, before an upload of ``source``, that it could start, and estimate it.

        Read-only, a few calls (:mod:`ingest.plan`): the credentials, the key's scopes, the
        app, the datasets; the data's counts from ``validate``'s counting pass, whether its
        rows are grouped on disk first; with ``check_existing``, how many of its images the
        app holds (one ``ListInputs`` per 128 images); the requests and time at
        ``Config.rps``. ``dataset_version``: the upload will make a dataset version at the
        end. ``plan.ready`` says whether an upload could start, ``plan.problems`` why not.
        A file that cannot be read raises, as for an upload.
        """
        self._check_open()
        data = DatasetPath.of(source)
        if not check_existing:
            return await make_plan(self.client, self.config, data, dataset_version=dataset_version)
        async with self.open(data) as rows:
            return await make_plan(
                self.client, self.config, data, rows, dataset_version=dataset_version
            )

    async def create_dataset_version(self, dataset_id: str, *, description: str = "") -> str:
        """Make a version of the dataset ``dataset_id`` (the SDK's ``Dataset.create_version``:
        a snapshot of its inputs and annotations, what a model is trained and evaluated on)
        and return its id.

        The id is chosen here, so that the call sent again after a lost reply finds the
        version it made rather than making a second one. Clarifai computes a version after
        answering (``status`` DATASET_VERSION_PENDING, then READY): read it with
        ``GetDatasetVersion`` before using it.
        """
        self._check_open()
        version_id = uuid.uuid4().hex
        request = service_pb2.PostDatasetVersionsRequest(dataset_id=dataset_id)
        request.dataset_versions.add(id=version_id, description=description)
        reply = await self.client.call("PostDatasetVersions", request)
        status = reply.status
        if status.code == sc.SUCCESS or (
            status.code == sc.DATABASE_DUPLICATE_KEY and version_id in status.details
        ):
            return version_id
        missing = (
            "the dataset (or the app) does not exist; "
            if status.code == sc.CONN_DOES_NOT_EXIST
            else ""
        )
        raise ClarifaiError(
            f"no version of dataset {dataset_id!r} made: {missing}Clarifai answers "
            f"{describe(status)}",
            code=status.code,
            description=status.description,
        )

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError(
                "use 'async with Ingester(config)' before stream(), run(), verify() or plan()"
            )

    @asynccontextmanager
    async def _flowing(
        self,
        rows: RowSource,
        work: Callable[[MemoryObjectSendStream[list[_T]]], Coroutine[Any, Any, None]],
        batch: int,
        *,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[MemoryObjectReceiveStream[list[_T]]]:
        """Run ``work`` over ``rows`` (opened here unless they are) while the block runs;
        it sends its results in lists on the stream yielded. Leaving the block early
        cancels it; the first error of the task group is raised as itself."""
        depth = max(2, self.config.queue_size // batch)
        send, receive = anyio.create_memory_object_stream[list[_T]](depth)
        try:
            async with AsyncExitStack() as opened:
                if not rows.opened:
                    await opened.enter_async_context(rows)
                if before is not None:
                    await before()
                async with anyio.create_task_group() as tg, receive:
                    tg.start_soon(work, send)
                    try:
                        yield receive
                    finally:
                        if not _drained(receive):
                            tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        finally:
            send.close()  # also when opening the source failed and no task took them
            receive.close()


class _Results(Generic[_T]):
    """Results as they come: ``async for item in results``; :meth:`batches` gives them a list
    at a time, as they are produced."""

    def __init__(self, receive: MemoryObjectReceiveStream[list[_T]]) -> None:
        self._receive = receive

    def batches(self) -> MemoryObjectReceiveStream[list[_T]]:
        return self._receive

    async def __aiter__(self) -> AsyncIterator[_T]:
        async for batch in self._receive:
            for item in batch:
                yield item


class Outcomes(_Results[Outcome]):
    """The outcomes of a run as they land: ``async for outcome in outcomes``.

    :meth:`batches` gives them a list at a time, as the stages produce them.
    """


class Differences(_Results[Difference]):
    """The differences of a verification as they are found: ``async for d in differences``;
    :attr:`report` is the verification's report (live)."""

    def __init__(
        self, receive: MemoryObjectReceiveStream[list[Difference]], run: _Run, report: VerifyReport
    ) -> None:
        super().__init__(receive)
        self._run = run
        self._report = report

    @property
    def report(self) -> VerifyReport:
        """The report so far (brought up to date at each read), final once the stream ended."""
        self._run.record(self._report)
        return self._report


async def _strict(rows: RowSource) -> None:
    """``Config.strict``: nothing is sent unless ingest reads everything the data holds
    and every row is valid (the data is read once more, to the end, to know)."""
    if rows.dataset is None:
        raise ConfigError("Config.strict needs a file path: it reads the file twice")
    if rows.stats.warnings:
        raise SourceError(
            f"{rows.stats.warnings[0]}; nothing sent (strict mode refuses what it would not "
            "upload: Config.strict)"
        )
    summary = await validate_path(rows.dataset)
    if summary.invalid:
        raise InvalidRowsError(len(summary.invalid), summary.invalid[0].message())


def _drained(receive: MemoryObjectReceiveStream[Any]) -> bool:
    stats = receive.statistics()
    return stats.open_send_streams == 0 and stats.current_buffer_used == 0


class _Run:
    """What one run's report is made of: what the source says of its read, the stages'
    tallies and the client's counts since the run began. :meth:`assemble` is the one place
    the report is written."""

    def __init__(self, client: Client, source: SourceStats) -> None:
        self.client = client
        self.source = source
        self.tallies = Tallies()
        s = client.stats
        self._before = (s.requests, s.throttled, s.retries, dict(s.by_method))

    def record(self, report: RunFigures) -> None:
        """What the source says of its read and the client's counts since the run began."""
        report.take_read(self.source)
        s, before = self.client.stats, self._before
        report.requests = s.requests - before[0]
        report.throttled = s.throttled - before[1]
        report.retries = s.retries - before[2]
        report.requests_by_method = {
            k: v - before[3].get(k, 0) for k, v in s.by_method.items() if v - before[3].get(k, 0)
        }
        report.elapsed_s = time.monotonic() - report.started

    def assemble(self, report: Report) -> None:
        self.record(report)
        t = self.tallies
        read, rows = t.read, t.rows
        report.rows_read = read.rows
        report.rows_invalid = read.invalid
        report.rows_resumed = read.resumed
        report.images = read.images
        report.rows_landed = rows.landed
        report.rows_present = rows.present
        report.rows_failed = rows.failed
        report.inputs_created = t.create.new
        report.inputs_existing = t.create.existing
        report.inputs_processed = t.processing.new
        report.inputs_patched = t.patch.new
        report.inputs_failed = t.create.failed + t.processing.failed + t.patch.failed
        report.annotations_created = t.annotate.new
        report.annotations_existing = t.annotate.existing
        report.annotations_failed = t.annotate.failed


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
