"""How many inputs the processing tracker holds, and how its estimate adapts.

What full speed keeps is bounded by what the request budget needs
(:class:`ingest.stages.processing.Tracker`): while the budget sets the pace, what it can
create in one settle time; while it does not, twice what comes through in one settle
time; never more than ``Config.max_pending``, never fewer than a few check batches.
"""

from __future__ import annotations

import time

import anyio
import pytest

from ingest import Config
from ingest.client import Client
from ingest.model import Outcome
from ingest.stages.base import Tallies, WorkerContext
from ingest.stages.processing import Tracker

pytestmark = pytest.mark.anyio


def tracker(rps: float, **options: object) -> Tracker:
    config = Config(api_key="k", base="http://127.0.0.1:1", rps=rps, **options)  # type: ignore[arg-type]
    send, receive = anyio.create_memory_object_stream[list[Outcome]](1)
    send.close()  # no outcome goes out here
    receive.close()
    return Tracker(WorkerContext(Client(config), config, Tallies(), send))


async def test_a_budget_that_sets_the_pace_may_fill_a_settle_time() -> None:
    t = tracker(15.0)
    assert t.limit() == 8 * 128  # nothing measured, nothing waited for the budget yet
    with anyio.fail_after(5):
        for _ in range(3):
            await t.limiter.acquire()  # the requests queue for their slots
    assert t.limiter.binding
    assert t.limit() == int(15 * t.settle_time() * 128)
    assert tracker(15.0, max_pending=2000).limit() <= 2000


async def test_without_the_budget_it_holds_twice_what_comes_through() -> None:
    t = tracker(10_000.0, max_pending=100_000)
    t.estimate = 0.2
    # 3,000 inputs ended within the last second
    t._rate_at = (time.monotonic() - 1.0, 0)
    t._through = 3_000
    assert not t.limiter.binding
    assert t.limit() == pytest.approx(2 * 3_000 * t.settle_time(), rel=0.01)
    assert tracker(10_000.0).limit() == 8 * 128  # nothing came through yet: the floor


def test_the_estimate_shortens_fast_only_while_checks_cost_no_slot() -> None:
    free, paced = tracker(10_000.0), tracker(15.0)
    paced.limiter._queued_at = time.monotonic()  # a request just waited for its slot
    for t in (free, paced):
        t._adapt(128, 128)  # every input of a first check was done
    assert free.estimate == pytest.approx(1.5 * 0.8)
    assert paced.estimate == pytest.approx(1.5 * 0.97)
    for t in (free, paced):
        before = t.estimate
        t._adapt(128, 100)  # under 90 % done: wait longer, either way
        assert t.estimate == pytest.approx(before * 1.25)
