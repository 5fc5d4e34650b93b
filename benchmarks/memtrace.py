"""What an upload holds at its peak: tracemalloc snapshots taken mid-run.

::

    python -m benchmarks.memtrace DATA.csv [--rps R] [--frames N] [--top K]

Starts a sandbox without a limit in a process of its own (processing 0.05-0.2 s, keeping
ids only, as the memory scenario's), then runs ``ingest upload DATA.csv --rps R`` (default
10,000: full speed) in this process with :mod:`tracemalloc` tracing ``--frames`` frames.
Every half second a thread reads what is traced and keeps the snapshot of the largest
amount; at the end it prints the peak RSS, the traced peak, and that snapshot's ``--top``
allocation sites by line, then by traceback (the rows in flight show as the lines that
made their parts: the cells decoded, the ``Row``, its ids). Tracing slows the upload
several times, and a slower upload keeps more in flight: the figures say what holds the
memory, not how much a run without tracing holds.
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import CREDS, PY, ROOT

__all__ = ["main"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Peak:
    """The largest traced snapshot."""

    def __init__(self) -> None:
        self.size = 0
        self.snapshot: tracemalloc.Snapshot | None = None
        self.at = 0.0
        self._stop = threading.Event()
        self._started = time.monotonic()

    def watch(self) -> None:
        while not self._stop.wait(0.5):
            current, _ = tracemalloc.get_traced_memory()
            if current > self.size:
                self.size = current
                self.snapshot = tracemalloc.take_snapshot()
                self.at = time.monotonic() - self._started

    def stop(self) -> None:
        self._stop.set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memtrace", description=__doc__)
    parser.add_argument("data", type=Path)
    parser.add_argument("--rps", type=float, default=10_000.0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--top", type=int, default=25)
    ns = parser.parse_args(argv)
    port = _free_port()
    server = ["--port", str(port), "--rps", "0", "--processing", "0.05", "0.2", "--no-store"]
    sandbox = subprocess.Popen(
        [PY, "-m", "ingest", "sandbox", *server],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)  # the sandbox starts listening
        from ingest.cli.main import main as ingest_main

        tracemalloc.start(ns.frames)
        peak = _Peak()
        watcher = threading.Thread(target=peak.watch, daemon=True)
        watcher.start()
        with tempfile.TemporaryDirectory() as tmp:
            files = ["--state", f"{tmp}/state", "--failures", f"{tmp}/failures.csv"]
            base = ["--base", f"http://127.0.0.1:{port}", *CREDS]
            status = ingest_main(
                ["upload", str(ns.data), *base, "--rps", str(ns.rps), "--no-progress", *files]
            )
        peak.stop()
        watcher.join()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        sandbox.terminate()
        sandbox.wait()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"exit {status}; peak RSS {rss:.1f} MB (traced: slower, so more in flight); traced "
        f"peak {traced_peak / 1e6:.1f} MB; largest snapshot {peak.size / 1e6:.1f} MB at "
        f"{peak.at:.1f} s"
    )
    if peak.snapshot is None:
        return 1
    snapshot = peak.snapshot.filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    )
    print("by line:")
    for stat in snapshot.statistics("lineno")[: ns.top]:
        print(f"  {stat.size / 1e6:8.2f} MB {stat.count:9,} blocks  {stat.traceback}")
    print("by traceback:")
    for stat in snapshot.statistics("traceback")[: ns.top // 2]:
        print(f"  {stat.size / 1e6:8.2f} MB {stat.count:9,} blocks")
        for line in stat.traceback.format()[-2 * ns.frames :]:
            print(f"      {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
