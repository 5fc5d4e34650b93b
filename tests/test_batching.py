from __future__ import annotations

import anyio
import pytest

from ingest.batching import Batcher

pytestmark = pytest.mark.anyio


async def test_full_batches_then_the_rest_when_the_stream_ends() -> None:
    send, receive = anyio.create_memory_object_stream[list[int]](10)
    batcher = Batcher(receive, size=4, linger=60.0)
    batches: list[list[int]] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(batcher.pump)

            async def feed() -> None:
                async with send:
                    for i in range(10):
                        await send.send([i])

            tg.start_soon(feed)
            while (batch := await batcher.next_batch()) is not None:
                batches.append(batch)
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_a_partial_batch_goes_after_the_linger() -> None:
    send, receive = anyio.create_memory_object_stream[list[int]](10)
    batcher = Batcher(receive, size=100, linger=0.05)
    async with anyio.create_task_group() as tg, send:
        tg.start_soon(batcher.pump)
        await send.send([1, 2])
        assert await batcher.next_batch() == [1, 2]
        send.close()
        assert await batcher.next_batch() is None


async def test_weights_bound_the_batch_and_the_buffer_holds_back_the_sender() -> None:
    send, receive = anyio.create_memory_object_stream[list[int]](0)
    batcher = Batcher(receive, size=10, linger=60.0, capacity=10, weight=lambda x: x)
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.pump)
        async with send:
            for w in (4, 4, 4):
                await send.send([w])
            await anyio.wait_all_tasks_blocked()
            # 12 buffered >= capacity 10: the pump stops taking more
            with pytest.raises(anyio.WouldBlock):
                send.send_nowait([1])
            assert await batcher.next_batch() == [4, 4]
            await send.send([1])
        assert await batcher.next_batch() == [4, 1]
        assert await batcher.next_batch() is None


async def test_on_fill_sees_each_arrival_and_the_end() -> None:
    send, receive = anyio.create_memory_object_stream[list[int]](10)
    seen: list[tuple[int, bool]] = []
    batcher: Batcher[int] = Batcher(
        receive,
        size=100,
        linger=60.0,
        on_fill=lambda: seen.append((batcher.buffered, batcher.closed)),
    )
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(batcher.pump)
            async with send:
                await send.send([1, 2])
                await send.send([3])
    # the buffer as it grew, then once more when the stream ended
    assert seen == [(2, False), (3, False), (3, True)]


async def test_a_capacity_function_is_read_again_as_it_changes() -> None:
    send, receive = anyio.create_memory_object_stream[list[int]](0)
    room = [2]
    batcher = Batcher(receive, size=2, linger=60.0, capacity=lambda: room[0])
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.pump)
        async with send:
            await send.send([1, 2])
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(anyio.WouldBlock):  # 2 buffered, room for 2: full
                send.send_nowait([3])
            room[0] = 4  # more room: the pump takes more without a batch leaving
            with anyio.fail_after(5):
                await send.send([3, 4])
            assert batcher.buffered == 4
        assert await batcher.next_batch() == [1, 2]
        assert await batcher.next_batch() == [3, 4]
        assert await batcher.next_batch() is None
