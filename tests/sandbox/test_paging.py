"""One paging rule for every list call: ``page`` from 1, ``per_page`` defaulted and capped."""

from __future__ import annotations

from typing import Any

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.replies import DEFAULT_PAGE, MAX_PAGE, STREAM_PAGE, page_of
from tests.sandbox.helpers import inputs_request

pytestmark = pytest.mark.anyio


def test_page_of_counts_pages_from_one_and_caps_their_size() -> None:
    items = range(2500)
    assert list(page_of(items, service_pb2.ListInputsRequest())) == list(range(DEFAULT_PAGE))
    first = service_pb2.ListInputsRequest(page=0, per_page=3)
    assert list(page_of(items, first)) == [0, 1, 2]
    third = service_pb2.ListInputsRequest(page=3, per_page=3)
    assert list(page_of(items, third)) == [6, 7, 8]
    huge = service_pb2.ListInputsRequest(page=2, per_page=5000)
    assert list(page_of(items, huge)) == list(range(MAX_PAGE, 2 * MAX_PAGE))
    # StreamInputs has no page field: always the first page, 20 when per_page is unset
    stream = service_pb2.StreamInputsRequest()
    assert list(page_of(items, stream, STREAM_PAGE)) == list(range(STREAM_PAGE))


async def test_datasets_and_their_inputs_page_like_inputs(sandbox: Any) -> None:
    async with sandbox() as call:
        made = service_pb2.PostDatasetsRequest(
            datasets=[resources_pb2.Dataset(id=f"d{n}") for n in range(5)]
        )
        assert (await call("PostDatasets", made)).status.code == sc.SUCCESS
        second = service_pb2.ListDatasetsRequest(page=2, per_page=2)
        reply = await call("ListDatasets", second)
        assert [d.id for d in reply.datasets] == ["d2", "d3"]

        req = inputs_request(*[(f"i{n}", f"https://x/{n}.jpg") for n in range(5)])
        for inp in req.inputs:
            inp.dataset_ids.append("d0")
        assert (await call("PostInputs", req)).status.code == sc.SUCCESS
        last = service_pb2.ListDatasetInputsRequest(dataset_id="d0", page=3, per_page=2)
        reply = await call("ListDatasetInputs", last)
        assert [i.input.id for i in reply.dataset_inputs] == ["i4"]
