"""``ingest plan``: before an upload, what it would meet and take (``Ingester.plan``).

Prints the checks (credentials, scopes, app, datasets, temp space, the data), what the
data holds, the images already in the app (``--check-existing``) and the estimate of
requests and time, on stdout; exit 0 when an upload could start, 2 with the reasons (each
on stderr as an error line) when it could not. Read-only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ingest.cli.common import EXIT_OK, EXIT_USAGE, print_error, scrub
from ingest.cli.formats import format_options
from ingest.cli.summary import write_json
from ingest.cli.upload import check_source, config_from_args
from ingest.errors import ConfigError
from ingest.ingester import Ingester
from ingest.plan import SHOWN_INVALID, Plan
from ingest.source import DatasetPath

__all__ = ["cmd_plan", "print_plan"]


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def print_plan(plan: Plan, console: Console) -> None:
    """The plan as three tables: the checks, the data, the estimate; then the notes."""
    checks = Table(title=f"plan for {plan.source}", show_header=False, title_style="bold")
    checks.add_column("")
    checks.add_column("", style="bold")
    checks.add_column("", overflow="fold")
    for c in plan.checks:
        checks.add_row("ok" if c.ok else "NO", c.name, c.says, style=None if c.ok else "red")
    console.print(checks)

    d = plan.data
    data = Table(title="the data", show_header=False, title_style="bold")
    data.add_column("", style="bold")
    data.add_column("", justify="right")
    data.add_column("", overflow="fold")
    data.add_row("rows", f"{d.rows:,}", "")
    data.add_row("images", f"{d.images:,}", "one input each")
    data.add_row("boxes", f"{d.boxes - d.polygons:,}", "")
    data.add_row("polygons", f"{d.polygons:,}", "")
    data.add_row("image-level rows", f"{d.image_level_rows:,}", "labels of the whole image")
    first = "; ".join(i.message() for i in d.invalid[:SHOWN_INVALID])
    data.add_row("invalid rows", f"{len(d.invalid):,}", first, style="red" if d.invalid else None)
    if d.datasets:
        data.add_row("datasets", f"{len(d.datasets):,}", ", ".join(sorted(d.datasets)))
    grouping = (
        f"the rows are grouped by image on disk first (about {plan.temp_bytes / 1e6:,.1f} MB "
        "of temp files, removed at the end)"
        if plan.grouping == "disk"
        else "not needed: each image's rows come together"
    )
    data.add_row("grouping", "", grouping)
    if plan.existing is not None:
        data.add_row("in the app", f"{plan.existing:,}", f"of the {d.images:,} images already")
    console.print(data)

    est = plan.estimate
    if est is not None:
        table = Table(
            title=f"estimate at {est.rps:g} requests/s", show_header=False, title_style="bold"
        )
        table.add_column("", style="bold")
        table.add_column("", justify="right")
        table.add_column("", overflow="fold")
        by_method = ", ".join(f"{k} {v:,}" for k, v in est.requests_by_method.items())
        table.add_row("requests", f"{est.requests:,}", by_method)
        table.add_row(
            "time", _duration(est.seconds), f"of which {est.tail_s:.1f} s of processing at the end"
        )
        for assumption in est.assumptions:
            table.add_row("assumes", "", assumption)
        console.print(table)
    for note in plan.notes:
        console.print(Text(scrub(note), style="yellow"))
    verdict = "an upload could start" if plan.ready else "an upload could not start"
    console.print(Text(verdict, style="bold green" if plan.ready else "bold red"))


def cmd_plan(ns: argparse.Namespace) -> int:
    config = config_from_args(ns)
    formats = format_options(ns)
    path = check_source(Path(ns.data), formats)
    report_json = Path(ns.report_json) if ns.report_json else None
    if report_json is not None and report_json.resolve() == path.resolve():
        raise ConfigError(f"--report-json {report_json} is the data file itself")

    async def go() -> Plan:
        async with Ingester(config) as ing:
            return await ing.plan(
                DatasetPath(path, formats),
                check_existing=ns.check_existing,
                dataset_version=ns.dataset_version,
            )

    plan = anyio.run(go, backend="asyncio")
    print_plan(plan, Console(highlight=False))
    if report_json is not None:
        write_json(report_json, plan.to_dict())
    for problem in plan.problems:
        print_error(problem)
    return EXIT_OK if plan.ready else EXIT_USAGE
