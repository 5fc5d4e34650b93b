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

Figures: CPU seconds (user + system, from ``wait4``, under the suite's launcher), peak
RSS of the process, and the most temp bytes on disk at once, against the CSV's size.
Each way must exit 0 and give back every image exactly once (as many groups as the file
has images), or the command exits 1 and says which did not. Writes ``grouping.json``
into ``--out`` (``benchmarks/results/``).

``python -m benchmarks.grouping --way W CSV`` runs one way (prints JSON).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shlex
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

from benchmarks.common import RESULTS, provenance
from benchmarks.render import intro, table
from benchmarks.runner import run_launched
from benchmarks.strict import python
from benchmarks.verdict import failures, finish
from ingest.source.csvstream import read_chunks
from ingest.source.grouping import DiskGrouper, image_key

__all__ = ["main", "markdown"]

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


def _measure(way: str, csv_path: Path, work: Path, images: int) -> dict[str, Any]:
    r = run_launched(python("-m", "benchmarks.grouping", "--way", way, str(csv_path)), work, way)
    out = r.pop("output") or {}
    r.update(out)
    if not r["problems"] and out.get("groups") != images:
        r["problems"] = [f"{out.get('groups')} groups for the file's {images:,} images"]
    return r


def _medians(runs: dict[str, list[dict[str, Any]]], size: int) -> list[dict[str, Any]]:
    """Each way's medians over its runs that count (a way without one is left out)."""
    counted = {way: [r for r in rs if not r["problems"]] for way, rs in runs.items()}
    base = statistics.median(r["cpu_s"] for r in counted["partition"] or [{"cpu_s": 0.0}])
    out = []
    for way, rs in counted.items():
        if not rs:
            continue
        cpu = statistics.median(r["cpu_s"] for r in rs)
        out.append(
            {
                "way": way,
                "cpu_s": round(cpu, 2),
                "x_partition": round(cpu / base, 2) if base else None,
                "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in rs), 1),
                "temp_vs_csv": round(statistics.median(r["temp_bytes"] for r in rs) / size, 2),
            }
        )
    return out


def markdown(out: dict[str, Any]) -> list[str]:
    """The table of ``grouping.json``."""
    return [
        *intro(
            out,
            f"{out['data']['rows']:,} rows on {out['data']['images']:,} images, shuffled "
            f"({out['csv_mb']:.1f} MB); each way run {out['repeats']} time(s), medians of the "
            "runs that count:",
        ),
        *table(
            "way | CPU s | x partition | peak RSS (MB) | temp / CSV size",
            "lrrrr",
            (
                [
                    w["way"],
                    f"{w['cpu_s']:.2f}",
                    "n/a" if w["x_partition"] is None else f"{w['x_partition']:.2f}",
                    f"{w['peak_rss_mb']:.0f}",
                    f"{w['temp_vs_csv']:.2f}",
                ]
                for w in out["ways"]
            ),
        ),
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grouping")
    parser.add_argument("--images", type=int, default=33_334, help="about 100k rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("csv", nargs="?", help=argparse.SUPPRESS)
    ns = parser.parse_args(args)
    if ns.way:
        print(json.dumps(_one(ns.way, ns.csv)))
        return 0
    started = time.monotonic()
    out: dict[str, Any] = {
        "provenance": provenance(shlex.join(["python", "-m", "benchmarks.grouping", *args]))
    }
    with tempfile.TemporaryDirectory(prefix="bench-grouping-") as tmp:
        grouped, mixed = Path(tmp) / "g.csv", Path(tmp) / "s.csv"
        # made in a process of its own: a client forked from a large harness would
        # report the harness's peak RSS as its own
        make = (
            "import json, sys; from benchmarks.datagen import generate, shuffle_file; "
            f"c = generate({str(grouped)!r}, images={ns.images}, seed=16); "
            f"shuffle_file({str(grouped)!r}, {str(mixed)!r}, seed=16); print(json.dumps(c))"
        )
        made = subprocess.run(python("-c", make), capture_output=True, check=True)
        counts = json.loads(made.stdout)
        size = mixed.stat().st_size
        print(f"{counts['rows']:,} rows, {counts['images']:,} images, {size / 1e6:.1f} MB")
        runs: dict[str, list[dict[str, Any]]] = {w: [] for w in WAYS}
        for i in range(ns.repeats):
            for way in WAYS:
                runs[way].append(_measure(way, mixed, Path(tmp) / f"{way}-{i}", counts["images"]))
    out.update(
        data=counts,
        csv_mb=round(size / 1e6, 1),
        repeats=ns.repeats,
        runs=[r for way in WAYS for r in runs[way]],
        ways=_medians(runs, size),
    )
    out["wall_s"] = round(time.monotonic() - started, 1)
    out["failures"] = failures(("grouping", r) for r in out["runs"])
    print("\n".join(markdown(out)))
    return finish(out, ns.out, "grouping")


if __name__ == "__main__":
    raise SystemExit(main())
