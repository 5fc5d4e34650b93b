"""The benchmark harness judges every run: it restarts a client only after the kills it
planned, and a run that does not count fails the benchmark.

A client that dies from a signal nobody sent (a segfault, the OOM killer), exits with a
status nobody expected, or (an ingest client) lands less or more than the file holds,
does not count: its result says why, a target is not met, the markdown says the run
failed and the benchmark exits 1.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks.common import PY
from benchmarks.data import Data, load_data
from benchmarks.render import markdown
from benchmarks.runner import run_client
from benchmarks.targets import targets
from benchmarks.verdict import exit_status, failures, problems
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

# Counts its start, then exits with the status in argv[2], having sent nothing.
EXITS = """
import pathlib, sys
pathlib.Path(sys.argv[1]).write_text("x")
sys.exit(int(sys.argv[2]))
"""


def no_data(tmp_path: Path) -> Data:
    return Data(tmp_path / "unused.csv", {"rows": 0, "images": 0}, {})


async def run(
    tmp_path: Path, code: str, kills: tuple[float, ...] = (), *args: str, data: Data | None = None
) -> tuple[dict[str, Any], int]:
    starts = tmp_path / "starts"
    with anyio.fail_after(60):
        result = await run_client(
            "client",
            lambda base: [PY, "-c", code, str(starts), *args],
            SandboxOptions(rps=0),
            data or no_data(tmp_path),
            cap=40.0,
            kills=kills,
        )
    return result, len(starts.read_text())


def judged(result: dict[str, Any]) -> dict[str, Any]:
    """A suite's results holding this one run, with its targets and failures."""
    machine = {"cpus": 2, "python": "3", "platform": "test", "date": "now"}
    out: dict[str, Any] = {
        "scale": "test",
        "provenance": {"command": "python -m benchmarks", "commit": None, "machine": machine},
        "wall_s": 1.0,
        "notes": [],
        "scenarios": {"killed": {"results": [result]}},
        "failures": failures([("killed", result)]),
    }
    out["targets"] = targets(out)
    return out


async def test_a_planned_kill_restarts_the_client(tmp_path: Path) -> None:
    result, starts = await run(tmp_path, WAITS_ON_FIRST_START, (2.0,))
    assert starts == 2 and result["kills"] == 1
    assert result["unplanned_death"] is None and result["returncode"] == 0
    assert not result["capped"] and result["problems"] == []


async def test_a_death_nobody_planned_fails_the_run_loudly(tmp_path: Path) -> None:
    result, starts = await run(tmp_path, CRASHES, (30.0,))
    assert starts == 1 and result["kills"] == 0  # not restarted
    assert result["unplanned_death"] == "SIGSEGV"
    assert result["returncode"] == -signal.SIGSEGV
    assert not result["capped"]
    assert result["problems"] == ["died from SIGSEGV (a signal nobody sent)"]

    out = judged(result)
    assert out["failures"] == ["killed: client: died from SIGSEGV (a signal nobody sent)"]
    [row] = [t for t in out["targets"] if t["target"].startswith("every run")]
    assert row["met"] is False and row["value"] == 1
    assert row["margin"] == "killed: client: died from SIGSEGV (a signal nobody sent)"
    assert exit_status(out["failures"]) == 1
    text = markdown(out)
    assert "RUN FAILED" in text
    assert "- **killed: client: died from SIGSEGV (a signal nobody sent)**" in text


async def test_a_launcher_that_dies_fails_the_run(tmp_path: Path) -> None:
    result, starts = await run(tmp_path, KILLS_ITS_LAUNCHER, (30.0,))
    assert starts == 1 and result["kills"] == 0
    assert result["unplanned_death"] == "SIGKILL of the launcher, no exit status"
    assert result["returncode"] is None and not result["capped"]
    assert result["problems"] == [
        "died from SIGKILL of the launcher, no exit status (a signal nobody sent)"
    ]


async def test_an_exit_status_nobody_expected_fails_the_run(tmp_path: Path) -> None:
    result, _ = await run(tmp_path, EXITS, (), "3")
    assert result["returncode"] == 3 and result["unplanned_death"] is None
    assert result["problems"] == ["exit status 3, expected 0"]
    assert exit_status(judged(result)["failures"]) == 1


async def test_a_client_that_lands_nothing_fails_the_run(tmp_path: Path) -> None:
    """Exit 0 says nothing: the server's count of what landed does."""
    data = load_data(tmp_path / "data.csv", 5, seed=1)
    result, _ = await run(tmp_path, EXITS, (), "0", data=data)
    assert result["returncode"] == 0
    assert result["rows_landed"] == 0 and result["rows_lost"] == data.rows
    assert result["problems"] == [f"lost {data.rows} rows"]


def test_a_peer_is_measured_not_judged() -> None:
    """A peer stopped at its cap with losses and duplicates counts; an ingest client in
    the same state does not; neither may die from a signal nobody sent."""
    capped = {"client": "x", "capped": True, "cap_s": 60.0, "returncode": -9}
    capped |= {"rows_lost": None, "rows_duplicated": 7, "unplanned_death": None}
    assert problems({**capped, "judged": False, "cap_planned": True}) == []
    assert problems({**capped, "judged": True}) == [
        "stopped at its cap of 60 s before finishing",
        "duplicated 7 rows",
    ]
    dead = {**capped, "capped": False, "unplanned_death": "SIGKILL"}
    assert problems({**dead, "judged": False}) == ["died from SIGKILL (a signal nobody sent)"]


def test_a_target_on_a_run_that_does_not_count_is_not_met() -> None:
    """A realistic run that reached 99 % of the ceiling but lost rows: not met, and why."""
    r = {"client": "ingest (API)", "ceiling_fraction": 0.99, "problems": ["lost 3 rows"]}
    out = {"scenarios": {"realistic": {"results": [r], "ingest_rps": 15.0}}, "failures": ["x"]}
    [row] = [t for t in targets(out) if t["target"].startswith("realistic: fraction")]
    assert row["value"] == 0.99 and row["met"] is False
    assert row["margin"] == "not met: lost 3 rows"


def test_a_run_without_problems_exits_0() -> None:
    assert failures([("realistic", {"client": "x", "problems": []})]) == []
    assert exit_status([]) == 0
