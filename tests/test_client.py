"""The client's retry decisions, against the sandbox over loopback."""

from __future__ import annotations

import logging

import pytest
from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest import Config, RetriesExhaustedError
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
