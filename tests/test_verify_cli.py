"""``ingest verify`` as a user runs it, against a sandbox in its own process.

After a clean upload it exits 0 and writes no resend file. After the app is changed behind
its back (a box deleted, a box moved under its own id, a box re-made elsewhere under
another id, metadata changed, an input deleted, an annotation added) it exits 1 and lists
exactly those; its resend file, uploaded with ``ingest upload`` as it is, repairs what is
missing and patches what differs, under each reading of PatchInputs ``overwrite``; verify
then finds only the box changed under its own id (an upload finds its id there), and the
extras, which are no difference without ``--strict``. With a key that has only reading
scopes it runs the same, and the sandbox counts no write.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from clarifai_grpc.grpc.api import service_pb2
from rich.console import Console

from ingest.cli.progress import EventDetector
from ingest.cli.verify import VerifyLive, VerifyPlain, _Last, _probe
from ingest.sandbox.auth import is_write
from ingest.sandbox.patching import OVERWRITE_READINGS
from ingest.verify import VerifyReport
from tests.test_cli import APP, AUTH, Server, run, start_server
from tests.verify.data import Data, box_annotation, patch_annotations, write_data


def call(server: Server, method: str, request: Any) -> Any:
    request.user_app_id.CopyFrom(APP)
    reply = getattr(server.stub, method)(request, metadata=AUTH, timeout=10)
    assert reply.status.code == 10000, reply.status
    return reply


def verify(server: Server, data: Data, *more: str, **env: str) -> Any:
    # the timeout given here, so that ``env`` (environment variables) cannot fill it
    return run(
        "verify", str(data.path), "--base", server.base, "--rps", "300", *more, timeout=60, **env
    )


def read_report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def resend_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
def test_verify_finds_the_changes_and_its_file_repairs_them(tmp_path: Path, reading: str) -> None:
    data = write_data(tmp_path / "rows.csv", images=30)
    img = data.images
    resend = tmp_path / "rows.resend.csv"
    report = tmp_path / "verify.json"
    with start_server("--patch-overwrite", reading) as server:
        up = run("upload", str(data.path), "--base", server.base, "--rps", "300")
        assert up.returncode == 0, up.stderr

        clean = verify(server, data, "--report-json", str(report))
        assert clean.returncode == 0, clean.stderr
        assert "the app holds what the data says" in clean.stderr
        assert not resend.exists()
        first = read_report(report)
        assert first["equal"] and first["rows_equal"] == data.rows
        assert set(first["differences"].values()) == {0}

        deleted, _, _ = img[1].boxes[0]
        call(
            server,
            "DeleteAnnotations",
            service_pb2.DeleteAnnotationsRequest(ids=[deleted], input_ids=[img[1].input_id]),
        )
        moved, box, concepts = img[2].boxes[0]
        shifted = (box[0] + 0.05, box[1], box[2] + 0.05, box[3])
        call(
            server,
            "PatchAnnotations",
            patch_annotations("merge", box_annotation(moved, img[2].input_id, shifted, concepts)),
        )
        patch = service_pb2.PatchInputsRequest(action="merge")
        patch.inputs.add(id=img[3].input_id).data.metadata.update({"split": "changed"})
        call(server, "PatchInputs", patch)
        call(server, "DeleteInputs", service_pb2.DeleteInputsRequest(ids=[img[4].input_id]))
        extra = box_annotation("by-a-person", img[5].input_id, (0.6, 0.6, 0.9, 0.9), ["dog"])
        call(server, "PostAnnotations", service_pb2.PostAnnotationsRequest(annotations=[extra]))
        remade, box6, concepts6 = img[6].boxes[0]
        call(
            server,
            "DeleteAnnotations",
            service_pb2.DeleteAnnotationsRequest(ids=[remade], input_ids=[img[6].input_id]),
        )
        elsewhere = (box6[0] + 0.1, box6[1], box6[2] + 0.1, box6[3])
        wrong = box_annotation("re-made", img[6].input_id, elsewhere, concepts6)
        call(server, "PostAnnotations", service_pb2.PostAnnotationsRequest(annotations=[wrong]))

        found = verify(server, data, "--report-json", str(report))
        assert found.returncode == 1, found.stderr
        counts = read_report(report)["differences"]
        assert {k: v for k, v in counts.items() if v} == {
            "regions_missing": 2,
            "regions_moved": 1,
            "inputs_with_other_metadata": 1,
            "inputs_missing": 1,
            "annotations_extra": 2,
        }
        rows = resend_rows(resend)
        expected = {img[1].box_line(0), img[2].box_line(0), img[6].box_line(0)}
        expected |= set(img[3].lines) | set(img[4].lines)
        assert {int(r["line"]) for r in rows} == expected
        assert len(rows) == len(expected)
        by_line = {int(r["line"]): r for r in rows}
        assert "not in the app" in by_line[img[1].box_line(0)]["error"]
        assert "in the app" in by_line[img[2].box_line(0)]["error"]
        assert all("metadata differs" in by_line[line]["error"] for line in img[3].lines)
        assert all(by_line[line]["error"] == "the input is not in the app" for line in img[4].lines)
        assert f"ingest upload {resend}" in found.stderr

        # the resend file is an upload file as it is
        repair = run("upload", str(resend), "--base", server.base, "--rps", "300")
        assert repair.returncode == 0, repair.stderr

        after = verify(server, data, "--report-json", str(report))
        assert after.returncode == 1, after.stderr
        left = read_report(report)
        assert {k: v for k, v in left["differences"].items() if v} == {
            "regions_moved": 1,  # changed in the app under its own id: the upload finds it
            "annotations_extra": 2,  # the person's, and the wrong one of the re-made box
        }
        assert [int(r["line"]) for r in resend_rows(resend)] == [img[2].box_line(0)]
        assert "regions changed in the app under their own id" in after.stderr

        strict = verify(server, data, "--strict", "--resend", str(tmp_path / "strict.csv"))
        assert strict.returncode == 1
        assert "annotations_extra" in strict.stderr


def test_a_read_only_key_verifies_and_the_sandbox_counts_no_write(tmp_path: Path) -> None:
    data = write_data(tmp_path / "rows.csv", images=20)
    stats, uploaded = tmp_path / "stats.json", tmp_path / "upload.json"
    with start_server("--read-only-key", "ro-key", "--stats", str(stats)) as server:
        up = run("upload", str(data.path), "--base", server.base, "--report-json", str(uploaded))
        assert up.returncode == 0, up.stderr
        done = verify(
            server,
            data,
            "--api-key",
            "ro-key",
            CLARIFAI_PAT="",
            CLARIFAI_USER_ID="",
            CLARIFAI_APP_ID="",
        )
        assert done.returncode == 0, done.stderr
        assert "none writes" in done.stderr
    served = json.loads(stats.read_text())["requests"]
    by_upload = read_report(uploaded)["requests_by_method"]
    # every writing call the sandbox served was the upload's
    assert {m: n for m, n in served.items() if is_write(m)} == {
        m: n for m, n in by_upload.items() if is_write(m)
    }
    assert served["ListAnnotations"] >= 1 and "ListAnnotations" not in by_upload
    assert "ro-key" not in done.stderr


def test_the_display_shows_rows_read_images_checked_and_rows_compared() -> None:
    """The verification's live display: its three bars with the counting pass's totals, and
    the differing rows and extras on the status line; its plain line the same."""
    report = VerifyReport(
        rows_read=300,
        rows_equal=280,
        rows_differing=20,
        rows_invalid=2,
        images=100,
        images_checked=90,
        rows_total=400,
        images_total=120,
        differences={"annotations_extra": 3},
    )
    buf = io.StringIO()
    live = VerifyLive(Console(file=buf, force_terminal=True, width=140, color_system=None))
    snap = _probe(report, None, _Last())
    live.start(snap)
    live.stop(snap)
    frame = buf.getvalue()
    for label, count in (
        ("rows read", "300/400"),
        ("images checked", "90/120"),
        ("rows compared", "300/400"),
    ):
        assert re.search(rf"{label}\s.*{count}", frame), frame
    assert "differing 20 (2 invalid) · extras 3" in frame
    plain = io.StringIO()
    line = VerifyPlain(plain).line(snap)
    assert "rows read 300/400, compared 300/400 (as the app holds them 280)" in line
    assert "images checked 90/120" in line and "differing 20" in line
    events = EventDetector(failed="differ")
    events.feed(_probe(VerifyReport(), None, _Last()))
    [event] = events.feed(snap)
    assert event.text.startswith("20 rows differ in")
