"""The benchmark peers run against the sandbox: the seed script's algorithm and the SDK."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks import clients
from benchmarks.common import APP, PAT, ROOT, USER
from benchmarks.peers import seed as seed_peer
from benchmarks.peers.sdk import load_images
from ingest.sandbox import Sandbox, SandboxOptions

pytestmark = pytest.mark.anyio

COLUMNS = ["url", "left_col", "top_row", "right_col", "bottom_row", "pos_concepts", "neg_concepts"]
COLUMNS += ["metadata"]


def write_csv(path: Path, images: int = 20) -> dict[str, Any]:
    """``images`` images, 1-3 boxes each; image 3 has an extra image-level row, image 7 a
    broken URL; rows of one image are spread over the file. Returns what should land."""
    rows: list[dict[str, str]] = []
    expected_boxes: dict[str, list[tuple[tuple[float, ...], str]]] = {}
    urls: list[str] = []
    for i in range(images):
        url = f"https://img.example.com/{'broken-' if i == 7 else ''}{i}.jpg"
        urls.append(url)
        for b in range(1 + i % 3):
            box = (0.1 * b, 0.05 + 0.1 * b, 0.1 * b + 0.3, 0.1 * b + 0.5)
            rows.append(
                {
                    "url": url,
                    "left_col": str(box[0]),
                    "top_row": str(box[1]),
                    "right_col": str(box[2]),
                    "bottom_row": str(box[3]),
                    "pos_concepts": f"c{b}",
                    "neg_concepts": "n" if b == 1 else "",
                    "metadata": json.dumps({"i": i}),
                }
            )
            if i != 7:
                expected_boxes.setdefault(url, []).append((box, f"c{b}"))
        if i == 3:
            rows.append({"url": url, "pos_concepts": "whole", "metadata": json.dumps({"i": i})})
    rows = rows[::2] + rows[1::2]  # split images across the file
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return {"rows": len(rows), "urls": urls, "boxes": expected_boxes}


def landed(sb: Sandbox) -> tuple[dict[str, str], dict[str, list[tuple[tuple[float, ...], str]]]]:
    """(input id -> url, url -> [(box, first positive concept)]) as stored in the sandbox."""
    id_to_url = {
        i: inp.data.image.url or inp.data.image.base64.decode() for i, inp in sb.inputs.items()
    }
    boxes: dict[str, list[tuple[tuple[float, ...], str]]] = {}
    for ann in sb.annotations.values():
        region = ann.data.regions[0]
        bb = region.region_info.bounding_box
        box = tuple(round(v, 4) for v in (bb.left_col, bb.top_row, bb.right_col, bb.bottom_row))
        positive = sorted(c.id for c in region.data.concepts if c.value > 0)
        boxes.setdefault(id_to_url[ann.input_id], []).append((box, positive[0]))
    return id_to_url, boxes


def rounded(boxes: dict[str, list[tuple[tuple[float, ...], str]]]) -> dict[str, list[Any]]:
    return {
        url: sorted((tuple(round(v, 4) for v in box), c) for box, c in items)
        for url, items in boxes.items()
    }


def fast_sandbox(**overrides: Any) -> Sandbox:
    opts: dict[str, Any] = {"rps": None, "processing": (0.05, 0.1)}
    opts.update(overrides)
    return Sandbox(SandboxOptions(**opts))


# -- the seed script's algorithm ---------------------------------------------------------


async def test_seed_lands_every_input_and_box(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv")
    async with fast_sandbox() as sb:
        with anyio.fail_after(20):
            result = await anyio.to_thread.run_sync(
                lambda: seed_peer.run_seed(
                    str(tmp_path / "data.csv"), "127.0.0.1", sb.port, PAT, USER, APP
                )
            )
        id_to_url, boxes = landed(sb)

    assert result["rows"] == data["rows"]
    assert result["images"] == 20
    assert result["chunks"] == 2 and result["chunks_lost"] == 0
    # server-generated ids, one input per URL (one metadata per URL here)
    assert sorted(id_to_url.values()) == sorted(data["urls"])
    assert result["inputs_created"] == 20
    assert result["inputs_download_failed"] == 1  # the broken URL
    assert rounded(boxes) == rounded(data["boxes"])
    n_boxes = sum(len(v) for v in data["boxes"].values())
    assert result["annotations_created"] == n_boxes
    # every row becomes an annotation: the image-level row (empty box) and the broken
    # image's boxes are rejected, as with the original script
    assert result["annotations_sent"] == data["rows"]
    assert result["annotations_failed"] == data["rows"] - n_boxes
    # the algorithm's shape: 1 ListWorkflows, 1 PostInputs per 16 URLs, >= 1 poll each,
    # PostAnnotations in chunks of at most 20
    requests = result["requests"]
    assert requests["ListWorkflows"] == 1
    assert requests["PostInputs"] == 2
    assert requests["ListInputs"] >= 2
    assert requests["PostAnnotations"] >= math.ceil(data["rows"] / 20)
    assert result["throttled"] == 0 and result["rpc_errors"] == 0
    assert sb.stats.requests["PostInputs"] == 2


async def test_seed_loses_throttled_batches_without_retrying(tmp_path: Path) -> None:
    """At 2 requests/s the seed's calls are throttled and what they carried is lost."""
    data = write_csv(tmp_path / "data.csv")
    async with fast_sandbox(rps=2.0) as sb:
        with anyio.fail_after(20):
            result = await anyio.to_thread.run_sync(
                lambda: seed_peer.run_seed(
                    str(tmp_path / "data.csv"), "127.0.0.1", sb.port, PAT, USER, APP
                )
            )
        stored = len(sb.annotations)
    assert result["throttled"] > 0
    assert result["annotations_created"] == stored
    assert stored < sum(len(v) for v in data["boxes"].values())


def test_seed_aborts_the_whole_file_on_one_bad_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    write_csv(path)
    text = path.read_text().splitlines()
    fields = text[3].split(",")
    fields[1] = "abc"  # left_col of one row
    text[3] = ",".join(fields)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError):
        seed_peer.wrangle_csv(str(path))


def test_seed_checks_columns_like_the_script(tmp_path: Path) -> None:
    path = tmp_path / "nocols.csv"
    path.write_text("url,left_col\nhttps://x/1.jpg,0.1\n")
    with pytest.raises(Exception, match="are required"):
        seed_peer.wrangle_csv(str(path))


async def test_seed_command_line_prints_one_json_line(tmp_path: Path) -> None:
    write_csv(tmp_path / "data.csv", images=5)
    async with fast_sandbox() as sb:
        with anyio.fail_after(20):
            proc = await anyio.run_process(
                clients.seed_peer(tmp_path / "data.csv")(sb.base_url), cwd=ROOT, check=False
            )
        stored = len(sb.inputs)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["images"] == 5 == stored
    for key in ("rows", "requests", "throttled", "failed_calls", "elapsed_s"):
        assert key in out


# -- the official SDK --------------------------------------------------------------------


def test_sdk_loader_input(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data.csv")
    images = load_images(str(tmp_path / "data.csv"))
    assert sorted(i["url"] for i in images) == sorted(data["urls"])
    by_url = {i["url"]: i for i in images}
    img = by_url["https://img.example.com/4.jpg"]
    # SDK order: [x_min, y_min, x_max, y_max]
    assert sorted(img["bboxes"]) == sorted([list(b) for b, _ in data["boxes"][img["url"]]])
    assert img["metadata"] == {"i": 4}
    assert by_url["https://img.example.com/3.jpg"]["rows"] == 2  # box + image-level row


def run_sdk_cli(base_url: str, csv_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The SDK in its own process, so that its globals stay out of the test process."""
    return subprocess.run(
        [*clients.sdk_peer(csv_path)(base_url), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _sdk_run(tmp_path: Path, processing: tuple[float, float]) -> tuple[dict[str, Any], Any]:
    # no importorskip: `make test` installs the SDK (the bench extra), so these run in CI
    data = write_csv(tmp_path / "data.csv")
    async with fast_sandbox(processing=processing) as sb:
        with anyio.fail_after(60):
            proc = await anyio.to_thread.run_sync(
                lambda: run_sdk_cli(sb.base_url, tmp_path / "data.csv", "--trace")
            )
        assert proc.stdout.strip(), proc.stderr[-2000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        id_to_url, boxes = landed(sb)
    return out, (data, id_to_url, boxes)


async def test_sdk_upload_dataset_instant_processing(tmp_path: Path) -> None:
    """With inputs processed at once, upload_dataset lands every image and box."""
    out, (data, id_to_url, boxes) = await _sdk_run(tmp_path, (0.0, 0.0))
    assert out["error"] is None
    # the peer sends bytes, not URLs; the sandbox fails bytes containing "broken" just
    # as it fails such URLs, and the SDK deletes the inputs that failed
    good = [u for u in data["urls"] if "broken" not in u]
    assert sorted(id_to_url.values()) == sorted(good)
    assert all(i.startswith("bench-") for i in id_to_url)
    assert rounded(boxes) == rounded(data["boxes"])
    trace = out["trace"]
    assert set(trace) == {
        "PostInputs",
        "GetInputsAddJob",
        "ListInputs",
        "DeleteInputs",
        "PostAnnotations",
    }
    assert "inputs_add_job_id" in trace["PostInputs"]["request_fields"]
    assert "inputs[].dataset_ids[]" in trace["PostInputs"]["request_fields"]
    assert "status.code" in trace["ListInputs"]["request_fields"]


async def test_sdk_upload_dataset_with_processing_delay(tmp_path: Path) -> None:
    """With a processing delay the SDK waits on its add-inputs job, then annotates."""
    out, (data, id_to_url, boxes) = await _sdk_run(tmp_path, (0.05, 0.1))
    assert out["error"] is None
    assert len(id_to_url) == len([u for u in data["urls"] if "broken" not in u])
    assert rounded(boxes) == rounded(data["boxes"])


# -- what both peers count ---------------------------------------------------------------


def test_call_counts_summary() -> None:
    import grpc
    from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

    from benchmarks.peers.counts import CallCounts

    class Unavailable:  # what a grpc.RpcError of a call gives
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.UNAVAILABLE

    counts = CallCounts(throttled_codes=(sc.CONN_THROTTLED,))
    for method, code in [("PostInputs", sc.SUCCESS), ("PostInputs", sc.CONN_THROTTLED)]:
        counts.sent(method)
        assert counts.replied(code) is (code == sc.CONN_THROTTLED)
    counts.sent("ListInputs")
    assert counts.replied(sc.CONN_EXCEED_HOURLY_LIMIT) is False  # not-OK, not throttled here
    counts.sent("ListInputs")
    counts.failed(Unavailable())
    assert counts.summary() == {
        "requests": {"ListInputs": 2, "PostInputs": 2},
        "requests_total": 4,
        "reply_codes": {
            str(sc.SUCCESS): 1,
            str(sc.CONN_THROTTLED): 1,
            str(sc.CONN_EXCEED_HOURLY_LIMIT): 1,
            "grpc:UNAVAILABLE": 1,
        },
        "throttled": 1,
        "failed_calls": 2,
        "rpc_errors": 1,
    }
