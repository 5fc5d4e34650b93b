"""``Ingester.plan`` and ``ingest plan`` against a sandbox: a bad key, a missing scope, a
missing app, a missing dataset, a file that needs grouping, the images already in the app,
the estimate against a measured upload of the same file; and never a write."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks.datagen import generate, shuffle_file
from ingest import Ingester, Plan
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.auth import READ_SCOPES, SCOPES, is_write
from tests.helpers import make_dataset, sandbox_config
from tests.test_cli import run, start_server

pytestmark = pytest.mark.anyio

#: Every scope an upload needs, but Annotations:Add.
NO_ANNOTATIONS = tuple(sorted({s for s in SCOPES.values() if s and s != "Annotations:Add"}))


async def plan_of(sb: Sandbox, path: Path, **options: Any) -> Plan:
    check_existing = options.pop("check_existing", False)
    dataset_version = options.pop("dataset_version", False)
    async with Ingester(sandbox_config(sb, **options)) as ing:
        return await ing.plan(path, check_existing=check_existing, dataset_version=dataset_version)


def failed(plan: Plan) -> dict[str, str]:
    return {c.name: c.says for c in plan.checks if not c.ok}


def no_writes(sb: Sandbox) -> bool:
    return not any(is_write(m) for m in sb.stats.requests)


async def test_a_plan_that_holds_reads_the_data_and_writes_nothing(tmp_path: Path) -> None:
    data = make_dataset(60, seed=3)
    path = data.write(tmp_path / "rows.csv")
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0)) as sb:
            plan = await plan_of(sb, path, check_existing=True)
            calls = dict(sb.stats.requests)
    assert plan.ready and not plan.problems
    assert {c.name for c in plan.checks} >= {"credentials", "app", "scopes"}
    assert plan.scopes == ["All"]
    assert plan.data.rows == len(data.rows)
    assert plan.data.images == len(data.inputs)
    assert len(plan.data.invalid) == len(data.invalid_lines)
    assert plan.existing == 0
    assert not any(is_write(m) for m in calls)
    # MyScopes once, and one ListInputs per 128 images for the images already there
    assert calls == {"MyScopes": 1, "ListInputs": 1}
    assert plan.estimate is not None and plan.estimate.requests > 0
    assert plan.to_dict()["rows_invalid"] == len(data.invalid_lines)


async def test_a_bad_key_a_missing_app_and_a_missing_scope(tmp_path: Path) -> None:
    path = make_dataset(10, seed=1).write(tmp_path / "rows.csv")
    options = SandboxOptions(rps=0, scoped_keys={"ro-key": READ_SCOPES, "no-ann": NO_ANNOTATIONS})
    with anyio.fail_after(60):
        async with Sandbox(options) as sb:
            bad_key = await plan_of(sb, path, pat="not-a-token")
            no_app = await plan_of(sb, path, app_id="no-such-app")
            app_key = {"pat": None, "user_id": None, "app_id": None}
            read_only = await plan_of(sb, path, api_key="ro-key", **app_key)
            no_annotations = await plan_of(sb, path, api_key="no-ann", **app_key)
            assert no_writes(sb)
    assert not bad_key.ready and "rejected" in failed(bad_key)["credentials"]
    assert not no_app.ready and "does not exist" in failed(no_app)["app"]
    assert not read_only.ready
    says = failed(read_only)["scopes"]
    for scope in ("Inputs:Add", "Inputs:Patch", "Annotations:Add"):
        assert scope in says
    assert "Inputs:Get (" not in says  # a read-only key has that one
    assert set(failed(no_annotations)) == {"scopes"}
    assert "Annotations:Add (PostAnnotations)" in failed(no_annotations)["scopes"]
    assert "Inputs:Add (" not in failed(no_annotations)["scopes"]
    # the data is counted and estimated all the same
    assert bad_key.data.rows == read_only.data.rows > 0 and bad_key.estimate is not None


async def test_datasets_that_exist_will_be_made_or_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(
        "url,left_col,top_row,right_col,bottom_row,pos_concepts,dataset_id\n"
        "https://img.example.com/1.jpg,0.1,0.1,0.5,0.5,cat,train\n"
        "https://img.example.com/2.jpg,0.1,0.1,0.5,0.5,cat,val\n"
    )
    options = SandboxOptions(rps=0, datasets=("train", "all"))
    with anyio.fail_after(60):
        async with Sandbox(options) as sb:
            fine = await plan_of(sb, path, dataset_id="all")
            missing = await plan_of(sb, path, dataset_id="absent", dataset_version=True)
            assert no_writes(sb)
    checks = {c.name: c for c in fine.checks}
    assert fine.ready
    assert checks["dataset train"].ok and "exists" in checks["dataset train"].says
    assert checks["dataset val"].ok and "makes it" in checks["dataset val"].says
    assert checks["dataset all"].ok
    assert sorted(fine.data.datasets) == ["train", "val"]
    assert not missing.ready
    assert "absent (--dataset-id) does not exist" in failed(missing)["dataset absent"]
    assert missing.estimate is not None
    # one PostDatasets per dataset the data names; a version of each dataset at the end
    assert missing.estimate.requests_by_method["PostDatasets"] == 2
    assert missing.estimate.requests_by_method["PostDatasetVersions"] == 3


async def test_a_scattered_file_is_grouped_on_disk_first(tmp_path: Path) -> None:
    grouped = tmp_path / "grouped.csv"
    generate(grouped, images=300, seed=2)
    scattered = tmp_path / "scattered.csv"
    shuffle_file(grouped, scattered, seed=4)
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0)) as sb:
            in_order = await plan_of(sb, grouped)
            shuffled = await plan_of(sb, scattered, tmp_dir=str(tmp_path / "tmp"))
    assert in_order.grouping == "none" and in_order.temp_bytes == 0
    assert shuffled.grouping == "disk"
    assert shuffled.temp_bytes == scattered.stat().st_size
    space = {c.name: c for c in shuffled.checks}["temp space"]
    assert space.ok and str(tmp_path / "tmp") in space.says
    assert in_order.data.images == shuffled.data.images == 300


async def test_not_enough_temp_space_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grouped = tmp_path / "grouped.csv"
    generate(grouped, images=50, seed=2)
    scattered = tmp_path / "scattered.csv"
    shuffle_file(grouped, scattered, seed=4)
    # a full disk cannot be made here: the one fake, the free space the folder reports
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr("ingest.plan.shutil.disk_usage", lambda _: usage._replace(free=1000))
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0)) as sb:
            plan = await plan_of(sb, scattered, tmp_dir=str(tmp_path))
    assert not plan.ready
    assert "--tmp-dir" in failed(plan)["temp space"]


async def test_the_images_already_in_the_app_are_counted(tmp_path: Path) -> None:
    data = make_dataset(200, seed=8)
    path = data.write(tmp_path / "rows.csv")
    half = tmp_path / "half.csv"
    lines = path.read_text().splitlines(keepends=True)
    half.write_text("".join(lines[: len(lines) // 2]))
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(rps=0, processing=(0.01, 0.05))) as sb:
            async with Ingester(sandbox_config(sb)) as ing:
                await ing.run(half)
            there = len(sb.inputs)
            plan = await plan_of(sb, path, check_existing=True)
    assert 0 < there < len(data.inputs)
    assert plan.existing == there


async def test_the_estimate_is_within_15_percent_of_a_measured_upload(tmp_path: Path) -> None:
    """The same file planned, then uploaded against a sandbox with a request budget and
    Clarifai-like processing: the estimate of requests and of wall time within 15 %."""
    path = tmp_path / "rows.csv"
    generate(path, images=3000, seed=5)
    rps = 20.0
    options = SandboxOptions(rps=rps, latency=0.02, processing=(0.5, 2.0), seed=1)
    with anyio.fail_after(120):
        async with Sandbox(options) as sb:
            config = sandbox_config(sb, rps=rps, linger=1.0, processing_estimate=1.5)
            async with Ingester(config) as ing:
                plan = await ing.plan(path)
                report = await ing.run(path)
    est = plan.estimate
    assert est is not None and report.rows_failed == 0 and report.throttled == 0
    assert math.isclose(est.requests, report.requests, rel_tol=0.15), (est, report)
    assert math.isclose(est.seconds, report.elapsed_s, rel_tol=0.15), (est, report.elapsed_s)


def test_the_command_exits_0_or_2_with_the_reasons(tmp_path: Path) -> None:
    data = make_dataset(20, seed=6)
    path = data.write(tmp_path / "rows.csv")
    out = tmp_path / "plan.json"
    with start_server() as server:
        ready = run("plan", str(path), "--base", server.base, "--report-json", str(out))
        assert ready.returncode == 0, ready.stderr
        assert "an upload could start" in ready.stdout
        assert "estimate at 15 requests/s" in ready.stdout
        written = json.loads(out.read_text())
        assert written["ready"] and written["images"] == len(data.inputs)
        bad = run("plan", str(path), "--base", server.base, "--pat", "wrong-token")
        assert bad.returncode == 2
        assert "an upload could not start" in bad.stdout
        assert "ingest: error:" in bad.stderr and "rejected" in bad.stderr
        assert "wrong-token" not in bad.stdout + bad.stderr
        missing = run("plan", str(tmp_path / "nope.csv"), "--base", server.base)
        assert missing.returncode == 2 and "no such file" in missing.stderr
