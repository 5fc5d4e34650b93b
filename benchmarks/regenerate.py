"""``python -m benchmarks.regenerate``: every benchmark, then benchmarks/README.md from them.

Runs, one after the other, each in its own process (warnings are errors there), every
command of :data:`benchmarks.readme.BLOCKS` (the suite with its 5M-row file, Spark, the
COCO runs, the iterables, the grouping, the verification, the inputs-add job experiment),
each writing its results file into ``benchmarks/results/``; then renders the page from them
(:mod:`benchmarks.readme`). Each
results file records its own run time (the page sums them). The results must come from
committed code: with uncommitted
changes outside the results and the page it refuses to start. It goes on after a
benchmark that fails (its results file says why) and exits 1 at the end if one did.

``--quick --out DIR`` runs each at a small size into DIR and renders a copy of the page
there (``DIR/README.md``): a check of the machinery in a few minutes, not figures to
quote.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import RESULTS, ROOT, log, provenance
from benchmarks.readme import BLOCKS, README
from benchmarks.strict import python

__all__ = ["QUICK", "main"]

QUICK = {
    "suite": "python -m benchmarks --quick --big",
    "coco_memory": "python -m benchmarks.coco_memory --sizes 3000 30000 --pairs 1",
    "coco_realistic": "python -m benchmarks.coco_memory --realistic 3000",
    "coco_sdk": "python -m benchmarks.coco_sdk --annotations 3000 --cap 20",
    "iterables": "python -m benchmarks.iterables --images 500",
    "spark": "python -m benchmarks.spark --quick",
    "grouping": "python -m benchmarks.grouping --images 3000 --repeats 1",
    "verify": "python -m benchmarks.verify --quick --big",
    "jobcheck": "python -m benchmarks.jobcheck --images 1000",
}
"""The same commands at small sizes."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.regenerate", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the machinery")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--only", action="append", choices=list(BLOCKS), help="this benchmark only (repeatable)"
    )
    ns = parser.parse_args(argv)
    if not ns.quick and provenance("")["uncommitted_changes"]:
        print(
            "uncommitted changes outside benchmarks/results and benchmarks/README.md: commit "
            "them first, so that the results come from a commit",
            file=sys.stderr,
        )
        return 2
    failed = []
    for name in ns.only or list(BLOCKS):
        command = shlex.split(QUICK[name] if ns.quick else BLOCKS[name][1])
        out = [] if ns.out.resolve() == RESULTS.resolve() else ["--out", str(ns.out)]
        argv_ = python(*command[1:], *out)
        log(f"{name}: {shlex.join(command)} ...")
        started = time.monotonic()
        done = subprocess.run(argv_, cwd=ROOT, check=False)
        log(f"{name}: exit {done.returncode} after {(time.monotonic() - started) / 60:.1f} min")
        if done.returncode != 0:
            failed.append(f"{name} exited {done.returncode}")
    page = README if ns.out.resolve() == RESULTS.resolve() else ns.out / "README.md"
    if page != README:
        page.write_text(README.read_text())
    rendered = subprocess.run(
        python("-m", "benchmarks.readme", "--results", str(ns.out), "--page", str(page)),
        cwd=ROOT,
        check=False,
    )
    if rendered.returncode != 0:
        failed.append("the page could not be rendered")
    for line in failed:
        print(f"BENCHMARK FAILED: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
