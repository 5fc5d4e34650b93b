"""Smoke test of the benchmark suite's scenarios, ingest alone, on about 100 images.

Checks that the machinery runs end to end (in-process sandbox, client subprocess under
the launcher, server-side counts, verdicts, targets, markdown) and that the figures are
there. No timing assertion: speed is the benchmark's business, not the test's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks.render import markdown
from benchmarks.scale import Scale
from benchmarks.scenarios import Suite
from benchmarks.targets import targets

pytestmark = pytest.mark.anyio

TINY = Scale(
    name="smoke",
    realistic_images=100,
    unthrottled_images=100,
    memory_images=100,
    big_images=200,
    hostile_images=100,
    realistic_cap=5.0,
    unthrottled_cap=5.0,
    hostile_cap=5.0,
    ingest_cap=60.0,
    cpu_repeats=2,
)
"""ingest's cap is far beyond what 100 images take (a few seconds): a run that reaches
it fails the test instead of passing unchecked."""


async def test_realistic_scenario_for_ingest_alone(tmp_path: Path) -> None:
    only = frozenset({"ingest (API)", "ingest (API, shuffled)"})
    suite = Suite(TINY, tmp_path, cli_ok=False, sdk_ok=False, only=only)
    with anyio.fail_after(150):
        scenario = await suite.realistic()

    assert scenario["data"]["images"] == 100
    assert scenario["ceiling_requests"] > 0 and scenario["ceiling_rows_per_s"] > 0
    result, mixed = scenario["results"]
    assert result["client"] == "ingest (API)"
    assert mixed["client"] == "ingest (API, shuffled)"
    assert mixed["client_report"]["grouped"] and not result["client_report"]["grouped"]
    assert mixed["rows_duplicated"] == 0
    for key in (
        "rows_per_s",
        "ceiling_fraction",
        "requests",
        "throttled",
        "rows_landed",
        "rows_lost",
        "rows_duplicated",
        "elapsed_s",
        "cpu_s",
        "peak_rss_mb",
        "timeline",
        "client_report",
    ):
        assert key in result, key
    for r in (result, mixed):
        assert not r["capped"], r["client"]
        assert r["unplanned_death"] is None
        assert r["returncode"] == 0, r.get("stderr_tail")
        assert r["rows_lost"] == 0
        assert r["rows_landed"] == scenario["good_rows"] == scenario["ceiling_rows"]
        assert r["client_report"]["rows_landed"] == r["rows_landed"]
        assert r["rows_duplicated"] == 0
        assert r["first_row_s"] is not None and r["first_row_s"] <= r["elapsed_s"]
    assert result["cpu_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["timeline"][0] == (0.0, 0)

    out: dict[str, Any] = {**_frame(), "scenarios": {"realistic": scenario}}
    out["targets"] = targets(out)
    assert {t["target"] for t in out["targets"]} >= {
        "realistic: fraction of the request-budget ceiling (API)",
        "realistic, rows shuffled: fraction of the request-budget ceiling (API)",
        "realistic, rows shuffled: requests against the grouped file's (API)",
        "realistic, rows shuffled: throttled replies (API)",
    }
    assert all(t["met"] for t in out["targets"] if t["target"].startswith("every run"))
    text = markdown(out)
    assert "## Realistic" in text and "| ingest (API) |" in text
    assert f"The ceiling counts {scenario['good_rows']:,} rows" in text
    assert "fewest for this protocol" in text and "itself a guess" in text
    assert "`--rps 15`" in text and "1 % download failures" in text
    assert "RUN FAILED" not in text


async def test_unthrottled_scenario_repeats_ingest_and_the_floor_in_turn(tmp_path: Path) -> None:
    suite = Suite(TINY, tmp_path, cli_ok=False, sdk_ok=False, only=frozenset({"ingest (API)"}))
    with anyio.fail_after(150):
        scenario = await suite.unthrottled()

    [result] = scenario["results"]
    assert result["problems"] == []
    assert scenario["repeats"] == 2 and len(scenario["floor"]["cpu_s_runs"]) == 2
    assert len(result["cpu_s_runs"]) == 2
    assert result["cpu_s"] in result["cpu_s_runs"]
    assert not result["capped"] and result["returncode"] == 0
    assert result["rows_landed"] == scenario["data"]["rows"]
    assert result["rows_lost"] == 0 and result["rows_duplicated"] == 0
    assert result["cpu_vs_floor"] > 0
    # the extra run with the cycle collector timed
    timed = scenario["collector"]["ingest (API)"]
    assert timed["rows_landed"] == scenario["data"]["rows"] and timed["returncode"] == 0
    assert 0 <= timed["gc_s"] <= timed["cpu_s"] and sum(timed["collections"]) > 0
    text = markdown({**_frame(), "scenarios": {"unthrottled": scenario}})
    assert "ran 2 times, in turn" in text and "| ingest (API) |" in text
    assert "median of the paired ratios" in text and "Python's cycle collector" in text
    assert "`--rps 10000`" in text


async def test_memory_scenario_measures_the_command_line_and_what_holds_the_rest(
    tmp_path: Path,
) -> None:
    """At full speed on the small and the big file (ids-only sandbox, losses judged by
    counts), and the three processes that only start, import, open a channel."""
    suite = Suite(TINY, tmp_path, cli_ok=True, sdk_ok=False, big=True)
    with anyio.fail_after(200):
        scenario = await suite.memory()

    assert scenario["big"] is True and scenario["ingest_rps"] == 10_000
    runs = {(r["client"], r["rows"]) for r in scenario["results"]}
    sizes = sorted({r["rows"] for r in scenario["results"]})
    assert len(sizes) == 2
    assert runs == {
        (c, n)
        for n in sizes
        for c in ("ingest (CLI, shuffled)", "ingest (API)", "ingest (API, shuffled)")
    }
    for r in scenario["results"]:
        assert r["problems"] == [], r
        assert r["rows_landed"] == r["rows"] and r["rows_lost"] == 0
        assert r["rows_duplicated"] == 0 and r["peak_rss_mb"] > 0
    stages = {r["client"]: r for r in scenario["baseline"]}
    names = ("interpreter", "grpc", "imports", "channel")
    assert set(stages) == {f"baseline: {s}" for s in names}
    rss = [stages[f"baseline: {s}"]["peak_rss_mb"] for s in names]
    assert all(r["problems"] == [] for r in stages.values())
    assert rss[0] < rss[1] < rss[2] <= rss[3]  # each holds what the one before does, and more
    assert [r for _, r in suite.runs if r["problems"]] == []
    out: dict[str, Any] = {**_frame(), "scenarios": {"memory": scenario}}
    out["targets"] = targets(out)
    named = {t["target"]: t for t in out["targets"]}
    assert any(
        n.startswith("full speed: peak RSS, the big file against the small one") for n in named
    )
    text = markdown(out)
    assert "What holds the rest" in text and "the upload itself" in text


def _frame() -> dict[str, Any]:
    machine = {"cpus": 2, "python": "3", "platform": "test", "date": "now"}
    return {
        "scale": TINY.name,
        "provenance": {"command": "python -m benchmarks", "commit": "0" * 40, "machine": machine},
        "wall_s": 1.0,
        "notes": [],
        "targets": [],
        "failures": [],
    }
