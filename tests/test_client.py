"""The client's retry decisions and first contact, against the sandbox over loopback (and,
for what the sandbox cannot produce, a scripted gRPC server)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import grpc
import pytest
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest import (
    ClarifaiError,
    Config,
    RetriesExhaustedError,
    TLSError,
    TransportError,
    UnreachableError,
)
from ingest.client import Client
from ingest.sandbox import Sandbox, SandboxOptions

pytestmark = pytest.mark.anyio


def _record_backoffs(client: Client, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the client's backoff with one that records its attempt and returns at once."""
    attempts: list[int] = []

    async def backoff(attempt: int) -> None:
        attempts.append(attempt)

    monkeypatch.setattr(client, "backoff", backoff)
    return attempts


async def test_a_throttled_reply_is_sent_again_without_a_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the server allows 2 requests/s, the client starts at 50: replies come back throttled,
    # and the client waits on its (lowered) rate, not on a backoff
    async with Sandbox(SandboxOptions(rps=2)) as sb:
        config = Config(api_key="sandbox-key", base=sb.base_url, rps=50)
        async with Client(config) as client:
            backoffs = _record_backoffs(client, monkeypatch)
            for _ in range(4):
                reply = await client.call("GetApp", service_pb2.GetAppRequest())
                assert reply.status.code == sc.SUCCESS
    assert sb.stats.throttled >= 1
    assert client.stats.throttled == sb.stats.throttled
    assert client.stats.retries == client.stats.throttled
    assert backoffs == []


async def test_other_retryable_failures_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # every call answers UNAVAILABLE (the channel's own retries included): each of the
    # client's attempts but the last is followed by a backoff
    async with Sandbox(SandboxOptions(rps=0, unavailable_rate=1.0)) as sb:
        config = Config(api_key="sandbox-key", base=sb.base_url, max_attempts=3)
        async with Client(config) as client:
            backoffs = _record_backoffs(client, monkeypatch)
            with pytest.raises(RetriesExhaustedError, match="gave up after 3 attempts"):
                await client.call("GetApp", service_pb2.GetAppRequest())
    assert backoffs == [0, 1]
    assert (client.stats.requests, client.stats.retries, client.stats.throttled) == (3, 2, 0)


async def test_calls_are_logged_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    """Each call at debug level, the give-up as a warning; the key appears nowhere."""
    async with Sandbox(SandboxOptions(rps=0, unavailable_rate=1.0)) as sb:
        config = Config(api_key="sandbox-key", base=sb.base_url, max_attempts=2, backoff=0.01)
        with caplog.at_level(logging.DEBUG, logger="ingest"):
            async with Client(config) as client:
                with pytest.raises(RetriesExhaustedError):
                    await client.call("GetApp", service_pb2.GetAppRequest())
    mine = [r for r in caplog.records if r.name == "ingest.client"]
    assert [r.getMessage() for r in mine if r.levelno == logging.DEBUG] == [
        "GetApp: gRPC UNAVAILABLE (attempt 1)",
        "GetApp: gRPC UNAVAILABLE (attempt 2)",
    ]
    [gave_up] = [r for r in mine if r.levelno == logging.WARNING]
    assert gave_up.getMessage().startswith("GetApp: gave up after 2 attempts (UNAVAILABLE")
    assert not any("sandbox-key" in r.getMessage() for r in caplog.records)


# -- per-item retries: what the sandbox cannot produce, from a scripted server -------------


class _Scripted(service_pb2_grpc.V2Servicer):  # type: ignore[misc]
    """A V2 server whose PostInputs replies come from ``script``, one per call (the last
    one repeats); it records the ids each call carried. The sandbox never answers an item
    with a status worth retrying, nor a gRPC failure no retry fixes: this does."""

    def __init__(self, *script: Callable[[Any, Any], Awaitable[Any]]) -> None:
        self.script = list(script)
        self.calls: list[list[str]] = []

    async def PostInputs(self, request: Any, context: Any) -> Any:
        self.calls.append([i.id for i in request.inputs])
        answer = self.script[min(len(self.calls), len(self.script)) - 1]
        return await answer(request, context)


def _items(**codes: int) -> Callable[[Any, Any], Awaitable[Any]]:
    """A reply giving each input id its code (SUCCESS for those not named)."""

    async def answer(request: Any, context: Any) -> Any:
        reply = service_pb2.MultiInputResponse()
        given = [codes.get(i.id, sc.SUCCESS) for i in request.inputs]
        ok = all(c == sc.SUCCESS for c in given)
        reply.status.code = sc.SUCCESS if ok else sc.MIXED_STATUS
        for inp, code in zip(request.inputs, given, strict=True):
            item = reply.inputs.add(id=inp.id)
            item.status.code = code
        return reply

    return answer


async def _busy(request: Any, context: Any) -> Any:
    """The whole call refused for now (Clarifai's status: gRPC's UNAVAILABLE would be
    retried by the channel itself first)."""
    reply = service_pb2.MultiInputResponse()
    reply.status.code = sc.RPC_SERVER_UNAVAILABLE
    return reply


async def _invalid(request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "scripted: no such thing")


@asynccontextmanager
async def _serving(servicer: _Scripted, **options: Any) -> AsyncIterator[Client]:
    server = grpc.aio.server()
    service_pb2_grpc.add_V2Servicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        values: dict[str, Any] = {"api_key": "k", "base": f"http://127.0.0.1:{port}"}
        values.update(backoff=0.01, backoff_max=0.02, **options)
        async with Client(Config(**values)) as client:
            yield client
    finally:
        await server.stop(None)


def _request(*ids: str) -> Any:
    request = service_pb2.PostInputsRequest()
    for input_id in ids:
        request.inputs.add(id=input_id).data.image.url = f"https://x/{input_id}.jpg"
    return request


async def test_items_worth_retrying_go_again_alone_until_each_has_a_verdict() -> None:
    servicer = _Scripted(_items(b=sc.TRY_AGAIN, c=sc.INPUT_INVALID_ARGUMENT), _items())
    with anyio.fail_after(30):
        async with _serving(servicer) as client:
            verdicts = await client.call_items("PostInputs", _request("a", "b", "c"))
    assert servicer.calls == [["a", "b", "c"], ["b"]]  # only the item that may succeed
    assert [s.code for s in verdicts.statuses] == [
        sc.SUCCESS,
        sc.SUCCESS,
        sc.INPUT_INVALID_ARGUMENT,
    ]
    assert not verdicts.ok
    assert (client.stats.requests, client.stats.retries) == (2, 1)


async def test_whole_call_and_item_retries_share_one_budget_of_attempts() -> None:
    # a busy server, then an item that keeps asking to be sent again: three sends in all
    servicer = _Scripted(_busy, _items(b=sc.TRY_AGAIN))
    with anyio.fail_after(30):
        async with _serving(servicer, max_attempts=3) as client:
            verdicts = await client.call_items("PostInputs", _request("a", "b"))
    assert servicer.calls == [["a", "b"], ["a", "b"], ["b"]]
    assert [s.code for s in verdicts.statuses] == [sc.SUCCESS, sc.TRY_AGAIN]
    assert client.stats.retries == 2


async def test_the_retry_time_budget_ends_per_item_retries() -> None:
    """Thousands of attempts allowed, a fraction of a second to spend: the item gets its
    last status as its verdict once the time is up, long before the attempts are."""
    servicer = _Scripted(_items(b=sc.RPC_SERVER_UNAVAILABLE))
    with anyio.fail_after(30):  # without the time budget, 10,000 sends take minutes
        async with _serving(servicer, max_attempts=10_000, retry_time=0.3) as client:
            verdicts = await client.call_items("PostInputs", _request("a", "b"))
    assert [s.code for s in verdicts.statuses] == [sc.SUCCESS, sc.RPC_SERVER_UNAVAILABLE]
    assert 2 <= len(servicer.calls) < 10_000
    assert all(ids == ["b"] for ids in servicer.calls[1:])
    assert client.stats.retries == len(servicer.calls) - 1


async def test_a_grpc_failure_no_retry_fixes_raises_transport_error_at_once() -> None:
    servicer = _Scripted(_invalid)
    with anyio.fail_after(30):
        async with _serving(servicer) as client:
            with pytest.raises(TransportError, match="INVALID_ARGUMENT") as info:
                await client.call("PostInputs", _request("a"))
    assert type(info.value) is TransportError
    assert len(servicer.calls) == 1 and client.stats.retries == 0


# -- first contact ---------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _first_call(config: Config) -> tuple[BaseException, float, Client]:
    started = time.monotonic()
    async with Client(config) as client:
        with pytest.raises(ClarifaiError) as info:
            await client.call("GetApp", service_pb2.GetAppRequest())
    return info.value, time.monotonic() - started, client


async def test_nothing_listening_fails_the_first_call_at_once_with_host_and_port() -> None:
    port = _closed_port()
    with anyio.fail_after(30):
        error, took, client = await _first_call(
            Config(api_key="k", base=f"http://127.0.0.1:{port}")
        )
    assert type(error) is UnreachableError
    assert str(error).startswith(f"nothing answers at 127.0.0.1:{port} (connection refused);")
    assert "Config.base" in str(error)
    assert took < 10 and client.stats.requests == 1


async def test_a_host_name_that_does_not_resolve_fails_the_first_call_at_once() -> None:
    with anyio.fail_after(30):
        error, took, client = await _first_call(
            Config(api_key="k", base="https://clarifai.invalid:8443")
        )
    assert type(error) is UnreachableError
    assert "the host name clarifai.invalid does not resolve" in str(error)
    assert took < 10 and client.stats.requests == 1


async def test_plaintext_to_a_tls_server_says_it_speaks_tls() -> None:
    with anyio.fail_after(30):
        async with Sandbox(SandboxOptions(rps=0, tls=True)) as sb:
            error, took, client = await _first_call(
                Config(api_key="sandbox-key", base=f"http://127.0.0.1:{sb.port}")
            )
    assert type(error) is TLSError
    assert f"127.0.0.1:{sb.port} closed the connection without a word: it speaks TLS" in str(error)
    assert f"use https://127.0.0.1:{sb.port} in Config.base" in str(error)
    assert took < 10 and client.stats.requests == 1


async def test_a_server_that_goes_away_mid_run_is_retried() -> None:
    """Once the service has answered, a lost connection is a transient fault."""
    with anyio.fail_after(30):
        async with Sandbox(SandboxOptions(rps=0)) as sb:
            config = Config(api_key="sandbox-key", base=sb.base_url, max_attempts=3)
            client = Client(config)
            await client.__aenter__()
            reply = await client.call("GetApp", service_pb2.GetAppRequest())
            assert reply.status.code == sc.SUCCESS
        try:  # the sandbox has stopped: nothing listens any more
            with pytest.raises(RetriesExhaustedError, match="gave up after 3 attempts"):
                await client.call("GetApp", service_pb2.GetAppRequest())
        finally:
            await client.aclose()
    assert (client.stats.requests, client.stats.retries) == (4, 2)
