"""The sandbox server: in-process as an async context manager, or in the foreground."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import anyio
import grpc
from clarifai_grpc.grpc.api import service_pb2_grpc

from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.servicer import Servicer
from ingest.sandbox.stats import Stats

__all__ = ["Sandbox"]


class Sandbox:
    """A local Clarifai-compatible gRPC server.

    ::

        async with Sandbox(SandboxOptions(rps=15)) as sb:
            print(sb.base_url)   # http://127.0.0.1:PORT
    """

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.servicer = Servicer(self.options)
        self._server: Any = None
        self.port = 0

    @property
    def address(self) -> str:
        """``host:port`` once started."""
        return f"{self.options.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port``: what ``ingest upload --base`` takes."""
        return f"http://{self.address}"

    @property
    def stats(self) -> Stats:
        """Live counters (the same object throughout the run)."""
        return self.servicer.stats

    @property
    def inputs(self) -> dict[str, Any]:
        """Stored inputs of the app by id, insertion order, each with its current status.

        A fresh snapshot on every access (O(inputs)): read it once per check.
        """
        state = self.servicer.state
        return {i: state.render(s) for i, s in state.inputs.items()}

    @property
    def annotations(self) -> dict[str, Any]:
        """Stored annotations of the app by id, insertion order (a snapshot).

        With ``store=False`` the values are only the ids.
        """
        return dict(self.servicer.state.annotations)

    async def start(self) -> None:
        """Bind and start serving; OSError when the address cannot be bound."""
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                ("grpc.max_send_message_length", 256 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ]
        )
        service_pb2_grpc.add_V2Servicer_to_server(self.servicer, self._server)
        where = f"{self.options.host}:{self.options.port}"
        try:
            self.port = self._server.add_insecure_port(where)
        except RuntimeError as exc:  # grpc's way of saying the address is taken
            self._server = None
            raise OSError(f"cannot listen on {where}: address in use or not available") from exc
        if not self.port:
            self._server = None
            raise OSError(f"cannot listen on {where}")
        await self._server.start()

    async def stop(self, grace: float | None = 0.5) -> None:
        """Stop serving (calls in flight get ``grace`` seconds); dump stats if asked to."""
        if self._server is not None:
            server, self._server = self._server, None
            with anyio.CancelScope(shield=True):
                await server.stop(grace)
            if self.options.stats_path:
                self.dump_stats(self.options.stats_path)

    def dump_stats(self, path: str) -> None:
        """Write the statistics so far to ``path`` as JSON."""
        self.stats.dump(path)

    async def wait_processed(self) -> None:
        """Return once no input is pending, leaving aside stuck ones that never finish.

        Inputs finish on a schedule fixed when they are created, so this sleeps until
        the latest such time (inputs added meanwhile push it back) without scanning.
        """
        state = self.servicer.state
        due = 0.0
        while due < state.last_due:  # inputs added while asleep push the time back
            due = state.last_due
            await anyio.sleep(max(0.0, due - time.monotonic()))

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
