"""The four scenarios (benchmarks/README.md, "Scenarios"): realistic, unthrottled, memory, hostile.

A :class:`Suite` runs each scenario's clients one after the other, each against a fresh
sandbox (:func:`benchmarks.runner.run_client`); :func:`run_suite` runs the scenarios asked
for and judges the targets.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.audit import ceiling
from benchmarks.clients import (
    Command,
    cli_available,
    ingest_api,
    ingest_cli,
    sdk_available,
    sdk_peer,
    seed_peer,
)
from benchmarks.common import PY, UNLIMITED_RPS, log
from benchmarks.data import Data, good_rows, load_data, shuffled
from benchmarks.runner import run_client, run_launched, summary
from benchmarks.scale import QUICK, Scale
from benchmarks.targets import targets, unplanned_deaths
from ingest.sandbox import SandboxOptions

__all__ = ["Contender", "Suite", "run_suite"]


@dataclass(frozen=True)
class Contender:
    """One client in a comparison: its name, its command line and its time cap."""

    name: str
    command: Command
    cap: float
    mode: str = "url"
    """``url`` or ``bytes``: how the client sends images (the SDK sends bytes)."""
    kills: tuple[float, ...] = ()


@dataclass
class Suite:
    scale: Scale
    tmp: Path
    cli_ok: bool
    sdk_ok: bool
    notes: list[str] = field(default_factory=list)
    only: frozenset[str] | None = None
    """Run only the clients of these names (the smoke test runs ingest alone)."""

    def clients(
        self,
        data: Data,
        ingest_rps: float,
        *,
        cap: float,
        ingest_options: Sequence[str] = (),
        kills: Sequence[float] = (),
    ) -> list[Contender]:
        """Every client of a comparison; with ``kills``, also the CLI killed and re-run."""
        out = [
            Contender(
                "ingest (API)",
                ingest_api(data.path, ingest_rps, *ingest_options),
                self.scale.ingest_cap,
            )
        ]
        if self.cli_ok:
            cli = ingest_cli(data.path, ingest_rps, self.tmp, *ingest_options)
            out.append(Contender("ingest (CLI)", cli, self.scale.ingest_cap))
            if kills:
                name = f"ingest (CLI, kill -9 x{len(kills)} + re-run)"
                cli = ingest_cli(data.path, ingest_rps, self.tmp, *ingest_options)
                out.append(Contender(name, cli, self.scale.ingest_cap, kills=tuple(kills)))
        out.append(Contender("seed algorithm", seed_peer(data.path), cap))
        if self.sdk_ok:
            out.append(Contender("clarifai SDK", sdk_peer(data.path), cap, mode="bytes"))
        return [c for c in out if self.only is None or c.name in self.only]

    def shuffled_clients(self, data: Data, ingest_rps: float) -> list[Contender]:
        """ingest's clients on a shuffled file (named "..., shuffled)")."""
        cap = self.scale.ingest_cap
        out = [Contender("ingest (API, shuffled)", ingest_api(data.path, ingest_rps), cap)]
        if self.cli_ok:
            cli = ingest_cli(data.path, ingest_rps, self.tmp)
            out.append(Contender("ingest (CLI, shuffled)", cli, cap))
        return [c for c in out if self.only is None or c.name in self.only]

    async def compare(
        self, scenario: str, data: Data, options: SandboxOptions, clients: list[Contender]
    ) -> list[dict[str, Any]]:
        results = []
        for c in clients:
            log(f"{scenario}: {c.name} (cap {c.cap:.0f} s) ...")
            r = await run_client(
                c.name, c.command, options, data, cap=c.cap, mode=c.mode, kills=c.kills
            )
            log(f"{scenario}: {summary(r)}")
            results.append(r)
        return results

    async def realistic(self) -> dict[str, Any]:
        options = SandboxOptions(
            rps=15, latency=0.06, processing=(0.5, 2.0), download_failure_rate=0.01, seed=1
        )
        data = load_data(self.tmp / "realistic.csv", self.scale.realistic_images, seed=11)
        log(f"realistic: {data.rows} rows, {data.inputs} images")
        good = good_rows(data, options)
        limit = ceiling(data.inputs, good, float(options.rps or 0))
        results = await self.compare(
            "realistic", data, options, self.clients(data, 15.0, cap=self.scale.realistic_cap)
        )
        # the same rows shuffled (rows of one image scattered through the file): ingest
        # groups them first; the peers load the whole file and group in memory anyway
        mixed = shuffled(data, seed=21)
        results += await self.compare(
            "realistic", mixed, options, self.shuffled_clients(mixed, 15.0)
        )
        for r in results:
            r["ceiling_fraction"] = limit.fraction(r["rows_per_s"])
        return {
            "options": _options(options),
            "data": data.counts,
            "good_rows": good,
            "ceiling_rows": limit.rows,
            "ceiling_requests": limit.requests,
            "ceiling_rows_per_s": round(limit.rows_per_s, 1),
            "ceiling_burst_requests": limit.burst,
            "ceiling_rows_per_s_with_burst": (
                round(limit.rows_per_s_with_burst, 1)
                if math.isfinite(limit.rows_per_s_with_burst)
                else None
            ),
            "results": results,
        }

    async def unthrottled(self) -> dict[str, Any]:
        options = SandboxOptions(rps=0, latency=0.0, processing=(0.05, 0.2), seed=2)
        data = load_data(self.tmp / "unthrottled.csv", self.scale.unthrottled_images, seed=12)
        log(f"unthrottled: {data.rows} rows, {data.inputs} images")
        clients = self.clients(data, UNLIMITED_RPS, cap=self.scale.unthrottled_cap)
        mixed = shuffled(data, seed=22)
        # the floor and ingest run several times, in turn, so that a ratio compares
        # runs made moments apart; the capped peers run once
        repeated = [c for c in clients if c.name.startswith("ingest")]
        repeated += self.shuffled_clients(mixed, UNLIMITED_RPS)
        source = {c.name: (mixed if c.name.endswith("shuffled)") else data) for c in repeated}
        per = 100_000 / data.rows
        floors: list[float] = []
        parse_only: list[float] = []
        runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in repeated}
        for i in range(self.scale.cpu_repeats):
            floor = run_launched(
                [PY, "-m", "benchmarks.floor", str(data.path)], self.tmp / f"floor-{i}"
            )
            floors.append(floor["cpu_s"] * per)
            parse_only.append(floor["output"]["cpu_s"])
            log(f"unthrottled: floor {floor['cpu_s']:.2f} s CPU (process), run {i + 1}")
            for c in repeated:
                runs[c.name] += await self.compare("unthrottled", source[c.name], options, [c])
        floor_100k = statistics.median(floors)
        results: list[dict[str, Any]] = []
        for c in repeated:
            pairs = [
                (r["cpu_s"] * 100_000 / (r["rows_landed"] or 1), f)
                for r, f in zip(runs[c.name], floors, strict=True)
            ]
            by_cpu = sorted(runs[c.name], key=lambda r: float(r["cpu_s"]))
            r = by_cpu[len(by_cpu) // 2]  # the median run stands for the client
            r["cpu_s_runs"] = [x["cpu_s"] for x in runs[c.name]]
            r["cpu_s_per_100k_rows"] = round(statistics.median(p for p, _ in pairs), 2)
            r["cpu_vs_floor"] = round(statistics.median(p / f for p, f in pairs), 2)
            grouped = c.name.replace(", shuffled)", ")")
            if grouped != c.name and grouped in runs:
                # shuffled against grouped, run by run (each pair made moments apart)
                r["cpu_vs_grouped"] = round(
                    statistics.median(
                        float(s["cpu_s"]) / float(g["cpu_s"])
                        for s, g in zip(runs[c.name], runs[grouped], strict=True)
                    ),
                    2,
                )
            results.append(r)
        for r in await self.compare(
            "unthrottled", data, options, [c for c in clients if c not in repeated]
        ):
            rows = r["rows_landed"] or 1
            r["cpu_s_per_100k_rows"] = round(r["cpu_s"] * 100_000 / rows, 2)
            r["cpu_vs_floor"] = round(r["cpu_s_per_100k_rows"] / floor_100k, 2)
            results.append(r)
        collector = await self.collector(data, options, repeated)
        return {
            "options": _options(options),
            "data": data.counts,
            "floor": {
                "cpu_s": round(floor_100k / per, 3),
                "cpu_s_runs": [round(f / per, 3) for f in floors],
                "cpu_s_parse_only": round(statistics.median(parse_only), 3),
                "cpu_s_parse_only_runs": [round(p, 3) for p in parse_only],
                "cpu_s_per_100k_rows": round(floor_100k, 2),
                "peak_rss_mb": round(floor["peak_rss_mb"], 1),
            },
            "repeats": self.scale.cpu_repeats,
            "results": results,
            "collector": collector,
        }

    async def collector(
        self, data: Data, options: SandboxOptions, clients: Sequence[Contender]
    ) -> dict[str, Any]:
        """One more run of each ingest client on the grouped file with Python's cycle
        collector timed (:mod:`benchmarks.gctime`): its CPU seconds against the run's."""
        out: dict[str, Any] = {}
        for c in clients:
            if c.name not in ("ingest (API)", "ingest (CLI)"):
                continue
            path = self.tmp / f"gc-{len(out)}.json"
            log(f"unthrottled: {c.name}, cycle collector timed ...")
            r = await run_client(
                c.name, _gc_timed(c.command, path), options, data, cap=self.scale.ingest_cap
            )
            log(f"unthrottled: {summary(r)}")
            timed = json.loads(path.read_text()) if path.exists() else {}
            gc_s = timed.get("gc_s")
            cpu_s = r["cpu_s"]
            out[c.name] = {
                "cpu_s": cpu_s,
                "gc_s": gc_s,
                "gc_share": round(gc_s / cpu_s, 3) if gc_s is not None and cpu_s else None,
                "collections": timed.get("collections"),
                "rows_landed": r["rows_landed"],
                "returncode": r["returncode"],
                "unplanned_death": r["unplanned_death"],
            }
        api, cli = out.get("ingest (API)"), out.get("ingest (CLI)")
        if api and cli and api["gc_s"] is not None and cli["gc_s"] is not None and api["cpu_s"]:
            # what the command line's collector settings save, as a share of the API's CPU
            out["saving_share"] = round((api["gc_s"] - cli["gc_s"]) / api["cpu_s"], 3)
        return out

    async def memory(self) -> dict[str, Any]:
        options = SandboxOptions(rps=0, latency=0.0, processing=(0.05, 0.2), seed=3, store=False)
        results = []
        for images in self.scale.memory_images:
            path = self.tmp / f"memory-{images}.csv"
            log(f"memory: generating {images} images ...")
            data = load_data(path, images, seed=13, index=False)
            mixed = shuffled(data, seed=23)
            for order, d in (("grouped", data), ("shuffled", mixed)):
                log(f"memory: {d.rows} rows, {order}; ingest (API) ...")
                r = await run_client(
                    "ingest (API)" if order == "grouped" else "ingest (API, shuffled)",
                    ingest_api(d.path, UNLIMITED_RPS),
                    options,
                    d,
                    cap=self.scale.ingest_cap,
                )
                r["rows"] = d.rows
                r["order"] = order
                r.pop("timeline")
                log(f"memory: {summary(r)}")
                results.append(r)
                d.path.unlink()
        return {"options": _options(options), "results": results}

    async def hostile(self) -> dict[str, Any]:
        options = SandboxOptions(
            rps=8,
            latency=0.02,
            latency_jitter=0.01,
            processing=(0.5, 2.0),
            unavailable_rate=0.10,
            lost_reply_rate=0.05,
            download_failure_rate=0.03,
            stuck_rate=0.02,
            spike_rate=0.03,
            spike_seconds=1.5,
            seed=4,
        )
        data = load_data(self.tmp / "hostile.csv", self.scale.hostile_images, seed=14)
        log(f"hostile: {data.rows} rows, {data.inputs} images")
        rng = random.Random(4)
        kills = [round(rng.uniform(1.0, 4.0), 2) for _ in range(3)]
        clients = self.clients(
            data,
            15.0,
            cap=self.scale.hostile_cap,
            ingest_options=["--processing-timeout", "5", "--call-timeout", "1"],
            kills=kills,
        )
        self.notes.append(
            "hostile: ingest runs with --rps 15 --processing-timeout 5 --call-timeout 1 (the "
            "default processing timeout of 600 s would hold every client ten minutes on the "
            f"stuck inputs); the killed CLI gets SIGKILL {', '.join(f'{k:g}' for k in kills)} s "
            "after each (re)start and is started again with the same command each time."
        )
        results = await self.compare("hostile", data, options, clients)
        return {"options": _options(options), "data": data.counts, "results": results}


def _gc_timed(command: Command, out: Path) -> Command:
    """``command`` (``python -m MODULE ...``) under :mod:`benchmarks.gctime`, writing ``out``."""
    return lambda base: [PY, "-m", "benchmarks.gctime", str(out), *command(base)[2:]]


def _options(options: SandboxOptions) -> dict[str, Any]:
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


async def run_suite(scale: Scale, scenarios: Sequence[str]) -> dict[str, Any]:
    cli_ok, cli_note = cli_available()
    sdk_ok, sdk_note = sdk_available()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        suite = Suite(scale, Path(tmp), cli_ok, sdk_ok)
        suite.notes += [n for n in (cli_note, sdk_note) if n]
        out: dict[str, Any] = {
            "scale": scale.name,
            "machine": _machine(),
            "command": "python -m benchmarks" + (" --quick" if scale is QUICK else ""),
            "scenarios": {},
        }
        for name in scenarios:
            t0 = time.monotonic()
            out["scenarios"][name] = await getattr(suite, name)()
            out["scenarios"][name]["wall_s"] = round(time.monotonic() - t0, 1)
        out["notes"] = suite.notes
    out["wall_s"] = round(time.monotonic() - started, 1)
    out["targets"] = targets(out)
    out["unplanned_deaths"] = unplanned_deaths(out)
    return out


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
