"""Gather a stage's items into full batches, so no request carries less than it could.

A pump reads the stage's inbound memory stream into a bounded buffer (so a slow
stage still holds back the one above it); senders ask for a batch only when a full
one is ready, when the oldest item has lingered long enough, or when the stream
has ended. Items of unit weight move in slices, not one by one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

__all__ = ["Batcher"]

T = TypeVar("T")

#: Seconds a full buffer waits before reading a capacity function again.
_RECHECK = 0.5


class Batcher(Generic[T]):
    """Batches of up to ``size`` weight from ``receive`` (a stream of lists of items).

    ``weight(item)`` is the item's share of a batch (1 by default); ``on_fill()`` is
    called after each arrival and when the stream ends (a stage watching its backlog).
    ``capacity`` is the weight the buffer holds before the pump waits (four batches by
    default), or a function giving it (read again as items leave). Run
    :meth:`pump` in the stage's task group; call :meth:`next_batch` from each
    sender; it returns ``None`` once the stream has ended and the buffer is empty.
    """

    def __init__(
        self,
        receive: MemoryObjectReceiveStream[list[T]],
        *,
        size: int,
        linger: float,
        capacity: int | Callable[[], int] | None = None,
        weight: Callable[[T], int] | None = None,
        on_fill: Callable[[], None] | None = None,
    ) -> None:
        self._receive = receive
        self.size = size
        self.linger = linger
        room = capacity or size * 4
        self._room = room if callable(room) else lambda: room
        self._weight = weight or (lambda _item: 1)
        self._on_fill = on_fill or (lambda: None)
        self._unit = weight is None
        self._items: list[T] = []
        self._head = 0  # items before it are taken
        self._arrivals: deque[list[float]] = deque()  # [time, items of it still here]
        self._load = 0
        self._closed = False
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    @property
    def buffered(self) -> int:
        """Weight waiting in the buffer."""
        return self._load

    @property
    def closed(self) -> bool:
        """True once the stream has ended (what is buffered is all there will be)."""
        return self._closed

    async def pump(self) -> None:
        """Move items from the stream into the buffer until the stream ends."""
        try:
            async with self._receive:
                while True:
                    while self._load >= self._room():
                        with anyio.move_on_after(_RECHECK):
                            await self._changed.wait()
                    try:
                        items = await self._receive.receive()
                    except anyio.EndOfStream:
                        return
                    if not items:
                        continue
                    was_empty = not self._arrivals
                    self._items.extend(items)
                    self._arrivals.append([time.monotonic(), len(items)])
                    self._load += len(items) if self._unit else sum(map(self._weight, items))
                    if self._load >= self.size or was_empty:
                        self._notify()
                    self._on_fill()
        finally:
            self._closed = True
            self._notify()
            self._on_fill()

    def _take(self) -> list[T]:
        items, head = self._items, self._head
        if self._unit:
            end = min(len(items), head + self.size)
            load = end - head
        else:
            load = 0
            end = head
            while end < len(items):
                w = self._weight(items[end])
                if end > head and load + w > self.size:
                    break
                load += w
                end += 1
        batch = items[head:end]
        self._load -= load
        taken = end - head
        while taken:
            first = self._arrivals[0]
            n = min(taken, int(first[1]))
            first[1] -= n
            taken -= n
            if not first[1]:
                self._arrivals.popleft()
        if end * 2 >= len(items):
            del items[:end]
            end = 0
        self._head = end
        self._notify()
        return batch

    async def next_batch(self) -> list[T] | None:
        """Wait for a batch worth sending; ``None`` when nothing more will come."""
        while True:
            if self._arrivals:
                age = time.monotonic() - self._arrivals[0][0]
                if self._load >= self.size or self._closed or age >= self.linger:
                    return self._take()
                with anyio.move_on_after(self.linger - age):
                    await self._changed.wait()
                continue
            if self._closed:
                return None
            await self._changed.wait()
