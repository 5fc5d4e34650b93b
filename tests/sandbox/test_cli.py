"""``python -m ingest.sandbox`` in the foreground: prints its address, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc


def test_foreground_server_answers_and_stops_cleanly(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest.sandbox",
            "--port",
            "0",
            "--rps",
            "0",
            "--stats",
            str(stats),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        channel = ClarifaiChannel.get_insecure_grpc_channel("127.0.0.1", int(match.group(1)))
        stub = service_pb2_grpc.V2Stub(channel)
        request = service_pb2.ListInputsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="sandbox", app_id="sandbox-app")
        )
        reply = stub.ListInputs(
            request, metadata=(("authorization", "Key sandbox-pat"),), timeout=10
        )
        assert reply.status.code == sc.SUCCESS
        channel.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "sandbox stopped: 1 requests" in err
    assert json.loads(stats.read_text())["requests"] == {"ListInputs": 1}
