"""The benchmark harness restarts a client only after the kills it planned.

A client that dies from a signal nobody sent (a segfault, the OOM killer) is not
restarted: its result names the signal, a target is missed, the markdown says the run
failed and ``python -m benchmarks`` exits 1.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks.common import PY
from benchmarks.data import Data
from benchmarks.render import markdown
from benchmarks.runner import run_client
from benchmarks.suite import exit_status
from benchmarks.targets import targets, unplanned_deaths
from ingest.sandbox import SandboxOptions

pytestmark = pytest.mark.anyio

# Counts its starts in the file named by argv[1]; the first start then waits for the
# planned kill (bounded), a later one exits 0 at once.
WAITS_ON_FIRST_START = """
import pathlib, sys, time
p = pathlib.Path(sys.argv[1])
n = len(p.read_text()) if p.exists() else 0
p.write_text("x" * (n + 1))
if n == 0:
    time.sleep(60)
"""
# Counts its starts, then dies from SIGSEGV as a crashing extension would.
CRASHES = """
import os, pathlib, signal, sys
p = pathlib.Path(sys.argv[1])
p.write_text(p.read_text() + "x" if p.exists() else "x")
os.kill(os.getpid(), signal.SIGSEGV)
"""

# Kills the launcher that started it, then exits.
KILLS_ITS_LAUNCHER = """
import os, pathlib, signal, sys
pathlib.Path(sys.argv[1]).write_text("x")
os.kill(os.getppid(), signal.SIGKILL)
"""


def no_data(tmp_path: Path) -> Data:
    return Data(tmp_path / "unused.csv", {"rows": 0, "images": 0}, {})


async def run(tmp_path: Path, code: str, kills: tuple[float, ...]) -> tuple[dict[str, Any], int]:
    starts = tmp_path / "starts"
    with anyio.fail_after(60):
        result = await run_client(
            "client",
            lambda base: [PY, "-c", code, str(starts)],
            SandboxOptions(rps=0),
            no_data(tmp_path),
            cap=40.0,
            kills=kills,
        )
    return result, len(starts.read_text())


async def test_a_planned_kill_restarts_the_client(tmp_path: Path) -> None:
    result, starts = await run(tmp_path, WAITS_ON_FIRST_START, kills=(2.0,))
    assert starts == 2 and result["kills"] == 1
    assert result["unplanned_death"] is None and result["returncode"] == 0
    assert not result["capped"]


async def test_a_death_nobody_planned_fails_the_run_loudly(tmp_path: Path) -> None:
    result, starts = await run(tmp_path, CRASHES, kills=(30.0,))
    assert starts == 1 and result["kills"] == 0  # not restarted
    assert result["unplanned_death"] == "SIGSEGV"
    assert result["returncode"] == -signal.SIGSEGV
    assert not result["capped"]

    out: dict[str, Any] = {
        "scale": "test",
        "machine": {"cpus": 2, "python": "3", "platform": "test", "date": "now"},
        "command": "python -m benchmarks",
        "wall_s": 1.0,
        "notes": [],
        "scenarios": {"killed": {"results": [result]}},
    }
    assert unplanned_deaths(out) == ["killed: client died from SIGSEGV"]
    out["targets"] = targets(out)
    [row] = [t for t in out["targets"] if t["target"].startswith("every run")]
    assert row["met"] is False and row["value"] == 1
    assert row["margin"] == "killed: client died from SIGSEGV"
    assert exit_status(out) == 1
    text = markdown(out)
    assert "RUN FAILED" in text and "- **killed: client died from SIGSEGV**" in text


async def test_a_launcher_that_dies_fails_the_run(tmp_path: Path) -> None:
    result, starts = await run(tmp_path, KILLS_ITS_LAUNCHER, kills=(30.0,))
    assert starts == 1 and result["kills"] == 0
    assert result["unplanned_death"] == "SIGKILL of the launcher, no exit status"
    assert result["returncode"] is None and not result["capped"]


def test_a_run_without_deaths_exits_0() -> None:
    out: dict[str, Any] = {"scenarios": {"realistic": {"results": [{"client": "x"}]}}}
    assert unplanned_deaths(out) == [] and exit_status(out) == 0
