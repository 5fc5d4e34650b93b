"""The report: every row in one bucket, live while the run goes on, and its summary."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ingest import Ingester, Report, Status
from ingest.sandbox import Sandbox, SandboxOptions
from tests.helpers import make_dataset, sandbox_config

pytestmark = pytest.mark.anyio


async def test_every_row_read_ends_in_exactly_one_bucket(tmp_path: Path) -> None:
    """Landed, present, failed or resumed; the invalid rows are among the failed ones. The
    report agrees with the outcomes a user receives, row for row."""
    data = make_dataset(60, seed=4)
    csv_path = data.write(tmp_path / "data.csv")
    resumed = {5, 6, 7, 30}  # rows an earlier run finished

    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.01, 0.05))) as sb:
            config = sandbox_config(sb)
            async with (
                Ingester(config) as ing,
                ing.stream(csv_path, skip=resumed.__contains__) as s,
            ):
                outcomes = [o async for o in s]
            report = ing.report
    by_status = {status: sum(o.status is status for o in outcomes) for status in Status}
    assert report.rows_landed == by_status[Status.LANDED] > 0
    assert report.rows_present == by_status[Status.PRESENT]
    assert report.rows_failed == by_status[Status.FAILED] > 0
    assert report.rows_resumed == len(resumed - data.invalid_lines)
    assert report.rows_read == len(data.rows)
    assert report.rows_read == (
        report.rows_landed + report.rows_present + report.rows_failed + report.rows_resumed
    )
    assert report.rows_invalid == len(data.invalid_lines) <= report.rows_failed
    assert report.to_dict()["rows_read"] == report.rows_read


async def test_the_report_is_live_while_the_run_goes_on(tmp_path: Path) -> None:
    data = make_dataset(200, seed=9)
    csv_path = data.write(tmp_path / "data.csv")
    seen = 0
    requests: list[int] = []  # the report's count of requests at each batch received
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.01, 0.05))) as sb:
            async with (
                Ingester(sandbox_config(sb, batch_size=16)) as ing,
                ing.stream(csv_path) as stream,
            ):
                async for batch in stream.batches():
                    seen += len(batch)
                    live = ing.report
                    # outcomes are counted as they go out: never fewer than received
                    assert live.rows_done >= seen
                    requests.append(live.requests)
            final = ing.report
    assert final.rows_done == seen == len(data.rows)
    assert requests == sorted(requests) and requests[len(requests) // 2] > 0
    assert requests[-1] <= final.requests
    assert final.requests == sum(sb.stats.requests.values())
    assert ing.report is final and ing.report.elapsed_s == final.elapsed_s  # final now


def test_summary_says_how_the_rows_ended_and_what_it_took() -> None:
    report = Report(
        rows_read=1_200,
        rows_invalid=3,
        rows_landed=1_100,
        rows_present=50,
        rows_failed=20,
        rows_resumed=30,
        inputs_created=400,
        annotations_created=1_000,
        requests=25,
        throttled=2,
        retries=4,
        elapsed_s=12.34,
    )
    assert report.summary() == (
        "1,200 rows read: 1,100 landed, 50 already there, 20 failed (3 invalid), 30 done "
        "earlier; 400 inputs and 1,000 annotations created; 25 requests, 2 throttled, "
        "4 retried, 12.3 s"
    )


def test_the_spark_jobs_summary_is_the_reports_and_the_jobs_figures() -> None:
    pytest.importorskip("pyarrow")
    from ingest.spark import JobReport

    report = Report(rows_read=10, rows_landed=10, requests=4, elapsed_s=1.0)
    job = JobReport(report, tasks=2, tasks_at_once=2, rps=15.0)
    assert job.summary() == (
        f"done: {report.summary()}; 2 tasks (2 at once, 15 req/s shared), "
        "0.0% of requests throttled"
    )
