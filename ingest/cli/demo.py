"""``ingest demo``: a local sandbox, the examples uploaded, what landed.

Everything the demo makes goes away with it: its sandbox runs in the process, and its
journal, failures file and report go to a temporary folder removed at the end (also on
Ctrl-C or an error). What failed is told before the folder goes.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from rich.console import Console
from rich.table import Table

from ingest.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, err_console
from ingest.cli.summary import UploadResult, print_summary
from ingest.cli.upload import UploadPlan, run_upload
from ingest.config import Config
from ingest.errors import SourceError
from ingest.report import Report

#: The example, from the repository's root.
EXAMPLE = Path("examples", "boxes.csv")

GONE = "interrupted: the demo's sandbox and files are gone; 'ingest demo' starts afresh"

#: What to run to try the same against a sandbox of one's own (the demo's is gone).
YOURSELF = (
    "CLARIFAI_PAT=sandbox-pat ingest upload examples/boxes.csv "
    "--base http://127.0.0.1:18080 --user-id sandbox --app-id sandbox-app"
)


def find_example() -> Path:
    """``examples/boxes.csv`` of the repository this package runs from, else of the
    current folder."""
    root = Path(__file__).resolve().parents[2]  # ingest/cli/demo.py -> the repository
    for candidate in (root / EXAMPLE, Path.cwd() / EXAMPLE):
        if candidate.is_file():
            return candidate
    raise SourceError(f"{EXAMPLE} not found: run the demo from the repository's folder (make demo)")


def _format_examples(csv_path: Path) -> list[tuple[str, Path]]:
    """The COCO, YOLO and VOC examples beside ``examples/boxes.csv`` that are there."""
    folder = csv_path.parent
    found = [
        ("COCO", folder / "coco" / "annotations.json"),
        ("YOLO", folder / "yolo"),
        ("Pascal VOC", folder / "voc"),
    ]
    return [(kind, path) for kind, path in found if path.exists()]


def failure_story(failures: Path | None, rows_invalid: int, random_rate: float) -> str:
    """What failed, in numbers, read from the failures file: the invalid rows, the rows of
    images whose URL is broken on purpose, the rows of images the sandbox failed at random.
    """
    if failures is None or not failures.is_file():
        return "Nothing failed: every row landed once."
    rows: Counter[str] = Counter()
    images: dict[str, set[str]] = {"broken": set(), "random": set(), "other": set()}
    with failures.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            error = row.get("error", "")
            if error.startswith(f"line {row.get('line')}"):
                continue  # an invalid row: counted by the report
            if error.startswith("download failed"):
                kind = "broken" if "broken" in row.get("url", "") else "random"
            else:
                kind = "other"
            rows[kind] += 1
            images[kind].add(row.get("url", ""))
    total = rows_invalid + sum(rows.values())
    parts = [f"the {rows_invalid} invalid row{'s' if rows_invalid != 1 else ''}"]
    if rows["broken"]:
        parts.append(
            f"{rows['broken']} rows of the {len(images['broken'])} images whose URL is broken"
        )
    if rows["random"]:
        parts.append(
            f"{rows['random']} rows of {len(images['random'])} images whose download the "
            f"sandbox failed at random ({random_rate:.0%} of downloads)"
        )
    if rows["other"]:
        parts.append(f"{rows['other']} rows for other reasons")
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return f"{total} rows failed: {listed}. Everything else landed once."


def cmd_demo(ns: argparse.Namespace) -> int:
    csv_path = find_example()
    workdir = Path(tempfile.mkdtemp(prefix="ingest-demo-"))
    try:
        return _demo(ns, csv_path, workdir)
    except KeyboardInterrupt:  # between two uploads, where no signal handler runs
        err_console().print(GONE, style="bold yellow", highlight=False)
        return EXIT_INTERRUPTED
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _demo(ns: argparse.Namespace, csv_path: Path, workdir: Path) -> int:
    from ingest.sandbox import Sandbox, SandboxOptions  # the client path never imports it

    console = err_console()
    options = SandboxOptions(
        port=0, rps=15, latency=0.06, processing=(0.5, 2.0), download_failure_rate=0.01
    )
    formats: list[tuple[str, Path, Report]] = []
    stopped: list[str] = []  # the format whose upload Ctrl-C stopped

    async def go() -> tuple[UploadResult, dict[str, Any], int]:
        async with Sandbox(options) as sb:
            console.rule("[bold]ingest demo")
            console.print(
                f"A local Clarifai-compatible sandbox listens on {sb.base_url} with realistic "
                f"limits: {options.rps:g} requests/s per key, {options.latency * 1000:.0f} ms "
                f"per call, {options.processing[0]:g}-{options.processing[1]:g} s to process "
                f"an image, {options.download_failure_rate:.0%} of downloads failing.\n"
                f"Uploading {EXAMPLE}: it holds invalid rows and images with broken URLs on "
                "purpose, which end in the failures file. The demo's files go to a temporary "
                "folder, removed at the end.",
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
            for kind, path in [] if result.interrupted else _format_examples(csv_path):
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
                if done.interrupted:
                    stopped.append(kind)
                    break
                formats.append((kind, path, done.report))
            statuses: dict[str, int] = {}
            for message in sb.inputs.values():
                name = message.status.description or str(message.status.code)
                statuses[name] = statuses.get(name, 0) + 1
            return result, statuses, len(sb.annotations)

    result, statuses, annotations = anyio.run(go, backend="asyncio")
    story = failure_story(
        result.failures, result.report.rows_invalid, options.download_failure_rate
    )
    # the files are about to go with the temporary folder: the summary does not point at them
    shown = dataclasses.replace(result, failures=None, journal=None, report_json=None, retry="")
    print_summary(shown, console, hints=False)
    if result.interrupted or stopped:
        console.print(GONE, style="bold yellow", highlight=False)
        return EXIT_INTERRUPTED
    _print_formats(console, csv_path, formats)
    _print_held(console, statuses, annotations)
    console.print(story, highlight=False)
    console.print(
        "The demo's sandbox stopped with it and its files are removed. To try it yourself, "
        "start a sandbox in another terminal ('ingest sandbox'), then run:",
        highlight=False,
    )
    console.print(f"  {YOURSELF}", highlight=False, soft_wrap=True)  # one line, to copy
    return EXIT_OK if result.exit_status in (EXIT_OK, EXIT_FAILED) else result.exit_status


def _print_formats(
    console: Console, csv_path: Path, formats: list[tuple[str, Path, Report]]
) -> None:
    if not formats:
        return
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


def _print_held(console: Console, statuses: dict[str, int], annotations: int) -> None:
    held = Table(title="what the sandbox holds", show_header=False, title_style="bold")
    held.add_column("", style="bold")
    held.add_column("", justify="right")
    held.add_row("inputs", f"{sum(statuses.values()):,}")
    for name, count in sorted(statuses.items()):
        held.add_row(f"  {name}", f"{count:,}")
    held.add_row("annotations", f"{annotations:,}")
    console.print(held)
