"""``python -m ingest.sandbox`` / ``ingest sandbox``: run the sandbox in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

import anyio

from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.server import Sandbox

__all__ = ["add_arguments", "main", "run_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options, for this module's parser and the ``ingest`` command."""
    d = SandboxOptions()
    a = parser.add_argument
    a("--host", default=d.host, help="address to bind (default %(default)s)")
    a("--port", type=int, default=18080, help="port; 0 picks a free one (default %(default)s)")
    a(
        "--rps",
        type=float,
        default=d.rps,
        help="requests/s per key, 0 = unlimited (default %(default)s)",
    )
    a("--latency", type=float, default=d.latency, help="seconds added to every call")
    a("--latency-jitter", type=float, default=d.latency_jitter, help="+/- uniform jitter")
    a(
        "--processing",
        type=float,
        nargs=2,
        default=d.processing,
        metavar=("MIN", "MAX"),
        help="seconds an input takes to process (default %(default)s)",
    )
    a(
        "--download-failure-rate",
        type=float,
        default=d.download_failure_rate,
        help="fraction of URLs that fail to download (URLs with 'broken' always fail)",
    )
    a("--stuck-rate", type=float, default=d.stuck_rate, help="fraction of inputs never processed")
    a(
        "--unavailable-rate",
        type=float,
        default=d.unavailable_rate,
        help="fraction of calls failed with UNAVAILABLE before acting",
    )
    a(
        "--lost-reply-rate",
        type=float,
        default=d.lost_reply_rate,
        help="fraction of calls that act, then fail with UNAVAILABLE",
    )
    a(
        "--spike-rate",
        type=float,
        default=d.spike_rate,
        help="fraction of calls delayed by --spike-seconds",
    )
    a("--spike-seconds", type=float, default=d.spike_seconds, help="length of a latency spike")
    a("--seed", type=int, default=d.seed, help="seed of every random draw")
    a("--no-store", action="store_true", help="keep only ids and statuses (huge runs)")
    a("--stats", default=None, metavar="PATH", help="write statistics as JSON here at shutdown")


def options_from_args(ns: argparse.Namespace) -> SandboxOptions:
    return SandboxOptions(
        host=ns.host,
        port=ns.port,
        rps=ns.rps,
        latency=ns.latency,
        latency_jitter=ns.latency_jitter,
        processing=(ns.processing[0], ns.processing[1]),
        download_failure_rate=ns.download_failure_rate,
        stuck_rate=ns.stuck_rate,
        unavailable_rate=ns.unavailable_rate,
        lost_reply_rate=ns.lost_reply_rate,
        spike_rate=ns.spike_rate,
        spike_seconds=ns.spike_seconds,
        seed=ns.seed,
        store=not ns.no_store,
        stats_path=ns.stats,
    )


async def serve(options: SandboxOptions) -> None:
    """Serve until SIGINT or SIGTERM."""
    async with Sandbox(options) as sb:
        o = sb.options
        print(
            f"sandbox listening on {sb.base_url} (app {o.app_id}, user {o.user_id}, "
            f"pat {o.pats[0]}, key {o.api_keys[0]})",
            flush=True,
        )
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        s = sb.stats
        print(
            f"sandbox stopped: {sum(s.requests.values())} requests, {s.throttled} throttled, "
            f"{s.inputs_stored} inputs, {s.annotations_stored} annotations stored",
            file=sys.stderr,
        )


def run_from_args(ns: argparse.Namespace) -> int:
    anyio.run(serve, options_from_args(ns), backend="asyncio")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.sandbox",
        description="A local Clarifai-compatible gRPC server for dry runs and tests.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
