"""The one client layer every call goes through.

It owns the gRPC aio channel (made by the ClarifaiChannel helpers), the auth
metadata, a deadline on every call, the shared rate limiter and the retry policy:
exponential backoff with full jitter on retryable codes and transport failures,
bounded in attempts and in time. Fatal codes (bad key, missing scopes, unknown
app) raise :class:`~ingest.errors.AuthError` at once. Codes no row can fix (an input
quota reached, an hourly limit, a feature outside the plan, the app deleted mid-run)
raise :class:`~ingest.errors.AccountError`: at once when a whole call fails with one,
after ``config.stop_after`` items when they come item by item. A TLS handshake that
fails on the first call (untrusted certificate, wrong host name, plaintext server)
raises :class:`~ingest.errors.TLSError` instead of being retried.

Per-item retries inside a MIXED_STATUS reply belong to the stages, which know
their items; they use :meth:`Client.backoff` and :func:`is_retryable`.

The Clarifai facts this relies on (the channel helpers, auth metadata, which codes come
inside a normal reply, which are worth retrying) are in ``docs/clarifai-facts.md``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
import grpc
from anyio.abc import AsyncResource
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.config import Config
from ingest.errors import (
    FATAL_CODES,
    RETRYABLE_CODES,
    STOP_CODES,
    AccountError,
    AuthError,
    RetriesExhaustedError,
    TLSError,
    TransportError,
    scopes_hint,
)
from ingest.ratelimit import Priority, RateLimiter

__all__ = ["CallStats", "Client", "describe", "is_retryable"]

log = logging.getLogger("ingest.client")
"""Each call at debug level (method, status, attempt); retries given up (warning) and an
account-level stop (error). Never a token: messages hold methods and Clarifai's texts."""

_RETRYABLE_GRPC = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)
_FATAL_GRPC = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


#: Reply fields that carry per-item statuses.
_ITEM_FIELDS = ("inputs", "annotations")


def _tls_problem(details: str, host: str, port: int, ca_file: str | None) -> str | None:
    """One sentence for a failed TLS handshake, from gRPC's details; None if it is not one."""
    where = f"{host}:{port}"
    if "CERTIFICATE_VERIFY_FAILED" in details:
        trusted = f"the CA file {ca_file}" if ca_file else "the system's certificate authorities"
        return (
            f"the TLS certificate of {where} is not signed by a certificate authority in "
            f"{trusted}; give the right CA file with --ca-file "
            "(or GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)"
        )
    if "Hostname Verification" in details or "not in peer certificate" in details:
        return (
            f"the TLS certificate of {where} was not issued for the host name {host}; "
            "use a host name the certificate names in --base"
        )
    if "WRONG_VERSION_NUMBER" in details or "Tls handshake failed" in details:
        return (
            f"{where} does not answer TLS (a plaintext server?); for a plaintext server use "
            f"http://{where} in --base"
        )
    return None


def is_retryable(code: int) -> bool:
    """True for Clarifai status codes worth sending again after a pause."""
    return code in RETRYABLE_CODES


@dataclass(slots=True)
class CallStats:
    """What the client did: calls sent, throttled replies, retries."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0
    transport_errors: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


class Client(AsyncResource):
    """A channel to Clarifai with auth, deadlines, pacing and retries.

    Use as an async context manager; :meth:`call` sends one request.
    """

    def __init__(self, config: Config, *, limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.limiter = limiter or RateLimiter(config.rps)
        self.stats = CallStats()
        self._channel: Any = None
        self._stub: Any = None
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
        """Sleep before attempt ``attempt + 1``: exponential with full jitter."""
        cap = min(self.config.backoff_max, self.config.backoff * (2**attempt))
        await anyio.sleep(self._rng.uniform(0, cap))

    async def _invoke(self, method: str, request: Any) -> Any:
        """One gRPC call with a deadline; cancellation cancels the call cleanly."""
        rpc = getattr(self._stub, method)
        call = rpc(request, metadata=self._metadata, timeout=self.config.call_timeout)
        try:
            return await call
        except asyncio.CancelledError:
            call.cancel()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our own cancellation: let the cancel scope see it
            # grpc cancelled the call itself (channel closing): a transport failure
            raise TransportError(f"{method}: call cancelled by the channel") from None

    async def call(self, method: str, request: Any, *, priority: Priority = Priority.DRAIN) -> Any:
        """Send ``request`` through ``method`` and return the reply.

        Whole-call failures that can pass (throttling, server busy, transport
        unavailable, deadline) are retried with backoff; the reply returned may
        still be MIXED_STATUS or FAILURE, with per-item statuses for the caller.
        """
        if self._stub is None:
            raise RuntimeError("Client is not open; use 'async with Client(config)'")
        if not self._accepted:
            # until one reply shows the credentials are good, calls go one at a time:
            # a bad key costs one call, not one per worker
            async with self._first:
                if not self._accepted:
                    reply = await self._call(method, request, priority)
                    self._accepted = True
                    return reply
        return await self._call(method, request, priority)

    async def _call(self, method: str, request: Any, priority: Priority) -> Any:
        self.prepare(request)
        started = time.monotonic()
        attempt = 0
        while True:
            throttled = False  # a throttled reply waits on the limiter, not on a backoff
            await self.limiter.acquire(priority)
            self.stats.requests += 1
            self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
            try:
                reply = await self._invoke(method, request)
            except grpc.aio.AioRpcError as exc:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s: gRPC %s (attempt %d)", method, exc.code().name, attempt + 1)
                code = exc.code()
                self.stats.transport_errors += 1
                if code in _FATAL_GRPC:
                    raise AuthError(
                        f"{method}: the server refused the credentials ({code.name})",
                        code=0,
                        description=exc.details() or "",
                    ) from None
                if code == grpc.StatusCode.UNAVAILABLE and not self._accepted:
                    host, port, secure = self.config.endpoint
                    problem = (
                        _tls_problem(exc.details() or "", host, port, self.config.ca_file)
                        if secure
                        else None
                    )
                    if problem is not None:
                        raise TLSError(problem, description=exc.details() or "") from None
                if code not in _RETRYABLE_GRPC:
                    raise TransportError(
                        f"{method}: {code.name}: {exc.details()}", description=exc.details() or ""
                    ) from None
                reason = f"{code.name}: {exc.details()}"
            except TransportError as exc:
                self.stats.transport_errors += 1
                reason = str(exc)
            else:
                status = reply.status
                if log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "%s: %s in %.3f s (attempt %d)",
                        method,
                        sc.StatusCode.Name(status.code),
                        time.monotonic() - started,
                        attempt + 1,
                    )
                if status.code in STOP_CODES and (
                    status.code != sc.CONN_DOES_NOT_EXIST or self._accepted
                ):
                    raise _account_error(status)
                if status.code in FATAL_CODES:
                    hint = FATAL_CODES[status.code]
                    if status.code == sc.CONN_INSUFFICIENT_SCOPES:
                        hint = scopes_hint(method)
                    if "app external id" in status.details.lower():
                        # Clarifai's answer to a PAT sent without user_app_id
                        hint = "a personal access token needs --user-id and --app-id"
                    raise AuthError(
                        f"{hint} "
                        f"(Clarifai {sc.StatusCode.Name(status.code)}: {status.description})",
                        code=status.code,
                        description=status.description,
                    )
                if status.code == sc.CONN_THROTTLED:
                    throttled = True
                    self.stats.throttled += 1
                    self.limiter.throttled()
                elif status.code not in RETRYABLE_CODES:
                    if status.code != sc.SUCCESS:
                        self._count_stops(reply)
                    return reply
                reason = f"{sc.StatusCode.Name(status.code)}: {status.description}"
            attempt += 1
            if (
                attempt >= self.config.max_attempts
                or time.monotonic() - started > self.config.retry_time
            ):
                log.warning("%s: gave up after %d attempts (%s)", method, attempt, reason)
                raise RetriesExhaustedError(
                    f"{method}: gave up after {attempt} attempts ({reason})"
                )
            self.stats.retries += 1
            if not throttled:
                await self.backoff(attempt - 1)

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
