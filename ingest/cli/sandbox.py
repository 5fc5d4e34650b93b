"""``ingest sandbox``: the local Clarifai-compatible server (its own module)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def cmd_sandbox(argv: Sequence[str]) -> int:
    from ingest.sandbox import cli as sandbox_cli  # imported only for this command

    parser = argparse.ArgumentParser(
        prog="ingest sandbox",
        description="Run a local Clarifai-compatible gRPC server (Ctrl-C to stop).",
    )
    sandbox_cli.add_arguments(parser)
    return sandbox_cli.run_from_args(parser.parse_args(argv))
