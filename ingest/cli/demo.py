"""``ingest demo``: a local sandbox, the examples uploaded, what landed."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from rich.table import Table

from ingest.cli.common import EXIT_FAILED, EXIT_OK, err_console
from ingest.cli.summary import print_summary
from ingest.cli.upload import UploadPlan, UploadResult, run_upload
from ingest.config import Config
from ingest.errors import SourceError
from ingest.report import Report


def find_example() -> Path:
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

    csv_path = find_example()
    workdir = Path(tempfile.mkdtemp(prefix="ingest-demo-"))
    console = err_console()
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
