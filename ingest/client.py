"""The one client layer every call goes through, and the only place anything is retried.

It owns the gRPC aio channel (made by the ClarifaiChannel helpers), the auth metadata,
a deadline on every call, the shared rate limiter and every retry. Two calls:

* :meth:`Client.call` sends a request and returns the reply, sending it again while the
  whole call fails in a way that can pass (throttling, a busy server, the connection
  lost, a deadline);
* :meth:`Client.call_items` sends a request of items (``inputs`` or ``annotations``) and
  returns a verdict per item: the whole call is retried as above, and the items a mixed
  reply says may still succeed are sent again, alone, until each has a verdict.

Both share one budget per request: ``Config.max_attempts`` sends within
``Config.retry_time`` seconds, each retry after an exponential backoff with full jitter
(a throttled reply waits on the rate limiter instead). The stages build requests and
read verdicts; they never retry.

One attempt is small parts: pacing (:meth:`Client._pace`), the call with its deadline
(:meth:`Client._invoke`), and the judgement of what came back, where every failure is
mapped to the most specific error at one boundary (:meth:`Client._failure` for gRPC
failures, :meth:`Client._judge` for Clarifai's status codes):

* bad key, missing scopes, unknown app: :class:`~ingest.errors.AuthError`, at once;
* codes no row can fix (an input quota reached, an hourly limit, a feature outside the
  plan, the app deleted mid-run): :class:`~ingest.errors.AccountError`, at once when a
  whole call fails with one, after ``Config.stop_after`` items when they come item by item;
* the first call finding nothing to talk to (nothing listens at the base, its host name
  does not resolve): :class:`~ingest.errors.UnreachableError`; a TLS handshake that fails
  (untrusted certificate, wrong host name, plaintext and TLS mixed up):
  :class:`~ingest.errors.TLSError` - neither retried, each one sentence naming what to check;
* a retryable failure past the budget: :class:`~ingest.errors.RetriesExhaustedError`;
  any other gRPC failure: :class:`~ingest.errors.TransportError`.

The Clarifai facts this relies on (the channel helpers, auth metadata, which codes come
inside a normal reply, which are worth retrying) are in ``docs/clarifai-facts.md``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import anyio
import grpc
from anyio.abc import AsyncResource
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.config import Config
from ingest.errors import (
    FATAL_CODES,
    PAT_WITHOUT_APP,
    RETRYABLE_CODES,
    RETRYABLE_GRPC,
    STOP_CODES,
    AccountError,
    AuthError,
    ClarifaiError,
    RetriesExhaustedError,
    TLSError,
    TransportError,
    UnreachableError,
    scopes_hint,
)
from ingest.ratelimit import Priority, RateLimiter
from ingest.wire import LIGHT_REPLIES

__all__ = ["CallStats", "Client", "Verdicts", "describe"]

log = logging.getLogger("ingest.client")
"""Each call at debug level (method, status, attempt); retries given up (warning) and an
account-level stop (error). Never a token: messages hold methods and Clarifai's texts."""

_T = TypeVar("_T")

_FATAL_GRPC = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})

#: Request fields that hold items with ids, whose replies carry a status per item.
_ITEM_FIELDS = ("inputs", "annotations")

#: Calls naming a resource below the app (a dataset, a dataset version, a job): their
#: CONN_DOES_NOT_EXIST may speak of that resource rather than of the app, so it is the
#: caller's to read, never "the app no longer exists".
_BELOW_APP = frozenset(
    {
        "GetDataset",
        "GetDatasetVersion",
        "GetInputsAddJob",
        "ListDatasetInputs",
        "ListDatasetVersions",
        "PostDatasetInputs",
        "PostDatasetVersions",
    }
)

#: The service every call goes to.
_SERVICE = "clarifai.api.V2"


@dataclass(slots=True)
class CallStats:
    """What the client did: calls sent, throttled replies, retries."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    """Requests sent again, whole or for some of their items."""
    transport_errors: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Verdicts:
    """What became of each item of a request: its final status, in the request's order.

    ``ok`` is true when every item succeeded (the common case, with no per-item work
    left to the caller).
    """

    statuses: list[Any]
    ok: bool


class _Again(Exception):
    """One attempt failed in a way that may pass: send the request again."""

    def __init__(self, reason: str, *, throttled: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.throttled = throttled


@dataclass(slots=True)
class _Budget:
    """How long one request may keep trying: ``max_attempts`` sends within ``retry_time``."""

    attempts: int
    seconds: float
    started: float = field(default_factory=time.monotonic)
    sent: int = 1

    def spent(self) -> bool:
        """True when no further send is allowed (counting the one just made)."""
        return self.sent >= self.attempts or time.monotonic() - self.started > self.seconds


class Client(AsyncResource):
    """A channel to Clarifai with auth, deadlines, pacing and retries.

    Use as an async context manager; :meth:`call` sends one request, :meth:`call_items`
    one request of items.
    """

    def __init__(self, config: Config, *, limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.limiter = limiter or RateLimiter(config.rps)
        self.stats = CallStats()
        self._channel: Any = None
        self._stub: Any = None
        self._light: dict[str, Any] = {}
        """Calls whose replies are read lightly (:data:`ingest.wire.LIGHT_REPLIES`)."""
        token = config.token or ""
        self._metadata = (("authorization", f"Key {token}"),)
        self._user_app_id = (
            resources_pb2.UserAppIDSet(user_id=config.user_id or "", app_id=config.app_id or "")
            if config.user_id or config.app_id
            else None
        )
        self._rng = random.Random()
        self._first = anyio.Lock()
        self._accepted = False
        self._stopping_items = 0

    async def __aenter__(self) -> Self:
        host, port, secure = self.config.endpoint
        if secure:
            base = host if port == 443 else f"{host}:{port}"
            self._channel = ClarifaiChannel.get_aio_grpc_channel(
                base, root_certificates_path=self.config.ca_file
            )
        else:
            self._channel = ClarifaiChannel.get_aio_insecure_grpc_channel(host, port)
        self._stub = service_pb2_grpc.V2Stub(self._channel)
        self._light = {
            method: self._channel.unary_unary(
                f"/{_SERVICE}/{method}",
                request_serializer=request.SerializeToString,
                response_deserializer=reply.FromString,
            )
            for method, (request, reply) in LIGHT_REPLIES.items()
        }
        return self

    async def aclose(self) -> None:
        """Close the channel, cancelling any call still in flight."""
        if self._channel is not None:
            channel, self._channel = self._channel, None
            with anyio.CancelScope(shield=True):
                await channel.close(grace=None)

    def prepare(self, request: Any) -> Any:
        """Put the app on a request when a PAT (user and app ids) is used."""
        if self._user_app_id is not None:
            request.user_app_id.CopyFrom(self._user_app_id)
        return request

    async def backoff(self, attempt: int) -> None:
        """Sleep before a request's retry number ``attempt + 1``: exponential with full
        jitter, up to ``Config.backoff_max``."""
        cap = min(self.config.backoff_max, self.config.backoff * (2**attempt))
        await anyio.sleep(self._rng.uniform(0, cap))

    async def call(self, method: str, request: Any, *, priority: Priority = Priority.DRAIN) -> Any:
        """Send ``request`` through ``method`` and return the reply.

        Whole-call failures that can pass are retried within the budget; the reply
        returned may still be MIXED_STATUS or FAILURE, with per-item statuses (use
        :meth:`call_items` to have those retried too).
        """
        return await self._one_at_first(self._call, method, request, priority)

    async def call_items(
        self, method: str, request: Any, *, priority: Priority = Priority.DRAIN
    ) -> Verdicts:
        """Send the items of ``request`` until each has a verdict; one status per item.

        An item whose status is worth retrying (:data:`~ingest.errors.RETRYABLE_CODES`)
        goes again in a request of just those items, within the same budget as the whole
        call's retries; past it, its last status is its verdict. Items are matched to
        the reply's by id; an item the reply does not list takes the reply's status.
        """
        return await self._one_at_first(self._call_items, method, request, priority)

    async def _one_at_first(
        self,
        send: Callable[[str, Any, Priority], Awaitable[_T]],
        method: str,
        request: Any,
        priority: Priority,
    ) -> _T:
        """Until one reply shows the service is there and takes the credentials, requests
        go one at a time: a bad key or a wrong base costs one call, not one per worker."""
        if self._stub is None:
            raise RuntimeError("Client is not open; use 'async with Client(config)'")
        if not self._accepted:
            async with self._first:
                if not self._accepted:
                    result = await send(method, request, priority)
                    self._accepted = True
                    return result
        return await send(method, request, priority)

    async def _call(self, method: str, request: Any, priority: Priority) -> Any:
        self.prepare(request)
        budget = _Budget(self.config.max_attempts, self.config.retry_time)
        while True:
            try:
                return await self._attempt(method, request, priority, budget)
            except _Again as again:
                await self._retry(method, budget, again)

    async def _call_items(self, method: str, request: Any, priority: Priority) -> Verdicts:
        self.prepare(request)
        name = next(f for f in _ITEM_FIELDS if f in request.DESCRIPTOR.fields_by_name)
        items = getattr(request, name)
        budget = _Budget(self.config.max_attempts, self.config.retry_time)
        statuses: list[Any] = [None] * len(items)
        todo = list(range(len(items)))
        sending = request
        while True:
            try:
                reply = await self._attempt(method, sending, priority, budget)
            except _Again as again:
                await self._retry(method, budget, again)
                continue
            if reply.status.code == sc.SUCCESS:
                if len(todo) == len(statuses):  # the common case: all at once
                    return Verdicts([reply.status] * len(statuses), ok=True)
                for i in todo:
                    statuses[i] = reply.status
                return Verdicts(statuses, ok=all(s.code == sc.SUCCESS for s in statuses))
            by_id = {item.id: item.status for item in getattr(reply, name)}
            retry: list[int] = []
            for i in todo:
                status = statuses[i] = by_id.get(items[i].id, reply.status)
                if status.code in RETRYABLE_CODES:
                    retry.append(i)
            if not retry:
                return Verdicts(statuses, ok=False)
            reason = describe(statuses[retry[0]])
            if budget.spent():
                log.warning(
                    "%s: %d item(s) still %s after %d attempts",
                    method,
                    len(retry),
                    reason,
                    budget.sent,
                )
                return Verdicts(statuses, ok=False)
            todo = retry
            sending = _subset(request, name, todo)
            await self._retry(method, budget, _Again(reason))

    async def _retry(self, method: str, budget: _Budget, again: _Again) -> None:
        """The retry decision: raise when the budget is spent, else wait for the next send
        (a backoff, or nothing after a throttled reply: the limiter already slowed down)."""
        if budget.spent():
            log.warning("%s: gave up after %d attempts (%s)", method, budget.sent, again.reason)
            raise RetriesExhaustedError(
                f"{method}: gave up after {budget.sent} attempts ({again.reason})"
            )
        self.stats.retries += 1
        if not again.throttled:
            await self.backoff(budget.sent - 1)
        budget.sent += 1

    async def _attempt(self, method: str, request: Any, priority: Priority, budget: _Budget) -> Any:
        """One send: pace, call, judge. Raises :class:`_Again` or the mapped error."""
        await self._pace(method, priority)
        started = time.monotonic()
        try:
            reply = await self._invoke(method, request)
        except grpc.aio.AioRpcError as exc:
            self.stats.transport_errors += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: gRPC %s (attempt %d)", method, exc.code().name, budget.sent)
            raise self._failure(method, exc) from None
        except _Again:
            self.stats.transport_errors += 1
            raise
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: %s in %.3f s (attempt %d)",
                method,
                sc.StatusCode.Name(reply.status.code),
                time.monotonic() - started,
                budget.sent,
            )
        self._judge(method, reply)
        return reply

    async def _pace(self, method: str, priority: Priority) -> None:
        """Wait for this request's turn in the shared budget; count it."""
        await self.limiter.acquire(priority)
        self.stats.requests += 1
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1

    async def _invoke(self, method: str, request: Any) -> Any:
        """One gRPC call with a deadline; cancellation cancels the call cleanly."""
        rpc = self._light.get(method) or getattr(self._stub, method)
        call = rpc(request, metadata=self._metadata, timeout=self.config.call_timeout)
        try:
            return await call
        except asyncio.CancelledError:
            call.cancel()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our own cancellation: let the cancel scope see it
            # grpc cancelled the call itself (channel closing): the connection failed
            raise _Again(f"{method}: call cancelled by the channel") from None

    def _failure(self, method: str, exc: grpc.aio.AioRpcError) -> Exception:
        """The error a failed gRPC call stands for: :class:`_Again` when it may pass."""
        code, details = exc.code(), exc.details() or ""
        if code in _FATAL_GRPC:
            return AuthError(
                f"{method}: the server refused the credentials ({code.name})", description=details
            )
        if code == grpc.StatusCode.UNAVAILABLE and not self._accepted:
            problem = _first_contact_problem(details, self.config)
            if problem is not None:
                return problem
        if code in RETRYABLE_GRPC:
            return _Again(f"{code.name}: {details}")
        return TransportError(f"{method}: {code.name}: {details}", description=details)

    def _judge(self, method: str, reply: Any) -> None:
        """Raise what a reply's status stands for; return when it is the caller's to read."""
        status = reply.status
        code = status.code
        if code == sc.SUCCESS or (code == sc.CONN_DOES_NOT_EXIST and method in _BELOW_APP):
            return
        if code in STOP_CODES and (code != sc.CONN_DOES_NOT_EXIST or self._accepted):
            raise _account_error(status)
        if code in FATAL_CODES:
            hint = FATAL_CODES[code]
            if code == sc.CONN_INSUFFICIENT_SCOPES:
                hint = scopes_hint(method)
            if "app external id" in status.details.lower():
                hint = PAT_WITHOUT_APP  # Clarifai's answer to a PAT sent without user_app_id
            raise AuthError(
                f"{hint} (Clarifai {sc.StatusCode.Name(code)}: {status.description})",
                code=code,
                description=status.description,
            )
        if code == sc.CONN_THROTTLED:
            self.stats.throttled += 1
            self.limiter.throttled()
            raise _Again(f"{sc.StatusCode.Name(code)}: {status.description}", throttled=True)
        if code in RETRYABLE_CODES:
            raise _Again(f"{sc.StatusCode.Name(code)}: {status.description}")
        self._count_stops(reply)

    def _count_stops(self, reply: Any) -> None:
        """Count the items that failed with a code no row can fix; stop past the bound."""
        fields = reply.DESCRIPTOR.fields_by_name
        for name in _ITEM_FIELDS:
            if name not in fields:
                continue
            for item in getattr(reply, name):
                if item.status.code in STOP_CODES and item.status.code != sc.CONN_DOES_NOT_EXIST:
                    self._stopping_items += 1
                    if self._stopping_items >= self.config.stop_after:
                        raise _account_error(item.status)


def _first_contact_problem(details: str, config: Config) -> ClarifaiError | None:
    """One sentence for a first call that reached no service, from gRPC's details.

    None when the details do not say so (a server that answered UNAVAILABLE itself is
    retried like any other transient failure).
    """
    host, port, secure = config.endpoint
    where = f"{host}:{port}"
    text = details.lower()
    if "errors resolving" in text or "dns resolution failed" in text:
        return UnreachableError(
            f"the host name {host} does not resolve; check the host in Config.base "
            "(or CLARIFAI_API_BASE) and this machine's name resolution",
            description=details,
        )
    tls = _tls_problem(details, host, port, config.ca_file) if secure else None
    if tls is not None:
        return TLSError(tls, description=details)
    if "failed to connect to all addresses" not in text:
        return None
    if not secure and ("socket closed" in text or "connection reset" in text):
        return TLSError(
            f"{where} closed the connection without a word: it speaks TLS, not plaintext; "
            f"use https://{where} in Config.base (and the server's CA file in Config.ca_file "
            "if a private authority signed its certificate)",
            description=details,
        )
    reason = "connection refused" if "connection refused" in text else details
    return UnreachableError(
        f"nothing answers at {where} ({reason}); check that the server runs there and "
        "that Config.base (or CLARIFAI_API_BASE) names it",
        description=details,
    )


def _tls_problem(details: str, host: str, port: int, ca_file: str | None) -> str | None:
    """One sentence for a failed TLS handshake, from gRPC's details; None if it is not one."""
    where = f"{host}:{port}"
    if "CERTIFICATE_VERIFY_FAILED" in details:
        trusted = f"the CA file {ca_file}" if ca_file else "the system's certificate authorities"
        return (
            f"the TLS certificate of {where} is not signed by a certificate authority in "
            f"{trusted}; give the right CA file in Config.ca_file (or "
            "CLARIFAI_ROOT_CERTIFICATES_PATH, or gRPC's GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)"
        )
    if "Hostname Verification" in details or "not in peer certificate" in details:
        return (
            f"the TLS certificate of {where} was not issued for the host name {host}; "
            "use a host name the certificate names in Config.base"
        )
    if "WRONG_VERSION_NUMBER" in details or "Tls handshake failed" in details:
        return (
            f"{where} does not answer TLS (a plaintext server?); for a plaintext server use "
            f"http://{where} in Config.base"
        )
    return None


def _subset(request: Any, name: str, keep: list[int]) -> Any:
    """A copy of ``request`` holding only the items at ``keep`` of its field ``name``."""
    sub = type(request)()
    for fd, value in request.ListFields():
        if fd.name == name:
            continue
        if fd.label == fd.LABEL_REPEATED:
            getattr(sub, fd.name).extend(value)
        elif fd.message_type is not None:
            getattr(sub, fd.name).CopyFrom(value)
        else:
            setattr(sub, fd.name, value)
    items = getattr(request, name)
    getattr(sub, name).extend(items[i] for i in keep)
    return sub


def _account_error(status: Any) -> AccountError:
    hint = STOP_CODES[status.code]
    log.error("the account stops the upload: Clarifai answers %s; %s", describe(status), hint)
    return AccountError(
        f"stopped: Clarifai answers {describe(status)}; {hint}, then run the same command "
        "again (the journal keeps what landed)",
        code=status.code,
        description=status.description,
    )


def describe(status: Any) -> str:
    """``CODE_NAME (number): description`` for a Clarifai status."""
    try:
        name = sc.StatusCode.Name(status.code)
    except ValueError:
        name = "UNKNOWN"
    text = status.description or ""
    if status.details:
        text = f"{text}: {status.details}" if text else status.details
    return f"{name} ({status.code}): {text}" if text else f"{name} ({status.code})"
