"""What every benchmark shares: paths, the sandbox's credentials, the log line, and where
its figures come from (:func:`provenance`)."""

from __future__ import annotations

import compileall
import functools
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = [
    "APP",
    "CREDS",
    "FULL_SPEED_RPS",
    "PAT",
    "PY",
    "RESULTS",
    "ROOT",
    "USER",
    "compiled",
    "log",
    "machine",
    "provenance",
]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PY = sys.executable
PAT, USER, APP = "sandbox-pat", "sandbox", "sandbox-app"
CREDS = ["--pat", PAT, "--user-id", USER, "--app-id", APP]
FULL_SPEED_RPS = 10_000.0
"""ingest's request budget against a sandbox without a limit: far above what one client
reaches there (a few hundred requests per second), so its limiter never holds it back."""

# What a results file is not produced from: the results and the page rendered from them.
_NOT_CODE = ("benchmarks/results", "benchmarks/README.md")


@functools.cache
def compiled() -> None:
    """Byte-compile ``ingest`` and ``benchmarks`` (once per harness process), as pip does
    when it installs a package: every client then imports them as an installed copy
    would, not compiling its modules from source at each start (which a process does
    when ``PYTHONDONTWRITEBYTECODE`` kept the ``.pyc`` files from being written)."""
    for package in ("ingest", "benchmarks"):
        compileall.compile_dir(ROOT / package, quiet=1)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """The machine a run measured on: cores, Python, platform, date."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def provenance(command: str) -> dict[str, Any]:
    """Where a results file comes from: the command, the commit of the code it measured,
    whether that code had uncommitted changes (anything but the results themselves and
    the page rendered from them), and the machine."""
    changes = _git("status", "--porcelain", "--", ".", *(f":!{p}" for p in _NOT_CODE))
    return {
        "command": command,
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": None if changes is None else bool(changes),
        "machine": machine(),
    }
