"""The four scenarios (benchmarks/README.md, "Scenarios"): realistic, unthrottled, memory, hostile.

A :class:`Suite` runs each scenario's clients one after the other, each against a fresh
sandbox (:func:`benchmarks.runner.run_client`), and keeps every run (``runs``) so that
one that does not count fails the suite; :func:`run_suite` runs the scenarios asked for
and judges the targets.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.audit import ceiling
from benchmarks.baseline import STAGES
from benchmarks.clients import (
    Command,
    cli_available,
    ingest_api,
    ingest_cli,
    sdk_available,
    sdk_peer,
    seed_peer,
)
from benchmarks.common import FULL_SPEED_RPS, log, provenance
from benchmarks.data import Data, good_rows, load_data, shuffled
from benchmarks.runner import run_client, run_launched, settings, summary
from benchmarks.scale import Scale
from benchmarks.strict import python
from benchmarks.targets import targets
from benchmarks.verdict import failures
from ingest.sandbox import SandboxOptions

__all__ = ["Contender", "Suite", "run_suite"]

REALISTIC_RPS = 15.0
"""Clarifai's default request budget per key: the realistic server's and ingest's."""


@dataclass(frozen=True)
class Contender:
    """One client in a comparison: its name, its command line and its time cap."""

    name: str
    command: Command
    cap: float
    mode: str = "url"
    """``url`` or ``bytes``: how the client sends images (the SDK sends bytes)."""
    kills: tuple[float, ...] = ()
    expect_exit: int | None = 0
    """The exit status it must end with when it finishes."""
    peer: bool = False
    """A peer is measured, not judged: it may be stopped at its cap, lose and duplicate.
    An ingest client (False) that does any of these fails the suite."""


@dataclass
class Suite:
    scale: Scale
    tmp: Path
    cli_ok: bool
    sdk_ok: bool
    notes: list[str] = field(default_factory=list)
    only: frozenset[str] | None = None
    """Run only the clients of these names (the smoke test runs ingest alone)."""
    big: bool = False
    """The memory scenario also runs its big file (about 5M rows at full scale)."""
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every run of the suite, with its scenario: one that does not count fails the suite."""

    def clients(
        self,
        data: Data,
        ingest_rps: float,
        *,
        cap: float,
        cli_exit: int,
        ingest_options: Sequence[str] = (),
        kills: Sequence[float] = (),
    ) -> list[Contender]:
        """Every client of a comparison; with ``kills``, also the CLI killed and re-run.
        ``cli_exit``: what the command line must exit with (1 when some rows cannot land;
        the API's script exits 0 whatever the report says)."""
        big = self.scale.ingest_cap
        out = [Contender("ingest (API)", ingest_api(data.path, ingest_rps, *ingest_options), big)]
        if self.cli_ok:
            cli = ingest_cli(data.path, ingest_rps, self.tmp, *ingest_options)
            out.append(Contender("ingest (CLI)", cli, big, expect_exit=cli_exit))
            if kills:
                name = f"ingest (CLI, kill -9 x{len(kills)} + re-run)"
                cli = ingest_cli(data.path, ingest_rps, self.tmp, *ingest_options)
                out.append(Contender(name, cli, big, kills=tuple(kills), expect_exit=cli_exit))
        out.append(Contender("seed algorithm", seed_peer(data.path), cap, peer=True))
        if self.sdk_ok:
            sdk = sdk_peer(data.path)
            out.append(Contender("clarifai SDK", sdk, cap, mode="bytes", peer=True))
        return [c for c in out if self.only is None or c.name in self.only]

    def shuffled_clients(self, data: Data, ingest_rps: float, cli_exit: int) -> list[Contender]:
        """ingest's clients on a shuffled file (named "..., shuffled)")."""
        cap = self.scale.ingest_cap
        out = [Contender("ingest (API, shuffled)", ingest_api(data.path, ingest_rps), cap)]
        if self.cli_ok:
            cli = ingest_cli(data.path, ingest_rps, self.tmp)
            out.append(Contender("ingest (CLI, shuffled)", cli, cap, expect_exit=cli_exit))
        return [c for c in out if self.only is None or c.name in self.only]

    async def run(
        self, scenario: str, c: Contender, data: Data, options: SandboxOptions
    ) -> dict[str, Any]:
        """One client of ``scenario``, kept in :attr:`runs`."""
        log(f"{scenario}: {c.name} (cap {c.cap:.0f} s) ...")
        r = await run_client(
            c.name,
            c.command,
            options,
            data,
            cap=c.cap,
            mode=c.mode,
            kills=c.kills,
            expect_exit=c.expect_exit,
            judged=not c.peer,
            cap_planned=c.peer,
        )
        log(f"{scenario}: {summary(r)}")
        self.runs.append((scenario, r))
        return r

    async def compare(
        self, scenario: str, data: Data, options: SandboxOptions, clients: list[Contender]
    ) -> list[dict[str, Any]]:
        return [await self.run(scenario, c, data, options) for c in clients]

    async def realistic(self) -> dict[str, Any]:
        options = SandboxOptions(
            rps=REALISTIC_RPS,
            latency=0.06,
            processing=(0.5, 2.0),
            download_failure_rate=0.01,
            seed=1,
        )
        data = load_data(self.tmp / "realistic.csv", self.scale.realistic_images, seed=11)
        log(f"realistic: {data.rows} rows, {data.inputs} images")
        good = good_rows(data, options)
        limit = ceiling(data.inputs, good, REALISTIC_RPS)
        cli_exit = 0 if good == data.rows else 1
        results = await self.compare(
            "realistic",
            data,
            options,
            self.clients(data, REALISTIC_RPS, cap=self.scale.realistic_cap, cli_exit=cli_exit),
        )
        # the same rows shuffled (rows of one image scattered through the file): ingest
        # groups them first; the peers load the whole file and group in memory anyway
        mixed = shuffled(data, seed=21)
        results += await self.compare(
            "realistic", mixed, options, self.shuffled_clients(mixed, REALISTIC_RPS, cli_exit)
        )
        for r in results:
            r["ceiling_fraction"] = limit.fraction(r["rows_per_s"])
        return {
            "options": settings(options),
            "ingest_rps": REALISTIC_RPS,
            "data": data.counts,
            "good_rows": good,
            **limit.to_dict(),
            "results": results,
        }

    async def unthrottled(self) -> dict[str, Any]:
        options = SandboxOptions(rps=0, latency=0.0, processing=(0.05, 0.2), seed=2)
        data = load_data(self.tmp / "unthrottled.csv", self.scale.unthrottled_images, seed=12)
        log(f"unthrottled: {data.rows} rows, {data.inputs} images")
        clients = self.clients(data, FULL_SPEED_RPS, cap=self.scale.unthrottled_cap, cli_exit=0)
        mixed = shuffled(data, seed=22)
        # the floor and ingest run several times, in turn, so that a ratio compares
        # runs made moments apart; the capped peers run once
        repeated = [c for c in clients if not c.peer]
        repeated += self.shuffled_clients(mixed, FULL_SPEED_RPS, 0)
        source = {c.name: (mixed if c.name.endswith("shuffled)") else data) for c in repeated}
        per = 100_000 / data.rows
        floors: list[float] = []
        parse_only: list[float] = []
        runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in repeated}
        for i in range(self.scale.cpu_repeats):
            # the floor reads the grouped file: what the data needs at least (one input per
            # image), not what a client that groups nothing would build from a shuffled one
            floor = run_launched(
                python("-m", "benchmarks.floor", str(data.path)), self.tmp / f"floor-{i}", "floor"
            )
            self.runs.append(("unthrottled", floor))
            if floor["problems"]:
                raise RuntimeError(f"the floor did not run: {'; '.join(floor['problems'])}")
            floors.append(floor["cpu_s"] * per)
            parse_only.append(floor["output"]["cpu_s"])
            log(f"unthrottled: floor {floor['cpu_s']:.2f} s CPU (process), run {i + 1}")
            for c in repeated:
                runs[c.name].append(await self.run("unthrottled", c, source[c.name], options))
        floor_100k = statistics.median(floors)
        results: list[dict[str, Any]] = []
        for c in repeated:
            pairs = [
                (r["cpu_s"] * 100_000 / (r["rows_landed"] or 1), f)
                for r, f in zip(runs[c.name], floors, strict=True)
            ]
            by_cpu = sorted(runs[c.name], key=lambda r: float(r["cpu_s"]))
            r = dict(by_cpu[len(by_cpu) // 2])  # the median run stands for the client
            r["cpu_s_runs"] = [x["cpu_s"] for x in runs[c.name]]
            # every run's problems: one bad run of five spoils the medians
            r["problems"] = [p for x in runs[c.name] for p in x["problems"]]
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
        peers = [c for c in clients if c not in repeated]
        for r in await self.compare("unthrottled", data, options, peers):
            rows = r["rows_landed"] or 1
            r["cpu_s_per_100k_rows"] = round(r["cpu_s"] * 100_000 / rows, 2)
            r["cpu_vs_floor"] = round(r["cpu_s_per_100k_rows"] / floor_100k, 2)
            results.append(r)
        collector = await self.collector(data, options, repeated)
        return {
            "options": settings(options),
            "ingest_rps": FULL_SPEED_RPS,
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
            timed = Contender(f"{c.name}, cycle collector timed", _gc_timed(c.command, path), c.cap)
            r = await self.run("unthrottled", timed, data, options)
            gc = json.loads(path.read_text()) if path.exists() else {}
            gc_s = gc.get("gc_s")
            cpu_s = r["cpu_s"]
            out[c.name] = {
                "cpu_s": cpu_s,
                "gc_s": gc_s,
                "gc_share": round(gc_s / cpu_s, 3) if gc_s is not None and cpu_s else None,
                "collections": gc.get("collections"),
                "rows_landed": r["rows_landed"],
                "returncode": r["returncode"],
                "problems": r["problems"],
            }
        api, cli = out.get("ingest (API)"), out.get("ingest (CLI)")
        if api and cli and api["gc_s"] is not None and cli["gc_s"] is not None and api["cpu_s"]:
            # what the command line's collector settings save, as a share of the API's CPU
            out["saving_share"] = round((api["gc_s"] - cli["gc_s"]) / api["cpu_s"], 3)
        return out

    async def memory(self) -> dict[str, Any]:
        """Peak RSS at full speed (a sandbox without limit keeping ids only, ingest told
        ``--rps 10000``), on the memory file and, with ``big``, the big one; and the
        processes that only start, import, open a channel (:mod:`benchmarks.baseline`)."""
        options = SandboxOptions(rps=0, latency=0.0, processing=(0.05, 0.2), seed=3, store=False)
        sizes = [self.scale.memory_images] + ([self.scale.big_images] if self.big else [])
        results = []
        for images in sizes:
            path = self.tmp / f"memory-{images}.csv"
            log(f"memory: generating {images} images ...")
            data = load_data(path, images, seed=13, index=False)
            mixed = shuffled(data, seed=23)
            runs = [
                ("shuffled", mixed, "ingest (CLI, shuffled)"),
                ("grouped", data, "ingest (API)"),
                ("shuffled", mixed, "ingest (API, shuffled)"),
            ]
            for order, d, name in runs:
                if name.startswith("ingest (CLI") and not self.cli_ok:
                    continue
                command = (
                    ingest_cli(d.path, FULL_SPEED_RPS, self.tmp)
                    if name.startswith("ingest (CLI")
                    else ingest_api(d.path, FULL_SPEED_RPS)
                )
                c = Contender(name, command, self.scale.ingest_cap)
                r = await self.run("memory", c, d, options)
                r.update(rows=d.rows, order=order)
                r.pop("timeline")
                results.append(r)
            data.path.unlink()
            mixed.path.unlink()
        baseline = []
        for stage in STAGES:
            c = Contender(
                f"baseline: {stage}",
                _baseline(stage),
                self.scale.ingest_cap,
                peer=True,  # no rows: nothing to lose
            )
            nothing = Data(self.tmp / "none.csv", {"rows": 0, "images": 0}, per_image=bytearray())
            r = await self.run("memory", c, nothing, options)
            r.pop("timeline")
            baseline.append(r)
        return {
            "options": settings(options),
            "ingest_rps": FULL_SPEED_RPS,
            "big": self.big,
            "results": results,
            "baseline": baseline,
        }

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
        flags = ["--processing-timeout", "5", "--call-timeout", "1"]
        clients = self.clients(
            data,
            REALISTIC_RPS,
            cap=self.scale.hostile_cap,
            cli_exit=1,  # download failures and stuck inputs: some rows fail
            ingest_options=flags,
            kills=kills,
        )
        self.notes.append(
            f"hostile: ingest runs with --rps {REALISTIC_RPS:g} {' '.join(flags)} (the default "
            "processing timeout of 600 s would hold every client ten minutes on the stuck "
            f"inputs); the killed CLI gets SIGKILL {', '.join(f'{k:g}' for k in kills)} s "
            "after each (re)start and is started again with the same command each time."
        )
        results = await self.compare("hostile", data, options, clients)
        return {
            "options": settings(options),
            "ingest_rps": REALISTIC_RPS,
            "data": data.counts,
            "results": results,
        }


def _baseline(stage: str) -> Command:
    """``python -m benchmarks.baseline STAGE --base URL``."""
    return lambda base: python("-m", "benchmarks.baseline", stage, "--base", base)


def _gc_timed(command: Command, out: Path) -> Command:
    """``command`` (``python [-W ...] -m MODULE ...``) under :mod:`benchmarks.gctime`."""

    def cmd(base: str) -> list[str]:
        argv = command(base)
        at = argv.index("-m")
        return [*argv[: at + 1], "benchmarks.gctime", str(out), *argv[at + 1 :]]

    return cmd


async def run_suite(
    scale: Scale, scenarios: Sequence[str], *, command: str, big: bool = False
) -> dict[str, Any]:
    cli_ok, cli_note = cli_available()
    sdk_ok, sdk_note = sdk_available()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        suite = Suite(scale, Path(tmp), cli_ok, sdk_ok, big=big)
        suite.notes += [n for n in (cli_note, sdk_note) if n]  # the SDK is an optional extra
        out: dict[str, Any] = {
            "scale": scale.name,
            "provenance": provenance(command),
            "scenarios": {},
        }
        for name in scenarios:
            t0 = time.monotonic()
            out["scenarios"][name] = await getattr(suite, name)()
            out["scenarios"][name]["wall_s"] = round(time.monotonic() - t0, 1)
        out["notes"] = suite.notes
    out["wall_s"] = round(time.monotonic() - started, 1)
    # the command line is what most users run: without it the figures that count are missing
    out["failures"] = ([f"suite: {cli_note}"] if not cli_ok else []) + failures(suite.runs)
    out["targets"] = targets(out)
    return out
