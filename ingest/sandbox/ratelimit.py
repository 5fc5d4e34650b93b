"""Per-key token buckets, as a rate-limited API would keep them."""

from __future__ import annotations

import time

__all__ = ["TokenBuckets"]


class TokenBuckets:
    """One bucket per key, refilled at ``rate`` tokens per second.

    A bucket holds one second of burst (``rate`` tokens, at least one, so that a
    rate below 1/s still lets a call through now and then) and starts full. Each
    call takes one token; a call that finds less than one is refused and takes nothing.
    """

    def __init__(self, rate: float | None) -> None:
        self.rate = rate or 0.0
        self.capacity = max(self.rate, 1.0)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when the bucket is empty."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True
