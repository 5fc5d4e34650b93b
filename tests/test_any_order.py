"""Rows in any order: what the service holds never depends on the file's order,
on re-runs, or on a failures file fed back; scattered files cost no extra request."""

from __future__ import annotations

import csv
import json
import random
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from google.protobuf.json_format import MessageToDict

from ingest import Ingester, Status, ids
from ingest.client import Client
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.patching import OVERWRITE_READINGS
from tests.helpers import COLUMNS, make_dataset
from tests.source.test_grouping import grouped_by_url, shuffled
from tests.test_cli import env, ingest_cmd, running, start_server, start_upload, wait_until
from tests.test_cli import upload as cli_upload
from tests.test_pipeline import FAST, assert_server_holds, config_for, upload

pytestmark = pytest.mark.anyio


async def test_a_shuffled_file_lands_like_the_grouped_one_with_the_same_requests(
    tmp_path: Path,
) -> None:
    data = make_dataset(300, seed=21)
    raw = data.write(tmp_path / "raw.csv")
    grouped = grouped_by_url(raw, tmp_path / "grouped.csv")
    scattered = shuffled(raw, tmp_path / "shuffled.csv", seed=4)
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    requests = {}
    with anyio.fail_after(120):
        for name, path in (("grouped", grouped), ("shuffled", scattered)):
            async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
                # a partial batch waits for more until the stream ends: the calls are then
                # the file's own, not the timing's
                outcomes, report = await upload(sb, path, tmp_dir=str(tmp_dir), linger=60.0)
                assert_server_holds(sb, data)
                requests[name] = dict(sb.stats.requests)
            r: Any = report
            assert r.grouped is (name == "shuffled")
            assert r.inputs_existing == 0 and r.annotations_existing == 0  # each sent once
            assert r.rows_total == len(data.rows) == len(outcomes)
            assert list(tmp_dir.iterdir()) == []
    assert "PatchInputs" not in requests["shuffled"]
    assert requests["shuffled"]["PostInputs"] == requests["grouped"]["PostInputs"]
    assert requests["shuffled"]["PostAnnotations"] == requests["grouped"]["PostAnnotations"]


async def test_cancelling_mid_run_removes_the_temp_files(tmp_path: Path) -> None:
    data = make_dataset(400, seed=8)
    path = shuffled(data.write(tmp_path / "raw.csv"), tmp_path / "shuffled.csv")
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    with anyio.fail_after(60):
        async with (
            Sandbox(SandboxOptions(**FAST)) as sb,  # type: ignore[arg-type]
            Ingester(config_for(sb, tmp_dir=str(tmp_dir), batch_size=8)) as ing,
            ing.stream(path) as outcomes,
        ):
            async for _ in outcomes:
                # grouped already: the groups are being read from the temp folder
                assert ing.report.grouped
                assert [p.name[:13] for p in tmp_dir.iterdir()] == ["ingest-group-"]
                break
    assert list(tmp_dir.iterdir()) == []


def _rows_with_lists(images: int, seed: int) -> list[dict[str, str]]:
    """Images with list-valued metadata, an image-level row and boxes; some broken URLs."""
    rng = random.Random(seed)
    rows = []
    for i in range(images):
        url = f"https://img.example.com/{'broken-' if i % 9 == 4 else ''}l{i}.jpg"
        meta = json.dumps({"tags": rng.sample(["a", "b", "c", "d"], 2), "deep": {"ls": [i, 1]}})
        rows.append(dict(zip(COLUMNS, [url, "", "", "", "", "cat|dog", "bird", meta], strict=True)))
        for _ in range(rng.randint(1, 3)):
            x, y = round(rng.uniform(0, 0.5), 3), round(rng.uniform(0, 0.5), 3)
            box = [str(x), str(y), str(x + 0.2), str(y + 0.3)]
            rows.append(dict(zip(COLUMNS, [url, *box, "cat", "", meta], strict=True)))
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, [*rows[0]])
        writer.writeheader()
        writer.writerows(rows)
    return path


def held(sb: Sandbox) -> tuple[dict[str, Any], set[str]]:
    """What the service holds: each input's url, concepts and metadata; the annotation ids."""
    inputs = {
        iid: (
            inp.data.image.url,
            sorted((c.id, c.value) for c in inp.data.concepts),
            MessageToDict(inp.data.metadata),
        )
        for iid, inp in sb.inputs.items()
    }
    return inputs, set(sb.annotations)


async def _cli(sb: Sandbox, path: Path, *more: str) -> dict[str, Any]:
    """``ingest upload`` as a user runs it, in its own process, against ``sb``: its report."""
    report = path.with_name("report.json")
    report.unlink(missing_ok=True)
    args = ["upload", str(path), "--base", sb.base_url, "--rps", "1000", "--no-progress"]
    done = await anyio.run_process(
        ingest_cmd(*args, "--report-json", str(report), *more), env=env(), check=False
    )
    assert done.returncode in (0, 1), done.stderr.decode()
    result: dict[str, Any] = json.loads(report.read_text())
    assert result["exit_status"] == done.returncode
    return result


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_reruns_failures_and_any_order_leave_what_one_clean_run_leaves(
    tmp_path: Path, reading: str
) -> None:
    rows = _rows_with_lists(40, seed=3)
    grouped = _write(tmp_path / "grouped.csv", rows)
    scattered = shuffled(grouped, tmp_path / "scattered.csv", seed=9)
    # a later version of the file: new labels and a changed list for some images
    later = list(rows)
    for i in range(0, 40, 5):
        url = f"https://img.example.com/{'broken-' if i % 9 == 4 else ''}l{i}.jpg"
        extra = json.dumps({"tags": ["x"], "deep": {"more": True}})
        later.append(dict(zip(COLUMNS, [url, "", "", "", "", "new", "", extra], strict=True)))
    changed = _write(tmp_path / "changed.csv", later)
    broken = sum("broken-" in r["url"] for r in rows)
    opts = SandboxOptions(rps=0, processing=(0.01, 0.05), patch_overwrite=reading)
    async with Sandbox(opts) as clean:
        first = await _cli(clean, grouped, "--state", str(tmp_path / "c1"))
        assert first["rows_failed"] == broken > 0
        reference = held(clean)
    async with Sandbox(opts) as clean:
        assert (await _cli(clean, changed, "--state", str(tmp_path / "c2")))["rows_failed"]
        reference_changed = held(clean)
    assert reference[0][ids.input_id("https://img.example.com/l0.jpg")][2] == {
        "tags": json.loads(rows[0]["metadata"])["tags"],
        "deep": {"ls": [0, 1]},
    }

    async with Sandbox(opts) as sb:
        once = await _cli(sb, scattered)  # the broken URLs fail
        assert once["grouped"] and once["rows_failed"] == broken
        assert held(sb) == reference
        again = await _cli(sb, scattered, "--restart")  # everything sent again
        assert again["rows_present"] == len(rows) - broken and again["inputs_patched"] == 0
        assert held(sb) == reference
        failures = tmp_path / "scattered.failures.csv"
        fed = await _cli(sb, failures)  # fed back: the same rows fail again
        assert fed["rows_read"] == fed["rows_failed"] == broken
        assert held(sb) == reference
        assert (await _cli(sb, grouped, "--state", str(tmp_path / "g")))["rows_landed"] == 0
        assert held(sb) == reference
        assert "PatchInputs" not in sb.stats.requests  # nothing new: nothing patched
        newer = await _cli(sb, changed, "--state", str(tmp_path / "ch"))
        assert newer["inputs_patched"] == 8  # the eight images with a new row
        assert held(sb) == reference_changed  # lists replaced, not appended to
        same = await _cli(sb, changed, "--state", str(tmp_path / "ch2"))
        assert same["inputs_patched"] == 0
        assert held(sb) == reference_changed


async def test_an_iterable_in_grouped_order_needs_no_patch_and_full_batches() -> None:
    data = make_dataset(256, seed=12)
    rows = sorted(data.rows, key=lambda r: r["url"])  # grouped by image, as a table would be
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
            outcomes, report = await upload(sb, rows)
            assert_server_holds(sb, data)
            assert "PatchInputs" not in sb.stats.requests
            images = len({r["url"] for r in rows if r["url"]}) - 2  # two invalid URLs
            assert sb.stats.requests["PostInputs"] == -(-images // 128)
    r: Any = report
    assert r.inputs_existing == 0
    assert sum(o.status is Status.FAILED for o in outcomes.values()) == len(  # type: ignore[attr-defined]
        data.invalid_lines | data.broken_lines
    )


def test_kill_9_while_grouping_then_the_same_command_finishes_the_job(tmp_path: Path) -> None:
    """SIGKILL while the temp files are being written; the re-run cleans them up, groups
    again and lands everything once."""
    data = make_dataset(6000, seed=31)
    path = shuffled(data.write(tmp_path / "raw.csv"), tmp_path / "big.csv", seed=2)
    tmp_dir = tmp_path / "tmp"
    tmp_dir.mkdir()
    with start_server() as server:
        upload_cmd = start_upload(server, path, "--tmp-dir", str(tmp_dir), "--rps", "1000")
        with running(upload_cmd) as proc:
            # the grouper's folder: grouping has begun
            wait_until(lambda: any(tmp_dir.iterdir()), proc, "grouping", every=0.002)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        [left] = tmp_dir.iterdir()  # kill -9 leaves the folder behind
        assert left.name.startswith("ingest-group-")
        report_path = tmp_path / "r.json"
        done = cli_upload(
            server, path, "--tmp-dir", str(tmp_dir), "--report-json", str(report_path)
        )
        assert done.returncode == 1, done.stderr  # the broken URLs and invalid rows
        assert list(tmp_dir.iterdir()) == []  # the killed run's folder is gone too
        report = json.loads(report_path.read_text())
        assert report["grouped"] and report["rows_failed"] == len(
            data.invalid_lines | data.broken_lines
        )
        assert server.input_ids() == set(data.inputs)
        assert server.annotation_ids() == set(data.boxes)


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_an_image_trickling_in_from_an_iterable_ends_every_row_with_all_its_labels(
    reading: str,
) -> None:
    """One image's rows come one at a time, each after the window let the image go: every
    stretch after the first completes an existing input, and several such patches of
    one input can meet in one PatchInputs batch."""
    url = "https://x/one.jpg"
    cells = {"left_col": "", "top_row": "", "right_col": "", "bottom_row": "", "neg_concepts": ""}

    async def trickle() -> Any:
        for k, concept in enumerate("abcdef"):
            meta = {"k": k, "seen": {concept: True}}
            yield {"url": url, **cells, "pos_concepts": concept, "metadata": json.dumps(meta)}
            await anyio.sleep(0.05)  # a source that pauses: the window lets the image go

    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST, patch_overwrite=reading)) as sb:  # type: ignore[arg-type]
            config = config_for(sb, window=1, linger=0.02, processing_estimate=0.5)
            async with Ingester(config) as ing, ing.stream(trickle()) as stream:
                outcomes = [o async for o in stream]
            (_, concepts, metadata), *_ = held(sb)[0].values()
    assert sorted(o.line for o in outcomes) == list(range(2, 8))
    assert {o.status for o in outcomes} == {Status.LANDED}
    assert concepts == [(c, 1.0) for c in "abcdef"]
    assert metadata == {"k": 5, "seen": {c: True for c in "abcdef"}}


def _one_image_csv(path: Path, url: str, metadata: dict[str, Any], pos: str = "cat") -> Path:
    cells = [url, "", "", "", "", pos, "", json.dumps(metadata)]
    return _write(path, [dict(zip(COLUMNS, cells, strict=True))])


async def _metadata_of(sb: Sandbox, url: str) -> dict[str, Any]:
    stored: dict[str, Any] = MessageToDict(sb.inputs[ids.input_id(url)].data.metadata)
    return stored


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_a_changed_file_drops_removed_keys_at_any_depth_and_keeps_other_tools_keys(
    tmp_path: Path, reading: str
) -> None:
    """The new data's value of each top-level key it names, exactly (a key it dropped
    inside an object is gone); a top-level key it does not name (another tool's) stays."""
    url = "https://img.example.com/changed.jpg"
    old = {"keep": 1, "deep": {"a": 1, "gone": 2, "inner": {"x": 1, "y": 2}}, "tags": ["a"]}
    new = {"keep": 1, "deep": {"a": 3, "inner": {"x": 1}}, "tags": ["b"]}
    async with Sandbox(
        SandboxOptions(rps=0, processing=(0.01, 0.05), patch_overwrite=reading)
    ) as sb:
        await _cli(sb, _one_image_csv(tmp_path / "old.csv", url, old), "--restart")
        assert await _metadata_of(sb, url) == old
        # another tool adds a key of its own
        async with Client(config_for(sb)) as other_tool:
            request = service_pb2.PatchInputsRequest(action="merge")
            request.inputs.add(id=ids.input_id(url)).data.metadata.update({"reviewed": True})
            assert (await other_tool.call("PatchInputs", request)).status.code == sc.SUCCESS
        changed = await _cli(sb, _one_image_csv(tmp_path / "new.csv", url, new), "--restart")
        assert changed["inputs_patched"] == 1 and changed["rows_failed"] == 0
        assert await _metadata_of(sb, url) == {**new, "reviewed": True}
        # the other tool's call, then the removal, then the whole final metadata
        assert sb.stats.requests["PatchInputs"] == 3
        again = await _cli(sb, _one_image_csv(tmp_path / "new.csv", url, new), "--restart")
        assert again["inputs_patched"] == 0 and sb.stats.requests["PatchInputs"] == 3
        assert await _metadata_of(sb, url) == {**new, "reviewed": True}


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_an_iterables_stretches_over_an_older_input_end_as_one_clean_run(
    reading: str,
) -> None:
    """An input from an earlier version of the data; this run's rows of it come in two
    stretches. The first sets what its rows name (dropping the old nested key and the old
    concept value); the second continues from it, as the rest of one clean run would."""
    url = "https://img.example.com/stretched.jpg"
    cells = {"left_col": "", "top_row": "", "right_col": "", "bottom_row": ""}
    old_row = {"url": url, **cells, "pos_concepts": "cat", "neg_concepts": ""}
    old_row["metadata"] = json.dumps({"deep": {"old": 1, "a": 1}, "other": 1})
    rows = [
        {"url": url, **cells, "pos_concepts": "dog", "neg_concepts": "cat"},
        {"url": url, **cells, "pos_concepts": "cat|bird", "neg_concepts": ""},
    ]
    rows[0]["metadata"] = json.dumps({"deep": {"a": 2}})
    rows[1]["metadata"] = json.dumps({"deep": {"b": 3}})

    first_ended = anyio.Event()

    async def trickle() -> Any:
        yield rows[0]
        # the first row's stretch has ended (its outcome came): the second is one of its own
        await first_ended.wait()
        yield rows[1]

    with anyio.fail_after(60):
        options = SandboxOptions(**FAST, patch_overwrite=reading)  # type: ignore[arg-type]
        async with Sandbox(options) as sb:
            config = config_for(sb, window=1, linger=0.02, processing_estimate=0.5)
            async with Ingester(config) as ing:
                await ing.run([old_row])
            outcomes = []
            async with Ingester(config) as ing, ing.stream(trickle()) as stream:
                async for outcome in stream:
                    outcomes.append(outcome)
                    first_ended.set()
            (_, concepts, metadata), *_ = held(sb)[0].values()
    assert {o.status for o in outcomes} == {Status.LANDED}
    assert ing.report.inputs_patched == 2  # two stretches, each completing the input
    assert metadata == {"deep": {"a": 2, "b": 3}, "other": 1}
    # the first row naming a concept decides: cat is negative, as in one clean run
    assert concepts == [("bird", 1.0), ("cat", 0.0), ("dog", 1.0)]
