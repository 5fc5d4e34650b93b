"""``ingest verify``'s requests per 128 images and its memory, measured.

::

    python -m benchmarks.verify [--quick] [--big] [--out DIR]

Every client is ingest's command line in its own process under the suite's launcher
(:func:`benchmarks.runner.run_launched`: exit status, CPU, peak RSS), against a sandbox in
this process, whose per-method counts say what each client called; in one invocation:

* **requests**: the realistic server (15 requests/s, 60 ms per call, processing 0.5-2 s)
  holding a file of about 40k rows that ``ingest upload`` sent; ``ingest verify`` of the
  same rows, grouped and shuffled, at 15 requests/s. Requests per 128 images against
  :func:`ingest.estimate.verify_requests` (one ``ListInputs`` by ids per 128 images and
  their annotations' pages), rows/s against the verify ceiling (15 x rows / those
  requests), throttled replies;
* **memory**: a server without limit, ``ingest verify --rps 10000`` of a shuffled file of
  about 100k rows against an app holding it (uploaded first: the whole comparison) and
  against an empty app (every row differs and is written to the resend file); with
  ``--big``, the shuffled 5M-row file against an empty app (a sandbox holding 5M
  annotations needs some 25 GB: the 5M-row run measures the reading, the grouping on
  disk, the checks and the resend file; the comparison's memory is bounded per batch and
  measured at 100k rows). Peak RSS, and its growth from 100k rows to 5M.

A run counts when it exits as expected (0: the app holds the data; 1: the app is empty),
finds what it should (no difference in an app holding the data, every row in an empty
one) and the sandbox served no write while it ran; otherwise the command exits 1 and says
which did not. Writes ``verify.json`` into ``--out`` (``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from benchmarks.clients import ingest_upload
from benchmarks.common import CREDS, FULL_SPEED_RPS, RESULTS, log, provenance
from benchmarks.datagen import generate, shuffle_file
from benchmarks.render import client_name, intro, server, table
from benchmarks.runner import run_launched, settings
from benchmarks.strict import python
from benchmarks.verdict import failures, finish, problems
from ingest.estimate import PER_CALL, verify_requests
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.auth import is_write

__all__ = ["FULL", "QUICK", "main", "markdown"]

REALISTIC = SandboxOptions(rps=15, latency=0.06, processing=(0.5, 2.0), seed=1)
UNLIMITED = SandboxOptions(rps=0, processing=(0.05, 0.2), seed=3)
RPS = 15.0

RSS_MB = 200.0
"""Most peak RSS of ``ingest verify`` on the shuffled big file."""
REQUESTS_SLACK = 0.05
"""Most requests beyond the arithmetic's (a throttled reply sent again, say)."""


@dataclass(frozen=True)
class Sizes:
    requests_images: int
    memory_images: int
    big_images: int


FULL = Sizes(requests_images=13_334, memory_images=33_334, big_images=1_666_667)
QUICK = Sizes(requests_images=600, memory_images=2_000, big_images=20_000)


def _verify_cmd(path: Path, base: str, rps: float, run_dir: Path) -> list[str]:
    return [
        *python("-m", "ingest", "verify"),
        str(path),
        "--base",
        base,
        *CREDS,
        "--rps",
        f"{rps:g}",
        "--no-progress",
        "--report-json",
        str(run_dir / "report.json"),
        "--resend",
        str(run_dir / "resend.csv"),
    ]


async def _launch(sb: Sandbox, name: str, cmd: list[str], tmp: Path, expect: int) -> dict[str, Any]:
    """Run ``cmd`` to its end under the launcher while ``sb`` serves; what it called."""
    before, throttled = dict(sb.stats.requests), sb.stats.throttled
    started = time.monotonic()
    r = await anyio.to_thread.run_sync(run_launched, cmd, tmp, name)
    r["elapsed_s"] = round(time.monotonic() - started, 2)
    calls = {m: n - before.get(m, 0) for m, n in sb.stats.requests.items()}
    r["requests_by_method"] = {m: n for m, n in sorted(calls.items()) if n}
    r["requests"] = sum(calls.values())
    r["throttled"] = sb.stats.throttled - throttled
    r["writes"] = {m: n for m, n in r["requests_by_method"].items() if is_write(m)}
    r["expected_exit"] = expect
    r["capped"], r["cap_s"] = False, None  # run to their end, never stopped
    r["problems"] = problems(r)
    return r


async def _upload(sb: Sandbox, path: Path, rps: float, tmp: Path) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(dir=tmp, prefix="upload-"))
    cmd = ingest_upload(
        path,
        sb.base_url,
        "--rps",
        f"{rps:g}",
        "--no-progress",
        "--state",
        str(run_dir / "state"),
        "--failures",
        str(run_dir / "failures.csv"),
    )
    r = await _launch(sb, "ingest upload (fills the app)", cmd, run_dir, 0)
    log(f"verify: upload of {path.name}: exit {r['returncode']}, {r['elapsed_s']} s")
    return r


async def _verify(
    sb: Sandbox,
    name: str,
    path: Path,
    rows: int,
    rps: float,
    tmp: Path,
    *,
    holds: bool,
) -> dict[str, Any]:
    """``ingest verify`` of ``path`` (``rows`` rows); the app holds all of it or none."""
    run_dir = Path(tempfile.mkdtemp(dir=tmp, prefix="verify-"))
    cmd = _verify_cmd(path, sb.base_url, rps, run_dir)
    r = await _launch(sb, name, cmd, run_dir, 0 if holds else 1)
    report_path = run_dir / "report.json"
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.exists() else {}
    r["client_report"] = report
    r["rows"] = rows
    r["app_holds"] = "all" if holds else "none"
    differing = report.get("rows_differing")
    if differing is None:
        r["problems"].append("no report")
    elif holds and differing:
        r["problems"].append(f"found {differing:,} differing rows in an app holding them all")
    elif not holds and differing != rows:
        r["problems"].append(f"found {differing:,} differing rows of {rows:,} in an empty app")
    if r["writes"]:
        r["problems"].append(f"the sandbox served writes while it ran: {r['writes']}")
    images = report.get("images_checked", 0)
    batches = math.ceil(images / PER_CALL)
    r["images"] = images
    r["requests_per_128_images"] = round(r["requests"] / batches, 2) if batches else None
    held = report.get("annotations_read", 0)
    predicted = verify_requests(images, held) if holds else batches
    r["predicted_requests"] = predicted
    r["rows_per_s"] = round(rows / r["elapsed_s"], 1) if r["elapsed_s"] else 0.0
    if predicted:
        r["ceiling_rows_per_s"] = round(rps * rows / predicted, 1)
        r["ceiling_fraction"] = round(r["rows_per_s"] / r["ceiling_rows_per_s"], 3)
    r.pop("output", None)
    log(
        f"verify: {name}: exit {r['returncode']}, {r['requests']} requests "
        f"({r['requests_per_128_images']} per 128 images, {predicted} predicted), "
        f"{r['elapsed_s']} s, rss {r['peak_rss_mb']:.1f} MB"
        + "".join(f"; DOES NOT COUNT: {p}" for p in r["problems"])
    )
    return r


def _remove(tmp: Path, pattern: str) -> None:
    """The generated files matching ``pattern`` (the big one is some 400 MB)."""
    for p in tmp.glob(pattern):
        p.unlink()


def _data(tmp: Path, name: str, images: int, seed: int) -> tuple[Path, Path, int]:
    """A generated file of ``images`` images, grouped and shuffled, and its rows."""
    grouped = tmp / f"{name}.csv"
    counts = generate(grouped, images=images, seed=seed)
    mixed = tmp / f"{name}-shuffled.csv"
    shuffle_file(grouped, mixed, seed=seed + 10)
    return grouped, mixed, counts["rows"]


async def _requests(sizes: Sizes, tmp: Path) -> dict[str, Any]:
    grouped, mixed, rows = _data(tmp, "requests", sizes.requests_images, seed=31)
    runs = []
    async with Sandbox(REALISTIC) as sb:
        up = await _upload(sb, grouped, RPS, tmp)
        runs.append(up)
        if not up["problems"]:
            for name, path in (("grouped", grouped), ("shuffled", mixed)):
                runs.append(
                    await _verify(sb, f"ingest verify ({name})", path, rows, RPS, tmp, holds=True)
                )
        annotations = len(sb.servicer.state.annotations) + len(sb.servicer.state.input_annotations)
    return {
        "options": settings(REALISTIC),
        "rps": RPS,
        "rows": rows,
        "images": sizes.requests_images,
        "annotations_held": annotations,
        "runs": runs,
    }


async def _memory(sizes: Sizes, tmp: Path, big: bool) -> dict[str, Any]:
    runs = []
    _, mixed, rows = _data(tmp, "memory", sizes.memory_images, seed=33)
    async with Sandbox(UNLIMITED) as sb:
        up = await _upload(sb, mixed, FULL_SPEED_RPS, tmp)
        runs.append(up)
        if not up["problems"]:
            runs.append(
                await _verify(
                    sb, "ingest verify (shuffled)", mixed, rows, FULL_SPEED_RPS, tmp, holds=True
                )
            )
    async with Sandbox(UNLIMITED) as sb:
        runs.append(
            await _verify(
                sb, "ingest verify (shuffled)", mixed, rows, FULL_SPEED_RPS, tmp, holds=False
            )
        )
    _remove(tmp, "memory*.csv")
    if big:
        log(f"verify: generating {sizes.big_images:,} images ...")
        grouped, mixed, big_rows = _data(tmp, "big", sizes.big_images, seed=35)
        grouped.unlink()
        async with Sandbox(UNLIMITED) as sb:
            runs.append(
                await _verify(
                    sb,
                    "ingest verify (shuffled)",
                    mixed,
                    big_rows,
                    FULL_SPEED_RPS,
                    tmp,
                    holds=False,
                )
            )
        mixed.unlink()
    return {"options": settings(UNLIMITED), "rps": FULL_SPEED_RPS, "big": big, "runs": runs}


def _targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests per 128 images as the arithmetic says; peak RSS at most 200 MB on the big
    file. A target whose run does not count is not met."""
    rows: list[dict[str, Any]] = []

    def add(name: str, value: Any, goal: str, met: bool | None, r: dict[str, Any] | None) -> None:
        if r is not None and r["problems"]:
            met = False
        rows.append({"target": name, "value": value, "goal": goal, "met": met})

    for r in out["requests"]["runs"][1:]:
        predicted = r["predicted_requests"]
        ok = bool(predicted) and r["requests"] <= predicted * (1 + REQUESTS_SLACK)
        add(
            f"requests of {r['client']}",
            r["requests"],
            f"at most {predicted:,} + {REQUESTS_SLACK:.0%} (the arithmetic's)",
            ok,
            r,
        )
    empty = [r for r in out["memory"]["runs"] if r.get("app_holds") == "none"]
    goal = f"at most {RSS_MB:g}"
    if len(empty) == 2:
        large = empty[1]
        rss = round(large["peak_rss_mb"], 1)
        add(f"peak RSS at {large['rows']:,} rows (MB)", rss, goal, rss <= RSS_MB, large)
    else:
        add("peak RSS on the big file (MB)", None, goal, None, None)
    return rows


def _growth(out: dict[str, Any]) -> str:
    """The growth of the peak from the memory file to the big one, in words (or "")."""
    empty = [r for r in out["memory"]["runs"] if r.get("app_holds") == "none"]
    if len(empty) != 2 or not empty[0]["peak_rss_mb"]:
        return ""
    small, large = empty
    growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
    return (
        f" From {small['rows']:,} to {large['rows']:,} rows the peak grows by "
        f"{growth * 100:.1f} %, most of it the counting pass's (the grouping's scan holds "
        "8 bytes a stretch of one image's rows until its end: a row, in a shuffled file), "
        "which an upload has too."
    )


def markdown(out: dict[str, Any]) -> list[str]:
    """The tables of ``verify.json``."""
    req = out["requests"]
    lines = [
        *intro(
            out,
            f"**Requests.** Server: {server(req['options'])}; it holds the "
            f"{req['rows']:,} rows on {req['images']:,} images that `ingest upload` sent "
            f"({req['annotations_held']:,} annotations, input-level ones included); "
            f"`ingest verify` at {req['rps']:g} requests/s. Predicted: "
            "`ingest.estimate.verify_requests` (one `ListInputs` by ids per 128 images, the "
            "pages of their annotations); the ceiling is the budget over those requests.",
        ),
        *table(
            "client | exit | requests | per 128 images | predicted | by method | rows/s "
            "| fraction of ceiling | throttled | writes | CPU s | peak RSS (MB)",
            "lrrrrlrrrrrr",
            (
                [
                    client_name(r),
                    f"{r['returncode']}",
                    f"{r['requests']:,}",
                    f"{r.get('requests_per_128_images') or '-'}",
                    f"{r.get('predicted_requests', '-')}",
                    ", ".join(f"{k} {v}" for k, v in r["requests_by_method"].items()),
                    f"{r.get('rows_per_s', '-')}",
                    f"{r['ceiling_fraction'] * 100:.1f} %" if "ceiling_fraction" in r else "-",
                    f"{r['throttled']:,}",
                    f"{sum(r['writes'].values()):,}",
                    f"{r['cpu_s']:.1f}" if r["cpu_s"] is not None else "-",
                    f"{r['peak_rss_mb']:.1f}",
                ]
                for r in req["runs"]
            ),
        ),
        "",
    ]
    mem = out["memory"]
    lines += [
        f"**Memory.** Server: {server(mem['options'])}; `ingest verify --rps "
        f"{mem['rps']:g}` of shuffled files (grouped on disk first), against an app holding "
        "them (uploaded first) or an empty one (every row differs and goes to the resend "
        "file; a sandbox holding 5M annotations would need some 25 GB, so the big file runs "
        f"against an empty app).{_growth(out)}",
        "",
        *table(
            "client | rows | the app holds | exit | requests | per 128 images | rows/s "
            "| writes | CPU s | peak RSS (MB)",
            "lrlrrrrrrr",
            (
                [
                    client_name(r),
                    f"{r.get('rows', '-'):,}" if "rows" in r else "-",
                    r.get("app_holds", "-"),
                    f"{r['returncode']}",
                    f"{r['requests']:,}",
                    f"{r.get('requests_per_128_images') or '-'}",
                    f"{r.get('rows_per_s', '-')}",
                    f"{sum(r['writes'].values()):,}",
                    f"{r['cpu_s']:.1f}" if r["cpu_s"] is not None else "-",
                    f"{r['peak_rss_mb']:.1f}",
                ]
                for r in mem["runs"]
            ),
        ),
        "",
        *table(
            "target | value | goal | met",
            "lrll",
            (
                [
                    t["target"],
                    "-" if t["value"] is None else f"{t['value']:,}",
                    t["goal"],
                    {True: "yes", False: "**no**", None: "n/a (run with --big)"}[t["met"]],
                ]
                for t in out["targets"]
            ),
        ),
        "",
    ]
    return lines


async def _bench(sizes: Sizes, big: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as name:
        tmp = Path(name)
        return {"requests": await _requests(sizes, tmp), "memory": await _memory(sizes, tmp, big)}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.verify", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the machinery")
    parser.add_argument("--big", action="store_true", help="also the shuffled 5M-row file")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ns = parser.parse_args(args)
    started = time.monotonic()
    out: dict[str, Any] = {
        "provenance": provenance(shlex.join(["python", "-m", "benchmarks.verify", *args]))
    }
    out.update(anyio.run(_bench, QUICK if ns.quick else FULL, ns.big, backend="asyncio"))
    out["wall_s"] = round(time.monotonic() - started, 1)
    runs = [("verify requests", r) for r in out["requests"]["runs"]]
    runs += [("verify memory", r) for r in out["memory"]["runs"]]
    out["failures"] = failures(runs)
    out["targets"] = _targets(out)
    print("\n".join(markdown(out)))
    return finish(out, ns.out, "verify")


if __name__ == "__main__":
    raise SystemExit(main())
