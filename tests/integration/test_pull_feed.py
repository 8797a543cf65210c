"""A partition's feed pulled on our own inbox (adapters/bus/pull.py), on the real NATS: order and
batch bounds, a wait that ends when a message comes (not at the timeout), redelivery from the
sequence asked, and a consumer that disappears said as FeedLost, never a silent stall."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.bus.nats_bus import NatsBus
from adapters.bus.pull import FeedLost


async def _bus(nats_url: str, prefix: str) -> NatsBus:
    bus = NatsBus(nats_url, prefix=prefix, partitions=2, name="pull-test")
    await bus.connect(attempts=3)
    return bus


async def test_in_order_within_batches_and_from_the_sequence_asked(
    nats_url: str, bus_prefix: str
) -> None:
    bus = await _bus(nats_url, bus_prefix)
    try:
        await bus.publish([(0, b"p0-%d" % i, f"k{i}:0") for i in range(10)], None)
        await bus.publish([(1, b"other", "o:1")], None)  # another partition: not this feed's
        feed = await bus.feed(0, 1)
        first = await feed.fetch(4, 1.0)
        assert [d.data for d in first] == [b"p0-%d" % i for i in range(4)]
        assert [d.lag for d in first] == [9, 8, 7, 6]
        rest = await feed.fetch(100, 1.0)
        assert [d.data for d in rest] == [b"p0-%d" % i for i in range(4, 10)]
        assert [d.seq for d in first + rest] == sorted(d.seq for d in first + rest)
        await feed.ack(rest[-1])
        await feed.close()

        again = await bus.feed(0, first[2].seq)  # a new owner resumes where storage says
        got = await again.fetch(100, 1.0)
        assert [d.data for d in got] == [b"p0-%d" % i for i in range(2, 10)]
        await again.close()
    finally:
        await bus.close()


async def test_nothing_new_is_empty_at_the_timeout_and_a_new_message_ends_the_wait(
    nats_url: str, bus_prefix: str
) -> None:
    bus = await _bus(nats_url, bus_prefix)
    try:
        feed = await bus.feed(0, 1)
        started = time.monotonic()
        assert await feed.fetch(16, 0.3) == []
        assert 0.25 <= time.monotonic() - started < 1.5
        # the request that call left out ends (408) during the next call: which still waits
        # its whole timeout, on a request of its own, rather than return [] at that end
        started = time.monotonic()
        assert await feed.fetch(16, 0.8) == []
        assert 0.75 <= time.monotonic() - started < 2.0

        async def later() -> None:
            await asyncio.sleep(0.2)
            await bus.publish([(0, b"late", "late:0")], None)

        task = asyncio.create_task(later())
        started = time.monotonic()
        got = await feed.fetch(16, 5.0)  # a request that waits: answered by the publish
        waited = time.monotonic() - started
        await task
        assert [d.data for d in got] == [b"late"]
        assert waited < 2.0  # not the 5 s timeout
        # the request still out brings the next message to the feed's box
        await bus.publish([(0, b"next", "next:0")], None)
        assert [d.data for d in await feed.fetch(16, 2.0)] == [b"next"]
        await feed.close()
    finally:
        await bus.close()


async def test_a_deleted_consumer_is_feed_lost_not_a_stall(nats_url: str, bus_prefix: str) -> None:
    bus = await _bus(nats_url, bus_prefix)
    try:
        feed = await bus.feed(0, 1)
        assert await feed.fetch(8, 0.2) == []
        assert bus._js is not None
        await bus._js.delete_consumer(bus.stream, feed._consumer)
        started = time.monotonic()
        with pytest.raises(FeedLost):
            for _ in range(20):  # each fetch is bounded; one of the first few must say it
                await feed.fetch(8, 0.5)
        assert time.monotonic() - started < 6.0
        await feed.close()
    finally:
        await bus.close()
