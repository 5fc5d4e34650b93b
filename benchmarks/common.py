"""What every part of the suite shares: paths, the sandbox's credentials, the log line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

__all__ = ["APP", "CREDS", "PAT", "PY", "RESULTS", "ROOT", "UNLIMITED_RPS", "USER", "log"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PY = sys.executable
PAT, USER, APP = "sandbox-pat", "sandbox", "sandbox-app"
CREDS = ["--pat", PAT, "--user-id", USER, "--app-id", APP]
UNLIMITED_RPS = 100_000.0
"""The client's limiter setting when the server has no limit (ingest needs a number)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
