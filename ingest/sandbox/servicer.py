"""The V2 service as Clarifai documents it, for one user and one app.

Every call goes through :meth:`Servicer._serve`, in this order: an injected
UNAVAILABLE (before anything, no side effect, no token taken from the rate limit;
every call, this one too, counts in ``stats.requests``), the latency and any spike,
authentication (CONN_KEY_INVALID and friends inside a normal reply), the account's
limits (an app deleted, an hourly limit used up, a method the plan disables), the
per-key rate limit (CONN_THROTTLED), the action, then an injected lost reply (the
action happened, the caller sees UNAVAILABLE).

Where each behaviour comes from (a documentation page, a client's source, or a guess)
is listed in ``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

import itertools
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import grpc
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc
from clarifai_grpc.grpc.api.status import status_pb2

from ingest.sandbox.images import MAX_IMAGE_BYTES, MAX_MEGAPIXELS, dimensions
from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.patching import ACTIONS, patch_data
from ingest.sandbox.ratelimit import TokenBuckets
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

MAX_BATCH = 128
"""Most inputs per PostInputs and annotations per PostAnnotations."""
DEFAULT_PAGE, MAX_PAGE = 128, 1000
"""``per_page`` when unset, and its ceiling."""
STREAM_PAGE = 20
"""``per_page`` of StreamInputs when unset."""
MAX_INPUT_ID = 48
"""Longest input id."""
MAX_REQUEST_BYTES = 128 * 1024 * 1024
"""Requests must be under this size (the server refuses larger messages)."""
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_INPUT_ID = re.compile(r"[A-Za-z0-9_-]+")
_CONCEPT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_KEY_INVALID = "Invalid API key or Invalid API key/application pair"
_ME = "me"
"""The alias of the caller's own user id."""
_SCOPES = {
    "PostInputs": "Inputs:Add",
    "ListInputs": "Inputs:Get",
    "GetInput": "Inputs:Get",
    "StreamInputs": "Inputs:Get",
    "PatchInputs": "Inputs:Patch",
    "DeleteInputs": "Inputs:Delete",
    "GetInputsAddJob": "Inputs:Get",
    "CancelInputsAddJob": "Inputs:Add",
    "PostAnnotations": "Annotations:Add",
    "ListAnnotations": "Annotations:Get",
    "ListWorkflows": "Workflows:Get",
    "GetApp": "Apps:Get",
    "GetDataset": "Datasets:Get",
    "ListDatasets": "Datasets:Get",
    "PostDatasets": "Datasets:Add",
    "ListDatasetInputs": "Inputs:Get",
    "PostDatasetInputs": "Datasets:Add",
}

Action = Callable[[AppState, Any, Any], Any]


def _set(status: Any, code: int, description: str, details: str = "") -> None:
    status.code = code
    status.description = description
    if details:
        status.details = details


def _too_many(reply: Any, items: Any, what: str) -> bool:
    """Fail the whole call (nothing stored) when it carries over :data:`MAX_BATCH` items."""
    if len(items) <= MAX_BATCH:
        return False
    _set(
        reply.status,
        sc.BAD_REQUEST,
        "Bad request",
        f"at most {MAX_BATCH} {what} per request, got {len(items)}",
    )
    return True


def _concept_rule(value: str) -> str:
    return f"concept id {value!r} must be 1 to 128 characters of letters, digits, '_' and '-'"


def _overall(reply: Any, ok: int, total: int) -> None:
    if ok == total:
        _set(reply.status, sc.SUCCESS, "Ok")
    elif ok:
        _set(reply.status, sc.MIXED_STATUS, "Mixed Success")
    else:
        _set(reply.status, sc.FAILURE, "Failure")


def _ann_id(ann: Any) -> str:
    return ann if isinstance(ann, str) else str(ann.id)


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
        key = self._authenticate(method, request, context, reply)
        if key is None:
            self.stats.auth_failures += 1
            return reply
        if self._account_refuses(method, key, reply):
            self.stats.account_refusals += 1
            return reply
        if not self.buckets.allow(key):
            self.stats.throttled += 1
            _set(
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

    def _authenticate(self, method: str, request: Any, context: Any, reply: Any) -> str | None:
        """The key to rate-limit on, or None after writing the refusal into ``reply``."""
        opts = self.options
        token = ""
        for name, value in context.invocation_metadata() or ():
            if name == "authorization" and value.startswith("Key "):
                token = value[4:]
        user_app = getattr(request, "user_app_id", None)
        if token in opts.pats:
            if user_app is None or not user_app.app_id or not user_app.user_id:
                _set(
                    reply.status,
                    sc.CONN_KEY_INVALID,
                    _KEY_INVALID,
                    "Must provide app external ID in API authorizer",
                )
                return None
            user_id = opts.user_id if user_app.user_id == _ME else user_app.user_id
            if user_id != opts.user_id or user_app.app_id != opts.app_id:
                self._app_not_found(reply, user_app.user_id, user_app.app_id)
                return None
            return token
        if token in opts.api_keys:
            return token
        if token in opts.scoped_keys:
            needed = _SCOPES.get(method, "")
            if needed not in opts.scoped_keys[token]:
                _set(
                    reply.status,
                    sc.CONN_INSUFFICIENT_SCOPES,
                    "API key has insufficient scopes",
                    f"Missing scope(s): {needed}",
                )
                return None
            return token
        _set(reply.status, sc.CONN_KEY_INVALID, _KEY_INVALID)
        return None

    def _app_not_found(self, reply: Any, user_id: str, app_id: str) -> None:
        _set(
            reply.status,
            sc.CONN_DOES_NOT_EXIST,
            "Resource does not exist",
            f"app identified by path /users/{user_id}/apps/{app_id} not found",
        )

    def _account_refuses(self, method: str, key: str, reply: Any) -> bool:
        """The account's injected limits: a deleted app, an hourly limit, a disabled method."""
        opts = self.options
        if opts.delete_app_after is not None and self._calls > opts.delete_app_after:
            self._app_not_found(reply, opts.user_id, opts.app_id)
            return True
        if opts.hourly_limit is not None:
            used = self._hourly.get(key, 0) + 1
            self._hourly[key] = used
            if used > opts.hourly_limit:
                _set(
                    reply.status,
                    sc.CONN_EXCEED_HOURLY_LIMIT,
                    "Hourly request limit exceeded",
                    f"exceeded limit of {opts.hourly_limit} requests per hour",
                )
                return True
        if method in opts.disabled:
            _set(
                reply.status,
                sc.CONN_ACCOUNT_ISSUES,
                "Account or plan issue",
                f"{method} is a feature not supported in your tier",
            )
            return True
        return False

    def _ids_status(self, status: Any, code: int, what: str, value: str) -> bool:
        if not _ID.fullmatch(value):
            _set(
                status,
                code,
                f"Invalid {what} id",
                f"{what} id {value!r} must match [A-Za-z0-9_-]{{1,128}}",
            )
            return False
        return True

    # -- inputs ------------------------------------------------------------------------

    async def PostInputs(self, request: Any, context: Any) -> Any:
        return await self._serve(
            "PostInputs", request, context, service_pb2.MultiInputResponse, self._post_inputs
        )

    def _post_inputs(self, state: AppState, request: Any, reply: Any) -> None:
        if _too_many(reply, request.inputs, "inputs"):
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
            elif not self._input_id_ok(item.status, given.id):
                self.stats.inputs_rejected += 1
                continue
            if item.id in state.inputs or item.id in seen:
                if suffix:
                    n = 1
                    while f"{given.id}-{n}" in state.inputs or f"{given.id}-{n}" in seen:
                        n += 1
                    item.id = f"{given.id}-{n}"
                else:
                    _set(
                        item.status,
                        sc.INPUT_DUPLICATE,
                        "Input already exists",
                        "Input has a duplicate ID.",
                    )
                    self.stats.inputs_rejected += 1
                    continue
            problem = self._input_problem(state, given, seen_urls)
            if problem is not None:
                _set(item.status, *problem)
                self.stats.inputs_rejected += 1
                continue
            if quota is not None and len(state.inputs) >= quota:
                _set(
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
            _set(item.status, sc.INPUT_DOWNLOAD_PENDING, "Download pending")
            self.stats.inputs_stored += 1
            ok += 1
        if request.inputs_add_job_id:
            reply.inputs_add_job.id = request.inputs_add_job_id
        _overall(reply, ok, len(request.inputs))

    def _input_id_ok(self, status: Any, value: str) -> bool:
        """Clarifai's rules for a client-chosen input id (its own words for the length)."""
        if not 1 <= len(value) <= MAX_INPUT_ID:
            _set(
                status,
                sc.INPUT_INVALID_ARGUMENT,
                "Invalid input id",
                f"id must be between 1 and {MAX_INPUT_ID} characters long",
            )
            return False
        if not _INPUT_ID.fullmatch(value):
            _set(
                status,
                sc.INPUT_INVALID_ARGUMENT,
                "Invalid input id",
                f"input id {value!r} may contain only letters, digits, '_' and '-'",
            )
            return False
        return True

    def _input_problem(
        self, state: AppState, given: Any, seen_urls: set[str]
    ) -> tuple[int, str, str] | None:
        """Why a new input (its id already checked) cannot be stored, or None."""
        image = given.data.image
        if image.url:
            scheme = image.url.split(":", 1)[0].lower()
            if scheme not in ("http", "https"):
                return sc.INPUT_INVALID_URL, "Invalid URL", f"unsupported scheme {scheme!r}"
            if (
                self.options.unique_urls
                and not image.allow_duplicate_url
                and (image.url in state.by_url or image.url in seen_urls)
            ):
                return (
                    sc.INPUT_DUPLICATE,
                    "Input already exists",
                    f"Duplicate URL in your application: {image.url} is already the image "
                    "of another input (set allow_duplicate_url to add it again)",
                )
        elif not image.base64:
            return sc.INPUT_INVALID_ARGUMENT, "Invalid input", "no image url or bytes"
        else:
            size = len(image.base64)
            if size > MAX_IMAGE_BYTES:
                return (
                    sc.INPUT_INVALID_ARGUMENT,
                    "Invalid input",
                    f"the image is {size} bytes; images may be at most 20 MB",
                )
            dims = dimensions(image.base64)
            if dims is not None and dims[0] * dims[1] > MAX_MEGAPIXELS * 1_000_000:
                return (
                    sc.INPUT_INVALID_ARGUMENT,
                    "Invalid input",
                    f"the image is {dims[0]}x{dims[1]} pixels; "
                    f"images may have at most {MAX_MEGAPIXELS} megapixels",
                )
        for concept in given.data.concepts:
            if not _CONCEPT_ID.fullmatch(concept.id):
                return (
                    sc.INPUT_INVALID_ARGUMENT,
                    "Invalid concept id",
                    _concept_rule(concept.id),
                )
        for dataset_id in given.dataset_ids:
            if self.options.datasets is not None and dataset_id not in state.datasets:
                return (
                    sc.INPUT_INVALID_ARGUMENT,
                    "Dataset does not exist",
                    f"dataset {dataset_id!r} not found in app {self.options.app_id}",
                )
        return None

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
            _set(reply.status, sc.BAD_REQUEST, "Bad request", f"unknown action {action!r}")
            return
        if _too_many(reply, request.inputs, "inputs"):
            return
        ok = 0
        for given in request.inputs:
            item = reply.inputs.add()
            item.id = given.id
            stored = state.inputs.get(given.id)
            if stored is None:
                _set(
                    item.status,
                    sc.INPUT_INVALID_ARGUMENT,
                    "Input does not exist",
                    f"no input with id {given.id!r}",
                )
                continue
            patch_data(stored.message.data, given.data, action)
            item.CopyFrom(stored.message)
            _set(item.status, sc.SUCCESS, "Ok")
            ok += 1
        _overall(reply, ok, len(request.inputs))

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
        per_page = min(request.per_page or DEFAULT_PAGE, MAX_PAGE)
        page = max(request.page, 1)
        for stored in itertools.islice(chosen, (page - 1) * per_page, page * per_page):
            reply.inputs.append(state.render(stored, now))
        _set(reply.status, sc.SUCCESS, "Ok")

    async def GetInput(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            stored = state.inputs.get(req.input_id)
            if stored is None:
                _set(
                    reply.status,
                    sc.CONN_DOES_NOT_EXIST,
                    "Resource does not exist",
                    f"input {req.input_id!r} not found",
                )
            else:
                reply.input.CopyFrom(state.render(stored))
                _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "GetInput", request, context, service_pb2.SingleInputResponse, action
        )

    async def StreamInputs(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            per_page = min(req.per_page or STREAM_PAGE, MAX_PAGE)
            now = time.monotonic()
            for stored in itertools.islice(state.walk(req.last_id, req.descending), per_page):
                reply.inputs.append(state.render(stored, now))
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "StreamInputs", request, context, service_pb2.MultiInputResponse, action
        )

    async def DeleteInputs(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            for input_id in req.ids:
                state.delete_input(input_id)
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve("DeleteInputs", request, context, status_pb2.BaseResponse, action)

    async def GetInputsAddJob(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            counts = state.job_progress(req.id)
            if counts is None:
                _set(reply.status, sc.CONN_DOES_NOT_EXIST, "Resource does not exist", req.id)
                return
            reply.inputs_add_job.id = req.id
            progress = reply.inputs_add_job.progress
            progress.pending_count = counts[PENDING]
            progress.in_progress_count = counts[IN_PROGRESS]
            progress.success_count = counts[SUCCESS]
            progress.failed_count = counts[FAILED]
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "GetInputsAddJob", request, context, service_pb2.SingleInputsAddJobResponse, action
        )

    async def CancelInputsAddJob(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            job = state.jobs.get(req.id)
            if job is None:
                _set(reply.status, sc.CONN_DOES_NOT_EXIST, "Resource does not exist", req.id)
                return
            job["cancelled"] = True
            reply.inputs_add_job.id = req.id
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "CancelInputsAddJob", request, context, service_pb2.SingleInputsAddJobResponse, action
        )

    async def PostDatasets(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            # a Dataset carries no status of its own: one bad id fails the whole call
            given_ids = [d.id for d in req.datasets if d.id]
            for dataset_id in given_ids:
                if not _ID.fullmatch(dataset_id):
                    _set(
                        reply.status,
                        sc.CONN_INVALID_REQUEST,
                        "Invalid request",
                        f"dataset id {dataset_id!r} must be 1 to 128 letters, digits, '_' or '-'",
                    )
                    return
                if dataset_id in state.datasets or given_ids.count(dataset_id) > 1:
                    _set(
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
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "PostDatasets", request, context, service_pb2.MultiDatasetResponse, action
        )

    async def GetDataset(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            dataset = state.datasets.get(req.dataset_id)
            if dataset is None:
                _set(
                    reply.status,
                    sc.CONN_DOES_NOT_EXIST,
                    "Resource does not exist",
                    f"dataset {req.dataset_id!r} not found",
                )
                return
            reply.dataset.CopyFrom(dataset)
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "GetDataset", request, context, service_pb2.SingleDatasetResponse, action
        )

    async def ListDatasets(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            per_page = min(req.per_page or DEFAULT_PAGE, MAX_PAGE)
            page = max(req.page, 1)
            chosen = itertools.islice(
                state.datasets.values(), (page - 1) * per_page, page * per_page
            )
            reply.datasets.extend(chosen)
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "ListDatasets", request, context, service_pb2.MultiDatasetResponse, action
        )

    async def ListDatasetInputs(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            if req.dataset_id not in state.datasets:
                _set(
                    reply.status,
                    sc.CONN_DOES_NOT_EXIST,
                    "Resource does not exist",
                    f"dataset {req.dataset_id!r} not found",
                )
                return
            members = state.dataset_inputs.get(req.dataset_id, {})
            per_page = min(req.per_page or DEFAULT_PAGE, MAX_PAGE)
            page = max(req.page, 1)
            now = time.monotonic()
            for input_id in itertools.islice(members, (page - 1) * per_page, page * per_page):
                stored = state.inputs.get(input_id)
                if stored is None:
                    continue
                item = reply.dataset_inputs.add()
                item.input.CopyFrom(state.render(stored, now))
                item.created_at.FromSeconds(int(members[input_id]))
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "ListDatasetInputs", request, context, service_pb2.MultiDatasetInputResponse, action
        )

    async def PostDatasetInputs(self, request: Any, context: Any) -> Any:
        def action(state: AppState, req: Any, reply: Any) -> None:
            if req.dataset_id not in state.datasets:
                _set(
                    reply.status,
                    sc.CONN_DOES_NOT_EXIST,
                    "Resource does not exist",
                    f"dataset {req.dataset_id!r} not found",
                )
                return
            members = state.dataset_inputs.setdefault(req.dataset_id, {})
            ok = 0
            now = time.time()
            for given in req.dataset_inputs:
                item = reply.dataset_inputs.add()
                item.CopyFrom(given)
                stored = state.inputs.get(given.input.id)
                if stored is None:
                    _set(
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
            _overall(reply, ok, len(req.dataset_inputs))

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
            _set(reply.status, sc.SUCCESS, "Ok")

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
        if _too_many(reply, request.annotations, "annotations"):
            self.stats.annotations_rejected += len(request.annotations)
            return
        now = time.monotonic()
        seen: set[str] = set()
        ok = 0
        for given in request.annotations:
            item = reply.annotations.add()
            item.CopyFrom(given)
            problem = self._annotation_problem(state, given, now, seen, item)
            if problem:
                self.stats.annotations_rejected += 1
                continue
            seen.add(item.id)
            state.add_annotation(item)
            _set(item.status, sc.ANNOTATION_SUCCESS, "Annotation success")
            self.stats.annotations_stored += 1
            ok += 1
        _overall(reply, ok, len(request.annotations))

    def _annotation_problem(
        self, state: AppState, given: Any, now: float, seen: set[str], item: Any
    ) -> bool:
        status = item.status
        if not given.id:
            item.id = uuid.uuid4().hex
        elif not self._ids_status(status, sc.ANNOTATION_INVALID_ARGUMENT, "annotation", given.id):
            return True
        if item.id in state.annotations or item.id in seen:
            _set(
                status,
                sc.DATABASE_DUPLICATE_KEY,
                "Annotation already exists",
                f"annotation id {item.id} already exists",
            )
            return True
        stored = state.inputs.get(given.input_id)
        if stored is None:
            _set(
                status,
                sc.INPUT_DOES_NOT_EXIST,
                "Input does not exist",
                f"input {given.input_id!r} not found",
            )
            return True
        progress = stored.status(now)
        if progress == PENDING:
            _set(
                status,
                sc.ANNOTATION_INVALID_ARGUMENT,
                "Input not ready",
                f"input {given.input_id} is still being processed",
            )
            return True
        if progress == FAILED:
            _set(
                status,
                sc.ANNOTATION_INVALID_ARGUMENT,
                "Input failed",
                f"input {given.input_id} failed to download",
            )
            return True
        regions = given.data.regions
        if len(regions) != 1:
            _set(
                status,
                sc.ANNOTATION_INVALID_ARGUMENT,
                "Invalid annotation",
                f"exactly one region expected, got {len(regions)}",
            )
            return True
        info = regions[0].region_info
        if info.HasField("polygon"):
            points = [(p.col, p.row) for p in info.polygon.points]
            if len(points) < 3 or not all(0.0 <= v <= 1.0 for pt in points for v in pt):
                _set(
                    status,
                    sc.ANNOTATION_INVALID_ARGUMENT,
                    "Invalid polygon",
                    f"a polygon needs at least 3 points in [0, 1], got {points[:4]}",
                )
                return True
            return False
        if not info.HasField("bounding_box"):
            _set(
                status,
                sc.ANNOTATION_INVALID_ARGUMENT,
                "Invalid annotation",
                "the region has no bounding box or polygon",
            )
            return True
        bb = regions[0].region_info.bounding_box
        box = (bb.left_col, bb.top_row, bb.right_col, bb.bottom_row)
        if not all(0.0 <= v <= 1.0 for v in box) or not (
            bb.left_col < bb.right_col and bb.top_row < bb.bottom_row
        ):
            _set(
                status,
                sc.ANNOTATION_INVALID_ARGUMENT,
                "Invalid bounding box",
                f"box {box} must lie in [0, 1] with left < right and top < bottom",
            )
            return True
        return False

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
            per_page = min(req.per_page or DEFAULT_PAGE, MAX_PAGE)
            page = max(req.page, 1)
            for store, key in itertools.islice(chosen, (page - 1) * per_page, page * per_page):
                ann = store[key]
                if isinstance(ann, str):
                    reply.annotations.add(id=ann)
                else:
                    reply.annotations.append(ann)
            _set(reply.status, sc.SUCCESS, "Ok")

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
            _set(reply.status, sc.SUCCESS, "Ok")

        return await self._serve(
            "ListWorkflows", request, context, service_pb2.MultiWorkflowResponse, action
        )
