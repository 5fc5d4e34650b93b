"""``ingest validate``: check a dataset without sending anything."""

from __future__ import annotations

import argparse
import time

import anyio
import anyio.lowlevel
from rich.console import Console
from rich.table import Table

from ingest.cli.common import EXIT_FAILED, EXIT_OK
from ingest.cli.formats import format_options
from ingest.source.formats import DatasetPath, require, validate_path

#: Invalid rows shown by ``ingest validate`` before "and N more".
VALIDATE_SHOWN = 1000


def cmd_validate(ns: argparse.Namespace) -> int:
    path = require(ns.data)
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
