"""``python -m ingest.sandbox`` in the foreground: prints its address, stops on a signal."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.auth import READ_SCOPES

pytestmark = pytest.mark.anyio

LINE = re.compile(
    r"sandbox listening on http://127\.0\.0\.1:(\d+) "
    r"\(app (\S+), user (\S+), pat (\S+), key (\S+)\)"
)


async def _first_line(process: anyio.abc.Process) -> str:
    assert process.stdout is not None
    text = ""
    async for chunk in TextReceiveStream(process.stdout):
        text += chunk
        if "\n" in text:
            break
    return text.split("\n", 1)[0]


async def _run(args: list[str], sig: signal.Signals, tmp_path: Path) -> tuple[int, str, Path]:
    stats = tmp_path / "stats.json"
    command = [sys.executable, "-m", "ingest.sandbox", "--port", "0", "--stats", str(stats)]
    async with await anyio.open_process(command + args) as process:
        try:
            line = await _first_line(process)
            match = LINE.fullmatch(line)
            assert match, line
            port, app, user, pat = int(match[1]), match[2], match[3], match[4]
            channel = ClarifaiChannel.get_aio_insecure_grpc_channel("127.0.0.1", port)
            try:
                stub = service_pb2_grpc.V2Stub(channel)
                request = service_pb2.ListInputsRequest(
                    user_app_id=resources_pb2.UserAppIDSet(user_id=user, app_id=app)
                )
                reply = await stub.ListInputs(
                    request, metadata=(("authorization", f"Key {pat}"),), timeout=10
                )
                assert reply.status.code == sc.SUCCESS
            finally:
                await channel.close()
            process.send_signal(sig)
            code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
        assert process.stderr is not None
        err = "".join([chunk async for chunk in TextReceiveStream(process.stderr)])
    return code, err, stats


async def test_foreground_server_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    with anyio.fail_after(20):
        code, err, stats = await _run(["--rps", "0"], signal.SIGTERM, tmp_path)
    assert code == 0, err
    assert "sandbox stopped: 1 requests" in err
    assert json.loads(stats.read_text())["requests"] == {"ListInputs": 1}


async def test_ctrl_c_stops_cleanly_with_its_own_identity(tmp_path: Path) -> None:
    args = ["--user-id", "me", "--app-id", "mine", "--pat", "tok", "--api-key", "k1"]
    with anyio.fail_after(20):
        code, err, stats = await _run(args, signal.SIGINT, tmp_path)
    assert code == 0, err
    assert "Traceback" not in err
    assert stats.exists()


async def test_a_taken_port_exits_2_with_a_message() -> None:
    with anyio.fail_after(20):
        async with Sandbox(SandboxOptions()) as sb:
            command = [sys.executable, "-m", "ingest.sandbox", "--port", str(sb.port)]
            result = await anyio.run_process(command, check=False)
    assert result.returncode == 2
    assert b"sandbox:" in result.stderr
    assert b"Traceback" not in result.stderr


async def test_invalid_options_exit_2() -> None:
    with anyio.fail_after(20):
        command = [sys.executable, "-m", "ingest.sandbox", "--port", "0", "--stuck-rate", "2"]
        result = await anyio.run_process(command, check=False)
    assert result.returncode == 2
    assert b"stuck_rate" in result.stderr


async def test_tls_prints_where_the_ca_file_is_and_serves_with_it() -> None:
    command = [sys.executable, "-m", "ingest.sandbox", "--port", "0", "--tls", "--rps", "0"]
    with anyio.fail_after(30):
        async with await anyio.open_process(command) as process:
            assert process.stdout is not None
            text = ""
            async for chunk in TextReceiveStream(process.stdout):
                text += chunk
                if text.count("\n") >= 2:
                    break
            first, second = text.splitlines()[:2]
            match = re.search(r"listening on https://127\.0\.0\.1:(\d+)", first)
            assert match, first
            found = re.search(r"the certificate authority is (\S+) ", second)
            assert found, second
            ca_file = anyio.Path(found[1])
            assert (await ca_file.read_text()).startswith("-----BEGIN CERTIFICATE-----")
            channel = ClarifaiChannel.get_aio_grpc_channel(
                f"127.0.0.1:{match[1]}", root_certificates_path=str(ca_file)
            )
            try:
                reply = await service_pb2_grpc.V2Stub(channel).ListInputs(
                    service_pb2.ListInputsRequest(),
                    metadata=(("authorization", "Key sandbox-key"),),
                    timeout=10,
                )
                assert reply.status.code == sc.SUCCESS
            finally:
                await channel.close()
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
    assert not await ca_file.exists()  # removed at stop


#: Each flag of ``ingest sandbox``, and the option it sets.
FLAGS = [
    ("--host 127.0.0.2", "host", "127.0.0.2"),
    ("--port 7", "port", 7),
    ("--user-id u", "user_id", "u"),
    ("--app-id a", "app_id", "a"),
    ("--pat p1 --pat p2", "pats", ("p1", "p2")),
    ("--api-key k", "api_keys", ("k",)),
    ("--rps 3", "rps", 3.0),
    ("--latency 0.25", "latency", 0.25),
    ("--latency-jitter 0.125", "latency_jitter", 0.125),
    ("--processing 1 3", "processing", (1.0, 3.0)),
    ("--download-failure-rate 0.5", "download_failure_rate", 0.5),
    ("--stuck-rate 0.25", "stuck_rate", 0.25),
    ("--unavailable-rate 0.125", "unavailable_rate", 0.125),
    ("--lost-reply-rate 0.0625", "lost_reply_rate", 0.0625),
    ("--spike-rate 0.5", "spike_rate", 0.5),
    ("--spike-seconds 2", "spike_seconds", 2.0),
    ("--seed 9", "seed", 9),
    ("--no-store", "store", False),
    ("--stats s.json", "stats_path", "s.json"),
    ("--tls", "tls", True),
    ("--allow-duplicate-urls", "unique_urls", False),
    ("--dataset d1 --dataset d2", "datasets", ("d1", "d2")),
    ("--input-quota 5", "input_quota", 5),
    ("--hourly-limit 6", "hourly_limit", 6),
    ("--disable PostAnnotations", "disabled", ("PostAnnotations",)),
    ("--delete-app-after 8", "delete_app_after", 8),
    ("--patch-overwrite keys", "patch_overwrite", "keys"),
]
# readings and keys (a block of their own)
FLAGS += [
    ("--pending-annotations accept", "pending_annotations", "accept"),
    ("--job-counts-refused", "job_counts_refused", True),
    ("--dataset-member-again refuse", "dataset_member_again", "refuse"),
    ("--no-data-host", "data_host", False),
    ("--read-only-key ro", "scoped_keys", {"ro": READ_SCOPES}),
]


def _parser() -> argparse.ArgumentParser:
    from ingest.sandbox.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser


@pytest.mark.parametrize(("flags", "field", "value"), FLAGS)
def test_every_flag_reaches_its_option(flags: str, field: str, value: object) -> None:
    from ingest.sandbox.cli import options_from_args

    options = options_from_args(_parser().parse_args(flags.split()))
    assert getattr(SandboxOptions(), field) != value
    assert getattr(options, field) == value


def test_the_flag_table_names_every_flag() -> None:
    flags = {a.option_strings[-1] for a in _parser()._actions if a.dest != "help"}
    named = {f.split()[0] for f, _, _ in FLAGS}
    assert flags == named
