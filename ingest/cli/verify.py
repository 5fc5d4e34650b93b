"""``ingest verify``: compare a dataset with what the app holds; the rows to send again.

Read-only (``Ingester.verify``). The live display and the closing table are the upload's
(:mod:`.progress`, :mod:`.summary`), showing rows read, images checked and rows compared;
the rows that differ go to a CSV in the failures file's format (``--resend``, default
``DATA.resend.csv``), each with what differs in its ``error`` column, which ``ingest
upload`` takes as it is. Exit 0 when the app holds everything the data says, 1 when
something differs, 2 as for ``upload``.
"""

from __future__ import annotations

import argparse
import math
import shlex
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ingest.cli.common import EXIT_FAILED, EXIT_OK, err_console, scrub
from ingest.cli.formats import format_options
from ingest.cli.progress import (
    EventDetector,
    LiveReporter,
    PlainReporter,
    Snapshot,
    describe_failure,
    reporter_for,
    snapshot,
    watch,
)
from ingest.cli.summary import add_grouping, write_json
from ingest.cli.upload import check_source, config_from_args, retry_options
from ingest.config import Config
from ingest.errors import ConfigError
from ingest.failures import FailuresWriter, default_failures_path
from ingest.ingester import Ingester
from ingest.model import Outcome, Status
from ingest.report import Report
from ingest.source import DatasetPath, FormatOptions, RowSource, detect
from ingest.verify import Difference, DifferenceKind, VerifyReport

__all__ = ["VERIFY_EPILOG", "VerifyPlan", "VerifyResult", "cmd_verify", "run_verify"]

VERIFY_EPILOG = """\
examples:
  # after an upload: does the app hold what the file says?
  ingest verify boxes.csv --report-json verify.json

  # what differs is in boxes.resend.csv, a file to upload as it is
  ingest upload boxes.resend.csv

exit status: 0 the app holds everything DATA says; 1 something differs (every row in the
resend file); 2 usage, credential, TLS or file error; 130 interrupted
"""

_IN_PLACE = (
    "regions changed in the app under their own id (the upload finds the id there and "
    "sends nothing: delete the annotation first to have it sent again)"
)

#: What an upload of the resend file leaves as it is, and why.
STAYS = {
    DifferenceKind.INPUT_NOT_PROCESSED: "inputs not processed successfully (their image "
    "fails again: fix it, or its URL)",
    DifferenceKind.REGION_MOVED: _IN_PLACE,
    DifferenceKind.REGION_CONCEPTS: _IN_PLACE,
    DifferenceKind.ANNOTATION_INFO: _IN_PLACE,
}

#: What an upload of the resend file does about each kind of difference.
REPAIRS = {
    DifferenceKind.INPUT_MISSING: "creates the input and its annotations",
    DifferenceKind.INPUT_CONCEPTS: "adds the concepts the input lacks",
    DifferenceKind.INPUT_METADATA: "sets the metadata keys the data names",
    DifferenceKind.REGION_MISSING: "adds the box or polygon",
}


@dataclass
class VerifyPlan:
    """Everything a verification needs, resolved from the options."""

    source: Path
    config: Config
    resend: Path
    report_json: Path | None = None
    progress: str = "auto"
    """``live``, ``plain``, ``none`` or ``auto`` (live on a terminal, else plain)."""
    strict: bool = False
    """Extras (annotations, concepts, metadata keys the data does not have) differ too."""
    formats: FormatOptions = field(default_factory=FormatOptions)
    retry_options: list[str] = field(default_factory=list)
    """The options the command that uploads the resend file repeats (no secret)."""
    token_variable: str = ""


@dataclass
class VerifyResult:
    report: VerifyReport
    exit_status: int
    resend: Path | None = None
    """The resend file, when some row differs."""
    report_json: Path | None = None
    notes: list[str] = field(default_factory=list)
    retry: str = ""
    """The command that uploads the resend file, when there is one."""
    token_variable: str = ""


class _Last:
    """The latest difference, for the display."""

    def __init__(self) -> None:
        self.text = ""
        self.image = ""

    def take(self, difference: Difference) -> None:
        raw = difference.raw
        self.image = raw.get("url") or raw.get("file") or ""
        self.text = describe_failure(difference.line, difference.error, self.image)


def _probe(report: VerifyReport, client: Any, last: _Last) -> Snapshot:
    """The display's snapshot of a verification: the upload's, where rows that "landed" are
    the rows the app holds as the data says, rows that "failed" those that differ,
    ``inputs_processed`` the images checked and ``annotations_existing`` the extras."""
    as_upload = Report(
        rows_read=report.rows_read,
        rows_invalid=report.rows_invalid,
        rows_landed=report.rows_equal,
        rows_failed=report.rows_differing,
        images=report.images,
        inputs_processed=report.images_checked,
        annotations_existing=report.extras,
        rows_total=report.rows_total,
        images_total=report.images_total,
        grouped=report.grouped,
        grouping_s=report.grouping_s,
        grouping_temp_bytes=report.grouping_temp_bytes,
        phase=report.phase,
        started=report.started,
    )
    return snapshot(as_upload, client, last_failure=last.text, last_image=last.image)


def _status(s: Snapshot, rate: float | None) -> str:
    parts = [
        f"differing {s.rows_failed:,}"
        + (f" ({s.rows_invalid:,} invalid)" if s.rows_invalid else ""),
        f"extras {s.annotations_existing:,}",
        f"retries {s.retries:,}",
        f"throttled {s.throttled:,}",
    ]
    if rate is not None and s.target:
        parts.append(f"{rate:.1f}/{s.target:g} req/s")
    else:
        parts.append(f"{s.requests:,} requests")
    return " · ".join(parts)


class VerifyLive(LiveReporter):
    """The live display of a verification: rows read, images checked, rows compared."""

    shown = (("read", "rows read"), ("checked", "images checked"), ("done", "rows compared"))

    def _counts(self, snap: Snapshot) -> dict[str, tuple[int, int | None]]:
        return {
            "read": (snap.rows_read_now, snap.rows_to_send),
            "checked": (snap.inputs_processed, snap.total_images),
            "done": (snap.rows_finished, snap.rows_to_send),
        }

    def _status(self, snap: Snapshot, rate: float | None) -> str:
        return _status(snap, rate)


class VerifyPlain(PlainReporter):
    """A verification's line every few seconds."""

    def line(self, s: Snapshot) -> str:
        todo = f"/{s.rows_to_send:,}" if s.rows_to_send is not None else ""
        images = f"/{s.total_images:,}" if s.total_images is not None else ""
        return (
            f"[{int(s.elapsed) // 60}:{int(s.elapsed) % 60:02d}] rows read "
            f"{s.rows_read_now:,}{todo}, compared {s.rows_finished:,}{todo} (as the app "
            f"holds them {s.rows_landed:,}) | images checked {s.inputs_processed:,}{images} | "
            f"{_status(s, self._last_rate)}"
        )


def _as_outcome(d: Difference) -> Outcome:
    """A differing row as the failures file writes it: its cells, line and what differs."""
    return Outcome(d.line, Status.FAILED, d.input_id, d.annotation_id, d.error, d.raw)


async def run_verify(plan: VerifyPlan, console: Console) -> VerifyResult:
    """Verify ``plan.source`` with the display, the resend file and the report.

    Raises :class:`~ingest.errors.IngestError` for what exits with status 2.
    """
    path = check_source(plan.source, plan.formats)
    if plan.resend.resolve() == path.resolve():
        raise ConfigError(f"--resend {plan.resend} is the data file itself; choose another path")
    if plan.report_json is not None and plan.report_json.resolve() == path.resolve():
        raise ConfigError(f"--report-json {plan.report_json} is the data file itself")
    ing = Ingester(plan.config)
    async with ing.open(DatasetPath(path, plan.formats)) as rows:
        return await _verify(plan, console, ing, rows)


async def _verify(
    plan: VerifyPlan, console: Console, ing: Ingester, rows: RowSource
) -> VerifyResult:
    reporter = reporter_for(plan.progress, console, live=VerifyLive, plain=VerifyPlain)
    resend = FailuresWriter(plan.resend, list(rows.columns))
    last = _Last()
    report = VerifyReport(strict=plan.strict)
    extras = 0

    def probe() -> Snapshot:
        return _probe(report, ing.client, last)

    try:
        async with ing, anyio.create_task_group() as tg:
            tg.start_soon(partial(watch, reporter, probe, detector=EventDetector(failed="differ")))
            await anyio.lowlevel.checkpoint()  # let the display start before the first line
            for warning in rows.stats.warnings:
                reporter.log(f"warning: {warning}", style="yellow")
            try:
                async with ing.verify(rows, strict=plan.strict) as found:
                    report = found.report
                    async for batch in found.batches():
                        latest = None
                        for d in batch:
                            if d.extra:
                                extras += 1
                                if extras == 1:
                                    reporter.log(f"extra: {d.error}", one_line=True)
                                continue
                            resend.write(_as_outcome(d))
                            latest = d
                        if latest is not None:
                            last.take(latest)  # the display shows the latest only
                        resend.flush()
                report = found.report
            finally:
                tg.cancel_scope.cancel()
    finally:
        reporter.stop(probe())
        resend.close()
    status = EXIT_OK if report.equal else EXIT_FAILED
    notes = list(report.notes)
    if report.extras and not plan.strict:
        notes.append(
            f"the app holds {report.extras:,} thing(s) the data does not have (annotations, "
            "concepts or metadata keys another tool or a person may have added): not a "
            "difference without --strict; ingest never deletes them"
        )
    result = VerifyResult(
        report=report,
        exit_status=status,
        resend=resend.path if resend.written else None,
        report_json=plan.report_json,
        notes=notes,
    )
    if result.resend is not None:
        command = shlex.join(["ingest", "upload", str(result.resend)])
        result.retry = " ".join([command, *plan.retry_options])
        result.token_variable = plan.token_variable
    if plan.report_json is not None:
        data = report.to_dict()
        data.update(
            source=str(plan.source),
            resend_file=str(result.resend) if result.resend else None,
            exit_status=status,
        )
        write_json(plan.report_json, data)
    return result


def print_verify_summary(result: VerifyResult, console: Console) -> None:
    """The closing table: rows as the app holds them and differing, each kind of
    difference, the extras, requests; then the notes and what to run next."""
    r = result.report
    title = (
        "verify: the app holds what the data says"
        if result.exit_status == EXIT_OK
        else "verify: the app differs from the data"
    )
    table = Table(title=title, show_header=True, header_style="bold", title_style="bold")
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_column("", justify="left")
    table.add_row(
        "equal", f"{r.rows_equal:,}", "rows the app holds as the data says", style="green"
    )
    table.add_row(
        "differing",
        f"{r.rows_differing:,}",
        "rows to send again (in the resend file)",
        style="red" if r.rows_differing else None,
    )
    table.add_row("read", f"{r.rows_read:,}", "rows in the data (valid or not)")
    kinds = [k for k in DifferenceKind if r.differences.get(k.key)]
    if kinds:
        table.add_section()
        for kind in kinds:
            fix = REPAIRS.get(kind)
            says = f"{kind.label} ({kind.unit})" + (f": an upload {fix}" if fix else "")
            style = "yellow" if kind.extra and not r.strict else "red"
            table.add_row(kind.key, f"{r.differences[kind.key]:,}", says, style=style)
    table.add_section()
    table.add_row(
        "images",
        f"{r.images_checked:,}",
        f"checked, {r.inputs_found:,} in the app; {r.annotations_read:,} annotations read",
    )
    add_grouping(table, r)
    batches = math.ceil(r.images_checked / 128)
    per = f"{r.requests / batches:.1f} per 128 images, " if batches else ""
    table.add_row(
        "requests",
        f"{r.requests:,}",
        f"{per}{r.throttled:,} throttled, {r.retries:,} retried, in {r.elapsed_s:,.1f} s; "
        "none writes",
    )
    if result.resend is not None or result.report_json is not None:
        table.add_section()
    if result.resend is not None:
        table.add_row("resend", "", str(result.resend), style="red")
    if result.report_json is not None:
        table.add_row("report", "", str(result.report_json))
    console.print(table)
    for note in result.notes:
        console.print(Text(scrub(note), style="yellow"))
    if result.retry:
        token = f", with the token in {result.token_variable}" if result.token_variable else ""
        stays = dict.fromkeys(why for kind, why in STAYS.items() if r.differences.get(kind.key))
        left = f"; an upload leaves as they are {'; '.join(stays)}" if stays else ""
        hint = f"{r.rows_differing:,} row(s) differ; to send them again{token}: {result.retry}"
        console.print(Text(scrub(hint + left), style="red"), soft_wrap=True)


def cmd_verify(ns: argparse.Namespace) -> int:
    config = config_from_args(ns)
    if ns.batch_size:  # verify's batches are of ids to read back
        config = config.with_options(check_batch_size=ns.batch_size)
    source = Path(ns.data)
    retry, token_variable = retry_options(ns, detect(source, ns.format))
    plan = VerifyPlan(
        source=source,
        config=config,
        resend=Path(ns.resend) if ns.resend else default_failures_path(source, name="resend"),
        report_json=Path(ns.report_json) if ns.report_json else None,
        progress="none" if ns.no_progress else "auto",
        strict=bool(ns.extras_differ),
        formats=format_options(ns),
        retry_options=retry,
        token_variable=token_variable,
    )
    console = err_console()

    async def go() -> VerifyResult:
        return await run_verify(plan, console)

    result = anyio.run(go, backend="asyncio")
    print_verify_summary(result, console)
    return result.exit_status
