"""One write task: the library's pipeline over one partition, on an executor.

The task runs ``Ingester(config)`` over its rows (``anyio.run`` on the asyncio backend)
with its share of the app's request budget, and returns a :class:`TaskResult`: the
task's report and its failed rows, small and picklable, which Spark carries back to
the driver as the task's commit message.

A retried or speculative attempt of the same partition sends the same rows with the
same ids (derived from the data): what an earlier attempt already stored is found
present, never stored twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pyarrow as pa

from ingest.config import Config
from ingest.errors import IngestError
from ingest.ingester import Ingester
from ingest.model import Status

from .options import SparkOptions, slots_from_conf
from .rows import arrow_chunks

try:  # Spark 4: the data source API's base class of commit messages
    from pyspark.sql.datasource import WriterCommitMessage
except ImportError:  # pragma: no cover - Spark 3.5 has no Python data sources

    class WriterCommitMessage:  # type: ignore[no-redef]
        """Stand-in base class where Spark has no Python data sources."""


__all__ = ["FailedRow", "TaskResult", "run_chunks", "run_partition"]


@dataclass(frozen=True, slots=True)
class FailedRow:
    """A row that did not reach the service, and why."""

    partition: int
    line: int
    """The row's 1-based position among its partition's rows, as the task read them."""
    error: str
    cells: dict[str, str] = field(default_factory=dict)
    """The row's cells as the task read them (text), by column name."""


@dataclass(frozen=True)
class TaskResult(WriterCommitMessage):
    """What one write task did: its report (``Report.to_dict()``) and its failed rows."""

    partition: int
    attempt: int
    tasks: int
    """Tasks the budget was split across."""
    rps: float
    """This task's share of the request budget."""
    report: dict[str, Any]
    failures: tuple[FailedRow, ...] = ()
    cpu_s: float = 0.0
    """CPU seconds of the task's Python worker (conversion and pipeline, all threads)."""


def task_context() -> tuple[int, int, Any]:
    """(partition, attempt, local property getter) of the running task."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is None:
        return 0, 0, lambda key: None
    return ctx.partitionId(), ctx.attemptNumber(), ctx.getLocalProperty


def run_partition(batches: Iterator[pa.RecordBatch], options: SparkOptions) -> TaskResult:
    """Upload one partition's rows (Arrow record batches): see :func:`run_chunks`."""
    return run_chunks(arrow_chunks(batches), options)


def run_chunks(chunks: Iterator[list[dict[str, str]]], options: SparkOptions) -> TaskResult:
    """Upload one partition's rows, given as lists of mappings; raise only when
    nothing could be sent at all (credentials, a missing column)."""
    cpu = time.process_time()
    partition, attempt, prop = task_context()
    tasks = options.tasks or slots_from_conf(prop) or 1
    try:
        config = options.config(tasks)
        report, failures = anyio.run(
            _upload, config, chunks, partition, options.base_dir, backend="asyncio"
        )
    except Exception as exc:
        raise _scrub(exc, options.token) from None
    return TaskResult(
        partition=partition,
        attempt=attempt,
        tasks=tasks,
        rps=config.rps,
        report=report,
        failures=tuple(failures),
        cpu_s=time.process_time() - cpu,
    )


async def _upload(
    config: Config,
    chunks: Iterator[list[dict[str, str]]],
    partition: int,
    base_dir: str | None,
) -> tuple[dict[str, Any], list[FailedRow]]:
    failures: list[FailedRow] = []
    async with (
        Ingester(config) as ing,
        ing.stream(_rows(chunks), base_dir=base_dir) as outcomes,
    ):
        async for batch in outcomes.batches():
            for o in batch:
                if o.status is Status.FAILED:
                    # the reader numbers rows of an iterable from line 2 (below a header)
                    failures.append(FailedRow(partition, o.line - 1, o.error, dict(o.raw)))
    return ing.report.to_dict(), failures


def _rows(chunks: Iterator[list[dict[str, str]]]) -> Iterator[dict[str, str]]:
    """The partition's rows, as a plain iterable.

    A plain iterable, not an async one: the reader takes a plain one's rows in batches
    (an async one row by row, for sources that trickle, at about three times the CPU
    per row here). Reading it blocks the event loop while Spark hands over the next
    Arrow batch; the write's input is shuffle output (rows repartitioned by image),
    which Spark hands over as fast as it is read.
    """
    for chunk in chunks:
        yield from chunk


def _scrub(exc: Exception, token: str | None) -> Exception:
    """``exc``, or a copy of its message without the token if it somehow holds it."""
    if token and token in str(exc):
        return IngestError(str(exc).replace(token, "***"))
    return exc
