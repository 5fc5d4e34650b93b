"""Rows from iterables, as a service or a Spark job feeds them: requests and ceiling.

::

    python -m benchmarks.iterables [--images N]

The realistic server (15 requests/s, 60 ms, processing 0.5-2 s, 1 % download
failures) and one generated file, grouped by image. Three clients, each a process
under the suite's launcher against a fresh sandbox, in the same invocation:

* ``file``: the CSV path through one ``Ingester`` at 15 requests/s (the baseline);
* ``1 iterable``: the same rows as one iterable of mappings;
* ``2 iterables``: the rows split by image into two iterables uploaded at once by two
  ``Ingester`` s at 7.5 requests/s each (two tasks sharing one budget).

Prints each client's requests by method, rows/s and fraction of the request-budget
ceiling, and the iterables' requests against the file's.

``python -m benchmarks.iterables --client CSV --base URL --rps R --parts P`` is the
client itself (prints its reports as JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks.harness import ceiling_requests
from benchmarks.suite import PY, good_rows, load_data, run_client
from ingest import Config, Ingester
from ingest.sandbox import SandboxOptions

REALISTIC = SandboxOptions(
    rps=15, latency=0.06, processing=(0.5, 2.0), download_failure_rate=0.01, seed=1
)


def _read(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


async def _client(ns: argparse.Namespace) -> list[dict[str, Any]]:
    rows = _read(ns.client)
    parts: list[list[dict[str, str]]] = [[] for _ in range(ns.parts)]
    for row in rows:  # each image's rows go to one part, in file order
        parts[zlib.crc32(row["url"].encode()) % ns.parts].append(row)
    del rows
    reports: list[dict[str, Any]] = []

    async def one(part: Sequence[dict[str, str]] | str) -> None:
        config = Config(
            pat="sandbox-pat",
            user_id="sandbox",
            app_id="sandbox-app",
            base=ns.base,
            rps=ns.rps / ns.parts,
        )
        async with Ingester(config) as ing:
            reports.append((await ing.run(part)).to_dict())

    async with anyio.create_task_group() as tg:
        if ns.parts == 1 and ns.file:
            tg.start_soon(one, ns.client)
        else:
            for part in parts:
                tg.start_soon(one, part)
    return reports


def _command(path: Path, rps: float, parts: int, *, file: bool = False) -> Any:
    def cmd(base: str) -> list[str]:
        args = [PY, "-m", "benchmarks.iterables", "--client", str(path), "--base", base]
        return [*args, "--rps", str(rps), "--parts", str(parts), *(["--file"] if file else [])]

    return cmd


async def _bench(images: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-iterables-") as tmp:
        data = load_data(Path(tmp) / "rows.csv", images, seed=15)
        good = good_rows(data, REALISTIC)
        ceiling_rps = 15.0 * good / ceiling_requests(data.inputs, good)
        print(
            f"{data.rows:,} rows on {data.inputs:,} images; ceiling "
            f"{ceiling_requests(data.inputs, good)} requests, {ceiling_rps:.1f} rows/s",
            file=sys.stderr,
        )
        out = []
        for name, command in (
            ("file", _command(data.path, 15.0, 1, file=True)),
            ("1 iterable", _command(data.path, 15.0, 1)),
            ("2 iterables", _command(data.path, 15.0, 2)),
        ):
            r = await run_client(name, command, REALISTIC, data, cap=600.0)
            r["ceiling_fraction"] = round(r["rows_per_s"] / ceiling_rps, 3)
            r.pop("timeline")
            out.append(r)
            print(
                f"{name}: {r['rows_landed']:,} rows in {r['elapsed_s']:.1f} s, "
                f"{r['ceiling_fraction'] * 100:.1f} % of the ceiling, {r['requests']} requests "
                f"{r['requests_by_method']}, {r['throttled']} throttled, "
                f"duplicated {r['rows_duplicated']}, lost {r['rows_lost']}",
                file=sys.stderr,
            )
        base = out[0]["requests"]
        for r in out[1:]:
            print(f"{r['client']}: requests {r['requests'] / base - 1:+.1%} against the file")
        return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.iterables")
    parser.add_argument("--images", type=int, default=13_334, help="about 40k rows by default")
    parser.add_argument("--client", metavar="CSV", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--rps", type=float, default=15.0, help=argparse.SUPPRESS)
    parser.add_argument("--parts", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--file", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.client:
        print(json.dumps(anyio.run(_client, ns, backend="asyncio")))
        return 0
    anyio.run(_bench, ns.images, backend="asyncio")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
