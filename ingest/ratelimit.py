"""One request budget shared by every stage: paced, prioritised, adaptive.

Requests are spaced evenly at the current rate (no bursts, so a server counting
per second never sees more than its limit). Waiters are served by priority, then
in arrival order: the draining stages (processing checks, annotations) go before
new inputs, which keeps the backlog short; a stage may promote the requests it
already queued when its reasons change (:meth:`RateLimiter.promote`). When the
server still answers CONN_THROTTLED the rate drops multiplicatively; after a quiet
spell it climbs back towards the configured rate. Both are logged (``ingest.ratelimit``:
a warning when throttling starts, info when the pace is back at its budget).

The stages size what they keep in hand by whether the budget sets the pace
(:attr:`RateLimiter.binding`): requests queueing for their turn mean that every slot
counts, and work kept ready fills them; a budget the client never reaches (a high rate
limit, the sandbox without one) leaves the pace to the client itself, and then work
kept ahead only takes memory.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import time

import anyio

__all__ = ["Priority", "RateLimiter"]

log = logging.getLogger("ingest.ratelimit")

#: A wait for a request's slot at least this long (seconds) means requests queue for the
#: budget; a budget of 1,000 requests/s needs ten requests queued at once for it.
_QUEUED = 0.010

#: Seconds :attr:`RateLimiter.binding` stays true after such a wait.
_BINDING_FOR = 2.0


class Priority(enum.IntEnum):
    """Lower values are served first."""

    DRAIN = 0
    """Checks and annotations: they finish work already started."""
    CREATE = 1
    """New inputs: they start more work."""
    BACKFILL = 2
    """Annotations while their backlog is short: kept for when nothing else can go
    (the wait for the last inputs' processing), so no request slot goes unused."""


class RateLimiter:
    """Paces requests at ``rate`` per second, adapting to throttling.

    ``decrease`` is the factor applied on a throttled reply (at most once per
    ``1 / rate`` second burst of them), ``recover`` the fraction of the target rate
    regained per quiet second. ``floor`` bounds how low the rate may fall.
    """

    def __init__(
        self,
        rate: float,
        *,
        decrease: float = 0.7,
        recover: float = 0.05,
        floor: float = 0.2,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.target = rate
        self.rate = rate
        self._decrease = decrease
        self._recover = recover
        self._floor = min(floor, rate)
        self._next = 0.0
        self._last_throttle = -1e9
        self._last_recover = time.monotonic()
        self._waiters: list[list[int]] = []  # [priority, arrival], mutable for promote()
        self._ticket = itertools.count()
        self._changed = anyio.Event()
        self.granted = 0
        self._queued_at = -1e9

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _maybe_recover(self, now: float) -> None:
        if self.rate >= self.target:
            self._last_recover = now
            return
        quiet = now - max(self._last_throttle, self._last_recover)
        if quiet >= 1.0:
            self.rate = min(self.target, self.rate + self.target * self._recover * quiet)
            self._last_recover = now
            if self.rate >= self.target:
                log.info("no more throttling: back to %g requests/s", self.target)

    async def acquire(self, priority: Priority = Priority.CREATE) -> None:
        """Wait for this request's turn."""
        ticket = [int(priority), next(self._ticket)]
        heapq.heappush(self._waiters, ticket)
        try:
            while True:
                if self._waiters[0] is ticket:
                    now = time.monotonic()
                    self._maybe_recover(now)
                    if now >= self._next:
                        heapq.heappop(self._waiters)
                        self._next = max(self._next, now - 0.5 / self.rate) + 1.0 / self.rate
                        self.granted += 1
                        self._notify()
                        return
                    if self._next - now >= _QUEUED:
                        self._queued_at = now
                    with anyio.move_on_after(self._next - now):
                        await self._changed.wait()
                else:
                    await self._changed.wait()
        except BaseException:
            if any(t is ticket for t in self._waiters):
                self._waiters.remove(ticket)
                heapq.heapify(self._waiters)
                self._notify()
            raise

    @property
    def binding(self) -> bool:
        """True when the budget sets the pace: a request waited 10 ms or more for its slot
        in the last two seconds (false until one has)."""
        return time.monotonic() - self._queued_at < _BINDING_FOR

    def promote(self, old: Priority, new: Priority) -> int:
        """Move the requests waiting at ``old`` to ``new``, keeping their arrival order.

        Returns how many moved. A stage whose reasons for waiting changed (its
        backlog grew) calls it, so requests queued earlier do not keep an outdated
        priority.
        """
        moved = 0
        for ticket in self._waiters:
            if ticket[0] == old:
                ticket[0] = int(new)
                moved += 1
        if moved:
            heapq.heapify(self._waiters)
            self._notify()
        return moved

    def throttled(self) -> None:
        """The server refused a request for its rate: slow down (once per burst)."""
        now = time.monotonic()
        if now - self._last_throttle < 1.0 / self.rate:
            return
        self._last_throttle = now
        if self.rate >= self.target:
            log.warning(
                "the service throttles requests: pace lowered from %g to %.3g requests/s "
                "(it comes back after quiet seconds)",
                self.target,
                max(self._floor, self.rate * self._decrease),
            )
        self.rate = max(self._floor, self.rate * self._decrease)
        # leave a gap so the server's window can drain before the next request
        self._next = max(self._next, now + 1.0 / self.rate)
        self._notify()
