"""The formats through the command line's upload and validate: journal, failures, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.console import Console

from ingest.cli import UploadPlan, main, run_upload
from ingest.errors import JournalError
from ingest.failures import default_failures_path
from ingest.journal import default_state_path
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.source import FormatOptions
from tests.helpers import sandbox_config
from tests.source.test_coco import coco, write
from tests.source.test_yolo import make_yolo


def plan_for(sb: Sandbox, path: Path, **options: Any) -> UploadPlan:
    return UploadPlan(
        source=path,
        config=sandbox_config(sb),
        state=default_state_path(path),
        failures=default_failures_path(path),
        progress="none",
        handle_signals=False,
        formats=FormatOptions(**options),
    )


@pytest.mark.anyio
async def test_a_yolo_folder_resumes_and_refuses_when_a_label_file_changed(tmp_path: Path) -> None:
    root = make_yolo(tmp_path)
    console = Console(file=io.StringIO())
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.05, 0.2))) as sb:
            first = await run_upload(plan_for(sb, root), console)
            assert first.exit_status == 1
            assert len(sb.inputs) == 3 and len(sb.annotations) == 4
            # the journal fingerprints every file read, listed beside it
            manifest = Path(str(default_state_path(root)) + ".files")
            assert (
                json.loads(await anyio.Path(manifest).read_text())["files"] == 6
            )  # data.yaml, 3 images, 2 labels
            again = await run_upload(plan_for(sb, root), console)
            assert again.report.rows_resumed == 5
            assert again.report.inputs_created == 0 and again.report.annotations_created == 0
            await anyio.Path(root / "labels/val/c.txt").write_text("2 0.5 0.5 0.25 0.25\n")
            with pytest.raises(JournalError, match="changed since its journal"):
                await run_upload(plan_for(sb, root), console)
    # failed rows are seed-format CSV rows, their paths relative to the failures file
    failures = default_failures_path(root)
    assert failures == tmp_path / "ds.failures.csv"
    with failures.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["line"] for r in rows] == ["5", "6"]
    assert {r["file"] for r in rows} == {"ds/images/train/a.png"}
    assert "ds/labels/train/a.txt line 5" in rows[1]["error"]


@pytest.mark.anyio
async def test_a_coco_file_through_the_command_line(tmp_path: Path) -> None:
    p = write(tmp_path, coco())
    console = Console(file=io.StringIO())
    async with Sandbox(SandboxOptions(rps=0, processing=(0.05, 0.2))) as sb:
        result = await run_upload(plan_for(sb, p, regions="both"), console)
        assert result.exit_status == 1
        assert any("yajl2_c" in note for note in result.notes)
        assert len(sb.inputs) == 3
        again = await run_upload(plan_for(sb, p, regions="both"), console)
        assert again.report.rows_resumed == 7 and again.report.annotations_created == 0


def test_validate_every_format_and_the_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = write(tmp_path, coco())
    assert main(["validate", str(p)]) == 1
    out = capsys.readouterr().out
    assert "annotation id 13" in out and "category_id 9" in out
    assert main(["validate", str(make_yolo(tmp_path)), "--regions", "both"]) == 1
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "looked for a LabelMe folder" in err and "a YOLO dataset" in err
    p.write_text(p.read_text()[:-20])
    assert main(["validate", str(p)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
