"""An app's datasets: created, got, listed, patched, deleted, and the inputs they hold.

A ``Dataset`` carries no status of its own, so a call over several datasets fails whole
when one of them cannot be served. Where each behaviour comes from is listed in
``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from clarifai_grpc.grpc.api.status import status_pb2

from ingest.sandbox.checks import ID
from ingest.sandbox.patching import ACTIONS
from ingest.sandbox.replies import overall, page_of, set_status, unknown_action
from ingest.sandbox.rpc import ServicerBase, rpc
from ingest.sandbox.state import AppState

__all__ = ["DatasetRPCs", "new_dataset", "no_dataset"]

_KEPT = ("id", "app_id", "user_id", "created_at")
"""Fields no patch changes."""


def new_dataset(state: AppState, dataset_id: str) -> Any:
    """A dataset of the app (given at start, made by PostDatasets or on first use)."""
    made = resources_pb2.Dataset(id=dataset_id, app_id=state.app_id, user_id=state.user_id)
    made.created_at.GetCurrentTime()
    made.modified_at.CopyFrom(made.created_at)
    return made


def no_dataset(state: AppState, dataset_id: str, reply: Any) -> bool:
    """True (and the reply says so) when the app has no dataset ``dataset_id``."""
    if dataset_id in state.datasets:
        return False
    set_status(
        reply.status,
        sc.CONN_DOES_NOT_EXIST,
        "Resource does not exist",
        f"dataset {dataset_id!r} not found",
    )
    return True


def _patch(stored: Any, given: Any, action: str) -> None:
    """PatchDatasets' ``action`` on one dataset: ``merge`` sets the fields given (messages
    merge), ``overwrite`` replaces everything but the id, owner and creation time,
    ``remove`` clears the fields given."""
    kept = resources_pb2.Dataset(id=stored.id, app_id=stored.app_id, user_id=stored.user_id)
    kept.created_at.CopyFrom(stored.created_at)
    if action == "overwrite":
        stored.CopyFrom(given)
    elif action == "remove":
        for field, _ in given.ListFields():
            if field.name not in _KEPT:
                stored.ClearField(field.name)
    else:
        stored.MergeFrom(given)
    stored.id, stored.app_id, stored.user_id = kept.id, kept.app_id, kept.user_id
    stored.created_at.CopyFrom(kept.created_at)
    stored.modified_at.GetCurrentTime()


class DatasetRPCs(ServicerBase):
    """PostDatasets, GetDataset, ListDatasets, PatchDatasets, DeleteDatasets,
    ListDatasetInputs, PostDatasetInputs."""

    @rpc(service_pb2.MultiDatasetResponse)
    def PostDatasets(self, state: AppState, request: Any, reply: Any) -> None:
        given_ids = [d.id for d in request.datasets if d.id]
        for dataset_id in given_ids:
            if not ID.fullmatch(dataset_id):
                set_status(
                    reply.status,
                    sc.CONN_INVALID_REQUEST,
                    "Invalid request",
                    f"dataset id {dataset_id!r} must be 1 to 128 letters, digits, '_' or '-'",
                )
                return
            if dataset_id in state.datasets or given_ids.count(dataset_id) > 1:
                set_status(
                    reply.status,
                    sc.DATABASE_DUPLICATE_KEY,
                    "Dataset already exists",
                    f"a dataset with id {dataset_id!r} already exists in the app",
                )
                return
        for given in request.datasets:
            stored = new_dataset(state, given.id or uuid.uuid4().hex)
            _patch(stored, given, "merge")
            state.datasets[stored.id] = stored
            state.dataset_inputs.setdefault(stored.id, {})
            reply.datasets.append(stored)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.SingleDatasetResponse)
    def GetDataset(self, state: AppState, request: Any, reply: Any) -> None:
        if no_dataset(state, request.dataset_id, reply):
            return
        reply.dataset.CopyFrom(state.datasets[request.dataset_id])
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiDatasetResponse)
    def ListDatasets(self, state: AppState, request: Any, reply: Any) -> None:
        reply.datasets.extend(page_of(state.datasets.values(), request))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiDatasetResponse)
    def PatchDatasets(self, state: AppState, request: Any, reply: Any) -> None:
        action = request.action or "merge"
        if unknown_action(reply, action, ACTIONS):
            return
        for given in request.datasets:
            if no_dataset(state, given.id, reply):
                return
        for given in request.datasets:
            stored = state.datasets[given.id]
            _patch(stored, given, action)
            reply.datasets.append(stored)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(status_pb2.BaseResponse)
    def DeleteDatasets(self, state: AppState, request: Any, reply: Any) -> None:
        """The datasets and their versions go; their inputs stay in the app."""
        for dataset_id in request.dataset_ids:
            if no_dataset(state, dataset_id, reply):
                return
        for dataset_id in request.dataset_ids:
            del state.datasets[dataset_id]
            state.versions.pop(dataset_id, None)
            for input_id in state.dataset_inputs.pop(dataset_id, {}):
                stored = state.inputs.get(input_id)
                if stored is not None and dataset_id in stored.message.dataset_ids:
                    stored.message.dataset_ids.remove(dataset_id)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiDatasetInputResponse)
    def ListDatasetInputs(self, state: AppState, request: Any, reply: Any) -> None:
        if no_dataset(state, request.dataset_id, reply):
            return
        members = state.dataset_inputs.get(request.dataset_id, {})
        now = time.monotonic()
        for input_id in page_of(members, request):
            stored = state.inputs.get(input_id)
            if stored is None:
                continue
            item = reply.dataset_inputs.add()
            item.input.CopyFrom(state.listed(stored, now))
            item.created_at.FromSeconds(int(members[input_id]))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiDatasetInputResponse)
    def PostDatasetInputs(self, state: AppState, request: Any, reply: Any) -> None:
        """Inputs named by id, or those a search finds: the sandbox runs one kind of
        search, inputs filtered by ``dataset_ids`` (the SDK's ``merge_dataset``), and
        refuses any other with NOT_IMPLEMENTED."""
        if no_dataset(state, request.dataset_id, reply):
            return
        wanted = [given.input.id for given in request.dataset_inputs]
        if request.HasField("search"):
            found = _dataset_search(state, request.search, reply)
            if found is None:
                return
            wanted.extend(found)
        members = state.dataset_inputs.setdefault(request.dataset_id, {})
        ok = 0
        now = time.time()
        for input_id in wanted:
            item = reply.dataset_inputs.add()
            item.input.id = input_id
            stored = state.inputs.get(input_id)
            if stored is None:
                set_status(
                    item.input.status,
                    sc.INPUT_DOES_NOT_EXIST,
                    "Input does not exist",
                    f"no input with id {input_id!r}",
                )
                continue
            if input_id in members and state.options.dataset_member_again == "refuse":
                set_status(
                    item.input.status,
                    sc.DATASET_INPUT_DUPLICATE,
                    "Input already in dataset",
                    f"input {input_id!r} is in dataset {request.dataset_id!r} already",
                )
                continue
            if input_id not in members:
                members[input_id] = now
                stored.message.dataset_ids.append(request.dataset_id)
            item.input.CopyFrom(state.listed(stored))
            ok += 1
        overall(reply, ok, len(wanted))


def _dataset_search(state: AppState, search: Any, reply: Any) -> list[str] | None:
    """The inputs a search of inputs by dataset finds (in the order they joined those
    datasets), or None after refusing a search the sandbox cannot run."""
    query = search.query
    filters = list(query.filters)
    served = (
        filters
        and not query.ranks
        and all(
            f.HasField("input")
            and not f.negate
            and f.input.dataset_ids
            and f.input == resources_pb2.Input(dataset_ids=f.input.dataset_ids)
            for f in filters
        )
    )
    if not served:
        set_status(
            reply.status,
            sc.NOT_IMPLEMENTED,
            "Not implemented",
            "the sandbox searches inputs only by dataset_ids filters",
        )
        return None
    # filters are AND-ed; the dataset ids of one filter are OR-ed
    matches = []
    for f in filters:
        one: dict[str, None] = {}
        for dataset_id in f.input.dataset_ids:
            one.update(dict.fromkeys(state.dataset_inputs.get(dataset_id, {})))
        matches.append(one)
    return [i for i in matches[0] if all(i in m for m in matches[1:])]
