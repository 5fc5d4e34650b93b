"""Shared pieces of the benchmarks: a sandbox in a subprocess, timing, memory."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SandboxProcess", "ceiling_requests", "run_measured", "sandbox"]

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


def run_measured(
    cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 900
) -> dict[str, Any]:
    """Run ``cmd``; return its wall time, CPU seconds, peak RSS (MB) and last stdout line.

    The child is reaped with ``wait4`` so its own resource usage is exact.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=err, text=True, env={**os.environ, **(env or {})}
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.strip()]
        result: dict[str, Any] = {
            "wall_s": wall,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "returncode": proc.returncode,
            "stderr": err.read()[-2000:],
        }
    if lines:
        try:
            result["output"] = json.loads(lines[-1])
        except json.JSONDecodeError:
            result["output"] = lines[-1]
    return result
