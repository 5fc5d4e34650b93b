"""PatchInputs semantics: the examples of Clarifai's "Patching" page, then over gRPC."""

from __future__ import annotations

import json
from typing import Any

import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from google.protobuf import json_format

from ingest.sandbox.patching import patch_json
from tests.sandbox.helpers import inputs_request

# (action, A patched into B, result) - quoted from docs.clarifai.com, "Patching"
DOC_EXAMPLES = [
    ("merge", {"a": [1, 2, 3]}, {"blah": True}, {"blah": True, "a": [1, 2, 3]}),
    ("merge", {"a": [{"id": 1}]}, {"a": [{"id": 2}]}, {"a": [{"id": 2}, {"id": 1}]}),
    (
        "merge",
        {"a": [{"id": "1", "hey": True}], "blah": 1},
        {"a": [{"id": "1", "foo": "bar", "hey": False}, {"id": "2"}], "blah": "string"},
        {"a": [{"hey": True, "id": "1", "foo": "bar"}, {"id": "2"}], "blah": 1},
    ),
    (
        "merge",
        {"a": [{"blah": "1"}], "blah": 1},
        {"a": [{"blah": "2"}], "blah": "string"},
        {"a": [{"blah": "2"}, {"blah": "1"}], "blah": 1},
    ),
    ("merge", {"key1": True}, {"key1": {"key2": "value2"}}, {"key1": True}),
    (
        "merge",
        {"key1": {"key2": True}},
        {"key1": {"key2": "value2", "key3": "value3"}},
        {"key1": {"key2": True, "key3": "value3"}},
    ),
    (
        "merge",
        {"key1": {"key2": {"key4": "value4"}}},
        {"key1": {"key2": "value2", "key3": "value3"}},
        {"key1": {"key2": {"key4": "value4"}, "key3": "value3"}},
    ),
    (
        "remove",
        {"a": [{"id": "1"}], "blah": 1},
        {"a": [{"id": "2"}, {"id": "3"}, {"id": "1"}], "blah": "string"},
        {"a": [{"id": "2"}, {"id": "3"}], "blah": 1},
    ),
    (
        "remove",
        {"a": [{"blah": "1"}], "blah": 1},
        {"a": [{"blah": "2"}], "blah": "string"},
        {"a": [{"blah": "2"}, {"blah": "1"}], "blah": 1},
    ),
    ("remove", {"key1": {"key2": True}}, {"key1": {"key2": "value2"}}, {"key1": {}}),
    ("remove", {"key1": True}, {"key1": {"key2": "value2", "key3": "value3"}}, {}),
    (
        "remove",
        {"key1": {"key2": {"key3": True}, "key4": True}},
        {"key1": {"key2": {"key3": {"key5": "value5"}}, "key4": {"key6": {"key7": "v"}}}},
        {"key1": {"key2": {}}},
    ),
    (
        "remove",
        {"key1": {"key2": False, "key3": True}, "key4": False},
        {"key1": {"key2": "value2", "key3": "value3"}, "key4": [{"key5": "v"}]},
        {"key1": {"key2": False}, "key4": False},
    ),
    ("remove", {"key1": {}}, {"key1": {"key2": "v"}}, {"key1": {"key2": "v"}}),
    ("remove", {"key1": {"key2": None}}, {"key1": {"key2": "v"}}, {"key1": {"key2": "v"}}),
    (
        "overwrite",
        {"a": [{"id": "1"}], "blah": 1},
        {"a": [{"id": "2"}], "blah": "string"},
        {"a": [{"id": "1"}], "blah": 1},
    ),
    (
        "overwrite",
        {"a": [{"blah": "1"}], "blah": 1},
        {"a": [{"blah": "2"}], "blah": "string"},
        {"a": [{"blah": "1"}], "blah": 1},
    ),
]


@pytest.mark.parametrize(("action", "patch", "stored", "result"), DOC_EXAMPLES)
def test_documented_examples(
    action: str, patch: dict[str, Any], stored: dict[str, Any], result: dict[str, Any]
) -> None:
    before = json.dumps(stored)
    assert patch_json(stored, patch, action) == result
    assert json.dumps(stored) == before  # the stored value is not changed in place


@pytest.mark.anyio
async def test_merging_the_same_list_twice_grows_it_and_overwrite_replaces_it(
    sandbox: Any,
) -> None:
    async with sandbox() as call:
        req = inputs_request(("m1", "https://x/m1.jpg"))
        req.inputs[0].data.metadata.update({"tags": ["a"], "other": 1})
        assert (await call("PostInputs", req)).status.code == sc.SUCCESS

        async def patch(action: str, metadata: dict[str, Any]) -> dict[str, Any]:
            request = service_pb2.PatchInputsRequest(action=action)
            request.inputs.add(id="m1").data.metadata.update(metadata)
            assert (await call("PatchInputs", request)).status.code == sc.SUCCESS
            got = await call("GetInput", service_pb2.GetInputRequest(input_id="m1"))
            stored: dict[str, Any] = json_format.MessageToDict(got.input.data.metadata)
            return stored

        assert await patch("merge", {"tags": ["a", "b"]}) == {
            "tags": ["a", "a", "b"],
            "other": 1.0,
        }
        assert await patch("merge", {"tags": ["a", "b"]}) == {
            "tags": ["a", "a", "b", "a", "b"],
            "other": 1.0,
        }
        assert await patch("overwrite", {"tags": ["a", "b"]}) == {
            "tags": ["a", "b"],
            "other": 1.0,
        }
