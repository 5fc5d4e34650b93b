"""The sandbox server: in-process as an async context manager, or in the foreground."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import anyio
import grpc
from anyio.abc import AsyncResource
from clarifai_grpc.grpc.api import service_pb2_grpc

from ingest.sandbox.checks import MAX_REQUEST_BYTES
from ingest.sandbox.hosting import DataHost
from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.servicer import Servicer
from ingest.sandbox.stats import Stats

__all__ = ["Sandbox"]


class Sandbox(AsyncResource):
    """A local Clarifai-compatible gRPC server.

    ::

        async with Sandbox(SandboxOptions(rps=15)) as sb:
            print(sb.base_url)   # http://127.0.0.1:PORT

    With ``tls=True`` it serves TLS with a certificate for ``options.tls_hosts`` issued
    at start by a throw-away certificate authority, whose certificate is written to
    :attr:`ca_file` (removed at stop); ``base_url`` is then ``https://...``.
    """

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self.servicer = Servicer(self.options)
        self._server: Any = None
        self._data_host: DataHost | None = None
        self.port = 0
        self.data_url = ""
        """``http://host:port`` of the data host (hosted input bytes, exports) while it
        serves; "" with ``data_host=False``."""
        self.ca_file: Path | None = None
        """The CA certificate (PEM) that signed the server's, while serving TLS."""

    @property
    def address(self) -> str:
        """``host:port`` once started."""
        return f"{self.options.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port`` (``https://`` with TLS): what ``ingest upload --base`` takes."""
        host = self.options.host
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return f"{'https' if self.options.tls else 'http'}://{host}:{self.port}"

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

    @property
    def apps(self) -> list[str]:
        """Ids of the user's apps, in the order they were made (``options.app_id`` first,
        unless deleted)."""
        return list(self.servicer.apps.by_id)

    @property
    def input_annotations(self) -> dict[str, Any]:
        """The input-level annotations PostInputs made from concepts, by input id (a snapshot).

        Apart from :attr:`annotations`, which hold what PostAnnotations made; ListAnnotations
        returns both. With ``store=False`` the values are only the ids.
        """
        return dict(self.servicer.state.input_annotations)

    async def start(self) -> None:
        """Bind and start serving; OSError when the address cannot be bound."""
        self._server = grpc.aio.server(
            options=[
                # requests must be under 128 MB: larger ones fail RESOURCE_EXHAUSTED
                ("grpc.max_receive_message_length", MAX_REQUEST_BYTES - 1),
                ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        service_pb2_grpc.add_V2Servicer_to_server(self.servicer, self._server)
        where = f"{self.options.host}:{self.options.port}"
        try:
            if self.options.tls:
                self.port = self._server.add_secure_port(where, self._tls_credentials())
            else:
                self.port = self._server.add_insecure_port(where)
        except RuntimeError as exc:  # grpc's way of saying the address is taken
            self._server = None
            self._forget_ca()
            raise OSError(f"cannot listen on {where}: address in use or not available") from exc
        if not self.port:
            self._server = None
            self._forget_ca()
            raise OSError(f"cannot listen on {where}")
        await self._server.start()
        if self.options.data_host:
            self._data_host = DataHost(self.options, self.servicer.apps)
            self.data_url = await self._data_host.start()
            self.servicer.apps.host_at(self.data_url)

    def _tls_credentials(self) -> Any:
        """Issue a server certificate from a new CA; write the CA's certificate out."""
        import trustme  # only when serving TLS

        ca = trustme.CA()
        cert = ca.issue_cert(*self.options.tls_hosts)
        folder = Path(tempfile.mkdtemp(prefix="ingest-sandbox-tls-"))
        self.ca_file = folder / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        return grpc.ssl_server_credentials([(cert.private_key_pem.bytes(), chain)])

    def _forget_ca(self) -> None:
        if self.ca_file is not None:
            shutil.rmtree(self.ca_file.parent, ignore_errors=True)
            self.ca_file = None

    async def stop(self, grace: float | None = 0.5) -> None:
        """Stop serving (calls in flight get ``grace`` seconds); dump stats if asked to."""
        if self._server is not None:
            server, self._server = self._server, None
            with anyio.CancelScope(shield=True):
                await server.stop(grace)
                if self._data_host is not None:
                    await self._data_host.stop()
                    self._data_host, self.data_url = None, ""
            self._forget_ca()
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

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def aclose(self) -> None:
        """:meth:`stop` (``async with`` does it on leaving the block)."""
        await self.stop()
