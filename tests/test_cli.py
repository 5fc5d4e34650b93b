"""The ``ingest`` command as a user runs it: a subprocess against a sandbox subprocess.

Exit codes 0, 1, 2 and 130; the failures file fed back; the JSON report against the
server's state; SIGKILL mid-run then re-run (nothing missing, nothing duplicated);
Ctrl-C; the token never shown.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc

from ingest import Config
from ingest.cli import build_parser, common
from ingest.sandbox.patching import OVERWRITE_READINGS
from tests.helpers import COLUMNS, REPORT_KEYS, Dataset, make_dataset

PAT = "sandbox-pat"
AUTH = (("authorization", f"Key {PAT}"),)
APP = resources_pb2.UserAppIDSet(user_id="sandbox", app_id="sandbox-app")
ROOT = Path(__file__).resolve().parent.parent
SANDBOX = [sys.executable, "-m", "ingest.sandbox", "--latency", "0.005"]


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    stub: Any
    channel: Any

    def input_ids(self) -> set[str]:
        return self._ids("ListInputs", service_pb2.ListInputsRequest, "inputs")

    def annotation_ids(self) -> set[str]:
        """The boxes: ListAnnotations also lists the input-level annotations PostInputs made
        of the inputs' concepts and metadata, which have no region."""
        return self._ids(
            "ListAnnotations",
            service_pb2.ListAnnotationsRequest,
            "annotations",
            lambda a: bool(a.data.regions),
        )

    def _ids(
        self, method: str, request_type: Any, field: str, keep: Any = lambda item: True
    ) -> set[str]:
        found: list[str] = []
        page = 1
        while True:
            reply = getattr(self.stub, method)(
                request_type(user_app_id=APP, page=page, per_page=1000), metadata=AUTH, timeout=10
            )
            items = getattr(reply, field)
            found.extend(item.id for item in items if keep(item))
            if len(items) < 1000:
                break
            page += 1
        assert len(found) == len(set(found)), "the server lists an id twice"
        return set(found)


@contextlib.contextmanager
def start_server(*knobs: str) -> Iterator[Server]:
    proc = subprocess.Popen(
        [*SANDBOX, "--port", "0", "--rps", "0", "--processing", "0.05", "0.2", *knobs],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", line)
        assert match, line
        channel = ClarifaiChannel.get_insecure_grpc_channel("127.0.0.1", int(match.group(2)))
        yield Server(proc, match.group(1), service_pb2_grpc.V2Stub(channel), channel)
        channel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=10)  # reaps it and closes its stdout pipe
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A sandbox; the tests that send rows again take it under each reading of PatchInputs
    overwrite (``@resends``)."""
    reading = getattr(request, "param", None)
    with start_server(*(("--patch-overwrite", reading) if reading else ())) as srv:
        yield srv


resends = pytest.mark.parametrize("server", OVERWRITE_READINGS, indirect=True)


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CLARIFAI_")}
    e.update(
        CLARIFAI_PAT=PAT,
        CLARIFAI_USER_ID="sandbox",
        CLARIFAI_APP_ID="sandbox-app",
        COLUMNS="200",
        PYTHONPATH=str(ROOT),
    )
    e.update(extra)
    return e


def ingest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ingest", *args]


def run(*args: str, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ingest_cmd(*args), capture_output=True, text=True, env=env(**extra), timeout=timeout
    )


def upload(server: Server, csv_path: Path, *more: str, **extra: str) -> Any:
    return run(
        "upload",
        str(csv_path),
        "--base",
        server.base,
        "--rps",
        "300",
        "--batch-size",
        "32",
        *more,
        timeout=60,  # given here so that ``**extra`` (environment variables) cannot fill it
        **extra,
    )


def assert_no_secret(*texts: str, secret: str = PAT) -> None:
    for text in texts:
        assert secret not in text


def files_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.iterdir() if p.is_file())


def clean(data: Dataset) -> Dataset:
    """Only the rows that must land: no invalid row, no broken URL."""
    skip = data.invalid_lines | data.broken_lines
    rows = [r for i, r in enumerate(data.rows, start=2) if i not in skip]
    inputs = {k: v for k, v in data.inputs.items() if k in data.good_inputs}
    return Dataset(rows=rows, inputs=inputs, good_inputs=data.good_inputs, boxes=data.boxes)


@resends
def test_clean_upload_exits_0_report_matches_server_rerun_sends_nothing(
    server: Server, tmp_path: Path
) -> None:
    data = clean(make_dataset(80, seed=5))
    csv_path = data.write(tmp_path / "clean.csv")
    report_path = tmp_path / "report.json"
    done = upload(server, csv_path, "--report-json", str(report_path))
    assert done.returncode == 0, done.stderr
    assert server.input_ids() == set(data.inputs)
    assert server.annotation_ids() == set(data.boxes)
    report = json.loads(report_path.read_text())
    for key in REPORT_KEYS:
        assert key in report, key
    assert report["rows_read"] == len(data.rows) == report["rows_landed"] + report["rows_present"]
    assert report["inputs_created"] == len(data.inputs)
    assert report["annotations_created"] == len(data.boxes)
    assert report["inputs_failed"] == report["annotations_failed"] == report["rows_failed"] == 0
    assert report["failures_file"] is None and report["exit_status"] == 0
    assert report["state_file"] == str(tmp_path / "clean.csv.ingest-state")
    assert not (tmp_path / "clean.failures.csv").exists()
    assert "upload finished" in done.stderr and "landed" in done.stderr
    assert done.stdout == ""

    # the journal is kept: the same command again skips every row and sends nothing
    again = upload(server, csv_path, "--report-json", str(report_path))
    assert again.returncode == 0, again.stderr
    assert f"resuming: {len(data.rows)} rows already done" in again.stderr
    assert "nothing to send" in again.stderr
    report = json.loads(report_path.read_text())
    assert report["requests"] == 0 and report["rows_resumed"] == len(data.rows)
    # --restart sends again: everything is recognised as already there
    restarted = upload(server, csv_path, "--restart", "--report-json", str(report_path))
    assert restarted.returncode == 0, restarted.stderr
    report = json.loads(report_path.read_text())
    assert report["rows_present"] == len(data.rows) and report["inputs_created"] == 0
    assert server.input_ids() == set(data.inputs)
    assert server.annotation_ids() == set(data.boxes)
    assert_no_secret(done.stderr, again.stderr, restarted.stderr, files_text(tmp_path))


@resends
def test_broken_urls_exit_1_and_the_failures_file_round_trips(
    server: Server, tmp_path: Path
) -> None:
    data = make_dataset(90, seed=11)
    csv_path = data.write(tmp_path / "data.csv")
    done = upload(server, csv_path, "--pat", PAT, CLARIFAI_PAT="")
    assert done.returncode == 1, done.stderr
    failures = tmp_path / "data.failures.csv"
    with failures.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert {int(r["line"]) for r in table} == data.invalid_lines | data.broken_lines
    assert len(table) == len(data.invalid_lines | data.broken_lines)
    assert all(r["error"] for r in table)
    assert list(table[0]) == [*COLUMNS, "line", "error"]
    assert f"ingest upload {failures}" in done.stderr
    assert server.input_ids() == set(data.inputs)  # broken inputs exist, failed
    assert server.annotation_ids() == set(data.boxes)

    # the failures file is an upload file: the same rows fail again, nothing is duplicated
    retry = upload(server, failures, "--report-json", str(tmp_path / "r.json"))
    assert retry.returncode == 1, retry.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows_read"] == len(table)
    assert report["rows_failed"] == len(table)
    assert report["rows_invalid"] == len(data.invalid_lines)
    with (tmp_path / "data.failures.failures.csv").open(newline="") as fh:
        again = list(csv.DictReader(fh))
    assert [r["url"] for r in again] == [r["url"] for r in table]
    assert server.input_ids() == set(data.inputs)
    assert server.annotation_ids() == set(data.boxes)
    assert_no_secret(done.stderr, retry.stderr, files_text(tmp_path))


def test_usage_and_file_errors_exit_2_with_one_sentence(server: Server, tmp_path: Path) -> None:
    data = clean(make_dataset(10, seed=2))
    csv_path = data.write(tmp_path / "d.csv")
    secret = "sekrit-token-b4d"

    def one_error(p: subprocess.CompletedProcess[str], pattern: str) -> None:
        assert p.returncode == 2, (p.stdout, p.stderr)
        assert "Traceback" not in p.stderr
        assert re.search(pattern, p.stderr), p.stderr
        assert_no_secret(p.stdout, p.stderr, secret=secret)

    bad_token = upload(server, csv_path, "--pat", secret)
    one_error(bad_token, r"ingest: error: .*(rejected|does not exist).*--pat")
    assert server.input_ids() == set()  # nothing sent that stuck

    missing = tmp_path / "missing.csv"
    missing.write_text("url,left_col,top_row,right_col\nhttps://e.com/a.jpg,0.1,0.1,0.2\n")
    one_error(upload(server, missing), r"required column 'bottom_row' is missing")
    one_error(run("upload", str(csv_path), "--base", "ftp://nowhere"), r"base must look like")
    one_error(run("upload", str(tmp_path / "nope.csv")), r"nope\.csv: no such file")
    one_error(run("upload", str(csv_path), CLARIFAI_PAT="", CLARIFAI_USER_ID=""), r"no credentials")
    one_error(run("upload", str(csv_path), "--pat", secret, CLARIFAI_APP_ID=""), r"needs a user id")
    one_error(run("upload", str(csv_path), "--batch-size", "0"), r"must be at least 1")
    one_error(run("upload", str(csv_path), "--state", str(csv_path)), r"data file itself")

    # a journal of another version of the file: refuse, and say how to go on
    (tmp_path / "d.csv.ingest-state").write_text(
        '{"format": "ingest-journal", "version": 1, "source": {"size": 1}, "target": {}}\n'
    )
    one_error(upload(server, csv_path), r"changed since its journal.*--restart")
    assert upload(server, csv_path, "--restart").returncode == 0

    strict = make_dataset(10, seed=2).write(tmp_path / "s.csv")
    one_error(upload(server, strict, "--strict"), r"invalid row\(s\), nothing sent")


def test_validate_lists_invalid_rows(tmp_path: Path) -> None:
    data = make_dataset(40, seed=4)
    bad = run("validate", str(data.write(tmp_path / "v.csv")), timeout=30)
    assert bad.returncode == 1, bad.stderr
    for line in data.invalid_lines:
        assert re.search(rf"│\s+{line} │", bad.stdout), bad.stdout
    assert re.search(rf"invalid rows\s+│\s+{len(data.invalid_lines)}", bad.stdout)
    assert "nothing was sent" in bad.stdout
    good = run("validate", str(clean(data).write(tmp_path / "g.csv")), timeout=30)
    assert good.returncode == 0 and "every row is valid" in good.stdout
    missing = tmp_path / "m.csv"
    missing.write_text("url,left_col\nx,0.1\n")  # one box column without the others
    nocol = run("validate", str(missing), timeout=30)
    assert nocol.returncode == 2 and "required column" in nocol.stderr


def test_help_and_sandbox_command() -> None:
    top = run("--help", timeout=30)
    assert top.returncode == 0 and "upload" in top.stdout and "sandbox" in top.stdout
    up = run("upload", "--help", timeout=30)
    assert up.returncode == 0 and "examples:" in up.stdout and "--restart" in up.stdout
    sb = run("sandbox", "--help", timeout=30)
    assert sb.returncode == 0 and "--download-failure-rate" in sb.stdout
    assert run(timeout=30).returncode == 2


def test_the_upload_path_does_not_import_the_sandbox() -> None:
    code = (
        "import sys, ingest.cli; ingest.cli.build_parser(); "
        "print(any(m.startswith('ingest.sandbox') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env(), timeout=30
    )
    assert out.stdout.strip() == "False", out.stderr


def journal_rows(path: Path) -> int:
    if not path.exists():
        return 0
    count = 0
    for line in path.read_text().splitlines()[1:]:
        for token in line.split():
            a, _, b = token.partition("-")
            count += int(b or a) - int(a) + 1
    return count


def start_upload(server: Server, csv_path: Path, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        # a later --rps in ``more`` wins
        ingest_cmd("upload", str(csv_path), "--base", server.base, "--batch-size", "16", *more),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


@contextlib.contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``proc`` for the block; killed and reaped on leaving it if it still runs."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[str],
    what: str,
    *,
    limit: float = 30,
    every: float = 0.02,
) -> None:
    """Poll ``ready`` (bounded) while ``proc`` runs; ``what`` names the moment waited for."""
    deadline = time.monotonic() + limit
    while not ready():
        assert proc.poll() is None, (f"the upload ended before {what}", proc.communicate())
        assert time.monotonic() < deadline, f"{what} never came"
        time.sleep(every)


def wait_for_rows(path: Path, rows: int, proc: subprocess.Popen[str]) -> None:
    wait_until(lambda: journal_rows(path) >= rows, proc, f"{rows} rows in the journal")


KILL_SEED = int(os.environ.get("INGEST_KILL_SEED") or random.SystemRandom().randrange(1 << 32))


@resends
def test_sigkill_at_five_random_moments_then_rerun_nothing_missing_nothing_twice(
    server: Server, tmp_path: Path
) -> None:
    """Five SIGKILLs at random moments of one upload, a re-run after each, then a last run.

    The moments change from run to run; a failure names the seed that reproduces it
    (``INGEST_KILL_SEED=N``).
    """
    rng = random.Random(KILL_SEED)
    seed = f"INGEST_KILL_SEED={KILL_SEED}"
    data = make_dataset(400, seed=8)
    csv_path = data.write(tmp_path / "k.csv")
    state = tmp_path / "k.csv.ingest-state"
    outputs: list[str] = []
    # the first kill comes at a random instant of the start (often before anything is in
    # the journal though inputs may exist on the server), the others after a random number
    # of further rows have landed and been recorded
    moments: list[tuple[str, float]] = [("seconds", rng.uniform(0.05, 1.0))]
    moments += [("rows", rng.randint(1, 100)) for _ in range(4)]
    for kind, amount in moments:
        with running(start_upload(server, csv_path, "--rps", "25")) as proc:
            if kind == "rows":
                wait_for_rows(state, journal_rows(state) + int(amount), proc)
            else:
                time.sleep(amount)  # the kill moment itself, not a wait for something
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=10)
            outputs += [out, err]
        assert proc.returncode == -signal.SIGKILL, (seed, kind, amount)
    before = journal_rows(state)
    assert 0 < before < len(data.rows), seed
    final = upload(server, csv_path, "--report-json", str(tmp_path / "r.json"))
    outputs += [final.stdout, final.stderr]
    assert final.returncode == 1, final.stderr  # the broken URLs and invalid rows
    assert f"resuming: {before} rows already done" in final.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows_resumed"] == before
    assert (
        report["rows_read"]
        == len(data.rows)
        == (
            report["rows_resumed"]
            + report["rows_landed"]
            + report["rows_present"]
            + report["rows_failed"]
        )
    )
    assert report["rows_failed"] == len(data.invalid_lines | data.broken_lines)
    # the server holds exactly one input per valid URL and one annotation per good box
    assert server.input_ids() == set(data.inputs), seed
    assert server.annotation_ids() == set(data.boxes), seed
    assert_no_secret(*outputs, files_text(tmp_path))


@resends
def test_ctrl_c_stops_saves_state_and_exits_130_then_continues(
    server: Server, tmp_path: Path
) -> None:
    data = make_dataset(200, seed=9)
    csv_path = data.write(tmp_path / "c.csv")
    state = tmp_path / "c.csv.ingest-state"
    upload_cmd = start_upload(
        server, csv_path, "--rps", "60", "--report-json", str(tmp_path / "r.json")
    )
    with running(upload_cmd) as proc:
        wait_for_rows(state, 30, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "Ctrl-C: stopping" in err and "upload interrupted" in err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["interrupted"] is True and report["exit_status"] == 130
    # the display's last word: where it stopped, not a full bar
    finished = report["rows_landed"] + report["rows_present"] + report["rows_failed"]
    assert (
        "interrupted at 0:" in err and f"with {finished:,} of {len(data.rows):,} rows done" in err
    )
    done = journal_rows(state)
    assert done >= 30
    final = upload(server, csv_path)
    assert final.returncode == 1, final.stderr
    assert f"resuming: {done} rows already done" in final.stderr
    assert server.input_ids() == set(data.inputs)
    assert server.annotation_ids() == set(data.boxes)
    assert_no_secret(out, err, final.stderr, files_text(tmp_path))


def wchan(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


def test_second_ctrl_c_aborts_at_once(server: Server, tmp_path: Path) -> None:
    """A second Ctrl-C during the orderly stop leaves at once, without a traceback.

    The report is written through ``r.json.tmp``; making that a FIFO holds the orderly stop
    at a known point (opening it blocks until a reader comes, which never does), so the
    second signal surely arrives while the first one's stop is under way.
    """
    data = make_dataset(200, seed=10)
    csv_path = data.write(tmp_path / "a.csv")
    state = tmp_path / "a.csv.ingest-state"
    os.mkfifo(tmp_path / "r.json.tmp")
    upload_cmd = start_upload(
        server, csv_path, "--rps", "40", "--report-json", str(tmp_path / "r.json")
    )
    with running(upload_cmd) as proc:
        wait_for_rows(state, 1, proc)
        proc.send_signal(signal.SIGINT)
        # blocked opening the FIFO
        wait_until(lambda: wchan(proc.pid) == "wait_for_partner", proc, "the report's FIFO")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "Ctrl-C: stopping" in err
    assert "aborted at once" in err and "Traceback" not in err
    assert journal_rows(state) >= 1  # what landed before stays recorded


def test_processing_timeout_option_fails_stuck_inputs_with_their_lines(tmp_path: Path) -> None:
    data = make_dataset(120, seed=12)
    csv_path = data.write(tmp_path / "s.csv")
    with start_server("--stuck-rate", "0.15", "--seed", "3") as srv:
        done = upload(
            srv, csv_path, "--processing-timeout", "1", "--report-json", str(tmp_path / "r.json")
        )
        stored_boxes = srv.annotation_ids()
        stored_inputs = srv.input_ids()
    assert done.returncode == 1, done.stderr
    with (tmp_path / "s.failures.csv").open(newline="") as fh:
        failed = {int(row["line"]): row for row in csv.DictReader(fh)}
    timed_out = {line: row for line, row in failed.items() if "processing timeout" in row["error"]}
    assert timed_out, "no input was stuck: the scenario tests nothing"
    stuck_urls = {row["url"] for row in timed_out.values()}
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["rows_read"] == report["rows_landed"] + report["rows_failed"]
    assert set(failed) == data.invalid_lines | data.broken_lines | set(timed_out)
    # a stuck input exists on the server, but none of its boxes was posted
    stuck_ids = {iid for iid, url in data.inputs.items() if url in stuck_urls}
    assert stuck_ids <= stored_inputs == set(data.inputs)
    assert stored_boxes == {a for a, (iid, _, _) in data.boxes.items() if iid not in stuck_ids}


def test_a_journal_kept_with_other_concept_ids_is_not_resumed(
    server: Server, tmp_path: Path
) -> None:
    """``--concept-ids names`` makes other concept ids: the journal of a run without it
    does not apply (resuming would skip rows whose annotations never landed)."""
    data = clean(make_dataset(20, seed=6))
    csv_path = data.write(tmp_path / "n.csv")
    assert upload(server, csv_path).returncode == 0
    again = upload(server, csv_path, "--concept-ids", "names")
    assert again.returncode == 2, again.stderr
    [line] = [x for x in again.stderr.splitlines() if x.startswith("ingest: error:")]
    assert line.endswith(
        "at " + server.base + ", concept cells read as names; re-run with --restart to ignore "
        "it and start a new journal, or give this upload its own journal with --state PATH"
    ), line


def test_demo_uploads_the_csv_and_one_dataset_of_each_format(tmp_path: Path) -> None:
    done = run("demo", "--no-progress", timeout=120, TMPDIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    formats = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[3:8]]
        for line in done.stderr.splitlines()
        if line.startswith("│ ") and line.split("│")[1].strip() in ("COCO", "YOLO", "Pascal VOC")
    }
    assert set(formats) == {"COCO", "YOLO", "Pascal VOC"}
    for rows, landed, failed, _inputs, _annotations in formats.values():
        assert rows == landed and failed == "0" and int(rows) > 0
    # the story states the numbers the run got, and they add up to the table's
    text = " ".join(done.stderr.split())
    [failed] = re.findall(r"│ failed\s+│\s+([\d,]+) │", done.stderr)
    story = re.search(
        r"(\d+) rows failed: the 2 invalid rows, (\d+) rows of the 6 images whose URL is broken"
        r"(?: and (\d+) rows of (\d+) images whose download the sandbox failed at random)?",
        text,
    )
    assert story, text
    assert int(story.group(1)) == int(failed) == 2 + int(story.group(2)) + int(story.group(3) or 0)
    # what the demo made is gone, and it says how to do the same by hand
    assert not list(tmp_path.iterdir())
    assert "/tmp/" not in done.stderr and str(tmp_path) not in done.stderr
    assert "The demo's sandbox stopped with it" in text
    assert (
        "CLARIFAI_PAT=sandbox-pat ingest upload examples/boxes.csv --base http://127.0.0.1:18080 "
        "--user-id sandbox --app-id sandbox-app" in done.stderr
    )


def test_demo_interrupted_removes_its_folder(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        ingest_cmd("demo"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(TMPDIR=str(tmp_path)),
    )

    def journal() -> Path:
        found = list(tmp_path.glob("ingest-demo-*/boxes.csv.ingest-state"))
        return found[0] if found else tmp_path / "none"

    with running(proc):
        wait_until(lambda: journal_rows(journal()) > 0, proc, "rows in the demo's journal")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "the demo's sandbox and files are gone" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def hint_of(stderr: str) -> str:
    [line] = [x for x in stderr.splitlines() if "to retry them" in x]
    return line


def test_the_retry_hint_repeats_the_options_a_retry_needs_and_never_the_token(
    server: Server, tmp_path: Path
) -> None:
    data = make_dataset(40, seed=3)
    csv_path = data.write(tmp_path / "h.csv")
    no_env = {"CLARIFAI_PAT": "", "CLARIFAI_USER_ID": "", "CLARIFAI_APP_ID": ""}
    done = upload(
        server,
        csv_path,
        *("--pat", PAT, "--user-id", "sandbox", "--app-id", "sandbox-app"),
        *("--dataset-id", "train", "--concurrency", "3", "--call-timeout", "20"),
        *("--state", str(tmp_path / "h.state"), "--report-json", str(tmp_path / "r.json")),
        **no_env,
    )
    assert done.returncode == 1, done.stderr
    hint = hint_of(done.stderr)
    failures = tmp_path / "h.failures.csv"
    assert hint.startswith(
        f"{len(data.invalid_lines | data.broken_lines)} row(s) failed; to retry them, with the "
        f"token in CLARIFAI_PAT: ingest upload {failures} "
    )
    for option in (
        f"--base {server.base}",
        "--user-id sandbox",
        "--app-id sandbox-app",
        "--dataset-id train",
        "--rps 300",
        "--batch-size 32",
        "--concurrency 3",
        "--call-timeout 20",
    ):
        assert f" {option}" in hint, option
    for option in ("--pat", "--api-key", "--state", "--report-json", "--failures", "***"):
        assert option not in hint
    assert_no_secret(done.stdout, done.stderr)

    # the hint is a command that runs, given the token where it says
    command = shlex.split(hint.split(": ", 1)[1])
    assert command[:2] == ["ingest", "upload"]
    retry = run(*command[1:], "--report-json", str(tmp_path / "r2.json"), CLARIFAI_PAT=PAT)
    assert retry.returncode == 1, retry.stderr  # the same rows fail again; nothing is missing
    report = json.loads((tmp_path / "r2.json").read_text())
    assert (
        report["rows_read"] == report["rows_failed"] == len(data.invalid_lines | data.broken_lines)
    )
    # a token from the environment needs no word
    again = upload(server, failures, "--restart")
    assert "with the token in" not in hint_of(again.stderr)


def test_secrets_are_masked_as_whole_tokens_not_inside_words(tmp_path: Path) -> None:
    """A one-letter and a three-letter token: masked where they stand alone (here a
    dataset id the same as the token), never inside "plaintext", "example", "again"."""
    folder = tmp_path / "plaintext-example-again"
    folder.mkdir()
    data = make_dataset(30, seed=4)
    csv_path = data.write(folder / "explain.csv")
    with start_server("--pat", PAT, "--pat", "x", "--pat", "ain") as srv:
        for token in ("x", "ain"):
            report_path = folder / f"{token}.json"
            done = upload(
                srv,
                csv_path,
                *("--pat", token, "--dataset-id", token, "--restart"),
                *("--report-json", str(report_path)),
                CLARIFAI_PAT="",
            )
            assert done.returncode == 1, done.stderr
            hint = hint_of(done.stderr)
            assert " --dataset-id *** " in f"{hint} "  # standing alone: masked
            assert f"ingest upload {folder / 'explain.failures.csv'} " in hint  # words: kept
            assert done.stderr.count("***") == 1, done.stderr
            report = json.loads(report_path.read_text())
            assert report["source"] == str(csv_path)
            assert report["failures_file"] == str(folder / "explain.failures.csv")
            assert "***" not in report_path.read_text()
            with (folder / "explain.failures.csv").open(newline="") as fh:
                failed = list(csv.DictReader(fh))
            assert {r["url"] for r in failed} >= {
                data.rows[line - 2]["url"] for line in data.broken_lines
            }  # https://img.example.com/broken-5.jpg, as it was
            for row in failed:
                assert row == {
                    **data.rows[int(row["line"]) - 2],
                    "line": row["line"],
                    "error": row["error"],
                }
                assert "***" not in row["error"]
            # an error message with the token's letters in its words
            tls = run(
                "upload",
                str(csv_path),
                *("--pat", token, "--base", srv.base.replace("http://", "https://"), "--restart"),
                CLARIFAI_PAT="",
            )
            assert tls.returncode == 2, tls.stderr
            assert "does not answer TLS (a plaintext server?); for a plaintext server use" in (
                tls.stderr
            )
            assert "***" not in tls.stderr


def test_scrub_masks_a_short_token_where_it_stands_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "SECRETS", {"x", "ain"})
    assert common.scrub("Key x: a plaintext server, example x again, 0x1f, (x) ain") == (
        "Key ***: a plaintext server, example *** again, 0x1f, (***) ***"
    )
    assert common.scrub("certain explained rain, x_y, ain9") == "certain explained rain, x_y, ain9"


def test_library_terms_become_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    common.print_error(
        "a personal access token needs Config.user_id and Config.app_id; Config.rps must be "
        "positive (Config.max_attempts, which no option sets, stays as it is)"
    )
    err = " ".join(capsys.readouterr().err.split())
    assert err == (
        "ingest: error: a personal access token needs --user-id and --app-id; --rps must be "
        "positive (Config.max_attempts, which no option sets, stays as it is)"
    )
    # one table: every field it names is a Config field, every option an upload option
    fields = {f.name for f in dataclasses.fields(Config)}
    parsed = vars(build_parser().parse_args(["upload", "DATA"]))
    assert set(common.CONFIG_OPTIONS) <= fields
    for option in common.CONFIG_OPTIONS.values():
        assert option.removeprefix("--").replace("-", "_") in parsed, option


GROUPS = {
    "the data and its format": ["DATA", "--format", "--regions", "--images", "--concept-ids"],
    "credentials and connection": ["--pat", "--api-key", "--user-id", "--app-id", "--base"],
    "throughput": ["--rps", "--concurrency", "--batch-size", "--call-timeout"],
    "journal and failures": ["--state", "--restart", "--failures"],
    "output": ["--report-json", "--no-progress"],
}


def test_upload_help_is_in_groups_with_three_examples() -> None:
    up = run("upload", "--help", timeout=30)
    assert up.returncode == 0, up.stderr
    sections: dict[str, list[str]] = {}
    current = ""
    for line in up.stdout.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
            sections[current] = []
        elif line.startswith("  ") and not line.startswith("   "):
            sections.setdefault(current, []).append(line.split()[0].rstrip(","))
    assert [name for name in sections if name in GROUPS] == list(GROUPS)
    for group, options in GROUPS.items():
        assert set(options) <= set(sections[group]), (group, sections[group])
    examples = [x for x in up.stdout.split("examples:")[1].splitlines() if "ingest upload" in x]
    assert len(examples) == 3
    assert len(up.stdout.splitlines()) < 100


def test_the_command_runs_from_any_folder(tmp_path: Path) -> None:
    """Installed (``pip install .``, here the project's own environment), ``ingest`` and
    ``python -m ingest`` work from a folder outside the repository."""
    outside = {k: v for k, v in env().items() if k != "PYTHONPATH"}
    script = Path(sys.executable).parent / "ingest"
    assert script.is_file(), f"{script} missing: install the package (make install)"
    for command in ([str(script), "--help"], [sys.executable, "-m", "ingest", "upload", "--help"]):
        done = subprocess.run(
            command, capture_output=True, text=True, env=outside, cwd=tmp_path, timeout=30
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: ingest")
