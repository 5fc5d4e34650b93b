"""Whether a client's run counts, and how a benchmark ends when one does not.

A run of an ingest client counts when it finished (not stopped at its cap), exited with
the status expected of it, lost no row that could land and duplicated none. A peer (the
seed algorithm, the SDK) is measured, not judged: its losses and duplicates are figures,
and a cap stopping it is planned; but it too must not die from a signal nobody sent nor
exit with a status nobody expected. :func:`problems` names what went wrong (empty: the
run counts); :func:`finish` writes a benchmark's results and turns its problems into its
exit status, one line each on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["exit_status", "failures", "finish", "problems", "write_json"]


def problems(r: dict[str, Any]) -> list[str]:
    """What makes the run ``r`` (a :func:`benchmarks.runner.run_client` result) not count.

    ``r["expected_exit"]``: the exit status expected of the client when it finishes (None:
    any); ``r["judged"]``: whether a loss (once it finished) or a duplicate fails it;
    ``r["cap_planned"]``: whether stopping it at its cap is part of the benchmark (a peer,
    or a comparison that stops every client after the same time)."""
    out: list[str] = []
    judged = bool(r.get("judged", True))
    capped = bool(r.get("capped"))
    if r.get("unplanned_death"):
        out.append(f"died from {r['unplanned_death']} (a signal nobody sent)")
    elif capped:
        if not r.get("cap_planned"):
            out.append(f"stopped at its cap of {r['cap_s']:g} s before finishing")
    elif r.get("returncode") is None:
        out.append("no exit status")
    elif r.get("expected_exit") is not None and r["returncode"] != r["expected_exit"]:
        out.append(f"exit status {r['returncode']}, expected {r['expected_exit']}")
    if judged:
        lost, duplicated = r.get("rows_lost"), r.get("rows_duplicated")
        if not capped and lost is None:
            out.append("rows lost not judged")
        elif not capped and lost:
            out.append(f"lost {lost:,} rows")
        if duplicated:
            out.append(f"duplicated {duplicated:,} rows")
    return out


def failures(runs: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """``where: client: problem`` for each problem of each ``(where, result)``."""
    return [f"{where}: {r['client']}: {p}" for where, r in runs for p in r.get("problems", ())]


def write_json(directory: Path, name: str, data: Any) -> Path:
    """``data`` as ``directory/NAME.json`` (the folder made if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def exit_status(failed: Sequence[str]) -> int:
    """Say each failure on stderr (``BENCHMARK FAILED: ...``); 1 when there is one, else 0."""
    for line in failed:
        print(f"BENCHMARK FAILED: {line}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def finish(out: dict[str, Any], directory: Path, name: str) -> int:
    """Write ``out`` (with its ``failures``) to ``directory/NAME.json``, then
    :func:`exit_status` of its failures."""
    path = write_json(directory, name, out)
    print(f"results in {path}", file=sys.stderr, flush=True)
    return exit_status(out["failures"])
