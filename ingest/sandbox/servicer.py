"""The V2 service as Clarifai documents it, for one user and one app.

Each V2 method is written as its action (fill the reply from the state) and made a
gRPC method by ``_rpc``, so every call goes through :meth:`Servicer._serve`, in this
order: an injected UNAVAILABLE (before anything, no side effect, no token taken from
the rate limit; every call, this one too, counts in ``stats.requests``), the latency
and any spike, authentication (CONN_KEY_INVALID and friends inside a normal reply),
the account's limits (an app deleted, an hourly limit used up, a method the plan
disables), the per-key rate limit (CONN_THROTTLED), the action, then an injected lost
reply (the action happened, the caller sees UNAVAILABLE).

This module holds that path and the actions; the concerns they use live apart:
authentication and scopes in :mod:`.auth`, the checks of a request's items in
:mod:`.checks`, PatchInputs' rules in :mod:`.patching`, statuses and paging (one rule
for every list call) in :mod:`.replies`, the stored state in :mod:`.state`.

Where each behaviour comes from (a documentation page, a client's source, or a guess)
is listed in ``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

import anyio
import grpc
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from clarifai_grpc.grpc.api.status import status_pb2

from ingest.sandbox.auth import app_not_found, authenticate
from ingest.sandbox.checks import (
    ID,
    MAX_BATCH,
    MAX_INPUT_ID,
    MAX_REQUEST_BYTES,
    annotation_refused,
    input_id_is_valid,
    input_problem,
    too_many,
)
from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.patching import ACTIONS, patch_data
from ingest.sandbox.ratelimit import TokenBuckets
from ingest.sandbox.replies import DEFAULT_PAGE, MAX_PAGE, STREAM_PAGE, overall, page_of, set_status
from ingest.sandbox.state import FAILED, IN_PROGRESS, PENDING, SUCCESS, AppState, StoredInput
from ingest.sandbox.stats import Stats

__all__ = [
    "DEFAULT_PAGE",
    "MAX_BATCH",
    "MAX_INPUT_ID",
    "MAX_PAGE",
    "MAX_REQUEST_BYTES",
    "STREAM_PAGE",
    "Servicer",
]

Action = Callable[[AppState, Any, Any], Any]
_Handler = Callable[["Servicer", AppState, Any, Any], None]
_Method = Callable[["Servicer", Any, Any], Awaitable[Any]]


def _rpc(reply_type: Any) -> Callable[[_Handler], _Method]:
    """Makes a V2 method of an action: the decorated function fills the reply
    (``reply_type``) to ``request`` from ``state``, and the method gRPC calls runs it
    through :meth:`Servicer._serve` under the function's name."""

    def wrap(handler: _Handler) -> _Method:
        name = handler.__name__

        async def method(self: Servicer, request: Any, context: Any) -> Any:
            return await self._serve(name, request, context, reply_type, partial(handler, self))

        method.__name__, method.__qualname__ = name, handler.__qualname__
        method.__doc__ = handler.__doc__
        return method

    return wrap


def _ann_id(ann: Any) -> str:
    return ann if isinstance(ann, str) else str(ann.id)


def _no_dataset(state: AppState, dataset_id: str, reply: Any) -> bool:
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


class Servicer(service_pb2_grpc.V2Servicer):  # type: ignore[misc]
    """Answers the calls an uploader makes; everything else is UNIMPLEMENTED."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.state = AppState(options)
        self.stats = Stats()
        self.buckets = TokenBuckets(options.rps)
        self._faults = random.Random(options.seed + 17)
        self._latency = random.Random(options.seed + 23)
        self._calls = 0
        self._hourly: dict[str, int] = {}
        if options.datasets is not None:
            for dataset_id in options.datasets:
                self.state.datasets[dataset_id] = self._dataset(dataset_id)

    # -- the common path -------------------------------------------------------------

    async def _serve(
        self, method: str, request: Any, context: Any, reply_type: Any, action: Action
    ) -> Any:
        opts = self.options
        self.stats.count(method)
        self._calls += 1
        if opts.unavailable_rate and self._faults.random() < opts.unavailable_rate:
            self.stats.unavailable_injected += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "sandbox: injected unavailable")
        delay = opts.latency
        if opts.latency_jitter:
            delay += self._latency.uniform(-opts.latency_jitter, opts.latency_jitter)
        if opts.spike_rate and self._faults.random() < opts.spike_rate:
            self.stats.spikes_injected += 1
            delay += opts.spike_seconds
        if delay > 0:
            await anyio.sleep(delay)
        reply = reply_type()
        key = authenticate(opts, method, request, context.invocation_metadata(), reply)
        if key is None:
            self.stats.auth_failures += 1
            return reply
        if self._account_refuses(method, key, reply):
            self.stats.account_refusals += 1
            return reply
        if not self.buckets.allow(key):
            self.stats.throttled += 1
            set_status(
                reply.status,
                sc.CONN_THROTTLED,
                "Making too many requests",
                f"exceeded limit of {opts.rps:g} requests per second",
            )
            return reply
        action(self.state, request, reply)
        if opts.lost_reply_rate and self._faults.random() < opts.lost_reply_rate:
            self.stats.lost_replies_injected += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "sandbox: injected lost reply")
        return reply

    def _account_refuses(self, method: str, key: str, reply: Any) -> bool:
        """The account's injected limits: a deleted app, an hourly limit, a disabled method."""
        opts = self.options
        if opts.delete_app_after is not None and self._calls > opts.delete_app_after:
            app_not_found(reply, opts.user_id, opts.app_id)
            return True
        if opts.hourly_limit is not None:
            used = self._hourly.get(key, 0) + 1
            self._hourly[key] = used
            if used > opts.hourly_limit:
                set_status(
                    reply.status,
                    sc.CONN_EXCEED_HOURLY_LIMIT,
                    "Hourly request limit exceeded",
                    f"exceeded limit of {opts.hourly_limit} requests per hour",
                )
                return True
        if method in opts.disabled:
            set_status(
                reply.status,
                sc.CONN_ACCOUNT_ISSUES,
                "Account or plan issue",
                f"{method} is a feature not supported in your tier",
            )
            return True
        return False

    # -- inputs ------------------------------------------------------------------------

    @_rpc(service_pb2.MultiInputResponse)
    def PostInputs(self, state: AppState, request: Any, reply: Any) -> None:
        if too_many(reply, request.inputs, "inputs"):
            self.stats.inputs_rejected += len(request.inputs)
            return
        suffix = (
            request.input_id_conflict_resolution
            == resources_pb2.InputIDConflictResolution.Value("SUFFIX")
        )
        quota = self.options.input_quota
        ok = 0
        for given in request.inputs:
            item = reply.inputs.add()
            item.CopyFrom(given)
            if not given.id:
                item.id = uuid.uuid4().hex
            elif not input_id_is_valid(item.status, given.id):
                self.stats.inputs_rejected += 1
                continue
            if item.id in state.inputs:
                if suffix:
                    n = 1
                    while f"{given.id}-{n}" in state.inputs:
                        n += 1
                    item.id = f"{given.id}-{n}"
                else:
                    set_status(
                        item.status,
                        sc.INPUT_DUPLICATE,
                        "Input already exists",
                        "Input has a duplicate ID.",
                    )
                    self.stats.inputs_rejected += 1
                    continue
            problem = input_problem(self.options, state, given)
            if problem is not None:
                set_status(item.status, *problem)
                self.stats.inputs_rejected += 1
                continue
            if quota is not None and len(state.inputs) >= quota:
                set_status(
                    item.status,
                    sc.INPUT_OVER_LIMIT,
                    "Input over limit",
                    f"the app holds {len(state.inputs)} inputs, the most its plan allows",
                )
                self.stats.inputs_rejected += 1
                continue
            for dataset_id in given.dataset_ids:
                if dataset_id not in state.datasets:  # lenient mode: made on first use
                    state.datasets[dataset_id] = self._dataset(dataset_id)
            stored_msg = resources_pb2.Input()
            stored_msg.CopyFrom(item)
            if request.inputs_add_job_id:
                job = state.jobs.setdefault(
                    request.inputs_add_job_id, {"ids": [], "cancelled": False}
                )
                job["ids"].append(item.id)
            state.add_input(stored_msg)
            if stored_msg.data.concepts:
                state.add_input_annotation(stored_msg)
            set_status(item.status, sc.INPUT_DOWNLOAD_PENDING, "Download pending")
            self.stats.inputs_stored += 1
            ok += 1
        if request.inputs_add_job_id:
            reply.inputs_add_job.id = request.inputs_add_job_id
        overall(reply, ok, len(request.inputs))

    def _dataset(self, dataset_id: str) -> Any:
        """A dataset of the app (given at start, or made on first use)."""
        opts = self.options
        return resources_pb2.Dataset(id=dataset_id, app_id=opts.app_id, user_id=opts.user_id)

    @_rpc(service_pb2.MultiInputResponse)
    def PatchInputs(self, state: AppState, request: Any, reply: Any) -> None:
        """``merge``, ``overwrite`` or ``remove``, as documented (:mod:`.patching`)."""
        action = request.action or "merge"
        if action not in ACTIONS:
            set_status(reply.status, sc.BAD_REQUEST, "Bad request", f"unknown action {action!r}")
            return
        if too_many(reply, request.inputs, "inputs"):
            return
        ok = 0
        for given in request.inputs:
            item = reply.inputs.add()
            item.id = given.id
            stored = state.inputs.get(given.id)
            if stored is None:
                set_status(
                    item.status,
                    sc.INPUT_INVALID_ARGUMENT,
                    "Input does not exist",
                    f"no input with id {given.id!r}",
                )
                continue
            patch_data(
                stored.message.data, given.data, action, overwrite=self.options.patch_overwrite
            )
            item.CopyFrom(stored.message)
            set_status(item.status, sc.SUCCESS, "Ok")
            ok += 1
        overall(reply, ok, len(request.inputs))

    @_rpc(service_pb2.MultiInputResponse)
    def ListInputs(self, state: AppState, request: Any, reply: Any) -> None:
        now = time.monotonic()
        chosen: Iterable[StoredInput]
        if request.ids:
            found = (state.inputs.get(i) for i in dict.fromkeys(request.ids))
            chosen = (s for s in found if s is not None)
        else:
            chosen = state.inputs.values()
        if request.HasField("status") and request.status.code:
            want = request.status.code
            chosen = (s for s in chosen if state.code(s, now) == want)
        for stored in page_of(chosen, request):
            reply.inputs.append(state.render(stored, now))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.SingleInputResponse)
    def GetInput(self, state: AppState, request: Any, reply: Any) -> None:
        stored = state.inputs.get(request.input_id)
        if stored is None:
            set_status(
                reply.status,
                sc.CONN_DOES_NOT_EXIST,
                "Resource does not exist",
                f"input {request.input_id!r} not found",
            )
        else:
            reply.input.CopyFrom(state.render(stored))
            set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.MultiInputResponse)
    def StreamInputs(self, state: AppState, request: Any, reply: Any) -> None:
        now = time.monotonic()
        for stored in page_of(
            state.walk(request.last_id, request.descending), request, STREAM_PAGE
        ):
            reply.inputs.append(state.render(stored, now))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(status_pb2.BaseResponse)
    def DeleteInputs(self, state: AppState, request: Any, reply: Any) -> None:
        for input_id in request.ids:
            state.delete_input(input_id)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.SingleInputsAddJobResponse)
    def GetInputsAddJob(self, state: AppState, request: Any, reply: Any) -> None:
        counts = state.job_progress(request.id)
        if counts is None:
            set_status(reply.status, sc.CONN_DOES_NOT_EXIST, "Resource does not exist", request.id)
            return
        reply.inputs_add_job.id = request.id
        progress = reply.inputs_add_job.progress
        progress.pending_count = counts[PENDING]
        progress.in_progress_count = counts[IN_PROGRESS]
        progress.success_count = counts[SUCCESS]
        progress.failed_count = counts[FAILED]
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.SingleInputsAddJobResponse)
    def CancelInputsAddJob(self, state: AppState, request: Any, reply: Any) -> None:
        job = state.jobs.get(request.id)
        if job is None:
            set_status(reply.status, sc.CONN_DOES_NOT_EXIST, "Resource does not exist", request.id)
            return
        job["cancelled"] = True
        reply.inputs_add_job.id = request.id
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.MultiDatasetResponse)
    def PostDatasets(self, state: AppState, request: Any, reply: Any) -> None:
        # a Dataset carries no status of its own: one bad id fails the whole call
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
            item = reply.datasets.add()
            item.CopyFrom(given)
            if not given.id:
                item.id = uuid.uuid4().hex
            item.app_id, item.user_id = self.options.app_id, self.options.user_id
            stored = resources_pb2.Dataset()
            stored.CopyFrom(item)
            state.datasets[item.id] = stored
            state.dataset_inputs.setdefault(item.id, {})
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.SingleDatasetResponse)
    def GetDataset(self, state: AppState, request: Any, reply: Any) -> None:
        if _no_dataset(state, request.dataset_id, reply):
            return
        reply.dataset.CopyFrom(state.datasets[request.dataset_id])
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.MultiDatasetResponse)
    def ListDatasets(self, state: AppState, request: Any, reply: Any) -> None:
        reply.datasets.extend(page_of(state.datasets.values(), request))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.MultiDatasetInputResponse)
    def ListDatasetInputs(self, state: AppState, request: Any, reply: Any) -> None:
        if _no_dataset(state, request.dataset_id, reply):
            return
        members = state.dataset_inputs.get(request.dataset_id, {})
        now = time.monotonic()
        for input_id in page_of(members, request):
            stored = state.inputs.get(input_id)
            if stored is None:
                continue
            item = reply.dataset_inputs.add()
            item.input.CopyFrom(state.render(stored, now))
            item.created_at.FromSeconds(int(members[input_id]))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @_rpc(service_pb2.MultiDatasetInputResponse)
    def PostDatasetInputs(self, state: AppState, request: Any, reply: Any) -> None:
        if _no_dataset(state, request.dataset_id, reply):
            return
        members = state.dataset_inputs.setdefault(request.dataset_id, {})
        ok = 0
        now = time.time()
        for given in request.dataset_inputs:
            item = reply.dataset_inputs.add()
            item.CopyFrom(given)
            stored = state.inputs.get(given.input.id)
            if stored is None:
                set_status(
                    item.input.status,
                    sc.INPUT_DOES_NOT_EXIST,
                    "Input does not exist",
                    f"no input with id {given.input.id!r}",
                )
                continue
            if given.input.id not in members:
                members[given.input.id] = now
                stored.message.dataset_ids.append(request.dataset_id)
            item.input.CopyFrom(state.render(stored))
            ok += 1
        overall(reply, ok, len(request.dataset_inputs))

    # -- apps --------------------------------------------------------------------------

    @_rpc(service_pb2.SingleAppResponse)
    def GetApp(self, state: AppState, request: Any, reply: Any) -> None:
        opts = self.options
        reply.app.id = opts.app_id
        reply.app.name = opts.app_id
        reply.app.user_id = opts.user_id
        reply.app.default_workflow_id = "General"
        set_status(reply.status, sc.SUCCESS, "Ok")

    # -- annotations -------------------------------------------------------------------

    @_rpc(service_pb2.MultiAnnotationResponse)
    def PostAnnotations(self, state: AppState, request: Any, reply: Any) -> None:
        if too_many(reply, request.annotations, "annotations"):
            self.stats.annotations_rejected += len(request.annotations)
            return
        now = time.monotonic()
        ok = 0
        for given in request.annotations:
            item = reply.annotations.add()
            item.CopyFrom(given)
            if annotation_refused(state, given, now, item):
                self.stats.annotations_rejected += 1
                continue
            state.add_annotation(item)
            set_status(item.status, sc.ANNOTATION_SUCCESS, "Annotation success")
            self.stats.annotations_stored += 1
            ok += 1
        overall(reply, ok, len(request.annotations))

    @_rpc(service_pb2.MultiAnnotationResponse)
    def ListAnnotations(self, state: AppState, request: Any, reply: Any) -> None:
        # input-level annotations (made by PostInputs from concepts) come first, then
        # the ones PostAnnotations made; each is (store, key). Whether Clarifai lists
        # the former by default is undocumented: here only asked for by id or with
        # list_all_annotations
        level = state.input_annotations if request.list_all_annotations else {}
        chosen: Iterable[tuple[dict[str, Any], str]]
        if request.ids:
            by_id = {_ann_id(a): i for i, a in state.input_annotations.items()}
            level = state.input_annotations
            wanted = dict.fromkeys(request.ids)
            chosen = itertools.chain(
                ((level, by_id[i]) for i in wanted if i in by_id),
                ((state.annotations, i) for i in wanted if i in state.annotations),
            )
        elif request.input_ids:
            by_input = state.by_input
            wanted = dict.fromkeys(request.input_ids)
            chosen = itertools.chain(
                ((level, i) for i in wanted if i in level),
                ((state.annotations, a) for i in wanted for a in by_input.get(i, ())),
            )
        else:
            chosen = itertools.chain(
                ((level, i) for i in level), ((state.annotations, a) for a in state.annotations)
            )
        for store, key in page_of(chosen, request):
            ann = store[key]
            if isinstance(ann, str):
                reply.annotations.add(id=ann)
            else:
                reply.annotations.append(ann)
        set_status(reply.status, sc.SUCCESS, "Ok")

    # -- workflows ---------------------------------------------------------------------

    @_rpc(service_pb2.MultiWorkflowResponse)
    def ListWorkflows(self, state: AppState, request: Any, reply: Any) -> None:
        wf = reply.workflows.add(id="General")
        node = wf.nodes.add(id="general-image-embedding")
        node.model.id = "general-image-embedding"
        node.model.model_version.id = "bb186755eda04f9cbb6fe32e816be104"
        set_status(reply.status, sc.SUCCESS, "Ok")
