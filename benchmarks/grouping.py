"""Grouping a shuffled CSV by image on disk: three ways, measured side by side.

::

    python -m benchmarks.grouping [--images N]

Each way reads the records of one generated, shuffled file (the reader's own
``read_chunks``), groups them by image with bounded memory, and reads the groups
back; each runs in its own process, one after the other, three times, and the
medians are printed with their ratio to ingest's way:

* ``partition``: :class:`ingest.source.grouping.DiskGrouper`, hash-partitioned
  msgpack files (what ingest does);
* ``heapq``: sorted runs of 50,000 records (msgpack files) merged by
  :func:`heapq.merge`;
* ``sqlite``: the standard library's :mod:`sqlite3`, a table of (key, line, record)
  and ``ORDER BY key, line``.

Figures: CPU seconds (user + system, from ``wait4``), peak RSS of the process, and
the most temp bytes on disk at once, against the CSV's size.

``python -m benchmarks.grouping --way W CSV`` runs one way (prints JSON).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

from ingest.source.csvstream import read_chunks
from ingest.source.grouping import DiskGrouper, image_key

WAYS = ("partition", "heapq", "sqlite")
RUN = 50_000


async def _stream(path: Path) -> AsyncIterator[Any]:
    """The data records (header dropped), chunk by chunk, as the reader reads them."""
    async for chunk in read_chunks(path):
        for record in chunk.records:
            if record[1] and record[0] > 1:
                yield record


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def partition(path: Path, tmp: Path) -> tuple[int, int]:
    size = await anyio.Path(path).stat()
    groups = top = 0
    with DiskGrouper(tmp, expected_bytes=size.st_size, key=lambda r: image_key(r[1], 0, -1)) as g:
        async for record in _stream(path):
            g.add(record)
        g.seal()
        top = _du(tmp)
        for _ in g.groups():
            groups += 1
    return groups, top


async def by_heapq(path: Path, tmp: Path) -> tuple[int, int]:
    encoder, decoder = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    runs: list[Path] = []
    buf: list[tuple[str, int, list[str]]] = []

    def spill() -> None:
        buf.sort()
        run = tmp / f"run-{len(runs)}"
        with run.open("wb") as f:
            for item in buf:
                data = encoder.encode(item)
                f.write(len(data).to_bytes(4, "little"))
                f.write(data)
        runs.append(run)
        buf.clear()

    async for line, cells, _ in _stream(path):
        buf.append((image_key(cells, 0, -1), line, cells))
        if len(buf) >= RUN:
            spill()
    if buf:
        spill()
    top = _du(tmp)

    def read(run: Path) -> Iterator[tuple[str, int, list[str]]]:
        with run.open("rb") as f:
            while head := f.read(4):
                key, line, cells = decoder.decode(f.read(int.from_bytes(head, "little")))
                yield key, line, cells

    groups = 0
    last = None
    for key, _, _ in heapq.merge(*(read(r) for r in runs)):
        if key != last:
            groups += 1
            last = key
    return groups, top


async def by_sqlite(path: Path, tmp: Path) -> tuple[int, int]:
    encoder = msgspec.msgpack.Encoder()
    db = sqlite3.connect(tmp / "g.db")
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE r (key TEXT, line INTEGER, cells BLOB)")
    async for line, cells, _ in _stream(path):
        db.execute(
            "INSERT INTO r VALUES (?, ?, ?)", (image_key(cells, 0, -1), line, encoder.encode(cells))
        )
    db.commit()
    groups = 0
    last = None
    top = 0
    for i, (key, _, _) in enumerate(
        db.execute("SELECT key, line, cells FROM r ORDER BY key, line")
    ):
        if i == 0:
            top = _du(tmp)  # the sort's own temp b-tree lives here too while it runs
        if key != last:
            groups += 1
            last = key
    db.close()
    return groups, max(top, _du(tmp))


def _one(way: str, csv_path: str) -> dict[str, Any]:
    fn = {"partition": partition, "heapq": by_heapq, "sqlite": by_sqlite}[way]
    with tempfile.TemporaryDirectory(prefix=f"group-{way}-") as tmp:
        os.environ["SQLITE_TMPDIR"] = tmp
        started = time.monotonic()
        groups, top = anyio.run(fn, Path(csv_path), Path(tmp))
        return {
            "way": way,
            "groups": groups,
            "temp_bytes": top,
            "wall_s": time.monotonic() - started,
        }


def _measure(way: str, csv_path: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.grouping", "--way", way, str(csv_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert proc.stdout is not None
    out: dict[str, Any] = json.loads(proc.stdout.read())
    proc.stdout.close()
    assert os.waitstatus_to_exitcode(status) == 0
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    out["peak_rss_mb"] = usage.ru_maxrss / 1024
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grouping")
    parser.add_argument("--images", type=int, default=33_334, help="about 100k rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("csv", nargs="?", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.way:
        print(json.dumps(_one(ns.way, ns.csv)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-grouping-") as tmp:
        grouped, mixed = Path(tmp) / "g.csv", Path(tmp) / "s.csv"
        # made in a process of its own: a client forked from a large harness would
        # report the harness's peak RSS as its own
        make = (
            "import json, sys; from benchmarks.datagen import generate, shuffle_file; "
            f"c = generate({str(grouped)!r}, images={ns.images}, seed=16); "
            f"shuffle_file({str(grouped)!r}, {str(mixed)!r}, seed=16); print(json.dumps(c))"
        )
        made = subprocess.run([sys.executable, "-c", make], capture_output=True, check=True)
        counts = json.loads(made.stdout)
        size = mixed.stat().st_size
        print(f"{counts['rows']:,} rows, {counts['images']:,} images, {size / 1e6:.1f} MB")
        runs: dict[str, list[dict[str, Any]]] = {w: [] for w in WAYS}
        for _ in range(ns.repeats):
            for way in WAYS:
                r = _measure(way, mixed)
                assert r["groups"] == counts["images"], r
                runs[way].append(r)
        base = statistics.median(r["cpu_s"] for r in runs["partition"])
        print("| way | CPU s | x partition | peak RSS MB | temp / CSV size |")
        print("|---|---:|---:|---:|---:|")
        for way in WAYS:
            cpu = statistics.median(r["cpu_s"] for r in runs[way])
            rss = statistics.median(r["peak_rss_mb"] for r in runs[way])
            temp = statistics.median(r["temp_bytes"] for r in runs[way]) / size
            print(f"| {way} | {cpu:.2f} | {cpu / base:.2f} | {rss:.0f} | {temp:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
