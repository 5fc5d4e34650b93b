"""The ``ingest`` command line: upload, validate, sandbox, demo.

Exit status (docs/contracts.md): 0 when every row landed or was already there;
1 when some rows failed or were invalid (every one of them is in the failures
file); 2 for a usage, credential, TLS or file-level error, or when the account stops
the upload (AccountError: input quota, hourly limit, plan, app deleted; the journal
keeps what landed) - one sentence on stderr, no traceback; 130 when interrupted
(Ctrl-C or SIGTERM; the journal keeps what landed, so running the same command again
continues).

The library installs no signal handler; this module does, around an upload only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ingest.config import Config
from ingest.errors import ClarifaiError, ConfigError, IngestError, SourceError, first_error
from ingest.failures import FailuresWriter, default_failures_path
from ingest.ingester import Ingester
from ingest.journal import Journal, default_state_path
from ingest.model import Outcome, Status
from ingest.progress import (
    LiveReporter,
    PlainReporter,
    Reporter,
    Snapshot,
    snapshot,
    watch,
)
from ingest.report import Report
from ingest.source import open_rows
from ingest.source.formats import (
    DatasetPath,
    FormatOptions,
    add_format_arguments,
    detect,
    format_options,
    journal_file,
    validate_path,
)

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: New objects between two cycle collections of the upload process (Python: 700).
GC_THRESHOLD = 50_000

#: Seconds between journal flushes while outcomes arrive.
FLUSH_EVERY = 0.5

#: Invalid rows shown by ``ingest validate`` before "and N more".
VALIDATE_SHOWN = 1000

UPLOAD_EPILOG = """\
examples:
  # a personal access token and the app, from the SDK's environment variables
  export CLARIFAI_PAT=...  CLARIFAI_USER_ID=me  CLARIFAI_APP_ID=my-app
  ingest upload boxes.csv

  # an app-scoped API key, into a dataset, with the JSON report
  ingest upload boxes.csv --api-key "$KEY" --dataset-id train --report-json report.json

  # after a crash, a kill or Ctrl-C: the same command continues where it stopped
  ingest upload boxes.csv

  # send again the rows that failed (broken URLs, invalid rows once fixed)
  ingest upload boxes.failures.csv

  # a dry run against the local sandbox (python -m ingest sandbox in another shell)
  ingest upload boxes.csv --base http://127.0.0.1:18080 \\
      --pat sandbox-pat --user-id sandbox --app-id sandbox-app

files:
  DATA.csv.ingest-state  the resume journal (--state): line numbers of rows that
                         landed. It is kept after a complete run, so running the
                         same command again sends nothing; --restart ignores it.
                         It refuses to resume when DATA.csv changed since.
  DATA.failures.csv      every failed or invalid row (--failures), in the input's
                         columns plus 'line' and 'error'; upload it to retry them.
                         Written only when something failed.

exit status:
  0   every row landed or was already there
  1   some rows failed or were invalid; all of them are in the failures file
  2   usage, credential, TLS or file-level error, or the account stopped the
      upload (input quota, hourly limit, plan, app deleted); nothing more was sent
  130 interrupted; run the same command again to continue
"""


# -- output helpers ------------------------------------------------------------

_SECRETS: set[str] = set()


def _scrub(text: str) -> str:
    """Never let a token through, whatever an error message holds."""
    for secret in _SECRETS:
        if secret:
            text = text.replace(secret, "***")
    return text


def _err_console() -> Console:
    return Console(stderr=True, highlight=False)


def _error(message: str) -> None:
    _err_console().print(
        Text("ingest: error: ", style="bold red") + Text(_scrub(message)), soft_wrap=True
    )


# -- upload --------------------------------------------------------------------


@dataclass
class UploadPlan:
    """Everything an upload needs, resolved from the options."""

    source: Path
    config: Config
    state: Path
    failures: Path
    report_json: Path | None = None
    progress: str = "auto"
    """``live``, ``plain``, ``none`` or ``auto`` (live on a terminal, else plain)."""
    restart: bool = False
    handle_signals: bool = True
    formats: FormatOptions = field(default_factory=FormatOptions)
    """How the data path is read (--format, --regions, --images, --concept-ids)."""


@dataclass
class _Sink:
    """Consumes outcomes: journal, failures file, counters for the display."""

    journal: Journal
    failures: FailuresWriter
    ended: int = 0
    boxes: int = 0
    last_error: str = ""

    def take(self, batch: list[Outcome]) -> None:
        journal, failures = self.journal, self.failures
        for o in batch:
            if o.status is Status.FAILED:
                failures.write(o)
                self.last_error = f"line {o.line}: {o.error}"
            else:
                journal.add(o.line)
            if o.annotation_id:
                self.boxes += 1
        self.ended += len(batch)
        failures.flush()

    @property
    def box_fraction(self) -> float | None:
        return self.boxes / self.ended if self.ended else None


@dataclass
class UploadResult:
    report: Report
    exit_status: int
    interrupted: bool = False
    failures: Path | None = None
    journal: Path | None = None
    report_json: Path | None = None
    notes: list[str] = field(default_factory=list)


def _reporter(mode: str, console: Console) -> Reporter:
    if mode == "auto":
        mode = "live" if console.is_terminal else "plain"
    if mode == "live":
        return LiveReporter(console)
    if mode == "plain":
        return PlainReporter(sys.stderr)
    return Reporter()


def _check_paths(plan: UploadPlan) -> None:
    src = plan.source.resolve()
    for what, p in (("--state", plan.state), ("--failures", plan.failures)):
        if p.resolve() == src:
            raise ConfigError(f"{what} {p} is the data file itself; choose another path")
    if plan.report_json is not None and plan.report_json.resolve() == src:
        raise ConfigError(f"--report-json {plan.report_json} is the data file itself")
    if plan.state.resolve() == plan.failures.resolve():
        raise ConfigError("--state and --failures name the same file; give them different paths")


async def run_upload(plan: UploadPlan, console: Console) -> UploadResult:
    """Upload ``plan.source`` with journal, failures file, display and report.

    Raises :class:`~ingest.errors.IngestError` for what exits with status 2.
    """
    path = plan.source
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    data = DatasetPath(path, plan.formats)
    if not path.is_file() and detect(path, plan.formats.format) == "csv":
        raise SourceError(f"{path}: not a regular file")
    _check_paths(plan)
    # the header first: a missing column is reported before anything else happens
    async with open_rows(data, dataset_id=plan.config.dataset_id) as rows:
        columns = list(rows.columns)
        journal_path = await anyio.to_thread.run_sync(journal_file, rows, plan.state)
        source_notes = list(getattr(rows, "notes", ()))
    journal = Journal.open(
        journal_path,
        target=_journal_target(plan),
        state_path=plan.state,
        restart=plan.restart,
    )
    failures = FailuresWriter(plan.failures, columns)
    reporter = _reporter(plan.progress, console)
    notes: list[str] = source_notes
    if "file" in columns and plan.failures.resolve().parent != path.resolve().parent:
        notes.append(
            "the failures file is not beside the CSV: its 'file' paths will not resolve "
            "when it is uploaded from there"
        )

    sink = _Sink(journal, failures)
    state = {"interrupted": False}
    error: BaseException | None = None
    ing = Ingester(plan.config)
    upload_scope = anyio.CancelScope()

    def probe() -> Snapshot:
        return snapshot(
            ing.report,
            ing.client,
            box_fraction=sink.box_fraction,
            last_error=sink.last_error,
        )

    async def flusher() -> None:
        while True:
            await anyio.sleep(FLUSH_EVERY)
            lines = journal.take()
            if lines:
                await anyio.to_thread.run_sync(journal.write, lines)

    async def on_signals() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if state["interrupted"]:
                    _abort()  # a second signal queued before the first was handled
                state["interrupted"] = True
                _arm_hard_exit()
                name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
                reporter.log(
                    f"{name}: stopping; calls in flight are cancelled, what landed is in the "
                    f"journal and the same command continues. {name} again aborts at once.",
                    style="bold yellow",
                )
                upload_scope.cancel()

    try:
        async with ing, anyio.create_task_group() as tg:
            if plan.handle_signals:
                tg.start_soon(on_signals)
            tg.start_soon(flusher)
            tg.start_soon(watch, reporter, probe)
            await anyio.lowlevel.checkpoint()  # let the display start before the first log line
            if journal.resumed:
                reporter.log(
                    f"resuming: {journal.resumed} rows already done (journal {journal.path})",
                    style="cyan",
                )
            try:
                with upload_scope:
                    async with ing.stream(data, skip=journal.skip) as outcomes:
                        async for batch in outcomes.batches():
                            sink.take(batch)
            except IngestError as exc:
                error = exc
            finally:
                tg.cancel_scope.cancel()
    finally:
        if state["interrupted"]:
            _arm_hard_exit()  # closing the signal receiver restored the default handlers
        report = ing.report
        reporter.stop(probe())
        journal.close()
        failures.close(remove_stale=error is None and not state["interrupted"])
    if error is not None:
        raise error

    interrupted = state["interrupted"]
    if interrupted:
        status = EXIT_INTERRUPTED
    elif report.rows_failed:
        status = EXIT_FAILED
    else:
        status = EXIT_OK
    notes += [note for note in report.notes if note not in notes]  # said during the read
    if report.rows_read and report.rows_resumed == report.rows_read:
        notes.append(
            f"nothing to send: every row was done by an earlier run (journal {journal.path}); "
            "use --restart to send everything again"
        )
    result = UploadResult(
        report=report,
        exit_status=status,
        interrupted=interrupted,
        failures=failures.path if failures.written else None,
        journal=journal.path,
        report_json=plan.report_json,
        notes=notes,
    )
    if plan.report_json is not None:
        _write_report(plan, result)
    return result


def _journal_target(plan: UploadPlan) -> dict[str, object]:
    """Where the rows go, and the options that change their ids (a journal kept under
    other ones is not this upload's)."""
    target = Journal.target_of(plan.config)
    if plan.formats.images:
        target["images"] = os.path.abspath(plan.formats.images)
    if plan.formats.concept_ids != "ids":
        target["concept_ids"] = plan.formats.concept_ids
    return target


def _arm_hard_exit() -> None:
    """From now on SIGINT or SIGTERM ends the process at once, whatever it is doing."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _hard_exit)


def _hard_exit(signum: int, frame: object) -> None:
    _abort()


def _abort() -> None:
    """Second Ctrl-C: leave at once; the journal holds everything up to its last write."""
    if sys.stderr.isatty():
        sys.stderr.write("\x1b[?25h\n")  # the live display hid the cursor
    sys.stderr.write("aborted at once; the journal holds what landed up to its last write\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _write_report(plan: UploadPlan, result: UploadResult) -> None:
    data = result.report.to_dict()
    data.update(
        source=str(plan.source),
        state_file=str(result.journal) if result.journal else None,
        failures_file=str(result.failures) if result.failures else None,
        interrupted=result.interrupted,
        exit_status=result.exit_status,
    )
    path = plan.report_json
    assert path is not None
    text = _scrub(json.dumps(data, indent=2, sort_keys=True)) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the report {path}: {exc.strerror or exc}") from None


def print_summary(result: UploadResult, console: Console) -> None:
    """The closing table: counts by outcome, speed, requests, where the files are."""
    r = result.report
    handled = r.rows_landed + r.rows_present + r.rows_failed
    rate = handled / r.elapsed_s if r.elapsed_s > 0 else 0.0
    title = "upload interrupted" if result.interrupted else "upload finished"
    table = Table(title=title, show_header=True, header_style="bold", title_style="bold")
    table.add_column("", style="bold")
    table.add_column("rows", justify="right")
    table.add_column("", justify="left")
    table.add_row("landed", f"{r.rows_landed:,}", "sent and stored in this run", style="green")
    table.add_row("already there", f"{r.rows_present:,}", "stored before (not sent twice)")
    failed_note = f"{r.rows_invalid:,} invalid" if r.rows_invalid else ""
    table.add_row(
        "failed", f"{r.rows_failed:,}", failed_note, style="red" if r.rows_failed else None
    )
    if r.rows_resumed:
        table.add_row("skipped", f"{r.rows_resumed:,}", "done by an earlier run (journal)")
    table.add_row("read", f"{r.rows_read:,}", "rows in the file (valid or not)")
    table.add_section()
    table.add_row(
        "inputs",
        f"{r.inputs_created + r.inputs_existing:,}",
        f"{r.inputs_created:,} created, {r.inputs_existing:,} already there "
        f"(a repeated URL or an earlier run), {r.inputs_failed:,} failed"
        + (f", {r.inputs_patched:,} completed with labels they lacked" if r.inputs_patched else ""),
    )
    table.add_row(
        "annotations",
        f"{r.annotations_created + r.annotations_existing:,}",
        f"{r.annotations_created:,} created, {r.annotations_existing:,} already there, "
        f"{r.annotations_failed:,} failed",
    )
    table.add_section()
    if r.grouped:
        table.add_row(
            "grouped",
            "",
            f"rows of one image were scattered: grouped by image first in "
            f"{r.grouping_s:,.1f} s ({r.grouping_temp_bytes / 1e6:,.1f} MB of temp files, removed)",
        )
    table.add_row("speed", f"{rate:,.1f}", f"rows/s over {r.elapsed_s:,.1f} s")
    req_rate = r.requests / r.elapsed_s if r.elapsed_s > 0 else 0.0
    table.add_row(
        "requests",
        f"{r.requests:,}",
        f"{req_rate:.1f}/s, {r.throttled:,} throttled, {r.retries:,} retried",
    )
    table.add_section()
    if result.failures is not None:
        table.add_row("failures", "", str(result.failures), style="red")
    if result.report_json is not None:
        table.add_row("report", "", str(result.report_json))
    if result.journal is not None:
        table.add_row("journal", "", str(result.journal))
    console.print(table)
    for note in result.notes:
        console.print(Text(note, style="yellow"))
    if result.interrupted:
        console.print(
            Text(
                "interrupted: run the same command again to continue where it stopped (exit 130)",
                style="bold yellow",
            )
        )
    elif result.failures is not None:
        console.print(
            Text(
                f"{r.rows_failed:,} row(s) failed; to retry them: ingest upload {result.failures}",
                style="red",
            )
        )


def _config_from_args(ns: argparse.Namespace) -> Config:
    options = {
        "pat": ns.pat,
        "api_key": ns.api_key,
        "user_id": ns.user_id,
        "app_id": ns.app_id,
        "base": ns.base,
        "ca_file": ns.ca_file,
        "dataset_id": ns.dataset_id,
        "batch_size": ns.batch_size,
        "annotation_batch_size": ns.batch_size,
        "concurrency": ns.concurrency,
        "rps": ns.rps,
        "processing_timeout": ns.processing_timeout,
        "call_timeout": ns.call_timeout,
        "strict": ns.strict or None,
        "tmp_dir": ns.tmp_dir,
    }
    for secret in (
        ns.pat,
        ns.api_key,
        os.environ.get("CLARIFAI_PAT"),
        os.environ.get("CLARIFAI_API_KEY"),
    ):
        if secret:
            _SECRETS.add(secret)
    config = Config.from_env(**options)
    if not config.token:
        raise ConfigError(
            "no credentials: give --pat with --user-id and --app-id (or set CLARIFAI_PAT, "
            "CLARIFAI_USER_ID, CLARIFAI_APP_ID), or --api-key (or CLARIFAI_API_KEY)"
        )
    return config


def _tune_gc() -> None:
    """Fewer cycle collections for this process (the library leaves them alone).

    Rows wait in the pipeline by the thousand and nearly all are freed by reference
    counting; with Python's default threshold (a collection every 700 new objects)
    the collector walks them over and over, about a seventh of the CPU of a large
    upload. What start-up made is frozen out of the full collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)


def cmd_upload(ns: argparse.Namespace) -> int:
    config = _config_from_args(ns)
    source = Path(ns.data)
    plan = UploadPlan(
        source=source,
        config=config,
        state=Path(ns.state) if ns.state else default_state_path(source),
        failures=Path(ns.failures) if ns.failures else default_failures_path(source),
        report_json=Path(ns.report_json) if ns.report_json else None,
        progress="none" if ns.no_progress else "auto",
        restart=ns.restart,
        formats=format_options(ns),
    )
    console = _err_console()

    async def go() -> UploadResult:
        return await run_upload(plan, console)

    _tune_gc()
    result = anyio.run(go, backend="asyncio")
    if result.interrupted:
        _arm_hard_exit()  # the event loop's exit restored the default handlers
    print_summary(result, console)
    return result.exit_status


# -- validate ------------------------------------------------------------------


def cmd_validate(ns: argparse.Namespace) -> int:
    path = Path(ns.data)
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    started = time.perf_counter()
    summary = anyio.run(validate_path, DatasetPath(path, format_options(ns)), backend="asyncio")
    elapsed = time.perf_counter() - started
    out = Console(highlight=False)
    invalid = summary.invalid
    if invalid:
        table = Table(title=f"invalid rows in {path}", header_style="bold", title_style="bold")
        table.add_column("line", justify="right")
        table.add_column("column")
        table.add_column("reason", overflow="fold")
        for item in invalid[:VALIDATE_SHOWN]:
            table.add_row(str(item.line), item.column or "-", item.reason)
        out.print(table)
        if len(invalid) > VALIDATE_SHOWN:
            out.print(f"... and {len(invalid) - VALIDATE_SHOWN:,} more invalid rows not shown")
    table = Table(title=f"{path}", show_header=False, title_style="bold")
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_row("rows", f"{summary.rows:,}")
    table.add_row("images", f"{summary.images:,}")
    table.add_row("boxes", f"{summary.boxes:,}")
    table.add_row("labels", f"{summary.labels:,}")
    table.add_row("image-level rows", f"{summary.image_level_rows:,}")
    table.add_row("invalid rows", f"{len(invalid):,}", style="red" if invalid else "green")
    out.print(table)
    rate = summary.rows / elapsed if elapsed > 0 else 0.0
    verdict = (
        f"{len(invalid):,} invalid row(s): they would be reported as failures, the rest uploaded"
        if invalid
        else "every row is valid"
    )
    out.print(f"{verdict} (read in {elapsed:.2f} s, {rate:,.0f} rows/s; nothing was sent)")
    return EXIT_FAILED if invalid else EXIT_OK


# -- demo ----------------------------------------------------------------------


def _find_example() -> Path:
    here = Path(__file__).resolve().parent.parent / "examples" / "boxes.csv"
    for candidate in (here, Path.cwd() / "examples" / "boxes.csv"):
        if candidate.is_file():
            return candidate
    raise SourceError("examples/boxes.csv not found; run the demo from the repository (make demo)")


def _format_examples(csv_path: Path) -> list[tuple[str, Path]]:
    """The COCO, YOLO and VOC examples beside ``examples/boxes.csv`` that are there."""
    folder = csv_path.parent
    found = [
        ("COCO", folder / "coco" / "annotations.json"),
        ("YOLO", folder / "yolo"),
        ("Pascal VOC", folder / "voc"),
    ]
    return [(kind, path) for kind, path in found if path.exists()]


def cmd_demo(ns: argparse.Namespace) -> int:
    from ingest.sandbox import Sandbox, SandboxOptions  # the client path never imports it

    csv_path = _find_example()
    workdir = Path(tempfile.mkdtemp(prefix="ingest-demo-"))
    console = _err_console()
    options = SandboxOptions(
        port=0, rps=15, latency=0.06, processing=(0.5, 2.0), download_failure_rate=0.01
    )

    async def go() -> tuple[UploadResult, dict[str, Any], int]:
        async with Sandbox(options) as sb:
            console.rule("[bold]ingest demo")
            console.print(
                f"A local Clarifai-compatible sandbox listens on {sb.base_url} with realistic "
                f"limits: {options.rps:g} requests/s per key, {options.latency * 1000:.0f} ms "
                f"per call, {options.processing[0]:g}-{options.processing[1]:g} s to process "
                f"an image, {options.download_failure_rate:.0%} download failures.\n"
                f"Uploading {csv_path} (616 rows, 200 images, 580 boxes). The file has 2 "
                "invalid rows and 6 images with broken URLs on purpose: they end in the "
                "failures file.\n"
                f"Journal and failures file go to {workdir}.",
                highlight=False,
            )
            config = Config(
                pat=options.pats[0],
                user_id=options.user_id,
                app_id=options.app_id,
                base=sb.base_url,
            )
            plan = UploadPlan(
                source=csv_path,
                config=config,
                state=workdir / "boxes.csv.ingest-state",
                failures=workdir / "boxes.failures.csv",
                report_json=workdir / "report.json",
                progress="none" if ns.no_progress else "auto",
            )
            result = await run_upload(plan, console)
            # then one dataset of each other format, into the same app
            for kind, path in _format_examples(csv_path):
                done = await run_upload(
                    UploadPlan(
                        source=path,
                        config=config,
                        state=workdir / f"{kind}.ingest-state",
                        failures=workdir / f"{kind}.failures.csv",
                        progress="none",
                    ),
                    console,
                )
                formats.append((kind, path, done.report))
            statuses: dict[str, int] = {}
            for message in sb.inputs.values():
                name = message.status.description or str(message.status.code)
                statuses[name] = statuses.get(name, 0) + 1
            return result, statuses, len(sb.annotations)

    formats: list[tuple[str, Path, Report]] = []
    result, statuses, annotations = anyio.run(go, backend="asyncio")
    print_summary(result, console)
    if formats:
        shown = Table(title="the same app, from a COCO, a YOLO and a Pascal VOC dataset")
        for column in ("format", "path", "rows", "landed", "failed", "inputs", "annotations"):
            shown.add_column(column, justify="left" if column in ("format", "path") else "right")
        for kind, path, r in formats:
            shown.add_row(
                kind,
                str(path.relative_to(csv_path.parent.parent)),
                f"{r.rows_read:,}",
                f"{r.rows_landed:,}",
                f"{r.rows_failed:,}",
                f"{r.inputs_created:,}",
                f"{r.annotations_created:,}",
            )
        console.print(shown)
    held = Table(title="what the sandbox holds", show_header=False, title_style="bold")
    held.add_column("", style="bold")
    held.add_column("", justify="right")
    held.add_row("inputs", f"{sum(statuses.values()):,}")
    for name, count in sorted(statuses.items()):
        held.add_row(f"  {name}", f"{count:,}")
    held.add_row("annotations", f"{annotations:,}")
    console.print(held)
    if result.exit_status == EXIT_FAILED:
        console.print(
            "As expected, the rows with broken URLs and the invalid rows failed; everything "
            "else landed once. See the failures file above.",
            highlight=False,
        )
        return EXIT_OK
    return result.exit_status


# -- sandbox -------------------------------------------------------------------


def cmd_sandbox(argv: Sequence[str]) -> int:
    from ingest.sandbox import cli as sandbox_cli  # imported only for this command

    parser = argparse.ArgumentParser(
        prog="ingest sandbox",
        description="Run a local Clarifai-compatible gRPC server (Ctrl-C to stop).",
    )
    sandbox_cli.add_arguments(parser)
    return sandbox_cli.run_from_args(parser.parse_args(argv))


# -- parser and main -----------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest",
        description="Upload annotated images (a CSV of URLs and boxes) into Clarifai, "
        "fast, resumably, without duplicates.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'ingest COMMAND --help' for a command's options; "
        "'make demo' shows an upload against the local sandbox",
    )
    from ingest import __version__

    parser.add_argument("--version", action="version", version=f"ingest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser(
        "upload",
        help="upload a CSV of images and boxes",
        description="Upload every row of DATA.csv: one input per image URL, one annotation "
        "per box. Credentials and address also come from CLARIFAI_PAT, CLARIFAI_USER_ID, "
        "CLARIFAI_APP_ID, CLARIFAI_API_KEY and CLARIFAI_API_BASE.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=UPLOAD_EPILOG,
    )
    up.add_argument(
        "data",
        metavar="DATA",
        help="the CSV, COCO JSON file, YOLO dataset (data.yaml or folder) or VOC folder",
    )
    add_format_arguments(up)
    cred = up.add_mutually_exclusive_group()
    cred.add_argument(
        "--pat", metavar="TOKEN", help="personal access token (env CLARIFAI_PAT; safer than here)"
    )
    cred.add_argument("--api-key", metavar="KEY", help="app-scoped API key (env CLARIFAI_API_KEY)")
    up.add_argument("--user-id", metavar="U", help="app owner, with --pat (env CLARIFAI_USER_ID)")
    up.add_argument("--app-id", metavar="A", help="the app, with --pat (env CLARIFAI_APP_ID)")
    up.add_argument(
        "--base",
        metavar="URL",
        help="https://host[:port] (TLS, default https://api.clarifai.com) or http://host:port "
        "(plaintext, e.g. the sandbox) (env CLARIFAI_API_BASE)",
    )
    up.add_argument(
        "--ca-file",
        metavar="PATH",
        help="trust the certificate authorities in this PEM file for TLS, e.g. the one "
        "'ingest sandbox --tls' prints (gRPC's GRPC_DEFAULT_SSL_ROOTS_FILE_PATH also works)",
    )
    up.add_argument("--dataset-id", metavar="D", help="also add every input to this dataset")
    up.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help="inputs per PostInputs and annotations per PostAnnotations (max 128, default 128)",
    )
    up.add_argument(
        "--concurrency", type=_positive_int, metavar="N", help="calls in flight per stage (4)"
    )
    up.add_argument(
        "--rps",
        type=_positive_float,
        metavar="R",
        help="request budget per second for all calls (default 15, Clarifai's limit per key)",
    )
    up.add_argument(
        "--processing-timeout",
        type=_positive_float,
        metavar="S",
        help="give up on an input Clarifai has not processed after S seconds (default 600)",
    )
    up.add_argument(
        "--call-timeout",
        type=_positive_float,
        metavar="S",
        help="deadline of each call; a call past it is retried (default 60)",
    )
    up.add_argument(
        "--tmp-dir",
        metavar="DIR",
        help="where a file whose rows of one image are scattered is grouped by image first "
        "(temp files of about the file's size, removed at the end; default: the system's "
        "temp folder)",
    )
    up.add_argument(
        "--state", metavar="PATH", help="resume journal (default DATA.csv.ingest-state)"
    )
    up.add_argument("--failures", metavar="PATH", help="failures file (default DATA.failures.csv)")
    up.add_argument("--report-json", metavar="PATH", help="write the JSON report here")
    up.add_argument(
        "--no-progress", action="store_true", help="no live display and no progress lines"
    )
    up.add_argument(
        "--restart",
        action="store_true",
        help="ignore the resume journal and consider every row again",
    )
    up.add_argument(
        "--strict", action="store_true", help="send nothing if any row is invalid (reads twice)"
    )
    up.set_defaults(func=cmd_upload)

    val = sub.add_parser(
        "validate",
        help="check a CSV without sending anything",
        description="Read and check the whole of DATA.csv; nothing is sent. Lists every "
        "invalid row (line, column, reason) and what the file holds. Exit 1 if any row "
        "is invalid, 2 if the file cannot be used at all.",
    )
    val.add_argument("data", metavar="DATA")
    add_format_arguments(val)
    val.set_defaults(func=cmd_validate)

    sub.add_parser(
        "sandbox",
        help="run a local Clarifai-compatible server (see 'ingest sandbox --help')",
        add_help=False,
    )

    demo = sub.add_parser(
        "demo",
        help="upload the example data to an in-process sandbox with the live display",
        description="Start a sandbox with realistic limits, upload examples/boxes.csv with "
        "the live display, and show what the sandbox holds. State files go to a fresh "
        "temporary folder, so the demo can be run again.",
    )
    demo.add_argument("--no-progress", action="store_true", help="no live display")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ingest`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["sandbox"]:
            return cmd_sandbox(args[1:])
        parser = build_parser()
        ns = parser.parse_args(args)
        func: Callable[[argparse.Namespace], int] | None = getattr(ns, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return func(ns)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except ClarifaiError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except IngestError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except BaseExceptionGroup as group:
        leaf = first_error(group)
        if isinstance(leaf, IngestError):
            _error(str(leaf))
            return EXIT_USAGE
        _error(f"unexpected {type(leaf).__name__}: {leaf}")
        return EXIT_USAGE
    except Exception as exc:  # a bug: say what, never the token
        if os.environ.get("INGEST_DEBUG"):
            import traceback

            sys.stderr.write(_scrub(traceback.format_exc()))
        _error(f"unexpected {type(exc).__name__}: {exc} (set INGEST_DEBUG=1 for a traceback)")
        return EXIT_USAGE
