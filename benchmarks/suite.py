"""The benchmark suite: ingest against the seed script's algorithm and the official SDK.

``python -m benchmarks [--quick]`` runs four scenarios (README.md, "Scenarios") and writes
``benchmarks/results/``: ``results.md``, ``results.json``, ``realistic.png`` and
``memory.png``. The exit status is 1 when a client died from a signal nobody sent.

How it measures: the sandbox runs in this process (asyncio), each client in its own
subprocess, reaped with ``os.wait4`` so that its CPU seconds and peak RSS are its own.
A fresh sandbox serves each client in each scenario. Every figure that can come from
the server does: requests, throttled replies, rows landed (distinct boxes stored on
inputs that exist), rows duplicated and rows lost. Rows landed over time are sampled
from the sandbox every 0.5 s. Slow peers are stopped at a time cap; their rows/s is
then rows landed within the cap divided by the cap, and rows lost cannot be judged.
In the hostile scenario the CLI also runs killed with SIGKILL three times and re-run.

The parts, each in a module of its own name: :mod:`benchmarks.scale` (sizes and caps),
:mod:`benchmarks.data` (generated files and the rows that can land),
:mod:`benchmarks.clients` (command lines), :mod:`benchmarks.runner` (running one client
under the launcher), :mod:`benchmarks.audit` (the server's state, the ceiling),
:mod:`benchmarks.scenarios`, :mod:`benchmarks.targets` and :mod:`benchmarks.render`
(tables and plots). This module is the entry point and re-exports what other benchmarks
import from it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from benchmarks.audit import analyse
from benchmarks.common import APP, PAT, PY, RESULTS, UNLIMITED_RPS, USER, log
from benchmarks.data import Data, good_rows, load_data
from benchmarks.render import QUICK_CAVEAT, markdown, write_results
from benchmarks.runner import LAUNCHER, run_client
from benchmarks.scale import FULL, QUICK, Scale
from benchmarks.scenarios import Suite, run_suite
from benchmarks.targets import targets, unplanned_deaths

__all__ = [
    "APP",
    "LAUNCHER",
    "PAT",
    "PY",
    "RESULTS",
    "SCENARIOS",
    "UNLIMITED_RPS",
    "USER",
    "Data",
    "Scale",
    "Suite",
    "analyse",
    "exit_status",
    "good_rows",
    "load_data",
    "main",
    "markdown",
    "run_client",
    "run_suite",
    "targets",
]

SCENARIOS = ("realistic", "unthrottled", "memory", "hostile")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="ingest against the seed script's algorithm and the official SDK.",
    )
    parser.add_argument("--quick", action="store_true", help="the quick subset (under two minutes)")
    parser.add_argument(
        "--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ns = parser.parse_args(args)
    scale = QUICK if ns.quick else FULL
    scenarios = ns.only or list(SCENARIOS)
    log(f"scale {scale.name}: {', '.join(scenarios)}")
    out = anyio.run(run_suite, scale, scenarios)
    write_results(out, ns.out)
    log(f"done in {out['wall_s'] / 60:.1f} min; results in {ns.out}")
    for t in out["targets"]:
        log(f"target {t['target']}: {t['value']} ({t['goal']}) {'met' if t['met'] else 'MISSED'}")
    if scale is QUICK:
        log(QUICK_CAVEAT)
    for death in out["unplanned_deaths"]:
        log(f"RUN FAILED: {death} (a signal nobody sent; the client was not restarted)")
    return exit_status(out)


def exit_status(out: dict[str, Any]) -> int:
    """1 when a client died from a signal nobody sent (the run failed), else 0."""
    return 1 if unplanned_deaths(out) else 0


if __name__ == "__main__":
    raise SystemExit(main())
