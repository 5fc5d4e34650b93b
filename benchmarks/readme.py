"""``python -m benchmarks.readme``: benchmarks/README.md's figures, rendered from the results.

The page is written by hand except between markers::

    <!-- results: NAME -->
    ...
    <!-- end of results -->

whose lines are rendered from ``benchmarks/results/FILE.json`` (:data:`BLOCKS`), never
typed: a figure on the page is a figure of a results file, with the command, commit and
machine that produced it. ``--check`` renders without writing and exits 1 when the page
differs from its rendering, or when a results file was produced from code other than this
checkout's (another commit whose ``ingest/`` or ``benchmarks/`` differ from the work tree,
or uncommitted changes), that is, when the page quotes figures this code did not produce.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import coco_memory, coco_sdk, grouping, iterables, jobcheck, spark, verify
from benchmarks.common import RESULTS, ROOT
from benchmarks.render import body, load, table

__all__ = ["BLOCKS", "main", "render", "stale"]

README = Path(__file__).resolve().parent / "README.md"

_BLOCK = re.compile(
    r"(<!-- results: (?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- end of results -->)", re.S
)


def _suite(out: dict[str, Any]) -> list[str]:
    return body(out, level=3)


BLOCKS: dict[str, tuple[str, str, Callable[[dict[str, Any]], list[str]]]] = {
    "suite": ("results", "python -m benchmarks --big", _suite),
    "coco_memory": ("coco_memory", "python -m benchmarks.coco_memory", coco_memory.markdown),
    "coco_realistic": (
        "coco_realistic",
        "python -m benchmarks.coco_memory --realistic 60000",
        coco_memory.markdown_realistic,
    ),
    "coco_sdk": ("coco_sdk", "python -m benchmarks.coco_sdk", coco_sdk.markdown),
    "iterables": ("iterables", "python -m benchmarks.iterables", iterables.markdown),
    "spark": ("spark", "python -m benchmarks.spark", spark.markdown),
    "grouping": (
        "grouping",
        "python -m benchmarks.grouping --images 333334 --repeats 1",
        grouping.markdown,
    ),
    "verify": ("verify", "python -m benchmarks.verify --big", verify.markdown),
    "jobcheck": ("jobcheck", "python -m benchmarks.jobcheck", jobcheck.markdown),
}
"""Block name: (results file without ``.json``, the command that writes it, its rendering)."""


def _index(results: Path) -> list[str]:
    """One line per results file: command, commit, date, run time, whether every run counted;
    then the run times' sum."""
    rows = []
    total = 0.0
    for file, command, _ in BLOCKS.values():
        out = load(results, file)
        if out is None or "provenance" not in out:
            state = "no results file" if out is None else "an older format: regenerate"
            rows.append([f"`{file}.json`", f"`{command}`", "-", "-", "-", state])
            continue
        p = out["provenance"]
        total += out.get("wall_s", 0.0)
        status = (
            f"**failed**: {len(out['failures'])} runs do not count"
            if out["failures"]
            else "every run counts"
        )
        rows.append(
            [
                f"`{file}.json`",
                f"`{p['command']}`",
                f"`{(p.get('commit') or 'unknown')[:12]}`"
                + (" + changes" if p.get("uncommitted_changes") else ""),
                p["machine"]["date"],
                f"{out.get('wall_s', 0) / 60:.1f} min",
                status,
            ]
        )
    return [
        *table("results file | command | commit | date | run time | verdict", "llllrl", rows),
        "",
        f"Run time of these files together: {total / 60:.1f} min.",
    ]


def render(text: str, results: Path = RESULTS) -> str:
    """``text`` (the page) with every block rendered from the files under ``results``."""

    def block(m: re.Match[str]) -> str:
        name = m["name"]
        if name == "index":
            lines = _index(results)
        elif name not in BLOCKS:
            raise ValueError(f"{README}: unknown results block {name!r}")
        else:
            file, command, fill = BLOCKS[name]
            out = load(results, file)
            if out is None:
                lines = [f"_No `results/{file}.json` here: `{command}` writes it._"]
            elif "provenance" not in out:
                lines = [f"_`results/{file}.json` is of an older format: `{command}` rewrites it._"]
            else:
                lines = fill(out)
        return m.group(1) + "\n".join(lines).rstrip("\n") + "\n" + m.group(4)

    return _BLOCK.sub(block, text)


def _code_changed(commit: str | None) -> bool:
    """Whether ``ingest/`` or ``benchmarks/`` (results and page aside) differ from ``commit``
    in this work tree."""
    if not commit:
        return True
    done = subprocess.run(
        [
            "git",
            "diff",
            "--quiet",
            commit,
            "--",
            "ingest",
            "benchmarks",
            "pyproject.toml",
            ":!benchmarks/results",
            ":!benchmarks/README.md",
        ],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    return done.returncode != 0


def stale(results: Path = RESULTS) -> list[str]:
    """The results files produced from code other than this work tree's."""
    out = []
    for file, _, _ in BLOCKS.values():
        data = load(results, file)
        if data is None or "provenance" not in data:
            out.append(f"results/{file}.json: {'missing' if data is None else 'an older format'}")
            continue
        p = data["provenance"]
        if p.get("uncommitted_changes"):
            out.append(f"results/{file}.json: produced with uncommitted changes")
        elif _code_changed(p.get("commit")):
            out.append(f"results/{file}.json: produced at {p.get('commit')}, whose code differs")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results files")
    parser.add_argument("--page", type=Path, default=README, help="the page to render")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    ns = parser.parse_args(argv)
    text = ns.page.read_text()
    rendered = render(text, ns.results)
    if not ns.check:
        ns.page.write_text(rendered)
        print(f"rendered {ns.page} from {ns.results}", file=sys.stderr)
        return 0
    problems = stale(ns.results)
    if rendered != text:
        problems.append(f"{ns.page} differs from its rendering: run python -m benchmarks.readme")
    for p in problems:
        print(f"STALE: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
