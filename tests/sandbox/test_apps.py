"""The user's apps, and what a key may learn and do: PostApps, GetApp, ListApps,
DeleteApp, MyScopes, ListScopes, read-only app keys, calls counted per method."""

from __future__ import annotations

from typing import Any

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.auth import READ_SCOPES, SCOPES, is_write
from tests.sandbox.conftest import KEY
from tests.sandbox.helpers import inputs_request

pytestmark = pytest.mark.anyio

USER = resources_pb2.UserAppIDSet(user_id="sandbox")
RO = (("authorization", "Key read-only"),)
OWN = (("authorization", "Key sandbox-pat"),)
"""The PAT, with the request's ``user_app_id`` left as the test set it."""


def in_app(request: Any, app_id: str) -> Any:
    request.user_app_id.CopyFrom(resources_pb2.UserAppIDSet(user_id="me", app_id=app_id))
    return request


async def test_apps_are_made_listed_kept_apart_and_deleted(sandbox: Any) -> None:
    async with sandbox() as call:
        made = await call(
            "PostApps",
            service_pb2.PostAppsRequest(user_app_id=USER, apps=[resources_pb2.App(id="second")]),
            metadata=OWN,
        )
        assert made.status.code == sc.SUCCESS
        assert (made.apps[0].id, made.apps[0].user_id) == ("second", "sandbox")
        again = await call(
            "PostApps",
            service_pb2.PostAppsRequest(user_app_id=USER, apps=[resources_pb2.App(id="second")]),
            metadata=OWN,
        )
        assert again.status.code == sc.DATABASE_DUPLICATE_KEY
        listed = await call("ListApps", service_pb2.ListAppsRequest(user_app_id=USER), OWN)
        assert [a.id for a in listed.apps] == ["sandbox-app", "second"]

        # an input made in one app is not in the other
        await call("PostInputs", in_app(inputs_request(("a", "https://x/1.jpg")), "second"), OWN)
        there = await call("ListInputs", in_app(service_pb2.ListInputsRequest(), "second"), OWN)
        assert [i.id for i in there.inputs] == ["a"]
        assert not (await call("ListInputs", service_pb2.ListInputsRequest())).inputs
        assert call.sb.apps == ["sandbox-app", "second"]

        gone = await call("DeleteApp", in_app(service_pb2.DeleteAppRequest(), "second"), OWN)
        assert gone.status.code == sc.SUCCESS
        for method, request in (
            ("GetApp", service_pb2.GetAppRequest()),
            ("ListInputs", service_pb2.ListInputsRequest()),
            ("ListDatasets", service_pb2.ListDatasetsRequest()),
        ):
            reply = await call(method, in_app(request, "second"), OWN)
            assert reply.status.code == sc.CONN_DOES_NOT_EXIST, method
            assert (
                reply.status.details
                == "app identified by path /users/sandbox/apps/second not found"
            )
        assert call.sb.apps == ["sandbox-app"]


async def test_a_missing_dataset_is_answered_does_not_exist(sandbox: Any) -> None:
    async with sandbox() as call:
        got = await call("GetDataset", service_pb2.GetDatasetRequest(dataset_id="nope"))
        assert got.status.code == sc.CONN_DOES_NOT_EXIST
        listed = await call("ListDatasets", service_pb2.ListDatasetsRequest())
        assert listed.status.code == sc.SUCCESS and not listed.datasets


async def test_an_app_key_cannot_make_apps(sandbox: Any) -> None:
    async with sandbox() as call:
        reply = await call(
            "PostApps", service_pb2.PostAppsRequest(apps=[resources_pb2.App(id="x")]), KEY
        )
        assert reply.status.code == sc.CONN_INSUFFICIENT_SCOPES
        assert call.sb.apps == ["sandbox-app"]


def _request_for(method: str) -> Any:
    """A request of ``method`` naming things that exist (an input, a dataset, a version)."""
    name = method + "Request"
    if not hasattr(service_pb2, name):  # DeleteApp's is singular already
        name = method.rstrip("s") + "Request"
    request = getattr(service_pb2, name)()
    for field, value in (
        ("dataset_id", "ds"),
        ("dataset_version_id", "v1"),
        ("input_id", "a"),
        ("concept_id", "cat"),
        ("id", "job"),
    ):
        if field in request.DESCRIPTOR.fields_by_name:
            setattr(request, field, value)
    return request


async def test_a_read_only_key_reads_everything_and_writes_nothing(sandbox: Any) -> None:
    async with sandbox(scoped_keys={"read-only": READ_SCOPES}) as call:
        req = inputs_request(("a", "https://x/1.jpg"))
        req.inputs[0].data.concepts.add(id="cat", value=1)
        req.inputs[0].dataset_ids.append("ds")
        req.inputs_add_job_id = "job"
        await call("PostInputs", req)
        await call(
            "PostDatasetVersions",
            service_pb2.PostDatasetVersionsRequest(
                dataset_id="ds", dataset_versions=[resources_pb2.DatasetVersion(id="v1")]
            ),
        )
        before = dict(call.sb.stats.requests)
        for method in sorted(SCOPES):
            reply = await call(method, _request_for(method), RO)
            if is_write(method):
                assert reply.status.code == sc.CONN_INSUFFICIENT_SCOPES, method
            else:
                assert reply.status.code == sc.SUCCESS, (method, reply.status)
        # every call counted under its method, each once
        counted = {m: n - before.get(m, 0) for m, n in call.sb.stats.requests.items()}
        assert {m for m, n in counted.items() if n} == set(SCOPES)
        assert set(counted.values()) == {1}
        # nothing changed
        assert list(call.sb.inputs) == ["a"]
        assert call.sb.apps == ["sandbox-app"]


async def test_my_scopes_tells_a_key_what_it_may_do(sandbox: Any) -> None:
    async with sandbox(scoped_keys={"read-only": READ_SCOPES}) as call:
        mine = await call("MyScopes", service_pb2.MyScopesRequest())
        assert list(mine.scopes) == ["All"] and mine.app.id == "sandbox-app"
        assert "/clarifai.api.V2/PostInputs" in mine.endpoints
        key = await call("MyScopes", service_pb2.MyScopesRequest(), KEY)
        assert list(key.scopes) == ["All"]
        ro = await call("MyScopes", service_pb2.MyScopesRequest(), RO)
        assert tuple(ro.scopes) == READ_SCOPES and ro.app.id == "sandbox-app"
        assert "/clarifai.api.V2/ListInputs" in ro.endpoints
        assert "/clarifai.api.V2/PostInputs" not in ro.endpoints
        deps = await call("ListScopes", service_pb2.ListScopesRequest(), RO)
        needs = {d.endpoint: list(d.depending_scopes) for d in deps.endpoint_deps}
        assert needs["/clarifai.api.V2/PostInputs"] == ["Inputs:Add"]
        assert set(READ_SCOPES) <= {d.scope for d in deps.scope_deps}
