"""The benchmark suite: ingest against the seed script's algorithm and the official SDK.

``python -m benchmarks [--quick] [--big]`` runs four scenarios (README.md, "Scenarios")
and writes ``benchmarks/results/`` (or ``--out DIR``): ``results.json`` (every figure, and
where it comes from), ``results.md`` (the tables, targets and notes), ``realistic.png``
and ``memory.png``. It exits 1, after writing them, when a run does not count: a client
died from a signal nobody sent, exited with a status nobody expected, or (an ingest
client) lost or duplicated a row or reached its cap; each such run is one line on stderr
starting ``BENCHMARK FAILED``.

How it measures: the sandbox runs in this process (asyncio), each client in its own
subprocess (``python -W error ...``), reaped with ``os.wait4`` so that its CPU seconds and
peak RSS are its own. A fresh sandbox serves each client in each scenario. Every figure
that can come from the server does: requests, throttled replies, rows landed (distinct
boxes stored on inputs that exist), rows duplicated and rows lost, against the file read
apart from ingest. Slow peers are stopped at a time cap; their rows/s is then rows
landed within the cap divided by the cap, and rows lost cannot be judged. In the hostile
scenario the CLI also runs killed with SIGKILL three times and re-run.

The parts, each in a module of its own name: :mod:`benchmarks.scale` (sizes and caps),
:mod:`benchmarks.data` (generated files and the rows that can land),
:mod:`benchmarks.clients` (command lines), :mod:`benchmarks.runner` (running one client
under the launcher), :mod:`benchmarks.audit` (the server's state, the ceiling),
:mod:`benchmarks.verdict` (whether a run counts), :mod:`benchmarks.scenarios`,
:mod:`benchmarks.targets` and :mod:`benchmarks.render` (tables and plots).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from benchmarks.common import RESULTS, log
from benchmarks.render import QUICK_CAVEAT, write_results
from benchmarks.scale import FULL, QUICK
from benchmarks.scenarios import run_suite
from benchmarks.verdict import exit_status

__all__ = ["SCENARIOS", "main"]

SCENARIOS = ("realistic", "unthrottled", "memory", "hostile")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="ingest against the seed script's algorithm and the official SDK.",
    )
    parser.add_argument("--quick", action="store_true", help="the quick subset (a few minutes)")
    parser.add_argument(
        "--big",
        action="store_true",
        help="the memory scenario's big file too (about 5M rows at full scale)",
    )
    parser.add_argument(
        "--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ns = parser.parse_args(args)
    scale = QUICK if ns.quick else FULL
    scenarios = ns.only or list(SCENARIOS)
    log(f"scale {scale.name}: {', '.join(scenarios)}{' (big file too)' if ns.big else ''}")
    command = shlex.join(["python", "-m", "benchmarks", *args])
    out = anyio.run(lambda: run_suite(scale, scenarios, command=command, big=ns.big))
    write_results(out, ns.out)
    log(f"done in {out['wall_s'] / 60:.1f} min; results in {ns.out}")
    met = {True: "met", False: "MISSED", None: "n/a"}
    for t in out["targets"]:
        log(f"target {t['target']}: {t['value']} ({t['goal']}) {met[t['met']]}")
    if scale is QUICK:
        log(QUICK_CAVEAT)
    return exit_status(out["failures"])


if __name__ == "__main__":
    raise SystemExit(main())
