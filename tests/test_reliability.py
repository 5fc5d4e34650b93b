"""Faults from the network, the server and the data: nothing lost, nothing sent twice.

Each scenario uploads a dataset of a few thousand rows through the public API to a
sandbox injecting one fault (and then all of them), and checks the server's final
state and the per-row outcomes against what the data says should happen. Batches
are kept small so that every fault strikes many times per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from ingest import Ingester, Outcome, Report, Status
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.patching import OVERWRITE_READINGS
from ingest.sandbox.state import SUCCESS
from tests.helpers import Dataset, make_dataset, sandbox_config

pytestmark = pytest.mark.anyio

DATA = make_dataset(900, seed=21)


async def run_scenario(
    tmp_path: Path, server: dict[str, Any], client: dict[str, Any] | None = None
) -> tuple[Sandbox, dict[int, Outcome], Report]:
    csv_path = DATA.write(tmp_path / "data.csv")
    options: dict[str, Any] = {"rps": 0, "processing": (0.05, 0.3), "seed": 9}
    options.update(server)
    values: dict[str, Any] = {
        "batch_size": 32,
        "annotation_batch_size": 32,
        "linger": 0.1,
        "processing_estimate": 0.2,
        "backoff": 0.05,
        "backoff_max": 0.5,
        "call_timeout": 2.0,
        "rps": 200.0,
    }
    values.update(client or {})
    outcomes: dict[int, Outcome] = {}
    async with Sandbox(SandboxOptions(**options)) as sb:
        config = sandbox_config(sb, **values)
        async with Ingester(config) as ing, ing.stream(csv_path) as stream:
            async for outcome in stream:
                assert outcome.line not in outcomes, f"line {outcome.line} ended twice"
                outcomes[outcome.line] = outcome
        return sb, outcomes, ing.report


def check(
    sb: Sandbox, outcomes: dict[int, Outcome], report: Report, data: Dataset
) -> dict[str, float]:
    """Server state and outcomes agree with the data; returns the scenario's figures."""
    state = sb.servicer.state
    # no duplicate: every stored input is one of ours, one per valid URL
    assert set(state.inputs) == set(data.inputs)
    good = {i for i, s in state.inputs.items() if s.fate == SUCCESS}
    expected = {aid for aid, (iid, _, _) in data.boxes.items() if iid in good}
    assert set(state.annotations) == expected
    # every row accounted for, exactly once
    assert set(outcomes) == set(range(2, len(data.rows) + 2))
    for line, outcome in outcomes.items():
        row = data.rows[line - 2]
        if line in data.invalid_lines:
            assert outcome.status is Status.FAILED
            continue
        if outcome.input_id in good:
            assert outcome.status is not Status.FAILED, (line, outcome.error)
        else:
            assert outcome.status is Status.FAILED, (line, row)
            assert outcome.error.startswith(("download failed", "processing timeout")), (
                outcome.error
            )
    figures = {
        "rows": len(outcomes),
        "landed": report.rows_landed,
        "present": report.rows_present,
        "failed": report.rows_failed,
        "duplicated": len(state.inputs) - len(data.inputs) + len(state.annotations) - len(expected),
        "requests": report.requests,
        "throttled": report.throttled,
        "retries": report.retries,
        "unavailable_injected": sb.stats.unavailable_injected,
        "lost_replies_injected": sb.stats.lost_replies_injected,
        "spikes_injected": sb.stats.spikes_injected,
        "elapsed_s": round(report.elapsed_s, 1),
    }
    # one line per scenario, shown by ``pytest tests/test_reliability.py -s``
    print("\nfigures", " ".join(f"{k}={v}" for k, v in figures.items()))
    return figures


async def test_unavailable_before_acting(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        sb, outcomes, report = await run_scenario(tmp_path, {"unavailable_rate": 0.10})
    check(sb, outcomes, report, DATA)
    assert sb.stats.unavailable_injected > 0


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_lost_replies(tmp_path: Path, reading: str) -> None:
    """Every call acted on whose reply was lost is sent again: under each reading of
    PatchInputs overwrite, what is stored is what the data says."""
    with anyio.fail_after(120):
        sb, outcomes, report = await run_scenario(
            tmp_path, {"lost_reply_rate": 0.05, "patch_overwrite": reading}
        )
    check(sb, outcomes, report, DATA)
    assert sb.stats.lost_replies_injected > 0


async def test_server_throttles_below_the_client_rate(tmp_path: Path) -> None:
    with anyio.fail_after(180):
        sb, outcomes, report = await run_scenario(
            tmp_path,
            {"rps": 5},
            {"rps": 15.0, "batch_size": 128, "annotation_batch_size": 128},
        )
    check(sb, outcomes, report, DATA)
    # the client adapted: most of its requests were not refused
    assert sb.stats.throttled > 0
    assert report.throttled < report.requests / 2


async def test_download_failures_and_inputs_that_never_finish(tmp_path: Path) -> None:
    with anyio.fail_after(120):
        sb, outcomes, report = await run_scenario(
            tmp_path,
            {"download_failure_rate": 0.03, "stuck_rate": 0.02},
            {"processing_timeout": 2.0},
        )
    figures = check(sb, outcomes, report, DATA)
    errors = {o.error.split(":")[0] for o in outcomes.values() if o.status is Status.FAILED}
    assert any(e.startswith("processing timeout") for e in errors)
    assert "download failed" in errors
    assert figures["failed"] > len(DATA.invalid_lines)


async def test_latency_spikes_longer_than_the_deadline(tmp_path: Path) -> None:
    with anyio.fail_after(180):
        sb, outcomes, report = await run_scenario(
            tmp_path,
            {"spike_rate": 0.05, "spike_seconds": 1.5, "latency": 0.01},
            {"call_timeout": 0.5},
        )
    check(sb, outcomes, report, DATA)
    assert sb.stats.spikes_injected > 0
    assert report.retries > 0


async def test_all_faults_together(tmp_path: Path) -> None:
    with anyio.fail_after(240):
        sb, outcomes, report = await run_scenario(
            tmp_path,
            {
                "rps": 8,
                "unavailable_rate": 0.10,
                "lost_reply_rate": 0.05,
                "download_failure_rate": 0.03,
                "stuck_rate": 0.02,
                "spike_rate": 0.03,
                "spike_seconds": 1.5,
                "latency": 0.02,
                "latency_jitter": 0.01,
            },
            {
                "rps": 15.0,
                "processing_timeout": 3.0,
                "call_timeout": 0.8,
                "batch_size": 64,
                "annotation_batch_size": 64,
            },
        )
    check(sb, outcomes, report, DATA)
