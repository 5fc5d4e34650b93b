"""A logging gRPC proxy: which V2 RPCs does a client make, with which fields?

It listens on a loopback port, forwards every unary call of the V2 service to an upstream
server (the sandbox) with the caller's metadata, and records per call: the method, the
request fields that were set (as dotted paths, ``[]`` for repeated), the reply's status code
(or the gRPC error) and the reply fields that were set. Methods the upstream lacks come back
UNIMPLEMENTED and are recorded as such, so one run lists everything a client needs.

Used to trace the official SDK (see :mod:`benchmarks.peers.sdk` ``--trace``); it does not
import ingest, only grpcio and clarifai-grpc::

    with TraceProxy("127.0.0.1:PORT") as proxy:
        ...point the client at proxy.base_url...
    proxy.calls        # list of dicts
    proxy.summary()    # per method: count, request fields, reply codes, reply fields
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent import futures
from typing import Any

__all__ = ["TraceProxy", "field_paths"]

_WELL_KNOWN = "google.protobuf."


def field_paths(message: Any, prefix: str = "", out: set[str] | None = None) -> set[str]:
    """Dotted paths of the fields set in ``message`` (repeated fields as ``name[]``).

    Well-known types (Struct, Timestamp...) are not descended into."""
    from google.protobuf.descriptor import FieldDescriptor

    out = set() if out is None else out
    for fd, value in message.ListFields():
        path = f"{prefix}{fd.name}"
        is_repeated = (
            fd.is_repeated
            if hasattr(fd, "is_repeated")  # protobuf >= 5.28; `label` is gone in 7
            else fd.label == FieldDescriptor.LABEL_REPEATED
        )
        is_message = fd.type == FieldDescriptor.TYPE_MESSAGE
        if is_message and fd.message_type.GetOptions().map_entry:
            out.add(f"{path}{{}}")
            continue
        if not is_message or fd.message_type.full_name.startswith(_WELL_KNOWN):
            out.add(f"{path}[]" if is_repeated else path)
            continue
        if is_repeated:
            if not value:
                continue
            for item in value:
                before = len(out)
                field_paths(item, f"{path}[].", out)
                if len(out) == before:
                    out.add(f"{path}[]")
        else:
            before = len(out)
            field_paths(value, f"{path}.", out)
            if len(out) == before:
                out.add(path)
    return out


class TraceProxy:
    """A threaded grpc server forwarding V2 calls to ``upstream`` (``host:port``)."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1", timeout: float = 120.0) -> None:
        self.upstream = upstream
        self.host = host
        self.timeout = timeout
        self.port = 0
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self._channel: Any = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        import grpc
        from clarifai_grpc.grpc.api import service_pb2
        from google.protobuf import message_factory

        service = service_pb2.DESCRIPTOR.services_by_name["V2"]
        self._channel = grpc.insecure_channel(
            self.upstream,
            options=[
                ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                ("grpc.max_send_message_length", 256 * 1024 * 1024),
            ],
        )
        proxy = self

        class Handler(grpc.GenericRpcHandler):  # type: ignore[misc]
            def service(self, details: Any) -> Any:
                full = details.method  # /clarifai.api.V2/PostInputs
                name = full.rsplit("/", 1)[-1]
                method = service.methods_by_name.get(name)
                if method is None or method.client_streaming or method.server_streaming:
                    return None
                req_cls = message_factory.GetMessageClass(method.input_type)
                rep_cls = message_factory.GetMessageClass(method.output_type)
                forward = proxy._channel.unary_unary(
                    full,
                    request_serializer=req_cls.SerializeToString,
                    response_deserializer=rep_cls.FromString,
                )

                def handle(request: Any, context: Any) -> Any:
                    metadata = tuple(
                        (k, v)
                        for k, v in (context.invocation_metadata() or ())
                        if not k.startswith("grpc-") and k != "user-agent"
                    )
                    record: dict[str, Any] = {
                        "method": name,
                        "request_fields": sorted(field_paths(request)),
                        "metadata_keys": sorted({k for k, _ in metadata}),
                    }
                    try:
                        reply = forward(request, metadata=metadata, timeout=proxy.timeout)
                    except grpc.RpcError as exc:
                        record["grpc_error"] = exc.code().name
                        with proxy._lock:
                            proxy.calls.append(record)
                        context.abort(exc.code(), exc.details() or "")
                    record["reply_code"] = reply.status.code if hasattr(reply, "status") else None
                    record["reply_fields"] = sorted(field_paths(reply))
                    with proxy._lock:
                        proxy.calls.append(record)
                    return reply

                return grpc.unary_unary_rpc_method_handler(
                    handle,
                    request_deserializer=req_cls.FromString,
                    response_serializer=rep_cls.SerializeToString,
                )

        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32),
            options=[
                ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                ("grpc.max_send_message_length", 256 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        self._server.add_generic_rpc_handlers((Handler(),))
        self.port = self._server.add_insecure_port(f"{self.host}:0")
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=0.5).wait()
            self._server = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> TraceProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def summary(self) -> dict[str, Any]:
        """Per method, in order of first call: calls, fields set, reply codes/errors."""
        out: dict[str, Any] = {}
        with self._lock:
            calls = list(self.calls)
        for call in calls:
            entry = out.setdefault(
                call["method"],
                {
                    "calls": 0,
                    "request_fields": set(),
                    "reply_codes": Counter(),
                    "reply_fields": set(),
                },
            )
            entry["calls"] += 1
            entry["request_fields"].update(call["request_fields"])
            code = call.get("grpc_error") or call.get("reply_code")
            entry["reply_codes"][str(code)] += 1
            entry["reply_fields"].update(call.get("reply_fields", ()))
        for entry in out.values():
            entry["request_fields"] = sorted(entry["request_fields"])
            entry["reply_fields"] = sorted(entry["reply_fields"])
            entry["reply_codes"] = dict(entry["reply_codes"])
        return out
