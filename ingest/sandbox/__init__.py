"""A local Clarifai-compatible gRPC server: dry-run data, test and benchmark against it.

It never imports the client, and the client never imports it.
"""

from __future__ import annotations

from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.server import Sandbox
from ingest.sandbox.stats import Stats

__all__ = ["Sandbox", "SandboxOptions", "Stats"]
