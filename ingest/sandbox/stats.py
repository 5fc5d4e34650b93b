"""What the sandbox saw and did."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Stats"]


@dataclass
class Stats:
    """Counters, readable from Python (``sb.stats``) and dumped as JSON."""

    requests: dict[str, int] = field(default_factory=dict)
    """Calls received per method, every one counted (faults, refusals and throttles too)."""
    throttled: int = 0
    """Calls answered CONN_THROTTLED by the per-key rate limit."""
    auth_failures: int = 0
    """Calls refused by authentication (bad key, PAT without its app, missing scope)."""
    account_refusals: int = 0
    """Calls refused for the account: app deleted, hourly limit used up, method disabled."""
    unavailable_injected: int = 0
    """Calls failed with gRPC UNAVAILABLE before anything happened."""
    lost_replies_injected: int = 0
    """Calls that acted, then failed with gRPC UNAVAILABLE."""
    spikes_injected: int = 0
    """Calls delayed by a latency spike."""
    inputs_stored: int = 0
    """Inputs accepted by PostInputs."""
    inputs_rejected: int = 0
    """Inputs refused by PostInputs (per item, or all of an oversized call)."""
    annotations_stored: int = 0
    """Annotations accepted by PostAnnotations."""
    annotations_rejected: int = 0
    """Annotations refused by PostAnnotations (per item, or all of an oversized call)."""

    def count(self, method: str) -> None:
        """One more call of ``method``."""
        self.requests[method] = self.requests.get(method, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        """The counters as plain JSON-ready data, with ``requests_total`` added."""
        data = asdict(self)
        data["requests_total"] = sum(self.requests.values())
        return data

    def dump(self, path: str | Path) -> None:
        """Write :meth:`to_dict` to ``path`` as indented JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
