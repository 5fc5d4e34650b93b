"""The whole data path against the sandbox, over gRPC."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from google.protobuf.json_format import MessageToDict

from ingest import AuthError, Config, Ingester, MissingColumnError, Status, ids
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.patching import OVERWRITE_READINGS
from tests.helpers import Dataset, make_dataset, sandbox_config

pytestmark = pytest.mark.anyio

FAST = {"rps": 0, "processing": (0.05, 0.2)}


def _is_client_task(task: asyncio.Task[object]) -> bool:
    """A task running the client's code (the sandbox's own handlers don't count)."""
    code = getattr(task.get_coro(), "cr_code", None)
    name = code.co_filename if code else ""
    return not task.done() and "/ingest/" in name and "/ingest/sandbox/" not in name


def config_for(sb: Sandbox, **options: object) -> Config:
    return sandbox_config(sb, **{"backoff_max": 0.5, **options})


def assert_server_holds(sb: Sandbox, data: Dataset) -> None:
    # exactly one input per valid URL
    assert set(sb.inputs) == set(data.inputs)
    for iid, inp in sb.inputs.items():
        assert inp.data.image.url == data.inputs[iid]
        assert MessageToDict(inp.data.metadata) == pytest.approx(data.metadata[iid])
    # exactly one annotation per valid box of a good image, with its coordinates and labels
    assert set(sb.annotations) == set(data.boxes)
    for aid, ann in sb.annotations.items():
        iid, box, pos = data.boxes[aid]
        assert ann.input_id == iid
        bb = ann.data.regions[0].region_info.bounding_box
        assert (bb.left_col, bb.top_row, bb.right_col, bb.bottom_row) == pytest.approx(
            box, abs=1e-6
        )
        got = {c.id for c in ann.data.regions[0].data.concepts if c.value == 1.0}
        assert got == set(pos)


async def upload(
    sb: Sandbox, source: object, **options: object
) -> tuple[dict[int, object], object]:
    outcomes: dict[int, object] = {}
    async with Ingester(config_for(sb, **options)) as ing, ing.stream(source) as stream:  # type: ignore[arg-type]
        async for outcome in stream:
            assert outcome.line not in outcomes, f"line {outcome.line} ended twice"
            outcomes[outcome.line] = outcome
    return outcomes, ing.report


async def test_mixed_dataset_lands_exactly_once(tmp_path: Path) -> None:
    data = make_dataset(120)
    csv_path = data.write(tmp_path / "data.csv")
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
            outcomes, report = await upload(sb, csv_path)
            assert_server_holds(sb, data)
    # every row ended once; invalid rows and broken images failed with their line
    assert set(outcomes) == set(range(2, len(data.rows) + 2))
    failed = {line for line, o in outcomes.items() if o.status is Status.FAILED}  # type: ignore[attr-defined]
    assert failed == data.invalid_lines | data.broken_lines
    for line in data.broken_lines:
        assert "download failed" in outcomes[line].error  # type: ignore[attr-defined]
    assert report.rows_read == len(data.rows)  # type: ignore[attr-defined]
    assert report.rows_invalid == len(data.invalid_lines)  # type: ignore[attr-defined]
    assert report.inputs_failed >= 1  # type: ignore[attr-defined]
    assert report.annotations_created == len(data.boxes)  # type: ignore[attr-defined]


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_a_second_run_finds_everything_present(tmp_path: Path, reading: str) -> None:
    data = make_dataset(40)
    csv_path = data.write(tmp_path / "data.csv")
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST, patch_overwrite=reading)) as sb:  # type: ignore[arg-type]
            await upload(sb, csv_path)
            outcomes, report = await upload(sb, csv_path)
            assert_server_holds(sb, data)
    landed = [o for o in outcomes.values() if o.status is Status.LANDED]  # type: ignore[attr-defined]
    assert landed == []
    assert report.inputs_created == 0  # type: ignore[attr-defined]
    assert report.annotations_created == 0  # type: ignore[attr-defined]


async def test_throttling_latency_and_lost_replies_lose_and_duplicate_nothing(
    tmp_path: Path,
) -> None:
    data = make_dataset(500, seed=11)
    csv_path = data.write(tmp_path / "data.csv")
    options = SandboxOptions(
        rps=15,
        latency=0.02,
        latency_jitter=0.01,
        lost_reply_rate=0.05,
        processing=(0.1, 0.4),
        seed=3,
    )
    with anyio.fail_after(120):
        async with Sandbox(options) as sb:
            # small batches: enough calls for the faults to strike several times
            outcomes, report = await upload(
                sb, csv_path, rps=15.0, batch_size=20, annotation_batch_size=20
            )
            assert_server_holds(sb, data)
            assert sb.stats.lost_replies_injected > 0
            assert report.requests > 0  # type: ignore[attr-defined]
    ok = {line for line, o in outcomes.items() if o.status is not Status.FAILED}  # type: ignore[attr-defined]
    assert ok == set(range(2, len(data.rows) + 2)) - data.invalid_lines - data.broken_lines


@pytest.mark.parametrize("reading", OVERWRITE_READINGS)
async def test_a_url_that_comes_back_adds_its_labels_and_metadata_to_the_same_input(
    reading: str,
) -> None:
    def row(url: str, box: str, pos: str, neg: str = "", meta: str = "") -> dict[str, str]:
        cells = box.split(",") if box else ["", "", "", ""]
        return dict(
            zip(
                ("url", "left_col", "top_row", "right_col", "bottom_row"),
                (url, *cells),
                strict=True,
            ),
            pos_concepts=pos,
            neg_concepts=neg,
            metadata=meta,
        )

    one, two = "https://img.example.com/one.jpg", "https://img.example.com/two.jpg"
    rows = [
        row(one, "", "cat", meta='{"a": 1, "deep": {"x": 1}}'),
        row(two, "0.1,0.1,0.5,0.5", "dog"),
        row(one, "", "tree", neg="car", meta='{"b": 2, "deep": {"y": 2}}'),
        row(one, "0.2,0.2,0.6,0.6", "dog"),
    ]
    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST, patch_overwrite=reading)) as sb:  # type: ignore[arg-type]
            # no window and one image per PostInputs: the URL's second group finds the
            # input existing; it gets what it lacks: concepts by merge, metadata by
            # overwrite (a merge would append to lists)
            outcomes, report = await upload(sb, rows, batch_size=1, window=1)
            stored = sb.inputs[ids.input_id(one)]
            assert {(c.id, c.value) for c in stored.data.concepts} == {
                ("cat", 1.0),
                ("tree", 1.0),
                ("car", 0.0),
            }
            assert MessageToDict(stored.data.metadata) == {
                "a": 1,
                "b": 2,
                "deep": {"x": 1, "y": 2},
            }
            assert len(sb.inputs) == 2 and len(sb.annotations) == 2
            assert sb.stats.requests.get("PatchInputs") == 2
    assert report.rows_failed == 0  # type: ignore[attr-defined]
    assert report.rows_landed + report.rows_present == 4  # type: ignore[attr-defined]
    assert report.inputs_patched == 1  # type: ignore[attr-defined]
    assert len(outcomes) == 4


async def test_rows_from_an_async_iterable(tmp_path: Path) -> None:
    data = make_dataset(20, seed=5)

    async def rows() -> AsyncIterator[dict[str, str]]:
        for row in data.rows:
            yield row

    with anyio.fail_after(60):
        async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
            outcomes, _ = await upload(sb, rows())
            assert_server_holds(sb, data)
    assert len(outcomes) == len(data.rows)


async def test_a_rejected_key_stops_the_run_with_one_message(tmp_path: Path) -> None:
    csv_path = make_dataset(20).write(tmp_path / "data.csv")
    async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
        with pytest.raises(AuthError, match="rejected"):
            await upload(sb, csv_path, pat="not-a-real-token")
        assert sb.inputs == {}
        assert sum(sb.stats.requests.values()) == 1  # one call, not one per worker


async def test_a_missing_column_fails_before_any_request(tmp_path: Path) -> None:
    csv_path = tmp_path / "data.csv"
    csv_path.write_text("url,left_col,top_row,right_col\nhttps://x/1.jpg,0.1,0.1,0.2\n")
    async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
        with pytest.raises(MissingColumnError, match="bottom_row"):
            await upload(sb, csv_path)
        assert sum(sb.stats.requests.values()) == 0


async def test_cancelling_mid_run_leaves_no_task_behind(tmp_path: Path) -> None:
    data = make_dataset(300, seed=2)
    csv_path = data.write(tmp_path / "data.csv")
    options = SandboxOptions(rps=20, latency=0.05, processing=(0.2, 0.5))
    async with Sandbox(options) as sb:
        before = asyncio.all_tasks()
        seen = 0
        ing = Ingester(config_for(sb))
        with anyio.CancelScope() as scope:
            async with ing, ing.stream(csv_path) as stream:
                async for _ in stream:
                    seen += 1
                    if seen == 20:
                        scope.cancel()
        assert scope.cancelled_caught
        await anyio.wait_all_tasks_blocked()
        leftover = [t for t in asyncio.all_tasks() - before if _is_client_task(t)]
        assert leftover == []
        assert ing.client._channel is None
        assert seen < len(data.rows)


async def test_a_batch_too_large_for_one_request_goes_in_halves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clarifai refuses requests of 128 MB; a batch past the client's bound is split (the
    bound is lowered here so that a small batch crosses it)."""
    from ingest.stages import create

    monkeypatch.setattr(create, "MAX_REQUEST_BYTES", 3_000)
    big = '{"note": "' + "x" * 900 + '"}'
    rows = [
        {"url": f"https://img.example.com/big{i}.jpg", "left_col": "", "top_row": "",
         "right_col": "", "bottom_row": "", "pos_concepts": "cat", "metadata": big}
        for i in range(12)
    ]  # fmt: skip
    huge = '{"note": "' + "y" * 4_000 + '"}'
    rows.append({**rows[0], "url": "https://img.example.com/huge.jpg", "metadata": huge})
    with anyio.fail_after(30):
        async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
            outcomes, _ = await upload(sb, rows)
            assert len(sb.inputs) == 12
            assert sb.stats.requests["PostInputs"] >= 12 * 900 // 3_000
    failed = [o for o in outcomes.values() if o.status is Status.FAILED]  # type: ignore[attr-defined]
    assert [o.line for o in failed] == [14]  # type: ignore[attr-defined]
    assert failed[0].error.startswith("the input alone makes a request of")  # type: ignore[attr-defined]


async def test_inputs_past_the_processing_deadline_are_logged_once_per_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [
        {"url": f"https://img.example.com/stuck{i}.jpg", "left_col": "0.1", "top_row": "0.1",
         "right_col": "0.5", "bottom_row": "0.5", "pos_concepts": "cat"}
        for i in range(5)
    ]  # fmt: skip
    options = SandboxOptions(rps=0, processing=(0.05, 0.1), stuck_rate=1.0)
    with anyio.fail_after(30), caplog.at_level(logging.WARNING, logger="ingest"):
        async with Sandbox(options) as sb:
            outcomes, _ = await upload(sb, rows, processing_timeout=0.3)
    pending = sc.StatusCode.Name(sc.INPUT_DOWNLOAD_PENDING)
    assert {o.error for o in outcomes.values()} == {  # type: ignore[attr-defined]
        f"processing timeout: still {pending} after 0.3 s"
    }
    timeouts = [r for r in caplog.records if r.name == "ingest.processing"]
    assert [r.getMessage() for r in timeouts] == [
        "5 input(s) still unprocessed after 0.3 s fail with 'processing timeout' "
        "(their rows go to the failures file)"
    ]


async def test_image_level_concepts_keep_their_names(tmp_path: Path) -> None:
    """With concept cells read as names, an input's own concepts carry the name too."""
    from ingest.source.formats import DatasetPath, FormatOptions

    path = tmp_path / "names.csv"
    path.write_text(
        "url,left_col,top_row,right_col,bottom_row,pos_concepts\n"
        "https://img.example.com/n.jpg,,,,,Traffic Light\n"
        "https://img.example.com/n.jpg,0.1,0.1,0.5,0.5,Stop Sign\n"
    )
    source = DatasetPath(path, FormatOptions(concept_ids="names"))
    with anyio.fail_after(30):
        async with Sandbox(SandboxOptions(**FAST)) as sb:  # type: ignore[arg-type]
            await upload(sb, source)
            stored = sb.inputs[ids.input_id("https://img.example.com/n.jpg")]
            [ann] = sb.annotations.values()
    assert [(c.id, c.name) for c in stored.data.concepts] == [("traffic-light", "Traffic Light")]
    assert [(c.id, c.name) for c in ann.data.regions[0].data.concepts] == [
        ("stop-sign", "Stop Sign")
    ]


def test_the_run_remembers_every_input_id_it_met_and_rarely_imagines_one() -> None:
    """What tells a later stretch of an iterable's input from a first one: an id met is
    always known; of 100,000 ids never met, after 200,000 met, few are taken for met."""
    from ingest.stages.base import _SeenIds

    seen = _SeenIds()
    met = [ids.input_id(f"https://x/{i}.jpg") for i in range(200_000)]
    assert not any(seen.add(i) for i in met[:1000])  # the first time: not met before
    for i in met[1000:]:
        seen.add(i)
    assert all(seen.add(i) for i in met)
    imagined = sum(seen.add(ids.input_id(f"https://y/{i}.jpg")) for i in range(100_000))
    assert imagined < 100  # about 1 in 10,000 expected at this count
