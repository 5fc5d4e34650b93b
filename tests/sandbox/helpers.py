"""Requests the sandbox tests build, and a bounded wait for processing over gRPC."""

from __future__ import annotations

from typing import Any

import anyio
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc


def inputs_request(*specs: tuple[str, str]) -> Any:
    req = service_pb2.PostInputsRequest()
    for input_id, url in specs:
        inp = req.inputs.add()
        if input_id:
            inp.id = input_id
        inp.data.image.url = url
    return req


def annotation(ann_id: str, input_id: str, box: tuple[float, float, float, float]) -> Any:
    ann = resources_pb2.Annotation(id=ann_id, input_id=input_id)
    bb = ann.data.regions.add().region_info.bounding_box
    bb.left_col, bb.top_row, bb.right_col, bb.bottom_row = box
    return ann


async def wait_processed(call: Any, ids: list[str]) -> dict[str, int]:
    """Poll ListInputs (bounded) until none of ``ids`` is pending or in progress."""
    for _ in range(200):
        reply = await call("ListInputs", service_pb2.ListInputsRequest(ids=ids, per_page=len(ids)))
        codes = {i.id: i.status.code for i in reply.inputs}
        if not {sc.INPUT_DOWNLOAD_PENDING, sc.INPUT_DOWNLOAD_IN_PROGRESS} & set(codes.values()):
            return codes
        await anyio.sleep(0.01)
    raise AssertionError("inputs never finished processing")
