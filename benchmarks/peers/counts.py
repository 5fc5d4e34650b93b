"""What the peers count of their own calls, and the command line they share.

:class:`CallCounts` counts, thread-safely, the requests a peer sends (by method) and what
comes back: reply codes, throttled replies, other replies that are not SUCCESS, and gRPC
errors; :meth:`CallCounts.summary` is that part of the peer's JSON line. Like the rest of
:mod:`benchmarks.peers`, this imports neither the ``clarifai`` SDK nor ``clarifai_grpc`` at
import time. :func:`count_with_status` counts the items of a reply that were done;
:func:`peer_parser` is the start of each peer's command line.
"""

from __future__ import annotations

import argparse
import threading
from collections import Counter
from collections.abc import Collection, Iterable
from typing import Any

__all__ = ["CallCounts", "count_with_status", "peer_parser"]


class CallCounts:
    """Requests by method, reply codes, throttled and not-OK replies, and RPC errors.

    A reply whose code is in ``throttled_codes`` counts as throttled; any other code but
    SUCCESS counts as a not-OK reply."""

    def __init__(self, throttled_codes: Collection[int]) -> None:
        from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

        self.ok_code: int = sc.SUCCESS
        self.throttled_codes = throttled_codes
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.reply_codes: Counter[str] = Counter()
        self.throttled = 0
        self.not_ok_replies = 0
        self.rpc_errors = 0

    def sent(self, method: str) -> None:
        """One request of ``method``."""
        with self.lock:
            self.requests[method] += 1

    def failed(self, error: Any) -> None:
        """A call that raised ``error`` (a ``grpc.RpcError``) instead of replying."""
        with self.lock:
            self.rpc_errors += 1
            self.reply_codes[f"grpc:{error.code().name}"] += 1

    def replied(self, code: int) -> bool:
        """A reply with status ``code``; whether it was throttled."""
        with self.lock:
            self.reply_codes[str(code)] += 1
            if code in self.throttled_codes:
                self.throttled += 1
                return True
            if code != self.ok_code:
                self.not_ok_replies += 1
            return False

    def summary(self) -> dict[str, Any]:
        """The counts as the peers' JSON line gives them."""
        with self.lock:
            return {
                "requests": dict(sorted(self.requests.items())),
                "requests_total": sum(self.requests.values()),
                "reply_codes": dict(sorted(self.reply_codes.items())),
                "throttled": self.throttled,
                "failed_calls": self.not_ok_replies + self.rpc_errors,
                "rpc_errors": self.rpc_errors,
            }


def count_with_status(items: Iterable[Any], codes: Collection[int]) -> int:
    """How many of ``items`` (a reply's inputs or annotations) have a status code in
    ``codes``."""
    return sum(1 for item in items if item.status.code in codes)


def peer_parser(module: str, description: str) -> argparse.ArgumentParser:
    """A peer's command line (``python -m MODULE``) with the options every peer takes:
    ``--csv`` and ``--base``."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--csv", required=True, help="CSV in the seed's format")
    parser.add_argument("--base", default="http://127.0.0.1:18080", help="http://host:port")
    return parser
