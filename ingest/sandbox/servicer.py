"""The V2 service as Clarifai documents it, for one user and one app.

Every call goes through :meth:`Servicer._serve`, in this order: an injected
UNAVAILABLE (before anything, no side effect, no token taken from the rate limit;
every call, this one too, counts in ``stats.requests``), the latency and any spike,
authentication (CONN_KEY_INVALID and friends inside a normal reply), the account's
limits (an app deleted, an hourly limit used up, a method the plan disables), the
per-key rate limit (CONN_THROTTLED), the action, then an injected lost reply (the
action happened, the caller sees UNAVAILABLE).

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
from collections.abc import Callable, Iterable
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
                self.state.datasets[dataset_id] = resources_pb2.Dataset(
                    id=dataset_id, app_id=options.app_id, user_id=options.user_id
                )

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

    async def PostInputs(self, request: Any, context: Any) -> Any:
        return await self._serve(
            "PostInputs", request, context, service_pb2.MultiInputResponse, self._post_inputs
        )

    def _post_inputs(self, state: AppState, request: Any, reply: Any) -> None:
        if too_many(reply, request.inputs, "inputs"):
            self.stats.inputs_rejected += len(request.inputs)
            return
        suffix = (
            request.input_id_conflict_resolution
            == resources_pb2.InputIDConflictResolution.Value("SUFFIX")
        )
        seen: set[str] = set()
        seen_urls: set[str] = set()
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
            if item.id in state.inputs or item.id in seen:
                if suffix:
                    n = 1
                    while f"{given.id}-{n}" in state.inputs or f"{given.id}-{n}" in seen:
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
            problem = input_problem(self.options, state, given, seen_urls)
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
            seen.add(item.id)
            if given.data.image.url:
                seen_urls.add(given.data.image.url)
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
        opts = self.options
        return resources_pb2.Dataset(id=dataset_id, app_id=opts.app_id, user_id=opts.user_id)

    async def PatchInputs(self, request: Any, context: Any) -> Any:
        return await self._serve(
            "PatchInputs", request, context, service_pb2.MultiInputResponse, self._patch_inputs
        )

    def _patch_inputs(self, state: AppState, request: Any, reply: Any) -> None:
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
            patch_data(stored.message.data, given.data, action)
            item.CopyFrom(stored.message)
            set_status(item.status, sc.SUCCESS, "Ok")
            ok += 1
        overall(reply, ok, len(request.inputs))

    async def ListInputs(self, request: Any, context: Any) -> Any:
        return await self._serve(
            "ListInputs", request, context, service_pb2.MultiInputResponse, self._list_inputs
        )

    def _list_inputs(self, state: AppState, request: Any, reply: Any) -> None:
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

    async def GetInput(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            stored = state.inputs.get(req.input_id)
            if stored is None:
                set_status(
                    reply.status,
                    sc.CONN_DOES_NOT_EXIST,
                    "Resource does not exist",
                    f"input {req.input_id!r} not found",
                )
            else:
                reply.input.CopyFrom(state.render(stored))
                set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "GetInput", request, context, service_pb2.SingleInputResponse, action
        )

    async def StreamInputs(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            now = time.monotonic()
            for stored in page_of(state.walk(req.last_id, req.descending), req, STREAM_PAGE):
                reply.inputs.append(state.render(stored, now))
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "StreamInputs", request, context, service_pb2.MultiInputResponse, action
        )

    async def DeleteInputs(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            for input_id in req.ids:
                state.delete_input(input_id)
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve("DeleteInputs", request, context, status_pb2.BaseResponse, action)

    async def GetInputsAddJob(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            counts = state.job_progress(req.id)
            if counts is None:
                set_status(reply.status, sc.CONN_DOES_NOT_EXIST, "Resource does not exist", req.id)
                return
            reply.inputs_add_job.id = req.id
            progress = reply.inputs_add_job.progress
            progress.pending_count = counts[PENDING]
            progress.in_progress_count = counts[IN_PROGRESS]
            progress.success_count = counts[SUCCESS]
            progress.failed_count = counts[FAILED]
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "GetInputsAddJob", request, context, service_pb2.SingleInputsAddJobResponse, action
        )

    async def CancelInputsAddJob(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            job = state.jobs.get(req.id)
            if job is None:
                set_status(reply.status, sc.CONN_DOES_NOT_EXIST, "Resource does not exist", req.id)
                return
            job["cancelled"] = True
            reply.inputs_add_job.id = req.id
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "CancelInputsAddJob", request, context, service_pb2.SingleInputsAddJobResponse, action
        )

    async def PostDatasets(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            # a Dataset carries no status of its own: one bad id fails the whole call
            given_ids = [d.id for d in req.datasets if d.id]
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
            for given in req.datasets:
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

        return await self._serve(
            "PostDatasets", request, context, service_pb2.MultiDatasetResponse, action
        )

    async def GetDataset(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            if _no_dataset(state, req.dataset_id, reply):
                return
            reply.dataset.CopyFrom(state.datasets[req.dataset_id])
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "GetDataset", request, context, service_pb2.SingleDatasetResponse, action
        )

    async def ListDatasets(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            reply.datasets.extend(page_of(state.datasets.values(), req))
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "ListDatasets", request, context, service_pb2.MultiDatasetResponse, action
        )

    async def ListDatasetInputs(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            if _no_dataset(state, req.dataset_id, reply):
                return
            members = state.dataset_inputs.get(req.dataset_id, {})
            now = time.monotonic()
            for input_id in page_of(members, req):
                stored = state.inputs.get(input_id)
                if stored is None:
                    continue
                item = reply.dataset_inputs.add()
                item.input.CopyFrom(state.render(stored, now))
                item.created_at.FromSeconds(int(members[input_id]))
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "ListDatasetInputs", request, context, service_pb2.MultiDatasetInputResponse, action
        )

    async def PostDatasetInputs(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            if _no_dataset(state, req.dataset_id, reply):
                return
            members = state.dataset_inputs.setdefault(req.dataset_id, {})
            ok = 0
            now = time.time()
            for given in req.dataset_inputs:
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
                    stored.message.dataset_ids.append(req.dataset_id)
                item.input.CopyFrom(state.render(stored))
                ok += 1
            overall(reply, ok, len(req.dataset_inputs))

        return await self._serve(
            "PostDatasetInputs", request, context, service_pb2.MultiDatasetInputResponse, action
        )

    # -- apps --------------------------------------------------------------------------

    async def GetApp(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            opts = self.options
            reply.app.id = opts.app_id
            reply.app.name = opts.app_id
            reply.app.user_id = opts.user_id
            reply.app.default_workflow_id = "General"
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve("GetApp", request, context, service_pb2.SingleAppResponse, action)

    # -- annotations -------------------------------------------------------------------

    async def PostAnnotations(self, request: Any, context: Any) -> Any:
        return await self._serve(
            "PostAnnotations",
            request,
            context,
            service_pb2.MultiAnnotationResponse,
            self._post_annotations,
        )

    def _post_annotations(self, state: AppState, request: Any, reply: Any) -> None:
        if too_many(reply, request.annotations, "annotations"):
            self.stats.annotations_rejected += len(request.annotations)
            return
        now = time.monotonic()
        seen: set[str] = set()
        ok = 0
        for given in request.annotations:
            item = reply.annotations.add()
            item.CopyFrom(given)
            if annotation_refused(state, given, now, seen, item):
                self.stats.annotations_rejected += 1
                continue
            seen.add(item.id)
            state.add_annotation(item)
            set_status(item.status, sc.ANNOTATION_SUCCESS, "Annotation success")
            self.stats.annotations_stored += 1
            ok += 1
        overall(reply, ok, len(request.annotations))

    async def ListAnnotations(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            # input-level annotations (made by PostInputs from concepts) come first, then
            # the ones PostAnnotations made; each is (store, key). Whether Clarifai lists
            # the former by default is undocumented: here only asked for by id or with
            # list_all_annotations
            level = state.input_annotations if req.list_all_annotations else {}
            chosen: Iterable[tuple[dict[str, Any], str]]
            if req.ids:
                by_id = {_ann_id(a): i for i, a in state.input_annotations.items()}
                level = state.input_annotations
                wanted = dict.fromkeys(req.ids)
                chosen = itertools.chain(
                    ((level, by_id[i]) for i in wanted if i in by_id),
                    ((state.annotations, i) for i in wanted if i in state.annotations),
                )
            elif req.input_ids:
                by_input = state.by_input
                wanted = dict.fromkeys(req.input_ids)
                chosen = itertools.chain(
                    ((level, i) for i in wanted if i in level),
                    ((state.annotations, a) for i in wanted for a in by_input.get(i, ())),
                )
            else:
                chosen = itertools.chain(
                    ((level, i) for i in level), ((state.annotations, a) for a in state.annotations)
                )
            for store, key in page_of(chosen, req):
                ann = store[key]
                if isinstance(ann, str):
                    reply.annotations.add(id=ann)
                else:
                    reply.annotations.append(ann)
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "ListAnnotations", request, context, service_pb2.MultiAnnotationResponse, action
        )

    # -- workflows ---------------------------------------------------------------------

    async def ListWorkflows(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            wf = reply.workflows.add(id="General")
            node = wf.nodes.add(id="general-image-embedding")
            node.model.id = "general-image-embedding"
            node.model.model_version.id = "bb186755eda04f9cbb6fe32e816be104"
            set_status(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "ListWorkflows", request, context, service_pb2.MultiWorkflowResponse, action
        )
