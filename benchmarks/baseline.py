"""What holds the memory an upload does not: processes that do less and less of one.

::

    python -m benchmarks.baseline interpreter
    python -m benchmarks.baseline grpc
    python -m benchmarks.baseline imports
    python -m benchmarks.baseline channel --base http://127.0.0.1:PORT

Four stages, each a process of its own whose peak RSS the suite measures as it measures
a client's (``ru_maxrss`` from its launcher):

* ``interpreter``: Python started with the same options, nothing imported;
* ``grpc``: gRPC, protobuf and clarifai-grpc (its generated messages, its service stub,
  its channel helper) imported, nothing else;
* ``imports``: the whole command line imported (``ingest.cli``: the library and what it
  uses besides, rich, msgspec, ijson, yaml...), nothing run;
* ``channel``: the same, then a gRPC channel opened to the sandbox the way the client
  opens one (``ClarifaiChannel``'s aio helper) and waited on until it is ready.

A client's peak RSS minus the ``channel`` stage's is what the upload itself holds (rows,
queues, requests in flight, the grouping's buffers); the stages apart say how much of
the rest is the interpreter, gRPC and protobuf, ingest's own imports and gRPC's channel.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["STAGES", "main"]

STAGES = ("interpreter", "grpc", "imports", "channel")


async def _open_channel(base: str) -> None:
    from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel

    url = urlsplit(base)
    channel = ClarifaiChannel.get_aio_insecure_grpc_channel(url.hostname, url.port)
    try:
        await channel.channel_ready()
    finally:
        await channel.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline")
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--base", help="the sandbox (stage channel)")
    ns = parser.parse_args(argv)
    if ns.stage != "interpreter":
        import grpc  # noqa: F401
        from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel  # noqa: F401
        from clarifai_grpc.grpc.api import resources_pb2, service_pb2_grpc  # noqa: F401
    if ns.stage in ("imports", "channel"):
        import ingest.cli  # noqa: F401
    if ns.stage == "channel":
        import anyio

        if not ns.base:
            parser.error("the channel stage needs --base")
        anyio.run(_open_channel, ns.base, backend="asyncio")
    print(json.dumps({"stage": ns.stage, "modules": len(sys.modules)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
