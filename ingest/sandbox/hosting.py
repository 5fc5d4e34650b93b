"""The data host: the bytes of inputs, and dataset exports, over plain HTTP.

Clarifai answers a listed input that was uploaded as bytes with the URL its copy is
hosted at (``data.image.url`` and ``data.image.hosted``: prefix, suffix, sizes), never
with the bytes; the SDK downloads them from there with the caller's key in an
``Authorization: Key ...`` header (``Inputs.download_inputs``, the dataset export).
This module serves the same on the sandbox's host, on a port of its own:

- ``GET /orig/users/<user>/apps/<app>/inputs/<kind>/<input id>``: the input's bytes;
- ``GET /exports/users/<user>/apps/<app>/datasets/<d>/versions/<v>/clarifai-data-protobuf.zip``:
  a version's export (``application/zip``).

A request without a known key answers 401, anything unknown 404. One request per
connection (``Connection: close``); only GET and HEAD.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.rpc import Apps
from ingest.sandbox.state import KINDS, blob_of

__all__ = ["DataHost"]

_TYPES = {"image": "image/png", "video": "video/mp4", "audio": "audio/mpeg", "text": "text/plain"}
"""Content types by kind (the bytes are served as stored; the type is a guess)."""
_HEAD_LIMIT = 16 * 1024
"""Longest request head read."""


class DataHost:
    """An HTTP/1.1 server (asyncio streams) over the apps' inputs and exports."""

    def __init__(self, options: SandboxOptions, apps: Apps) -> None:
        self.options = options
        self.apps = apps
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        """Listen on ``options.host``, a free port; the prefix URLs start with."""
        self._server = await asyncio.start_server(self._serve, self.options.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        host = self.options.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        lines = head[:_HEAD_LIMIT].decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status, ctype, body = self._answer(method, path, headers.get("authorization", ""))
        reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
        writer.write(
            (
                f"HTTP/1.1 {status} {reason[status]}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode("latin-1")
        )
        if method != "HEAD":
            writer.write(body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _answer(self, method: str, path: str, authorization: str) -> tuple[int, str, bytes]:
        """``(status, content type, body)`` for one request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET and HEAD\n"
        opts = self.options
        token = authorization[4:] if authorization.startswith("Key ") else ""
        if token not in (*opts.pats, *opts.api_keys, *opts.scoped_keys):
            return 401, "application/json", b'{"status": {"code": 11008}}\n'
        parts = path.strip("/").split("/")
        found: Any = None
        if len(parts) == 8 and parts[:2] == ["orig", "users"] and parts[3] == "apps":
            found = self._input_bytes(parts[4], parts[6], parts[7])
            ctype = _TYPES.get(parts[6], "application/octet-stream")
        elif len(parts) == 10 and parts[:2] == ["exports", "users"] and parts[3] == "apps":
            found = self._export(parts[4], parts[6], parts[8])
            ctype = "application/zip"
        if found is None or parts[2] != opts.user_id:
            return 404, "text/plain", b"not found\n"
        return 200, ctype, found

    def _input_bytes(self, app_id: str, kind: str, input_id: str) -> bytes | None:
        state = self.apps.get(app_id)
        stored = state.inputs.get(input_id) if state is not None else None
        if stored is None or kind not in KINDS:
            return None
        return blob_of(kind, getattr(stored.message.data, kind)) or None

    def _export(self, app_id: str, dataset_id: str, version_id: str) -> bytes | None:
        state = self.apps.get(app_id)
        if state is None:
            return None
        version = state.versions.get(dataset_id, {}).get(version_id)
        return None if version is None else version.archive
