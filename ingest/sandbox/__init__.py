"""A local Clarifai-compatible gRPC server: dry-run data, test and benchmark against it.

::

    async with Sandbox(SandboxOptions(rps=15, processing=(0.5, 2.0))) as sb:
        channel = ClarifaiChannel.get_aio_insecure_grpc_channel("127.0.0.1", sb.port)
        ...                        # V2Stub(channel), metadata ("authorization", "Key sandbox-pat")
        await sb.wait_processed()  # every input out of PENDING (stuck ones aside)
        sb.inputs, sb.annotations, sb.stats

From a shell: ``python -m ingest.sandbox --port 18080`` (or ``ingest sandbox``).
It never imports the client, and the client never imports it.
"""

from __future__ import annotations

from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.server import Sandbox
from ingest.sandbox.stats import Stats

__all__ = ["Sandbox", "SandboxOptions", "Stats"]
