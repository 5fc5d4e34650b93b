"""``ingest upload``: the upload with its journal, failures file, display and report."""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import signal
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.lowlevel
from rich.console import Console

from ingest.cli.common import (
    CONFIG_OPTIONS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    SECRET_VARIABLES,
    SECRETS,
    err_console,
)
from ingest.cli.formats import format_options
from ingest.cli.progress import (
    Reporter,
    Snapshot,
    describe_failure,
    reporter_for,
    snapshot,
    watch,
)
from ingest.cli.signals import abort, arm_hard_exit
from ingest.cli.summary import UploadResult, print_summary, write_report
from ingest.config import Config
from ingest.errors import ConfigError, IngestError, SourceError
from ingest.failures import FailuresWriter, default_failures_path
from ingest.ingester import Ingester
from ingest.journal import Journal, default_state_path
from ingest.model import Outcome, Status
from ingest.source import DatasetPath, FormatOptions, RowSource, detect, validate_path
from ingest.source.fingerprint import journal_file
from ingest.source.formats import require

#: New objects between two cycle collections of the upload process (Python: 700).
GC_THRESHOLD = 50_000


#: Seconds between journal flushes while outcomes arrive.
FLUSH_EVERY = 0.5


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
    retry_options: list[str] = field(default_factory=list)
    """The options that the command to upload the failures file repeats (no secret)."""
    token_variable: str = ""
    """The variable that command asks the token in, when it was given as an option."""
    dataset_version: bool = False
    """Once every row landed, make a version of each dataset the rows went into."""


@dataclass
class _Sink:
    """Consumes outcomes: journal, failures file, the latest failure for the display."""

    journal: Journal
    failures: FailuresWriter
    last_failure: str = ""
    last_image: str = ""

    def take(self, batch: list[Outcome]) -> None:
        journal, failures = self.journal, self.failures
        failed: Outcome | None = None
        for o in batch:
            if o.status is Status.FAILED:
                failures.write(o)
                failed = o
            else:
                journal.add(o.line)
        if failed is not None:
            image = failed.raw.get("url") or failed.raw.get("file") or ""
            self.last_failure = describe_failure(failed.line, failed.error, image)
            self.last_image = image
        failures.flush()


def _check_paths(plan: UploadPlan) -> None:
    src = plan.source.resolve()
    for what, p in (("--state", plan.state), ("--failures", plan.failures)):
        if p.resolve() == src:
            raise ConfigError(f"{what} {p} is the data file itself; choose another path")
    if plan.report_json is not None and plan.report_json.resolve() == src:
        raise ConfigError(f"--report-json {plan.report_json} is the data file itself")
    if plan.state.resolve() == plan.failures.resolve():
        raise ConfigError("--state and --failures name the same file; give them different paths")


def check_source(source: Path, formats: FormatOptions) -> Path:
    """The data path, once it is known to exist (a CSV: a regular file)."""
    path = require(source)
    if not path.is_file() and detect(path, formats.format) == "csv":
        raise SourceError(f"{path}: not a regular file")
    return path


async def run_upload(plan: UploadPlan, console: Console) -> UploadResult:
    """Upload ``plan.source`` with journal, failures file, display and report.

    Raises :class:`~ingest.errors.IngestError` for what exits with status 2.
    """
    path = check_source(plan.source, plan.formats)
    data = DatasetPath(path, plan.formats)
    _check_paths(plan)
    ing = Ingester(plan.config)
    # the source is opened once: its header first (a missing column is reported before
    # anything else happens), then what the journal and the failures file need, then
    # its rows, streamed
    async with ing.open(data) as rows:
        return await _upload(plan, console, ing, rows)


async def _upload(
    plan: UploadPlan, console: Console, ing: Ingester, rows: RowSource
) -> UploadResult:
    """The upload of ``rows``, opened: journal, failures file, display, report."""
    path = plan.source
    columns = list(rows.columns)
    if plan.dataset_version and not plan.config.dataset_id and "dataset_id" not in columns:
        raise ConfigError(
            "--dataset-version makes a version of the dataset the rows go into: give "
            "--dataset-id (the data names no dataset)"
        )
    journal_path = await anyio.to_thread.run_sync(journal_file, rows, plan.state)
    journal = Journal.open(
        journal_path,
        target=_journal_target(plan),
        state_path=plan.state,
        restart=plan.restart,
    )
    failures = FailuresWriter(plan.failures, columns)
    reporter = reporter_for(plan.progress, console)
    notes: list[str] = list(rows.stats.notes)
    if "file" in columns and plan.failures.resolve().parent != path.resolve().parent:
        notes.append(
            "the failures file is not beside the CSV: its 'file' paths will not resolve "
            "when it is uploaded from there"
        )

    sink = _Sink(journal, failures)
    versions: dict[str, str] = {}
    state = {"interrupted": False}
    error: BaseException | None = None
    upload_scope = anyio.CancelScope()

    def probe() -> Snapshot:
        return snapshot(
            ing.report,
            ing.client,
            resumed=journal.resumed,
            last_failure=sink.last_failure,
            last_image=sink.last_image,
            interrupted=state["interrupted"],
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
                    abort()  # a second signal queued before the first was handled
                state["interrupted"] = True
                arm_hard_exit()
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
            for warning in rows.stats.warnings:
                reporter.log(f"warning: {warning}", style="yellow")
            if journal.resumed:
                reporter.log(
                    f"resuming: {journal.resumed} rows already done (journal {journal.path})",
                    style="cyan",
                )
            try:
                with upload_scope:
                    async with ing.stream(rows, skip=journal.skip) as outcomes:
                        async for batch in outcomes.batches():
                            sink.take(batch)
                    if plan.dataset_version and not ing.report.rows_failed:
                        await _make_versions(plan, ing, rows, versions, reporter)
            except IngestError as exc:
                error = exc
            finally:
                tg.cancel_scope.cancel()
    finally:
        if state["interrupted"]:
            arm_hard_exit()  # closing the signal receiver restored the default handlers
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
        dataset_versions=versions,
    )
    if plan.dataset_version and status == EXIT_OK and not versions:
        notes.append(
            "--dataset-version: no version made, the rows went into no dataset (the data's "
            "dataset_id cells are all empty): give --dataset-id"
        )
    if result.failures is not None:
        result.retry = shlex.join(["ingest", "upload", str(result.failures)])
        result.retry = " ".join([result.retry, *plan.retry_options])
        result.token_variable = plan.token_variable
    if plan.report_json is not None:
        write_report(result, plan.source, plan.report_json)
    return result


async def _make_versions(
    plan: UploadPlan, ing: Ingester, rows: RowSource, versions: dict[str, str], reporter: Reporter
) -> None:
    """``--dataset-version``, once every row landed: a version of each dataset the rows went
    into (``--dataset-id`` and those the data names, which ``validate``'s counting pass
    finds when the data has a ``dataset_id`` column)."""
    datasets = {plan.config.dataset_id} if plan.config.dataset_id else set()
    if "dataset_id" in rows.columns:
        datasets |= (await validate_path(DatasetPath(plan.source, plan.formats))).datasets
    for dataset_id in sorted(datasets):
        versions[dataset_id] = await ing.create_dataset_version(
            dataset_id, description=f"ingest upload {plan.source.name}"
        )
        reporter.log(f"dataset version {versions[dataset_id]} of dataset {dataset_id}", style="")


def _journal_target(plan: UploadPlan) -> dict[str, object]:
    """Where the rows go, and the options that change their ids (a journal kept under
    other ones is not this upload's)."""
    target = Journal.target_of(plan.config)
    if plan.formats.images:
        target["images"] = os.path.abspath(plan.formats.images)
    if plan.formats.concept_ids != "ids":
        target["concept_ids"] = plan.formats.concept_ids
    if plan.formats.class_names != "names":
        target["class_names"] = plan.formats.class_names
    return target


def config_from_args(ns: argparse.Namespace) -> Config:
    """The ``Config`` of a command's options (those it does not take left to their
    defaults), credentials also from the environment; no credentials at all is an error."""
    options = {name: getattr(ns, _dest(option), None) for name, option in CONFIG_OPTIONS.items()}
    for secret in (
        ns.pat,
        ns.api_key,
        os.environ.get("CLARIFAI_PAT"),
        os.environ.get("CLARIFAI_API_KEY"),
    ):
        if secret:
            SECRETS.add(secret)
    config = Config.from_env(**options)
    if not config.token:
        raise ConfigError(
            "no credentials: give --pat with --user-id and --app-id (or set CLARIFAI_PAT, "
            "CLARIFAI_USER_ID, CLARIFAI_APP_ID), or --api-key (or CLARIFAI_API_KEY)"
        )
    return config


def _dest(option: str) -> str:
    return option.removeprefix("--").replace("-", "_")


def retry_options(ns: argparse.Namespace, data_format: str) -> tuple[list[str], str]:
    """The options an upload of the failures file needs, and the variable for the token.

    The options given on the command line that say where the rows go and how (the
    connection, the app, the dataset, the pace; ``--concept-ids`` when the data is a CSV,
    whose cells the failures file keeps as they were), never a secret: when the token was
    an option, the second value names the environment variable to put it in instead
    (otherwise ""). Options of the data's own format, the journal and the output do not
    apply to the failures file, a CSV of its own.
    """
    options: list[str] = []
    variable = ""
    for name, option in CONFIG_OPTIONS.items():
        value = getattr(ns, _dest(option), None)
        if value is None or value is False or option in options:
            continue
        if name in SECRET_VARIABLES:
            variable = SECRET_VARIABLES[name]
        elif value is True:
            options.append(option)
        else:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            options += [option, shlex.quote(text)]
    if data_format == "csv" and getattr(ns, "concept_ids", "ids") != "ids":
        options += ["--concept-ids", ns.concept_ids]
    return options, variable


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
    config = config_from_args(ns)
    source = Path(ns.data)
    retry, token_variable = retry_options(ns, detect(source, ns.format))
    plan = UploadPlan(
        source=source,
        config=config,
        state=Path(ns.state) if ns.state else default_state_path(source),
        failures=Path(ns.failures) if ns.failures else default_failures_path(source),
        report_json=Path(ns.report_json) if ns.report_json else None,
        progress="none" if ns.no_progress else "auto",
        restart=ns.restart,
        formats=format_options(ns),
        retry_options=retry,
        token_variable=token_variable,
        dataset_version=ns.dataset_version,
    )
    console = err_console()

    async def go() -> UploadResult:
        return await run_upload(plan, console)

    _tune_gc()
    result = anyio.run(go, backend="asyncio")
    if result.interrupted:
        arm_hard_exit()  # the event loop's exit restored the default handlers
    print_summary(result, console)
    for version_id in result.dataset_versions.values():
        print(version_id)  # stdout: for a script to read
    return result.exit_status
