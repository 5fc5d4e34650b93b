"""The clients' command lines: ingest (API and CLI), the seed algorithm and the SDK.

Each is ``python -W error ...`` (:func:`benchmarks.strict.python`): a warning in a client
is an error there, as in the tests."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import CREDS, ROOT
from benchmarks.strict import python

__all__ = [
    "Command",
    "cli_available",
    "ingest_api",
    "ingest_cli",
    "ingest_upload",
    "sdk_available",
    "sdk_peer",
    "seed_peer",
]

Command = Callable[[str], list[str]]
"""A client's command line, given the sandbox's base URL."""


def ingest_api(csv_path: Path, rps: float, *options: str) -> Command:
    """``options``: more ``python -m benchmarks.run_ingest`` options (timeouts)."""
    return lambda base: [
        *python("-m", "benchmarks.run_ingest"),
        str(csv_path),
        "--base",
        base,
        "--rps",
        str(rps),
        *options,
    ]


def ingest_upload(path: Path, base: str, *options: str) -> list[str]:
    """``python -m ingest upload PATH --base BASE`` with the sandbox's credentials, then
    ``options``."""
    return [*python("-m", "ingest", "upload"), str(path), "--base", base, *CREDS, *options]


def ingest_cli(csv_path: Path, rps: float, tmp: Path, *options: str) -> Command:
    """``options``: more ``ingest upload`` options. One state file per command, so a
    re-run after a kill resumes from the killed run's journal."""

    def cmd(base: str) -> list[str]:
        run_dir = Path(tempfile.mkdtemp(dir=tmp, prefix="cli-"))
        return ingest_upload(
            csv_path,
            base,
            "--rps",
            str(rps),
            "--no-progress",
            "--report-json",
            str(run_dir / "report.json"),
            "--state",
            str(run_dir / "state"),
            "--failures",
            str(run_dir / "failures.csv"),
            *options,
        )

    return cmd


def _peer(module: str, csv_path: Path) -> Command:
    """A peer's ``python -m MODULE --csv CSV --base BASE`` with the sandbox's credentials."""
    return lambda base: [*python("-m", module), "--csv", str(csv_path), "--base", base, *CREDS]


def seed_peer(csv_path: Path) -> Command:
    return _peer("benchmarks.peers.seed", csv_path)


def sdk_peer(csv_path: Path) -> Command:
    return _peer("benchmarks.peers.sdk", csv_path)


def cli_available() -> tuple[bool, str]:
    proc = subprocess.run(
        python("-m", "ingest", "upload", "--help"), capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode == 0:
        return True, ""
    return False, f"`python -m ingest upload --help` exited {proc.returncode}: the CLI was not run"


def sdk_available() -> tuple[bool, str]:
    proc = subprocess.run(python("-c", "import clarifai"), capture_output=True, text=True)
    if proc.returncode == 0:
        return True, ""
    return False, "the clarifai SDK is not importable here: SDK peer skipped"
