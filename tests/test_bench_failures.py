"""Every benchmark fails when one of its clients is killed by a signal nobody planned.

Each benchmark runs at its smallest size while this test plays the OOM killer: it waits
for the benchmark's first client process (a descendant of this process, never another's)
and sends it SIGKILL. The benchmark must exit 1, say on stderr which run did not count
and why, and still write its results file saying the same.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks import coco_memory, coco_sdk, grouping, iterables, suite
from tests.test_bench_smoke import TINY

CLIENT = (
    "-m ingest upload",
    "benchmarks.run_ingest",
    "benchmarks.iterables --client",
    "benchmarks.grouping --way",
)
"""What the command line of a benchmark's client holds (its launcher's holds ``wait4``)."""


def _ancestors(pid: int) -> Iterator[int]:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        yield pid


def _client() -> tuple[int, str] | None:
    """A client process started, through its launcher, by this process."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "wait4" in cmdline or "--help" in cmdline or not any(c in cmdline for c in CLIENT):
            continue
        if me in _ancestors(int(entry)):
            return int(entry), cmdline
    return None


@contextmanager
def oom_killer(deadline: float = 60.0) -> Iterator[list[str]]:
    """SIGKILL the first client this process starts (through a launcher); yields the list
    that gets its command line."""
    killed: list[str] = []
    stop = threading.Event()

    def hunt() -> None:
        ends = time.monotonic() + deadline
        while not stop.is_set() and time.monotonic() < ends:
            found = _client()
            if found is not None:
                os.kill(found[0], signal.SIGKILL)
                killed.append(found[1])
                return
            stop.wait(0.01)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join(timeout=10)


BENCHMARKS: dict[str, tuple[Callable[[list[str]], int], list[str], str]] = {
    "coco_memory": (
        coco_memory.main,
        ["--sizes", "300", "--skip-csv", "--pairs", "1"],
        "coco_memory",
    ),
    "coco_sdk": (coco_sdk.main, ["--annotations", "30", "--cap", "30"], "coco_sdk"),
    "iterables": (iterables.main, ["--images", "20"], "iterables"),
    "grouping": (grouping.main, ["--images", "200", "--repeats", "1"], "grouping"),
}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_a_client_killed_by_a_signal_fails_the_benchmark(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main, args, results = BENCHMARKS[name]
    with oom_killer() as killed:
        status = main([*args, "--out", str(tmp_path)])
    assert len(killed) == 1, "no client was killed"
    assert status == 1
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("BENCHMARK FAILED: ")]
    # the killed run, and whatever else its death spoilt (the rows it did not land)
    assert any(f.endswith(": died from SIGKILL (a signal nobody sent)") for f in failed), err
    out = json.loads((tmp_path / f"{results}.json").read_text())
    assert [f"BENCHMARK FAILED: {f}" for f in out["failures"]] == failed


def test_a_client_killed_by_a_signal_fails_the_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m benchmarks``, its memory scenario at the smoke test's size."""
    monkeypatch.setattr(suite, "QUICK", TINY)
    with oom_killer() as killed:
        status = suite.main(["--quick", "--only", "memory", "--out", str(tmp_path)])
    assert len(killed) == 1 and status == 1
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("BENCHMARK FAILED: ")]
    assert any(f.endswith(": died from SIGKILL (a signal nobody sent)") for f in failed), err
    out = json.loads((tmp_path / "results.json").read_text())
    assert [f"BENCHMARK FAILED: {f}" for f in out["failures"]] == failed
    [every] = [t for t in out["targets"] if t["target"].startswith("every run counts")]
    assert every["met"] is False
    assert "RUN FAILED" in (tmp_path / "results.md").read_text()
