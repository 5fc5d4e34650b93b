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
ceiling (built from the rows that can land: :func:`benchmarks.data.good_rows`), and the
iterables' requests against the file's; writes ``iterables.json`` into ``--out``
(``benchmarks/results/``). Every client must finish, exit 0, lose and duplicate nothing,
or the command exits 1 and says which did not.

``python -m benchmarks.iterables --client CSV --base URL --rps R --parts P`` is the
client itself (prints its reports as JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks.audit import ceiling
from benchmarks.clients import Command
from benchmarks.common import RESULTS, provenance
from benchmarks.data import good_rows, load_data
from benchmarks.render import client_name, intro, server, table
from benchmarks.runner import run_client, settings, summary
from benchmarks.strict import python
from benchmarks.verdict import failures, finish
from ingest import Config, Ingester
from ingest.sandbox import SandboxOptions

__all__ = ["main", "markdown"]

REALISTIC = SandboxOptions(
    rps=15, latency=0.06, processing=(0.5, 2.0), download_failure_rate=0.01, seed=1
)
RPS = 15.0


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


def _command(path: Path, rps: float, parts: int, *, file: bool = False) -> Command:
    def cmd(base: str) -> list[str]:
        args = [*python("-m", "benchmarks.iterables"), "--client", str(path), "--base", base]
        return [*args, "--rps", str(rps), "--parts", str(parts), *(["--file"] if file else [])]

    return cmd


async def _bench(images: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-iterables-") as tmp:
        data = load_data(Path(tmp) / "rows.csv", images, seed=15)
        good = good_rows(data, REALISTIC)
        limit = ceiling(data.inputs, good, RPS)
        print(
            f"{data.rows:,} rows on {data.inputs:,} images; ceiling {limit.requests} "
            f"requests, {limit.rows_per_s:.1f} rows/s",
            file=sys.stderr,
        )
        runs = []
        for name, command in (
            ("file", _command(data.path, RPS, 1, file=True)),
            ("1 iterable", _command(data.path, RPS, 1)),
            ("2 iterables", _command(data.path, RPS, 2)),
        ):
            r = await run_client(name, command, REALISTIC, data, cap=600.0)
            r["ceiling_fraction"] = limit.fraction(r["rows_per_s"])
            r.pop("timeline")
            runs.append(r)
            print(summary(r), file=sys.stderr, flush=True)
        base = runs[0]["requests"]
        for r in runs[1:]:
            if base and not runs[0]["problems"]:
                r["requests_vs_file"] = round(r["requests"] / base - 1, 3)
        return {
            "options": settings(REALISTIC),
            "ingest_rps": RPS,
            "data": data.counts,
            "good_rows": good,
            **limit.to_dict(),
            "runs": runs,
        }


def markdown(out: dict[str, Any]) -> list[str]:
    """The table of ``iterables.json``."""
    o = out["options"]
    return [
        *intro(
            out,
            f"{out['data']['rows']:,} rows on {out['data']['images']:,} images; server: "
            f"{server(o)}; ceiling {out['ceiling_requests']:,} requests (the fewest for this "
            f"protocol) for the {out['ceiling_rows']:,} rows that can land, "
            f"{out['ceiling_rows_per_s']:,} rows/s.",
        ),
        *table(
            "client | rows landed | rows/s | fraction of ceiling | requests | requests by method "
            "| against the file | throttled | rows lost | rows duplicated",
            "lrrrrlrrrr",
            (
                [
                    client_name(r),
                    f"{r['rows_landed']:,}",
                    f"{r['rows_per_s']:,.1f}",
                    f"{r['ceiling_fraction'] * 100:.1f} %",
                    f"{r['requests']:,}",
                    ", ".join(f"{k} {v}" for k, v in r["requests_by_method"].items()),
                    f"{r['requests_vs_file'] * 100:+.1f} %" if "requests_vs_file" in r else "",
                    f"{r['throttled']:,}",
                    f"{r['rows_lost']}",
                    f"{r['rows_duplicated']:,}",
                ]
                for r in out["runs"]
            ),
        ),
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.iterables")
    parser.add_argument("--images", type=int, default=13_334, help="about 40k rows by default")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--client", metavar="CSV", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--rps", type=float, default=RPS, help=argparse.SUPPRESS)
    parser.add_argument("--parts", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--file", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args(args)
    if ns.client:
        print(json.dumps(anyio.run(_client, ns, backend="asyncio")))
        return 0
    started = time.monotonic()
    out: dict[str, Any] = {
        "provenance": provenance(shlex.join(["python", "-m", "benchmarks.iterables", *args]))
    }
    out.update(anyio.run(_bench, ns.images, backend="asyncio"))
    out["wall_s"] = round(time.monotonic() - started, 1)
    out["failures"] = failures(("iterables", r) for r in out["runs"])
    print("\n".join(markdown(out)))
    return finish(out, ns.out, "iterables")


if __name__ == "__main__":
    raise SystemExit(main())
