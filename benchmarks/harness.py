"""Shared pieces of the benchmarks: a sandbox in a subprocess, timing, memory."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SandboxProcess", "ceiling_requests", "sandbox"]

PAT = "sandbox-pat"
USER = "sandbox"
APP = "sandbox-app"


@dataclass
class SandboxProcess:
    base_url: str
    host: str
    port: int
    proc: subprocess.Popen[str]
    stats_path: Path
    stats: dict[str, Any] = field(default_factory=dict)


@contextmanager
def sandbox(args: Sequence[str] = ()) -> Iterator[SandboxProcess]:
    """``python -m ingest.sandbox`` on a free loopback port; stats are read at exit."""
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / "stats.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ingest.sandbox",
                "--port",
                "0",
                "--stats",
                str(stats_path),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://([\d.]+):(\d+)", line)
        if not match:
            proc.kill()
            raise RuntimeError(f"sandbox did not start: {line!r}")
        sb = SandboxProcess(match.group(0), match.group(1), int(match.group(2)), proc, stats_path)
        try:
            yield sb
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if stats_path.exists():
                sb.stats = json.loads(stats_path.read_text())


def ceiling_requests(inputs: int, boxes: int, per_call: int = 128) -> int:
    """The fewest requests the data needs: create, one status check, annotate."""
    return 2 * math.ceil(inputs / per_call) + math.ceil(boxes / per_call)
