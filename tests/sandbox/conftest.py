"""A sandbox on a free loopback port and a clarifai-grpc stub talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2_grpc

from ingest.sandbox import Sandbox, SandboxOptions

PAT = (("authorization", "Key sandbox-pat"),)
KEY = (("authorization", "Key sandbox-key"),)
APP = resources_pb2.UserAppIDSet(user_id="sandbox", app_id="sandbox-app")


class SandboxStub:
    """A stub with the sandbox's PAT and app filled in."""

    def __init__(self, sb: Sandbox, channel: Any) -> None:
        self.sb = sb
        self.stub = service_pb2_grpc.V2Stub(channel)

    async def __call__(self, method: str, request: Any, metadata: Any = PAT) -> Any:
        if metadata is PAT and hasattr(request, "user_app_id"):
            request.user_app_id.CopyFrom(APP)
        return await getattr(self.stub, method)(request, metadata=metadata, timeout=10)


@asynccontextmanager
async def connect(**options: Any) -> AsyncIterator[SandboxStub]:
    defaults: dict[str, Any] = {"rps": 0, "processing": (0.01, 0.03)}
    defaults.update(options)
    async with Sandbox(SandboxOptions(**defaults)) as sb:
        channel = ClarifaiChannel.get_aio_insecure_grpc_channel(sb.options.host, sb.port)
        try:
            yield SandboxStub(sb, channel)
        finally:
            await channel.close()


@pytest.fixture
def sandbox() -> Callable[..., Any]:
    """``async with sandbox(rps=15) as call: await call("PostInputs", request)``."""
    return connect
