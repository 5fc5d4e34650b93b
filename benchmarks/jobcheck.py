"""The ceiling itself: a status check per 128 inputs, or a wait on an inputs-add job.

::

    python -m benchmarks.jobcheck [--images N] [--window W] [--out DIR]

Every ceiling the suite quotes counts one ``ListInputs`` by ids per 128 new inputs: how
ingest learns that they were processed. For a classification set (labels on the images,
no boxes) that check is half of all requests. Clarifai documents another way:
``PostInputsRequest.inputs_add_job_id`` counts a call's inputs in an inputs-add job
("new inputs statistics are merged with previous inputs statistics" when the id is
reused), ``GetInputsAddJob`` tells how many of them are pending, in progress, processed
and failed, and ``ListInputsRequest.status`` lists only the inputs of one status. This
benchmark measures both against the sandbox, which follows only those documented words
(docs/clarifai-behaviour.md, "Inputs-add jobs", "ListInputs status", and the reading of
refused inputs):

* ``ingest``: the library itself, which checks each batch of new inputs with
  ``ListInputs(ids=...)`` once its processing estimate has passed, and the inputs still
  processing again later (together with other batches' inputs due then);
* ``job`` (driven here, :func:`run_job`): each window of W batches created under one
  ``inputs_add_job_id``; the job polled (``GetInputsAddJob``) once the estimate has
  passed, again while inputs are pending or in progress; when its failed count is not
  0, the window's batches listed with ``ListInputs(ids=..., status=INPUT_DOWNLOAD_FAILED)``,
  in order, until that many failed inputs are named; the others processed. An input
  that existed before is refused by ``PostInputs`` (so it is not the job's) and is
  checked by ids as ingest checks it, which also reads what it holds (the labels a
  re-run may have to complete).

The job protocol shares the rest with ingest: batches of 128 (inputs, ids, boxes), the
processing estimate and its adaptation (longer when a first look finds under 90 % done,
shorter when it finds all), calls paced by ingest's own client at the server's budget, at
most what ingest's tracker keeps in hand at this budget. Each run names every input that
failed, compared with the sandbox's own record, and every box of the others is stored: a
run that missed one would not count.

The data: a classification set (one row of labels per image, its box cells empty) and a
file of four boxes per image, each with no download failing and with 1 % failing; the
realistic server otherwise (15 requests/s, 60 ms a call, processing 0.5-2 s). Then the
two readings of whether a job counts the inputs ``PostInputs`` refused
(``SandboxOptions.job_counts_refused``), with 2 % of the inputs existing before the run.
Writes ``jobcheck.json`` into ``--out`` (``benchmarks/results/``): requests per 128
images, by method, and the ceilings (15 x rows / requests) of each protocol.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from benchmarks.common import APP, PAT, RESULTS, USER, log, provenance
from benchmarks.datagen import generate
from benchmarks.render import intro, table
from benchmarks.runner import settings
from benchmarks.verdict import finish
from ingest import Config, Ingester, ids
from ingest.client import Client
from ingest.ratelimit import Priority
from ingest.sandbox import Sandbox, SandboxOptions
from ingest.sandbox.state import FAILED

__all__ = ["BATCH", "Image", "main", "markdown", "measure", "run_job"]

BATCH = 128
"""Inputs per PostInputs, ids per ListInputs, boxes per PostAnnotations."""

RPS = 15.0


def realistic(failure_rate: float, *, job_counts_refused: bool = False) -> SandboxOptions:
    """The realistic server, with ``failure_rate`` of the downloads failing."""
    return SandboxOptions(
        rps=RPS,
        latency=0.06,
        processing=(0.5, 2.0),
        download_failure_rate=failure_rate,
        seed=1,
        job_counts_refused=job_counts_refused,
    )


@dataclass
class Image:
    """One image of a file: its input and what goes with it."""

    input_id: str
    url: str
    concepts: list[str]
    boxes: list[tuple[str, tuple[float, float, float, float], list[str]]]
    """(annotation id, box, concepts) of each box."""


def load_images(path: Path) -> list[Image]:
    """The images of a generated file (its rows grouped by image), read with :mod:`csv`."""
    images: dict[str, Image] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            url = row["url"]
            image = images.get(url)
            if image is None:
                image = images[url] = Image(ids.input_id(url), url, [], [])
            pos = [c for c in row["pos_concepts"].split("|") if c]
            if not row["left_col"]:
                image.concepts += [c for c in pos if c not in image.concepts]
                continue
            box = (
                float(row["left_col"]),
                float(row["top_row"]),
                float(row["right_col"]),
                float(row["bottom_row"]),
            )
            image.boxes.append((ids.annotation_id(image.input_id, box, pos, []), box, pos))
    return list(images.values())


@dataclass
class _Estimate:
    """ingest's processing estimate and its adaptation (:mod:`ingest.stages.processing`)."""

    seconds: float = 1.5

    def recheck(self) -> float:
        return max(0.5, self.seconds / 2)

    def adapt(self, looked: int, done: int) -> None:
        if not looked:
            return
        if done < 0.9 * looked:
            self.seconds = min(self.seconds * 1.25, 60.0)
        elif done == looked:
            self.seconds = max(self.seconds * 0.97, 0.2)


@dataclass
class _Run:
    """One protocol's run: what it learnt of each input, and its calls by method."""

    client: Client
    window: int
    estimate: _Estimate = field(default_factory=_Estimate)
    failed: set[str] = field(default_factory=set)
    """Inputs the protocol named as failed."""
    processed: set[str] = field(default_factory=set)
    existing: set[str] = field(default_factory=set)
    boxes: list[tuple[str, str, tuple[float, float, float, float], list[str]]] = field(
        default_factory=list
    )
    jobs: int = 0
    polls_per_job: list[int] = field(default_factory=list)
    in_flight: int = 0

    async def create(self, batch: list[Image], job_id: str = "") -> tuple[list[Image], list[Image]]:
        """PostInputs (under ``job_id``): the inputs it created, and those that existed."""
        request = service_pb2.PostInputsRequest(inputs_add_job_id=job_id)
        for image in batch:
            target = request.inputs.add(id=image.input_id)
            target.data.image.url = image.url
            for concept in image.concepts:
                target.data.concepts.add(id=concept, name=concept, value=1.0)
        verdicts = await self.client.call_items("PostInputs", request, priority=Priority.CREATE)
        created, existed = [], []
        for image, status in zip(batch, verdicts.statuses, strict=True):
            if status.code == sc.INPUT_DUPLICATE and "duplicate ID" in status.details:
                existed.append(image)
            elif status.code in (sc.SUCCESS, sc.INPUT_DOWNLOAD_PENDING):
                created.append(image)
            else:
                raise RuntimeError(f"input {image.input_id} refused: {status}")
        return created, existed

    async def post(
        self, batch: list[Image], job_id: str, made: list[list[Image]], existed: list[Image]
    ) -> None:
        """:meth:`create`, the created inputs as one more batch of ``made``, those that
        existed into ``existed``."""
        got, had = await self.create(batch, job_id)
        made.append(got)
        existed.extend(had)

    async def list_inputs(self, images: list[Image], status: int = 0) -> dict[str, int]:
        """ListInputs by ids (only those of ``status`` when given): status code by id."""
        request = service_pb2.ListInputsRequest(
            ids=[image.input_id for image in images], per_page=len(images)
        )
        if status:
            request.status.code = status
        reply = await self.client.call("ListInputs", request)
        if reply.status.code != sc.SUCCESS:
            raise RuntimeError(f"ListInputs: {reply.status}")
        return {inp.id: inp.status.code for inp in reply.inputs}

    def landed(self, images: list[Image]) -> None:
        for image in images:
            self.processed.add(image.input_id)
            self.boxes += [(image.input_id, *box) for box in image.boxes]

    async def per_batch(self, images: list[Image]) -> None:
        """ingest's protocol: ListInputs by ids once the estimate has passed, until done."""
        waited = self.estimate.seconds
        await anyio.sleep(waited)
        first = True
        while images:
            codes = await self.list_inputs(images)
            done = [i for i in images if codes.get(i.input_id) == sc.INPUT_DOWNLOAD_SUCCESS]
            failed = [i for i in images if codes.get(i.input_id) == sc.INPUT_DOWNLOAD_FAILED]
            if first and waited >= self.estimate.seconds:
                self.estimate.adapt(len(images), len(done) + len(failed))
            first = False
            self.landed(done)
            self.failed.update(i.input_id for i in failed)
            images = [i for i in images if i not in done and i not in failed]
            if images:
                await anyio.sleep(self.estimate.recheck())

    async def by_job(self, job_id: str, batches: list[list[Image]], refused: int) -> None:
        """Poll the job until nothing is pending, then name its failed inputs."""
        created = sum(len(b) for b in batches)
        waited = self.estimate.seconds
        await anyio.sleep(waited)
        polls = 0
        while True:
            request = service_pb2.GetInputsAddJobRequest(id=job_id)
            reply = await self.client.call("GetInputsAddJob", request)
            polls += 1
            if reply.status.code != sc.SUCCESS:
                raise RuntimeError(f"GetInputsAddJob: {reply.status}")
            p = reply.inputs_add_job.progress
            counted = p.pending_count + p.in_progress_count + p.success_count + p.failed_count
            # one reading counts the refused inputs as failed, the other leaves them out
            extra = counted - created
            if extra not in (0, refused):
                raise RuntimeError(f"job {job_id} counts {counted} inputs, {created} created")
            done = p.success_count + p.failed_count - extra
            if polls == 1 and waited >= self.estimate.seconds:
                self.estimate.adapt(created, done)
            if not p.pending_count and not p.in_progress_count:
                break
            await anyio.sleep(self.estimate.recheck())
        self.polls_per_job.append(polls)
        failed = p.failed_count - extra
        for batch in batches:
            if failed <= 0:
                self.landed(batch)
                continue
            codes = await self.list_inputs(batch, sc.INPUT_DOWNLOAD_FAILED)
            named = [i for i in batch if codes.get(i.input_id) == sc.INPUT_DOWNLOAD_FAILED]
            self.failed.update(i.input_id for i in named)
            self.landed([i for i in batch if i not in named])
            failed -= len(named)

    async def annotate(self, final: bool = False) -> None:
        """PostAnnotations of every full batch of boxes waiting (all of them when ``final``)."""
        while len(self.boxes) >= BATCH or (final and self.boxes):
            chunk, self.boxes = self.boxes[:BATCH], self.boxes[BATCH:]
            request = service_pb2.PostAnnotationsRequest()
            for input_id, aid, box, concepts in chunk:
                ann = request.annotations.add(id=aid, input_id=input_id)
                region = ann.data.regions.add()
                bb = region.region_info.bounding_box
                bb.left_col, bb.top_row, bb.right_col, bb.bottom_row = box
                for concept in concepts:
                    region.data.concepts.add(id=concept, name=concept, value=1.0)
            verdicts = await self.client.call_items("PostAnnotations", request)
            if not verdicts.ok:
                raise RuntimeError(f"annotations refused: {verdicts.statuses[0]}")


async def run_job(base: str, images: list[Image], *, window: int = 8) -> dict[str, Any]:
    """Upload ``images`` with the job protocol against the sandbox at ``base``: what it
    named, and the jobs it polled."""
    config = Config(pat=PAT, user_id=USER, app_id=APP, base=base, rps=RPS)
    started = time.monotonic()
    async with Client(config) as client:
        run = _Run(client, window)
        batches = [images[i : i + BATCH] for i in range(0, len(images), BATCH)]
        # at most what ingest keeps in hand at this budget (its tracker's limit)
        room = anyio.Semaphore(max(window, math.ceil(RPS * 2.25)))
        annotating = anyio.Lock()

        async def settle(coroutine: Any, n: int) -> None:
            await coroutine
            for _ in range(n):
                room.release()
            async with annotating:
                await run.annotate()

        async with anyio.create_task_group() as tg:
            for start in range(0, len(batches), window):
                group = batches[start : start + window]
                for _ in group:
                    await room.acquire()
                job_id = f"ingest-{uuid.uuid4().hex}"
                made: list[list[Image]] = []
                existed: list[Image] = []

                async with anyio.create_task_group() as posting:
                    for batch in group:
                        posting.start_soon(run.post, batch, job_id, made, existed)
                run.existing.update(i.input_id for i in existed)
                run.jobs += 1
                tg.start_soon(settle, run.by_job(job_id, made, len(existed)), len(group))
                if existed:  # not the job's: checked by ids, as ingest checks them
                    tg.start_soon(settle, run.per_batch(existed), 0)
        await run.annotate(final=True)
    return {
        "window": window,
        "failed": sorted(run.failed),
        "processed": len(run.processed),
        "existing": len(run.existing),
        "jobs": run.jobs,
        "polls_per_job": round(sum(run.polls_per_job) / len(run.polls_per_job), 2)
        if run.polls_per_job
        else None,
        "elapsed_s": round(time.monotonic() - started, 1),
    }


async def _ingest(base: str, path: Path) -> dict[str, Any]:
    config = Config(pat=PAT, user_id=USER, app_id=APP, base=base, rps=RPS)
    async with Ingester(config) as ing:
        report = await ing.run(str(path))
    return {"protocol": "ingest", "window": 1, "rows_failed": report.rows_failed}


async def measure(
    name: str,
    path: Path,
    images: list[Image],
    options: SandboxOptions,
    protocol: str,
    window: int,
    existing: float,
) -> dict[str, Any]:
    """One run against a fresh sandbox; ``existing``: the share of the images created
    (and processed) before it, without a job."""
    async with Sandbox(options) as sb:
        before = [i for n, i in enumerate(images) if existing and n % round(1 / existing) == 0]
        if before:
            config = Config(pat=PAT, user_id=USER, app_id=APP, base=sb.base_url, rps=1000)
            async with Client(config) as client:
                warm = _Run(client, 1)
                for i in range(0, len(before), BATCH):
                    await warm.create(before[i : i + BATCH])
            await sb.wait_processed()
        counted = dict(sb.stats.requests)
        if protocol == "ingest":
            got = await _ingest(sb.base_url, path)
        else:
            got = await run_job(sb.base_url, images, window=window)
        requests = {
            k: v - counted.get(k, 0) for k, v in sb.stats.requests.items() if v - counted.get(k, 0)
        }
        state = sb.servicer.state
        truly_failed = sorted(
            i.input_id
            for i in images
            if (s := state.inputs.get(i.input_id)) is not None and s.fate == FAILED
        )
        stored = len(state.annotations)
        throttled = sb.stats.throttled
    boxes = sum(len(i.boxes) for i in images)
    good_boxes = sum(len(i.boxes) for i in images if i.input_id not in set(truly_failed))
    total = sum(requests.values())
    problems = []
    if protocol != "ingest" and got["failed"] != truly_failed:
        missed = set(truly_failed) - set(got["failed"])
        wrong = set(got["failed"]) - set(truly_failed)
        problems.append(f"named {len(wrong)} inputs failed that did not, missed {len(missed)}")
    if stored != good_boxes:
        problems.append(f"{stored} boxes stored, {good_boxes} expected")
    rows = good_boxes if boxes else len(images) - len(truly_failed)
    per = {k: round(v * BATCH / len(images), 3) for k, v in sorted(requests.items())}
    result = {
        "run": name,
        "protocol": protocol,
        "window": got["window"],
        "options": settings(options) | {"job_counts_refused": options.job_counts_refused},
        "images": len(images),
        "boxes": boxes,
        "existing": existing,
        "failed_inputs": len(truly_failed),
        "rows_that_land": rows,
        "requests": total,
        "requests_by_method": requests,
        "requests_per_128_images": round(total * BATCH / len(images), 3),
        "per_128_by_method": per,
        "ceiling_rows_per_s": round(RPS * rows / total, 1) if total else 0.0,
        "throttled": throttled,
        "polls_per_job": got.get("polls_per_job"),
        "elapsed_s": got.get("elapsed_s"),
        "problems": problems,
    }
    log(
        f"jobcheck: {name}, {protocol}: {total} requests ({result['requests_per_128_images']} "
        f"per 128 images: {per}){'; ' + '; '.join(problems) if problems else ''}"
    )
    return result


def _data(tmp: Path, images: int) -> dict[str, Path]:
    """The classification set and the four-box file."""
    files = {
        "classification": tmp / "classification.csv",
        "4 boxes": tmp / "boxes.csv",
    }
    generate(
        files["classification"],
        images=images,
        seed=31,
        image_level_rate=1.0,
        max_boxes=0,
        min_boxes=0,
    )
    generate(files["4 boxes"], images=images, seed=32, max_boxes=4, min_boxes=4)
    return files


async def run(images: int, window: int) -> dict[str, Any]:
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-jobcheck-") as tmp:
        files = _data(Path(tmp), images)
        for data, path in files.items():
            loaded = load_images(path)
            for rate in (0.0, 0.01):
                for protocol in ("ingest", "job"):
                    name = f"{data}, {rate * 100:g} % failing"
                    results.append(
                        await measure(name, path, loaded, realistic(rate), protocol, window, 0.0)
                    )
        loaded = load_images(files["classification"])
        for counts_refused in (False, True):
            name = "classification, 1 % failing, 2 % existing, refused inputs " + (
                "counted as failed" if counts_refused else "not counted"
            )
            options = realistic(0.01, job_counts_refused=counts_refused)
            results.append(
                await measure(name, files["classification"], loaded, options, "job", window, 0.02)
            )
    failures = [f"{r['run']}: {r['protocol']}: {p}" for r in results for p in r["problems"]]
    return {
        "provenance": provenance(""),
        "images": images,
        "window": window,
        "rps": RPS,
        "results": results,
        "verdict": _verdict(results),
        "failures": failures,
        "wall_s": round(time.monotonic() - started, 1),
    }


def _find(results: Sequence[dict[str, Any]], run: str, protocol: str) -> dict[str, Any]:
    return next(r for r in results if r["run"] == run and r["protocol"] == protocol)


def _verdict(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ceilings of the job protocol against ingest's per-batch check, each data set
    and failure rate; adopted only if it raises the classification ceiling by 1.3 times or
    more without lowering the box file's, with downloads failing as in the realistic
    scenario (1 %)."""
    gains: dict[str, float] = {}
    for data in ("classification", "4 boxes"):
        for rate in ("0", "1"):
            run = f"{data}, {rate} % failing"
            job, check = _find(results, run, "job"), _find(results, run, "ingest")
            gains[run] = round(check["requests"] / job["requests"], 3)
    adopt = gains["classification, 1 % failing"] >= 1.3 and gains["4 boxes, 1 % failing"] >= 1.0
    return {"ceiling_gain": gains, "adopted": adopt}


def markdown(out: dict[str, Any]) -> list[str]:
    """The experiment's block of benchmarks/README.md."""
    rows = []
    for r in out["results"]:
        if r["existing"]:
            continue
        methods = r["per_128_by_method"]
        rows.append(
            [
                r["run"],
                r["protocol"] + (f" (window {r['window']})" if r["protocol"] == "job" else ""),
                f"{r['requests_per_128_images']:.2f}",
                f"{methods.get('PostInputs', 0):.2f}",
                f"{methods.get('ListInputs', 0):.2f}",
                f"{methods.get('GetInputsAddJob', 0):.2f}",
                f"{methods.get('PostAnnotations', 0):.2f}",
                f"{r['ceiling_rows_per_s']:,.1f}",
                "; ".join(r["problems"]) or "every failed input named",
            ]
        )
    gains = out["verdict"]["ceiling_gain"]
    readings = [r for r in out["results"] if r["existing"]]
    lines = intro(
        out,
        f"{out['images']:,} images per file, the realistic server ({out['rps']:g} requests/s, "
        "60 ms a call, processing 0.5-2 s); requests counted by the server; the ceiling is "
        f"{out['rps']:g} x rows that can land / requests. `ingest` is the library itself; "
        "`job` waits on an inputs-add job per window of batches, then lists the failed "
        "inputs only (`benchmarks/jobcheck.py`).",
    )
    lines += [
        *table(
            "data | protocol | requests per 128 images | PostInputs | ListInputs | "
            "GetInputsAddJob | PostAnnotations | ceiling (rows/s) | failed inputs",
            "llrrrrrrl",
            rows,
        ),
        "",
        "The job protocol's ceiling against ingest's: "
        + "; ".join(f"{run}: {gain:.2f}x" for run, gain in gains.items())
        + ".",
        "",
        "With 2 % of the inputs existing before the run (refused by PostInputs, so not the "
        "job's; checked by ids for what they hold) and 1 % failing, under each reading of "
        "whether a job counts the refused inputs: "
        + "; ".join(
            f"{r['run'].rsplit(', ', 1)[1]}: {r['requests_per_128_images']:.2f} requests per "
            f"128 images, {'; '.join(r['problems']) or 'every failed input named'}"
            for r in readings
        )
        + ".",
        "",
        "Adopted: " + ("**yes**" if out["verdict"]["adopted"] else "**no**") + ".",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jobcheck", description=__doc__)
    parser.add_argument("--images", type=int, default=10_000, help="images per file")
    parser.add_argument("--window", type=int, default=8, help="batches per job")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    ns = parser.parse_args(argv)
    out = anyio.run(run, ns.images, ns.window)
    out["provenance"] = provenance(
        " ".join(["python -m benchmarks.jobcheck", *(sys.argv[1:] if argv is None else argv)])
    )
    for line in markdown(out):
        print(line)
    return finish(out, ns.out, "jobcheck")


if __name__ == "__main__":
    raise SystemExit(main())
