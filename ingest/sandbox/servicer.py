"""The V2 service as Clarifai documents it, for one user and the apps it makes.

Each V2 method is written as its action (fill the reply from the state of the app the
request names) under ``@rpc(ReplyType)`` (:mod:`.rpc`), so every call goes through
:meth:`Servicer._serve`, in this order: an injected UNAVAILABLE (before anything, no side
effect, no token taken from the rate limit; every call, this one too, counts in
``stats.requests``), the latency and any spike, authentication (CONN_KEY_INVALID and
friends inside a normal reply), the app the call names (CONN_DOES_NOT_EXIST when it does
not exist), the account's limits (an app deleted, an hourly limit used up, a method the
plan disables), the per-key rate limit (CONN_THROTTLED), the action, then an injected
lost reply (the action happened, the caller sees UNAVAILABLE).

This module holds that path and the actions on inputs and scopes; the others live with
their concern: apps in :mod:`.apps`, datasets in :mod:`.datasets`, dataset versions in
:mod:`.versions`, concepts in :mod:`.concepts`, annotations in :mod:`.annotations`.
Authentication and scopes are in :mod:`.auth`, the checks of a request's items in
:mod:`.checks`, PatchInputs' rules in :mod:`.patching`, statuses and paging (one rule
for every list call) in :mod:`.replies`, the stored state in :mod:`.state`.

Where each behaviour comes from (a documentation page, a client's source, or a guess)
is listed in ``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable
from typing import Any

import anyio
import grpc
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from clarifai_grpc.grpc.api.status import status_pb2

from ingest.sandbox.annotations import AnnotationRPCs
from ingest.sandbox.apps import AppRPCs
from ingest.sandbox.auth import (
    ALL,
    ENDPOINT,
    SCOPES,
    Caller,
    app_not_found,
    authenticate,
    endpoints_of,
)
from ingest.sandbox.checks import (
    MAX_BATCH,
    MAX_INPUT_ID,
    MAX_REQUEST_BYTES,
    input_id_is_valid,
    input_problem,
    too_many,
)
from ingest.sandbox.concepts import ConceptRPCs
from ingest.sandbox.datasets import DatasetRPCs, new_dataset
from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.patching import ACTIONS, patch_data
from ingest.sandbox.ratelimit import TokenBuckets
from ingest.sandbox.replies import (
    DEFAULT_PAGE,
    MAX_PAGE,
    STREAM_PAGE,
    overall,
    page_of,
    set_status,
    unknown_action,
)
from ingest.sandbox.rpc import Action, Apps, rpc, user_level
from ingest.sandbox.state import FAILED, IN_PROGRESS, PENDING, SUCCESS, AppState, Job, StoredInput
from ingest.sandbox.stats import Stats
from ingest.sandbox.versions import VersionRPCs

__all__ = [
    "DEFAULT_PAGE",
    "MAX_BATCH",
    "MAX_INPUT_ID",
    "MAX_PAGE",
    "MAX_REQUEST_BYTES",
    "STREAM_PAGE",
    "Servicer",
]


class Servicer(
    AppRPCs,
    DatasetRPCs,
    VersionRPCs,
    ConceptRPCs,
    AnnotationRPCs,
    service_pb2_grpc.V2Servicer,  # type: ignore[misc]
):
    """Answers the calls an uploader and the official SDK make; the rest is UNIMPLEMENTED."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.apps = Apps(options)
        self.state = self.apps.create(options.app_id)
        """The app ``options.app_id``, there from the start."""
        self.stats = Stats()
        self.buckets = TokenBuckets(options.rps)
        self._faults = random.Random(options.seed + 17)
        self._latency = random.Random(options.seed + 23)
        self._calls = 0
        self._hourly: dict[str, int] = {}
        self._caller = Caller("", options.app_id, None, True)
        """Who makes the call being served (set right before its action runs)."""
        if options.datasets is not None:
            for dataset_id in options.datasets:
                self.state.datasets[dataset_id] = new_dataset(self.state, dataset_id)

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
        of_user = user_level(method)
        caller = authenticate(opts, method, request, context.invocation_metadata(), reply, of_user)
        if caller is None:
            self.stats.auth_failures += 1
            return reply
        state = None if of_user else self.apps.get(caller.app_id)
        if not of_user and state is None:
            self.stats.auth_failures += 1
            app_not_found(reply, opts.user_id, caller.app_id)
            return reply
        if self._account_refuses(method, caller.key, reply):
            self.stats.account_refusals += 1
            return reply
        if not self.buckets.allow(caller.key):
            self.stats.throttled += 1
            set_status(
                reply.status,
                sc.CONN_THROTTLED,
                "Making too many requests",
                f"exceeded limit of {opts.rps:g} requests per second",
            )
            return reply
        self._caller = caller
        action(state, request, reply)
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

    @rpc(service_pb2.MultiInputResponse)
    def PostInputs(self, state: AppState, request: Any, reply: Any) -> None:
        """Inputs stored PENDING; with ``inputs_add_job_id``, counted in that job (made
        if new, whatever becomes of the inputs)."""
        job = None
        if request.inputs_add_job_id:
            job = state.jobs.setdefault(request.inputs_add_job_id, Job())
            reply.inputs_add_job.id = request.inputs_add_job_id
        if too_many(reply, request.inputs, "inputs"):
            self.stats.inputs_rejected += len(request.inputs)
            if job is not None:
                job.refused += len(request.inputs)
            return
        ok = 0
        for given in request.inputs:
            item = reply.inputs.add()
            item.CopyFrom(given)
            if self._input_refused(state, request, given, item):
                self.stats.inputs_rejected += 1
                if job is not None:
                    job.refused += 1
                continue
            for dataset_id in given.dataset_ids:
                if dataset_id not in state.datasets:  # lenient mode: made on first use
                    state.datasets[dataset_id] = new_dataset(state, dataset_id)
            stored_msg = resources_pb2.Input()
            stored_msg.CopyFrom(item)
            stored_msg.created_at.GetCurrentTime()
            stored_msg.modified_at.CopyFrom(stored_msg.created_at)
            if job is not None:
                job.ids.append(item.id)
            state.add_input(stored_msg)
            if stored_msg.data.concepts or stored_msg.data.metadata.fields:
                state.add_input_annotation(stored_msg)
                state.remember_concepts(stored_msg.data.concepts)
            set_status(item.status, sc.INPUT_DOWNLOAD_PENDING, "Download pending")
            self.stats.inputs_stored += 1
            ok += 1
        overall(reply, ok, len(request.inputs))

    def _input_refused(self, state: AppState, request: Any, given: Any, item: Any) -> bool:
        """True when input ``given`` cannot be stored (the refusal in ``item.status``);
        ``item`` gets the id it will have (a new one, or suffixed on a conflict)."""
        if not given.id:
            item.id = uuid.uuid4().hex
        elif not input_id_is_valid(item.status, given.id):
            return True
        if item.id in state.inputs:
            suffix = resources_pb2.InputIDConflictResolution.Value("SUFFIX")
            if request.input_id_conflict_resolution != suffix:
                set_status(
                    item.status,
                    sc.INPUT_DUPLICATE,
                    "Input already exists",
                    "Input has a duplicate ID.",
                )
                return True
            n = 1
            while f"{given.id}-{n}" in state.inputs:
                n += 1
            item.id = f"{given.id}-{n}"
        problem = input_problem(self.options, state, given)
        if problem is not None:
            set_status(item.status, *problem)
            return True
        quota = self.options.input_quota
        if quota is not None and len(state.inputs) >= quota:
            set_status(
                item.status,
                sc.INPUT_OVER_LIMIT,
                "Input over limit",
                f"the app holds {len(state.inputs)} inputs, the most its plan allows",
            )
            return True
        return False

    @rpc(service_pb2.MultiInputResponse)
    def PatchInputs(self, state: AppState, request: Any, reply: Any) -> None:
        """``merge``, ``overwrite`` or ``remove``, as documented (:mod:`.patching`)."""
        action = request.action or "merge"
        if unknown_action(reply, action, ACTIONS):
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
            state.remember_concepts(given.data.concepts)
            item.CopyFrom(state.listed(stored))
            set_status(item.status, sc.SUCCESS, "Ok")
            ok += 1
        overall(reply, ok, len(request.inputs))

    @rpc(service_pb2.MultiInputResponse)
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
            reply.inputs.append(state.listed(stored, now))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.SingleInputResponse)
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
            reply.input.CopyFrom(state.listed(stored))
            set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiInputResponse)
    def StreamInputs(self, state: AppState, request: Any, reply: Any) -> None:
        now = time.monotonic()
        for stored in page_of(
            state.walk(request.last_id, request.descending), request, STREAM_PAGE
        ):
            reply.inputs.append(state.listed(stored, now))
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(status_pb2.BaseResponse)
    def DeleteInputs(self, state: AppState, request: Any, reply: Any) -> None:
        for input_id in request.ids:
            state.delete_input(input_id)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.SingleInputsAddJobResponse)
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

    @rpc(service_pb2.SingleInputsAddJobResponse)
    def CancelInputsAddJob(self, state: AppState, request: Any, reply: Any) -> None:
        job = state.jobs.get(request.id)
        if job is None:
            set_status(reply.status, sc.CONN_DOES_NOT_EXIST, "Resource does not exist", request.id)
            return
        job.cancelled = True
        reply.inputs_add_job.id = request.id
        set_status(reply.status, sc.SUCCESS, "Ok")

    # -- workflows and scopes --------------------------------------------------------

    @rpc(service_pb2.MultiWorkflowResponse)
    def ListWorkflows(self, state: AppState, request: Any, reply: Any) -> None:
        wf = reply.workflows.add(id="General")
        node = wf.nodes.add(id="general-image-embedding")
        node.model.id = "general-image-embedding"
        node.model.model_version.id = "bb186755eda04f9cbb6fe32e816be104"
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiScopeResponse)
    def MyScopes(self, state: AppState, request: Any, reply: Any) -> None:
        """The caller's own scopes in the app: ``All`` for a personal access token or an
        app key without limits, else the key's scopes; the endpoints they allow."""
        scopes = self._caller.scopes
        reply.scopes.extend([ALL] if scopes is None else sorted(scopes))
        reply.endpoints.extend(endpoints_of(scopes))
        reply.app.CopyFrom(state.app)
        set_status(reply.status, sc.SUCCESS, "Ok")

    @rpc(service_pb2.MultiScopeDepsResponse)
    def ListScopes(self, state: AppState, request: Any, reply: Any) -> None:
        """Every scope the sandbox knows, and the scope each endpoint needs."""
        for scope in sorted({s for s in SCOPES.values() if s}):
            reply.scope_deps.add(scope=scope)
        for method, scope in sorted(SCOPES.items()):
            reply.endpoint_deps.add(
                endpoint=ENDPOINT.format(method), depending_scopes=[scope] if scope else []
            )
        set_status(reply.status, sc.SUCCESS, "Ok")
