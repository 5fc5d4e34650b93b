"""What the sandbox saw and did."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Stats"]


@dataclass
class Stats:
    """Counters, readable from Python and dumped as JSON."""

    requests: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    auth_failures: int = 0
    unavailable_injected: int = 0
    lost_replies_injected: int = 0
    spikes_injected: int = 0
    inputs_stored: int = 0
    inputs_rejected: int = 0
    annotations_stored: int = 0
    annotations_rejected: int = 0

    def count(self, method: str) -> None:
        self.requests[method] = self.requests.get(method, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["requests_total"] = sum(self.requests.values())
        return data

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
