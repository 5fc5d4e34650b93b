"""The production path: TLS, Clarifai's behaviours as the client meets them, quota stops,
and the official SDK's ``Dataset.upload_dataset`` on the sandbox."""

from __future__ import annotations

import csv
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from ingest import Config, Ingester, Status, ids
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.patching import OVERWRITE_READINGS
from tests.helpers import cli_env, make_dataset, run_module, sandbox_config

pytestmark = pytest.mark.anyio

PAT = ("--pat", "sandbox-pat", "--user-id", "sandbox", "--app-id", "sandbox-app")
#: gRPC core's own log lines ("E1202 06:10:52.89 ... ssl_transport_security.cc:...")
GRPC_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")


def fast(**options: Any) -> SandboxOptions:
    defaults: dict[str, Any] = {"rps": 0, "processing": (0.01, 0.03)}
    defaults.update(options)
    return SandboxOptions(**defaults)


async def upload(csv_path: Path, base: str, *more: str, **env: str) -> Any:
    """``ingest upload`` in its own process (gRPC reads its TLS settings at start)."""
    args = ("upload", str(csv_path), "--base", base, "--no-progress", "--rps", "300", *PAT)
    return await run_module("ingest", *args, *more, env=cli_env(COLUMNS="200", **env))


def our_error(stderr: bytes) -> str:
    """The one line ingest wrote (gRPC core's log lines aside), checked to be alone."""
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    ours = [line for line in lines if not GRPC_LOG.match(line)]
    assert len(ours) == 1, lines
    assert ours[0].startswith("ingest: error: "), ours
    return ours[0]


# -- TLS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_upload_over_tls_with_the_sandbox_ca(tmp_path: Path, reading: str) -> None:
    data = make_dataset(20)
    csv_path = data.write(tmp_path / "data.csv")
    async with Sandbox(fast(tls=True, patch_overwrite=reading)) as sb:
        assert sb.base_url.startswith("https://") and sb.ca_file is not None
        done = await upload(csv_path, sb.base_url, "--ca-file", str(sb.ca_file))
        assert done.returncode == 1, done.stderr.decode()  # the broken URLs
        assert set(sb.inputs) == set(data.inputs)
        assert set(sb.annotations) == set(data.boxes)
        # gRPC's own variable works too; a re-run sends no input twice
        again = await upload(
            csv_path, sb.base_url, "--restart", GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(sb.ca_file)
        )
        assert again.returncode == 1, again.stderr.decode()
        assert set(sb.inputs) == set(data.inputs)
        ca_file = sb.ca_file
    assert not ca_file.exists()  # removed at stop


@pytest.mark.parametrize("case", ["wrong-ca", "wrong-host", "plaintext"])
async def test_tls_failures_exit_2_with_one_sentence(tmp_path: Path, case: str) -> None:
    csv_path = make_dataset(5).write(tmp_path / "data.csv")
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    options = fast(tls=case != "plaintext", tls_hosts=("sandbox.invalid",))
    with anyio.fail_after(60):
        async with Sandbox(options) as sb:
            base = f"https://127.0.0.1:{sb.port}"
            ca = str(sb.ca_file) if case == "wrong-host" else str(other)
            done = await upload(csv_path, base, "--ca-file", ca)
            assert sb.inputs == {}
    assert done.returncode == 2, done.stderr.decode()
    line = our_error(done.stderr)
    expected = {
        "wrong-ca": "is not signed by a certificate authority in the CA file",
        "wrong-host": "was not issued for the host name 127.0.0.1",
        "plaintext": f"does not answer TLS (a plaintext server?); for a plaintext server use "
        f"http://127.0.0.1:{sb.port}",
    }[case]
    assert expected in line
    assert "Traceback" not in done.stderr.decode()


async def test_the_sdks_root_certificates_variable_gives_the_ca_file(tmp_path: Path) -> None:
    """``CLARIFAI_ROOT_CERTIFICATES_PATH``, as the official SDK reads it."""
    data = make_dataset(10)
    csv_path = data.write(tmp_path / "data.csv")
    async with Sandbox(fast(tls=True)) as sb:
        assert sb.ca_file is not None
        done = await upload(csv_path, sb.base_url, CLARIFAI_ROOT_CERTIFICATES_PATH=str(sb.ca_file))
        assert done.returncode == 1, done.stderr.decode()  # the broken URLs
        assert set(sb.inputs) == set(data.inputs)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", ["nothing-listens", "no-such-host", "tls-behind-http"])
async def test_first_contact_failures_exit_2_within_seconds_with_one_sentence(
    tmp_path: Path, case: str
) -> None:
    """A base where nothing listens, a host name that does not resolve, a TLS server
    given as http://: exit 2 with one sentence naming host and port and what to check,
    within 10 s (python's start included), not after minutes of retries."""
    csv_path = make_dataset(5).write(tmp_path / "data.csv")
    with anyio.fail_after(60):
        async with Sandbox(fast(tls=True)) as sb:
            port = sb.port if case == "tls-behind-http" else _closed_port()
            host = "ingest-test.invalid" if case == "no-such-host" else "127.0.0.1"
            started = time.monotonic()
            done = await upload(csv_path, f"http://{host}:{port}")
            took = time.monotonic() - started
            assert sb.inputs == {}
    assert done.returncode == 2, done.stderr.decode()
    assert took < 10, took
    line = our_error(done.stderr)
    expected = {
        "nothing-listens": f"nothing answers at 127.0.0.1:{port} (connection refused); check "
        "that the server runs there and that --base",
        "no-such-host": "the host name ingest-test.invalid does not resolve; check the host "
        "in --base",
        "tls-behind-http": f"127.0.0.1:{port} closed the connection without a word: it speaks "
        f"TLS, not plaintext; use https://127.0.0.1:{port} in --base (and the server's CA "
        "file in --ca-file",
    }[case]
    assert expected in line
    assert "Traceback" not in done.stderr.decode()


def test_ca_file_must_exist_and_go_with_https(tmp_path: Path) -> None:
    from ingest.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        Config(api_key="k", base="https://x", ca_file=str(tmp_path / "none.pem"))
    pem = tmp_path / "ca.pem"
    pem.write_text("x")
    with pytest.raises(ConfigError, match="https:// base"):
        Config(api_key="k", base="http://x:1", ca_file=str(pem))


# -- ids and duplicates ------------------------------------------------------------------


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = ["url", "left_col", "top_row", "right_col", "bottom_row", "pos_concepts"]
    columns += ["input_id"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


async def test_a_duplicate_url_under_another_id_is_not_taken_for_an_existing_input(
    tmp_path: Path,
) -> None:
    """A row with its own input_id whose URL another input has fails, with Clarifai's
    words; it is not counted as "already there"."""
    box = {"left_col": "0.1", "top_row": "0.1", "right_col": "0.5", "bottom_row": "0.5"}
    first = write_rows(tmp_path / "a.csv", [{"url": "https://x/1.jpg", **box, "pos_concepts": "a"}])
    second = write_rows(
        tmp_path / "b.csv",
        [
            {"url": "https://x/1.jpg", "input_id": "mine", **box, "pos_concepts": "b"},
            {"url": "https://x/1.jpg", **box, "pos_concepts": "a"},  # the same input again
        ],
    )
    async with Sandbox(fast()) as sb:
        config = sandbox_config(sb, linger=0.05, processing_estimate=0.02)
        async with Ingester(config) as ing:
            await ing.run(first)
        async with Ingester(config) as ing, ing.stream(second) as outcomes:
            got = {o.line: o async for o in outcomes}
            report = ing.report
        assert got[2].status is Status.FAILED
        assert "Duplicate URL" in got[2].error
        assert got[3].status is Status.PRESENT
        assert report.inputs_existing == 1 and report.inputs_failed == 1
        assert set(sb.inputs) == {ids.input_id("https://x/1.jpg")}


def test_csv_input_ids_are_at_most_48_characters(tmp_path: Path) -> None:
    from ingest.source import validate_file

    path = write_rows(
        tmp_path / "ids.csv",
        [
            {"url": "https://x/1.jpg", "input_id": "a" * 48},
            {"url": "https://x/2.jpg", "input_id": "b" * 49},
        ],
    )
    summary = anyio.run(validate_file, path)
    assert [(i.line, i.column) for i in summary.invalid] == [(3, "input_id")]
    assert "49 characters long" in summary.invalid[0].reason
    assert "1 to 48 characters" in summary.invalid[0].reason


# -- quota stops -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "advice"),
    [
        ({"input_quota": 40}, "INPUT_OVER_LIMIT", "delete inputs or upgrade the plan"),
        ({"hourly_limit": 4}, "CONN_EXCEED_HOURLY_LIMIT", "wait an hour"),
        ({"disabled": ("PostAnnotations",)}, "CONN_ACCOUNT_ISSUES", "check the account"),
        ({"delete_app_after": 4}, "CONN_DOES_NOT_EXIST", "the app no longer exists"),
    ],
    ids=["input-quota", "hourly-limit", "feature-disabled", "app-deleted"],
)
async def test_the_account_stops_the_upload_with_exit_2(
    tmp_path: Path, fault: dict[str, Any], code: str, advice: str
) -> None:
    data = make_dataset(400)
    csv_path = data.write(tmp_path / "data.csv")
    with anyio.fail_after(90):
        async with Sandbox(fast(**fault)) as sb:
            done = await upload(csv_path, sb.base_url, "--batch-size", "20")
            refused_calls = sb.stats.account_refusals
            refused_items = sb.stats.inputs_rejected
    err = done.stderr.decode()
    assert done.returncode == 2, err
    line = our_error(done.stderr)
    assert code in line and advice in line
    assert "run the same command again" in line
    # it stopped sending after a bounded number of such failures: at most the calls in
    # flight when the stop came (3 stages x 4), or the bound of 16 items plus the inputs
    # of the calls in flight, where 400 images would have given hundreds
    assert refused_calls <= 12, refused_calls
    assert refused_items < 16 + 4 * 20, refused_items
    # the journal is kept (the same command continues); the failures file did not get
    # every row
    assert (tmp_path / "data.csv.ingest-state").exists()
    failures = tmp_path / "data.failures.csv"
    failed = len(failures.read_text().splitlines()) - 1 if failures.exists() else 0
    assert failed < len(data.rows) // 2


async def test_a_few_quota_failures_fail_their_rows_without_stopping(tmp_path: Path) -> None:
    """Below the bound, items failing with a stop code fail their rows and the run ends
    normally (exit 1)."""
    data = make_dataset(12, broken_every=1000)
    csv_path = data.write(tmp_path / "data.csv")
    with anyio.fail_after(60):
        async with Sandbox(fast(input_quota=len(data.inputs) - 3)) as sb:
            done = await upload(csv_path, sb.base_url)
            assert len(sb.inputs) == len(data.inputs) - 3
    assert done.returncode == 1, done.stderr.decode()
    assert "INPUT_OVER_LIMIT" in (tmp_path / "data.failures.csv").read_text()


# -- the official SDK --------------------------------------------------------------------


async def test_sdk_upload_dataset_runs_unmodified(tmp_path: Path) -> None:
    """``Dataset.upload_dataset`` after ``App.create_dataset``, against a sandbox where
    datasets must exist and URLs are unique, with processing that takes a while."""
    pytest.importorskip("clarifai")
    from tests.test_peers import landed, rounded, write_csv

    data = write_csv(tmp_path / "data.csv")
    options = fast(processing=(0.05, 0.2), datasets=())
    with anyio.fail_after(120):
        async with Sandbox(options) as sb:
            args = ("--csv", str(tmp_path / "data.csv"), "--base", sb.base_url, *PAT)
            proc = await run_module(
                "benchmarks.peers.sdk", *args, "--create-dataset", "--dataset-id", "sdk"
            )
            out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
            _, boxes = landed(sb)
            members = sb.servicer.state.dataset_inputs["sdk"]
            stored = dict(sb.inputs)
    assert out["error"] is None, proc.stderr.decode()[-2000:]
    assert out["requests"]["PostDatasets"] == 1
    good = [u for u in data["urls"] if "broken" not in u]
    assert len(stored) == len(good)
    assert set(members) == set(stored)
    assert all(list(inp.dataset_ids) == ["sdk"] for inp in stored.values())
    assert rounded(boxes) == rounded(data["boxes"])
