"""A COCO upload killed with SIGKILL and run again: nothing missing, nothing twice.

The command line in a subprocess against a sandbox subprocess (as ``tests/test_cli.py``);
the boxes' annotation ids are checked against the same boxes written as a seed CSV.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import anyio

from benchmarks.coco_memory import generate
from ingest.model import Row
from ingest.source import open_rows
from tests.test_cli import (
    Server,
    journal_rows,
    server,  # noqa: F401 - the fixture
    start_upload,
    upload,
    wait_for_rows,
)


async def _expected(csv_path: Path) -> tuple[set[str], set[str]]:
    inputs: set[str] = set()
    boxes: set[str] = set()
    async with open_rows(csv_path) as rows:
        async for row in rows:
            assert isinstance(row, Row)
            inputs.add(row.input_id)
            boxes.add(row.annotation_id)
    return inputs, boxes


def test_a_killed_coco_upload_finishes_on_the_rerun_with_the_csv_paths_ids(
    server: Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    coco_path, csv_path = generate(1200, tmp_path)
    inputs, boxes = anyio.run(_expected, csv_path)
    state = Path(str(coco_path) + ".ingest-state")
    for amount in (50, 250):
        proc = start_upload(server, coco_path, "--rps", "40")
        try:
            wait_for_rows(state, journal_rows(state) + amount, proc)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == -signal.SIGKILL
    before = journal_rows(state)
    final = upload(server, coco_path, "--report-json", str(tmp_path / "r.json"))
    assert final.returncode == 0, final.stderr
    assert f"resuming: {before} rows already done" in final.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows_resumed"] == before
    assert (
        report["rows_read"]
        == report["rows_resumed"] + report["rows_landed"] + report["rows_present"]
    )
    # images without annotations are inputs too; every box once, with the CSV's id
    assert server.annotation_ids() == boxes
    assert inputs <= server.input_ids()
    assert len(server.input_ids()) == 400
