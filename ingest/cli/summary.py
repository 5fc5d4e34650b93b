"""The end of an upload: what it gives back, the closing table and the JSON report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ingest.cli.common import scrub
from ingest.cli.progress import RATE_WINDOW
from ingest.errors import ConfigError
from ingest.report import Report, RunFigures


@dataclass
class UploadResult:
    """What an upload gives back: its report, exit status and the files it wrote."""

    report: Report
    exit_status: int
    interrupted: bool = False
    failures: Path | None = None
    journal: Path | None = None
    report_json: Path | None = None
    notes: list[str] = field(default_factory=list)
    retry: str = ""
    """The command that uploads the failures file, when there is one."""
    token_variable: str = ""
    """The variable that command takes the token from, when the run had it as an option."""
    dataset_versions: dict[str, str] = field(default_factory=dict)
    """The dataset versions made (``--dataset-version``): version id by dataset id."""


def write_report(result: UploadResult, source: Path, path: Path) -> None:
    """The upload's JSON report at ``path``: the report, its data and files, its exit."""
    data = result.report.to_dict()
    data.update(
        source=str(source),
        state_file=str(result.journal) if result.journal else None,
        failures_file=str(result.failures) if result.failures else None,
        interrupted=result.interrupted,
        exit_status=result.exit_status,
    )
    if result.dataset_versions:
        data["dataset_versions"] = dict(result.dataset_versions)
    write_json(path, data)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A command's JSON report: sorted keys, no secret, written whole or not at all."""
    text = scrub(json.dumps(data, indent=2, sort_keys=True)) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the report {path}: {exc.strerror or exc}") from None


def add_grouping(table: Table, r: RunFigures) -> None:
    """The closing table's line on the grouping on disk, when there was one."""
    if r.grouped:
        table.add_row(
            "grouped",
            "",
            f"rows of one image were scattered: grouped by image first in "
            f"{r.grouping_s:,.1f} s ({r.grouping_temp_bytes / 1e6:,.1f} MB of temp files, removed)",
        )


def print_summary(result: UploadResult, console: Console, *, hints: bool = True) -> None:
    """The closing table: counts by outcome, speed, requests, where the files are; then
    the notes, and (``hints``) what to run next."""
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
    add_grouping(table, r)
    table.add_row("speed", f"{rate:,.1f}", f"rows/s over {r.elapsed_s:,.1f} s")
    # a rate over a few seconds says more about the server's burst than about the pace
    pace = f"{r.requests / r.elapsed_s:.1f}/s, " if r.elapsed_s >= RATE_WINDOW else ""
    table.add_row(
        "requests", f"{r.requests:,}", f"{pace}{r.throttled:,} throttled, {r.retries:,} retried"
    )
    table.add_section()
    if result.failures is not None:
        table.add_row("failures", "", str(result.failures), style="red")
    if result.report_json is not None:
        table.add_row("report", "", str(result.report_json))
    if result.journal is not None:
        table.add_row("journal", "", str(result.journal))
    for dataset_id, version_id in result.dataset_versions.items():
        table.add_row("version", "", f"{version_id} of dataset {dataset_id}", style="green")
    console.print(table)
    for note in result.notes:
        console.print(Text(scrub(note), style="yellow"))
    if not hints:
        return
    if result.interrupted:
        console.print(
            Text(
                "interrupted: run the same command again to continue where it stopped (exit 130)",
                style="bold yellow",
            )
        )
    elif result.retry:
        token = f", with the token in {result.token_variable}" if result.token_variable else ""
        hint = f"{r.rows_failed:,} row(s) failed; to retry them{token}: {result.retry}"
        console.print(Text(scrub(hint), style="red"), soft_wrap=True)  # one line to copy
