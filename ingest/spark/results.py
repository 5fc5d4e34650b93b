"""The driver's side of a write: the tasks' results merged into one report, written out."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ingest.failures import FailuresWriter
from ingest.model import Outcome, Status
from ingest.report import Report

from .task import FailedRow, TaskResult

__all__ = ["JobReport", "logger", "merge"]

logger = logging.getLogger("ingest.spark")

_SUMMED = [f.name for f in fields(Report) if f.name not in ("started", "elapsed_s")]


@dataclass
class JobReport:
    """What a whole Spark write did: the sum of its tasks' reports, and its failed rows."""

    report: Report
    tasks: int = 0
    """Write tasks that reported (one per partition)."""
    tasks_at_once: int = 0
    """Tasks the request budget was split across."""
    rps: float = 0.0
    """The app's request budget (each task had ``rps / tasks_at_once``)."""
    failures: list[FailedRow] = field(default_factory=list)
    aborted: bool = False
    """True when the job failed (the report then covers the tasks that finished)."""
    task_cpu_s: float = 0.0
    """CPU seconds of the tasks' Python workers, summed."""

    @property
    def throttled_share(self) -> float:
        """Throttled replies over requests."""
        r = self.report
        return r.throttled / r.requests if r.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: the library's keys, then the job's."""
        data = self.report.to_dict()
        data.update(
            throttled_share=round(self.throttled_share, 4),
            tasks=self.tasks,
            tasks_at_once=self.tasks_at_once,
            rps=self.rps,
            rps_per_task=round(self.rps / self.tasks_at_once, 3) if self.tasks_at_once else 0.0,
            aborted=self.aborted,
            task_cpu_s=round(self.task_cpu_s, 3),
        )
        return data

    def summary(self) -> str:
        """The report's summary (:meth:`Report.summary`), then the job's own figures."""
        return (
            f"{'aborted' if self.aborted else 'done'}: {self.report.summary()}; "
            f"{self.tasks} tasks ({self.tasks_at_once} at once, {self.rps:g} req/s shared), "
            f"{self.throttled_share:.1%} of requests throttled"
        )


def merge(
    results: Iterable[TaskResult | None], *, rps: float, elapsed_s: float, aborted: bool = False
) -> JobReport:
    """One report from the tasks' results (``None`` for a task that did not finish)."""
    report = Report()
    job = JobReport(report, rps=rps, aborted=aborted)
    methods: dict[str, int] = {}
    for result in results:
        if result is None:
            continue
        job.tasks += 1
        job.tasks_at_once = max(job.tasks_at_once, result.tasks)
        for name in _SUMMED:
            value = result.report.get(name)
            if name == "requests_by_method":
                for method, n in (value or {}).items():
                    methods[method] = methods.get(method, 0) + n
            elif isinstance(value, bool):
                setattr(report, name, getattr(report, name) or value)
            elif isinstance(value, (int, float)):
                setattr(report, name, getattr(report, name) + value)
        job.failures.extend(result.failures)
        job.task_cpu_s += result.cpu_s
    report.requests_by_method = dict(sorted(methods.items()))
    report.elapsed_s = elapsed_s
    job.failures.sort(key=lambda f: (f.partition, f.line))
    return job


def failure_columns(columns: Sequence[str]) -> list[str]:
    """The failures file's columns before ``line`` and ``error``."""
    return [*(c for c in columns if c not in ("partition", "line", "error")), "partition"]


def write_outputs(
    job: JobReport,
    columns: Sequence[str],
    *,
    report_path: str | None,
    failures_path: str | None,
) -> None:
    """The JSON report and the failures file where the options say; log the summary.

    The failures file is the CLI's (:mod:`ingest.failures`): the input's columns, then
    ``partition``, ``line`` (the row's position in its partition) and ``error``.
    """
    log(job.summary(), warning=job.aborted or not job.report.ok)
    if failures_path:
        with FailuresWriter(failures_path, failure_columns(columns)) as writer:
            for f in job.failures:
                raw = {**f.cells, "partition": str(f.partition)}
                writer.write(Outcome(f.line, Status.FAILED, error=f.error, raw=raw))
        if writer.written:
            log(f"{writer.count:,} failed rows written to {failures_path}")
    if report_path:
        path = Path(report_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(job.to_dict(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        log(f"report written to {report_path}")


def log(message: str, *, warning: bool = False) -> None:
    """Log to ``ingest.spark``; where logging is not set up (Spark's Python workers), to
    stderr, which Spark copies into the driver's log."""
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logger.log(logging.WARNING if warning else logging.INFO, message)
