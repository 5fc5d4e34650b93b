"""Running one client against a fresh in-process sandbox, measured from both sides.

The client runs under a tiny launcher process that reaps it with ``wait4`` and reports
its exit status, CPU seconds and peak RSS; the sandbox is sampled while it runs and
audited (:func:`benchmarks.audit.analyse`) when it ends; :func:`benchmarks.verdict.problems`
says whether the run counts. Every benchmark runs its clients here.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks.audit import ImageOf, analyse
from benchmarks.clients import Command
from benchmarks.common import PY, ROOT, compiled
from benchmarks.data import Data
from benchmarks.strict import pythonwarnings
from benchmarks.verdict import problems
from ingest.sandbox import Sandbox, SandboxOptions

__all__ = ["LAUNCHER", "describe", "run_client", "run_launched", "settings", "summary"]


# The client is started by a tiny launcher process, not forked from this one: a child
# forked from the harness would inherit its resident set (the sandbox's data) as the
# high-water mark that ``ru_maxrss`` reports. The launcher forks the client (its own
# process group), reaps it with ``wait4`` and writes its exit status, CPU seconds and
# peak RSS to a file; on SIGTERM it kills the client and still writes them.
LAUNCHER = r"""
import json, os, signal, sys
out, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.setsid()
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
signal.signal(signal.SIGTERM, lambda *_: os.killpg(pid, signal.SIGKILL))
_, status, ru = os.wait4(pid, 0)
with open(out, "w") as fh:
    json.dump({"status": status, "cpu_s": ru.ru_utime + ru.ru_stime,
               "maxrss_kb": ru.ru_maxrss}, fh)
"""


def _start(cmd: list[str], tmp: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` under the launcher, its output into files under ``tmp``."""
    compiled()
    # warnings are errors in the client too, whoever built its command line
    env = {
        **os.environ,
        "TQDM_DISABLE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": pythonwarnings(),
    }
    launcher = [PY, "-I", "-S", "-c", LAUNCHER, str(tmp / "usage.json"), *cmd]
    with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as err:
        return subprocess.Popen(launcher, stdout=out, stderr=err, cwd=ROOT, env=env)


def run_launched(cmd: list[str], tmp: Path, name: str) -> dict[str, Any]:
    """Run ``cmd`` (no server: the floor, say) to its end under the launcher: its exit
    status, CPU, peak RSS, last JSON line and ``problems`` (it must exit 0)."""
    tmp.mkdir(parents=True, exist_ok=True)
    proc = _start(cmd, tmp)
    launcher = proc.wait()
    usage = _usage(tmp)
    status = usage["status"]
    result: dict[str, Any] = {
        "client": name,
        "command": shlex.join(cmd),
        "returncode": None if status is None else os.waitstatus_to_exitcode(status),
        "unplanned_death": (
            f"{describe(launcher)} of the launcher, no exit status"
            if status is None
            else _signal_name(os.WTERMSIG(status))
            if os.WIFSIGNALED(status)
            else None
        ),
        "expected_exit": 0,
        "judged": False,
        "cpu_s": usage["cpu_s"],
        "peak_rss_mb": (usage["maxrss_kb"] or 0) / 1024,
        "output": _last_json((tmp / "stdout").read_text(errors="replace")),
    }
    result["problems"] = problems(result)
    if result["problems"]:
        result["stderr_tail"] = (tmp / "stderr").read_text(errors="replace")[-1500:]
    return result


def _reap(pid: int) -> int | None:
    """``wait4`` without blocking: the launcher's wait status once it exited, else None."""
    done, status, _ = os.wait4(pid, os.WNOHANG)
    return status if done else None


def _usage(tmp: Path) -> dict[str, Any]:
    path = tmp / "usage.json"
    if not path.exists():
        return {"status": None, "cpu_s": None, "maxrss_kb": None}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _outputs(cmd: list[str], tmp: Path) -> tuple[Any, str]:
    """The client's JSON report (last JSON line of stdout, or its --report-json file)."""
    stdout = (tmp / "stdout").read_text(errors="replace")
    stderr = (tmp / "stderr").read_text(errors="replace")
    report = _last_json(stdout)
    if report is None and "--report-json" in cmd:
        path = Path(cmd[cmd.index("--report-json") + 1])
        report = json.loads(path.read_text()) if path.exists() else None
    if isinstance(report, dict):
        report.pop("timeline", None)
    return report, stderr


def _last_json(text: str) -> Any:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return None
    return None


def describe(status: int) -> str:
    """A wait status in words: ``exit N`` or the signal's name."""
    if os.WIFSIGNALED(status):
        return _signal_name(os.WTERMSIG(status))
    return f"exit {os.waitstatus_to_exitcode(status)}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


async def run_client(
    name: str,
    command: Command,
    options: SandboxOptions,
    data: Data,
    *,
    cap: float,
    mode: str = "url",
    sample_every: float = 0.5,
    kills: Sequence[float] = (),
    expect_exit: int | None = 0,
    judged: bool = True,
    cap_planned: bool = False,
    image_of: ImageOf | None = None,
) -> dict[str, Any]:
    """Run one client against a fresh in-process sandbox; measure it from both sides.

    ``kills``: SIGKILL the client that many times, each that many seconds after its
    (re)start, and start the same command again after each; figures cover all attempts.
    Only those planned kills restart the client: a client that dies from a signal nobody
    sent (a segfault, the OOM killer) is not restarted, and the result's
    ``unplanned_death`` names the signal (None when there was none).

    ``expect_exit``: the exit status the client must end with (None: any); ``judged``: its
    losses and duplicates fail it (an ingest client), or are only figures (a peer);
    ``cap_planned``: stopping it at ``cap`` is part of the measure (else that fails it too);
    ``image_of``: which image a stored input holds, when not its URL (see
    :func:`benchmarks.audit.analyse`). The result's ``problems`` (empty: the run counts)
    come from :func:`benchmarks.verdict.problems`.
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        async with Sandbox(options) as sb:
            cmd = command(sb.base_url)
            started = time.monotonic()
            timeline: list[tuple[float, int]] = [(0.0, 0)]
            next_sample = sample_every
            capped = False
            stopped_at = 0.0
            killed_at = 0.0
            cpu_s = 0.0
            maxrss_kb = 0
            pending_kills = list(kills)
            killed = 0
            unplanned: str | None = None
            while True:
                attempt = Path(tmp) / f"attempt-{killed}"
                attempt.mkdir()
                proc = _start(cmd, attempt)
                attempt_started = time.monotonic()
                planned = False
                while (launcher := _reap(proc.pid)) is None:
                    now = time.monotonic() - started
                    if now >= next_sample:
                        timeline.append((round(now, 2), sb.stats.annotations_stored))
                        next_sample += sample_every
                    if now >= cap and not capped:
                        capped, stopped_at = True, now
                        proc.terminate()  # the launcher kills the client, then reports
                    if capped and not killed_at and now >= stopped_at + 10:
                        killed_at = now
                        proc.kill()
                    if (
                        pending_kills
                        and not capped
                        and not planned
                        and time.monotonic() - attempt_started >= pending_kills[0]
                    ):
                        pending_kills.pop(0)
                        planned = True
                        proc.terminate()  # the client gets SIGKILL from the launcher
                    await anyio.sleep(0.05)
                # reaped by wait4 above: tell the Popen object, which would wait again
                proc.returncode = os.waitstatus_to_exitcode(launcher)
                usage = _usage(attempt)
                cpu_s += usage["cpu_s"] or 0.0
                maxrss_kb = max(maxrss_kb, usage["maxrss_kb"] or 0)
                status = usage["status"]
                if status is None and not capped:
                    # the launcher itself died before reporting (nobody kills it unless
                    # the cap is reached): the client's fate is unknown
                    unplanned = f"{describe(launcher)} of the launcher, no exit status"
                    break
                if status is None or not os.WIFSIGNALED(status) or capped:
                    break
                if not planned:
                    unplanned = _signal_name(os.WTERMSIG(status))
                    break
                killed += 1
            now = time.monotonic() - started
            elapsed = stopped_at if capped else now
            timeline.append((round(elapsed, 2), sb.stats.annotations_stored))
            audit = {} if image_of is None else {"image_of": image_of}
            server = analyse(sb, data, mode, finished=not capped, **audit)
        report, stderr = _outputs(cmd, attempt)
    returncode = None if status is None else os.waitstatus_to_exitcode(status)
    result: dict[str, Any] = {
        "client": name,
        "command": shlex.join(cmd),
        "elapsed_s": round(elapsed, 3),
        "capped": capped,
        "cap_s": cap,
        "returncode": returncode,
        "expected_exit": expect_exit,
        "judged": judged,
        "cap_planned": cap_planned,
        "unplanned_death": unplanned,
        "cpu_s": round(cpu_s, 3) if status is not None else None,
        "peak_rss_mb": round(maxrss_kb / 1024, 1) if maxrss_kb else None,
        "rows_per_s": round(server["rows_landed"] / elapsed, 1) if elapsed else 0.0,
        **server,
        "timeline": timeline,
        "first_row_s": next((t for t, n in timeline if n > 0), None),
        "client_report": report,
    }
    if kills:
        result["kills"] = killed
    result["problems"] = problems(result)
    if result["problems"] and not capped:
        result["stderr_tail"] = stderr[-1500:]
    return result


def settings(options: SandboxOptions) -> dict[str, Any]:
    """What a results file keeps of a sandbox's options."""
    keys = (
        "rps",
        "latency",
        "latency_jitter",
        "processing",
        "download_failure_rate",
        "unavailable_rate",
        "lost_reply_rate",
        "stuck_rate",
        "spike_rate",
        "spike_seconds",
        "seed",
        "store",
    )
    return {k: getattr(options, k) for k in keys}


def summary(r: dict[str, Any]) -> str:
    """One log line for a client's result."""
    lost = r.get("rows_lost")
    return (
        f"{r['client']}: {r['rows_landed']} rows in {r['elapsed_s']:.1f} s"
        f"{' (capped)' if r['capped'] else ''} = {r['rows_per_s']} rows/s, "
        f"{r['requests']} requests, {r['throttled']} throttled, lost {lost}, "
        f"duplicated {r.get('rows_duplicated')}, cpu {r['cpu_s']} s, rss {r['peak_rss_mb']} MB"
        + (f", killed {r['kills']} times" if "kills" in r else "")
        + "".join(f"; DOES NOT COUNT: {p}" for p in r.get("problems", ()))
    )
