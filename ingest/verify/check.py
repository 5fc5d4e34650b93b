"""Reading what the app holds for each image of the data, and comparing, in bounded memory.

::

    rows (grouped by image) ──128 images──▶ [ListInputs by ids,
                                            ListAnnotations of those inputs, paged,
                                            compare] ──▶ differences

The rows come grouped by image, as the upload reads them (a scattered file is grouped on
disk first); images go in batches of ``Config.check_batch_size`` (128) through
``Config.concurrency`` workers, each reading the batch's inputs in one ``ListInputs`` by
ids, then the annotations of those processed successfully, up to
:data:`~ingest.estimate.ANNOTATION_PAGE` a page (about two requests per 128 images). Every
call goes through the client (its shared budget and its retries); none writes. The streams
between the reader and the workers are bounded, so memory stays flat whatever the size.
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.client import Client, describe
from ingest.config import Config
from ingest.errors import ClarifaiError
from ingest.estimate import ANNOTATION_PAGE
from ingest.model import Image, InvalidRow, Row
from ingest.source import RowSource
from ingest.stages.create import merge
from ingest.verify.compare import compare
from ingest.verify.differences import Difference, DifferenceKind, VerifyReport

__all__ = ["MAX_PAGES", "check_rows", "read_inputs"]

MAX_PAGES = 10_000
"""Most ListAnnotations pages for one batch of inputs (ten million annotations)."""


def _ok(method: str, reply: Any) -> Any:
    """``reply`` when it succeeded; a reply the client returned with another status (one no
    retry fixed) means the app could not be read."""
    if reply.status.code != sc.SUCCESS:
        raise ClarifaiError(
            f"{method}: Clarifai answers {describe(reply.status)}; the app could not be read",
            code=reply.status.code,
            description=reply.status.description,
        )
    return reply


async def read_inputs(client: Client, ids: list[str]) -> dict[str, Any]:
    """The app's inputs of ``ids`` (at most ``Config.check_batch_size``), by id; one
    ``ListInputs``. An id the app does not hold is not in the answer."""
    request = service_pb2.ListInputsRequest(ids=ids, per_page=len(ids))
    reply = _ok("ListInputs", await client.call("ListInputs", request))
    return {inp.id: inp for inp in reply.inputs}


async def _read_annotations(client: Client, input_ids: list[str]) -> dict[str, list[Any]]:
    """Every annotation of ``input_ids`` by input id, page after page until a page is not
    full."""
    out: dict[str, list[Any]] = {}
    for page in range(1, MAX_PAGES + 1):
        request = service_pb2.ListAnnotationsRequest(
            input_ids=input_ids, page=page, per_page=ANNOTATION_PAGE
        )
        reply = _ok("ListAnnotations", await client.call("ListAnnotations", request))
        for ann in reply.annotations:
            out.setdefault(ann.input_id, []).append(ann)
        if len(reply.annotations) < ANNOTATION_PAGE:
            return out
    raise ClarifaiError(
        f"ListAnnotations: more than {MAX_PAGES} pages for {len(input_ids)} inputs; "
        "the app could not be read to the end"
    )


def _tally(report: VerifyReport, rows: int, found: list[Difference]) -> None:
    """Count one image's differences: rows once each, inputs once per input, extras each."""
    differing = [d for d in found if not d.extra]
    report.rows_differing += len(differing)
    report.rows_equal += rows - len(differing)
    rows_of: dict[DifferenceKind, int] = {}
    for d in found:
        for kind in d.kinds:
            rows_of[kind] = rows_of.get(kind, 0) + 1
    for kind, n in rows_of.items():
        report.count(kind, 1 if kind.unit == "inputs" else n)


async def _worker(
    client: Client,
    report: VerifyReport,
    batches: MemoryObjectReceiveStream[list[Image]],
    send: MemoryObjectSendStream[list[Difference]],
) -> None:
    async with batches, send:
        async for images in batches:
            stored = await read_inputs(client, [image.input_id for image in images])
            done = [
                iid for iid, inp in stored.items() if inp.status.code == sc.INPUT_DOWNLOAD_SUCCESS
            ]
            annotations = await _read_annotations(client, done) if done else {}
            out: list[Difference] = []
            for image in images:
                found = compare(
                    image, stored.get(image.input_id), annotations.get(image.input_id, ())
                )
                _tally(report, len(image.rows), found)
                out += found
            report.images_checked += len(images)
            report.inputs_found += len(stored)
            report.annotations_read += sum(len(a) for a in annotations.values())
            if out:
                await send.send(out)


async def _read(
    rows: RowSource,
    size: int,
    report: VerifyReport,
    batches: MemoryObjectSendStream[list[Image]],
    send: MemoryObjectSendStream[list[Difference]],
) -> None:
    """The rows, an image's together, in batches of ``size`` images; invalid rows end here."""
    batch: list[Image] = []
    current: Image | None = None
    async for chunk in rows.batches():
        invalid: list[Difference] = []
        for item in chunk:
            report.rows_read += 1
            if isinstance(item, InvalidRow):
                report.rows_invalid += 1
                report.rows_differing += 1
                report.count(DifferenceKind.ROW_INVALID)
                invalid.append(
                    Difference(
                        item.line, (DifferenceKind.ROW_INVALID,), error=item.message(), raw=item.raw
                    )
                )
                continue
            row: Row = item
            if current is not None and current.input_id == row.input_id:
                current.rows.append(row)
                continue
            report.images += 1
            current = Image(row.input_id, [row])
            batch.append(current)
            if len(batch) > size:  # the last image may get more rows: it waits
                await batches.send(merge(batch[:-1]))
                batch = batch[-1:]
        if invalid:
            await send.send(invalid)
    if batch:
        await batches.send(merge(batch))


async def check_rows(
    client: Client,
    config: Config,
    rows: RowSource,
    report: VerifyReport,
    send: MemoryObjectSendStream[list[Difference]],
) -> None:
    """Compare every row of ``rows`` (an image's rows together) with what the app holds;
    the differences go out on ``send`` (closed at the end), counted into ``report``."""
    depth = max(2, config.queue_size // config.check_batch_size)
    to_check, batches = anyio.create_memory_object_stream[list[Image]](depth)
    async with send, anyio.create_task_group() as tg:
        async with batches:
            for _ in range(config.concurrency):
                tg.start_soon(_worker, client, report, batches.clone(), send.clone())
        async with to_check:
            await _read(rows, config.check_batch_size, report, to_check, send)
