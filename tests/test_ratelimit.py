from __future__ import annotations

import logging
import time

import anyio
import pytest

from ingest.ratelimit import Priority, RateLimiter

pytestmark = pytest.mark.anyio


async def test_requests_are_spaced_at_the_rate() -> None:
    limiter = RateLimiter(50.0)
    started = time.monotonic()
    with anyio.fail_after(5):
        for _ in range(11):
            await limiter.acquire()
    # eleven requests at 50/s need at least ten intervals of 20 ms
    assert time.monotonic() - started >= 10 / 50 * 0.95
    assert limiter.granted == 11


class Queue:
    """Requests queued on a limiter whose next permit is 50 ms away; ``order`` is who got one."""

    def __init__(self) -> None:
        self.limiter = RateLimiter(20.0)
        self.order: list[str] = []

    async def take(self, name: str, priority: Priority) -> None:
        await self.limiter.acquire(priority)
        self.order.append(name)


async def test_draining_work_goes_before_new_work() -> None:
    q = Queue()
    await q.limiter.acquire()  # the next permit is now 50 ms away: everyone below queues
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(q.take, f"create{i}", Priority.CREATE)
            await anyio.wait_all_tasks_blocked()
            for i in range(2):
                tg.start_soon(q.take, f"drain{i}", Priority.DRAIN)
    assert q.order == ["drain0", "drain1", "create0", "create1", "create2"]


async def test_throttling_lowers_the_rate_once_per_burst_and_it_recovers() -> None:
    limiter = RateLimiter(10.0)
    limiter.throttled()
    lowered = limiter.rate
    assert lowered == pytest.approx(7.0)
    limiter.throttled()  # same burst: no second cut
    assert limiter.rate == lowered
    # recovery happens on later acquisitions after a quiet second
    limiter._last_throttle -= 10.0
    limiter._last_recover -= 10.0
    limiter._next = 0.0
    with anyio.fail_after(5):
        await limiter.acquire()
    assert limiter.rate == pytest.approx(10.0)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    limiter = RateLimiter(5.0)
    await limiter.acquire()
    with anyio.move_on_after(0.01):
        await limiter.acquire()
    assert limiter._waiters == []
    with anyio.fail_after(5):
        await limiter.acquire()
    assert limiter.granted == 2


async def test_promoted_waiters_go_first_in_their_arrival_order() -> None:
    q = Queue()
    await q.limiter.acquire()  # the next permit is 50 ms away: everyone below queues
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for i in range(2):
                tg.start_soon(q.take, f"backfill{i}", Priority.BACKFILL)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(q.take, "create", Priority.CREATE)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(q.take, "drain", Priority.DRAIN)
            await anyio.wait_all_tasks_blocked()
            # the backlog behind the BACKFILL requests grew: they go first now
            assert q.limiter.promote(Priority.BACKFILL, Priority.DRAIN) == 2
            assert q.limiter.promote(Priority.BACKFILL, Priority.DRAIN) == 0
    assert q.order == ["backfill0", "backfill1", "drain", "create"]


def test_throttling_is_logged_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(10.0)
    with caplog.at_level(logging.INFO, logger="ingest"):
        limiter.throttled()
        limiter.throttled()  # the same burst: no second line
    [record] = caplog.records
    assert record.name == "ingest.ratelimit" and record.levelno == logging.WARNING
    assert record.getMessage() == (
        "the service throttles requests: pace lowered from 10 to 7 requests/s "
        "(it comes back after quiet seconds)"
    )


async def test_the_budget_binds_while_requests_queue_for_it() -> None:
    """A budget the requests wait for sets the pace; one they never wait for does not."""
    slow, fast = RateLimiter(15.0), RateLimiter(10_000.0)
    assert not slow.binding and not fast.binding  # nothing waited yet
    with anyio.fail_after(5):
        for _ in range(3):
            await slow.acquire()
            await fast.acquire()
    assert slow.binding  # the second request waited 33 ms for its slot
    assert not fast.binding  # a tenth of a millisecond between slots
