"""The log's publishes acked on our own inbox (adapters/bus/acks.py), on the real NATS: a resend
is known per part, a refusal or a silence is an error (never a promise), and nothing waits on."""

from __future__ import annotations

import nats
import pytest

from adapters.bus.acks import MSG_ID, AckedPublisher, AckError
from adapters.bus.nats_bus import BusUnavailable, NatsBus


async def test_parts_durable_once_and_a_resend_known_per_part(
    nats_url: str, bus_prefix: str
) -> None:
    bus = NatsBus(nats_url, prefix=bus_prefix, partitions=4, name="acks-test")
    await bus.connect(attempts=3)
    try:
        first = await bus.publish([(0, b"a", "k1:0"), (3, b"b", "k1:3")], None)
        again = await bus.publish([(0, b"a", "k1:0"), (3, b"b", "k1:3"), (1, b"c", "k1:1")], None)
        assert first == [False, False]
        assert again == [True, True, False]  # in the order given
        assert await bus.pending() == 3
    finally:
        await bus.close()


async def test_a_refusal_or_no_stream_is_an_error(nats_url: str, bus_prefix: str) -> None:
    bus = NatsBus(nats_url, prefix=bus_prefix, partitions=2, name="acks-test")
    await bus.connect(attempts=3)
    nc = await nats.connect(nats_url)
    pub = AckedPublisher(nc)
    await pub.start()
    try:
        with pytest.raises(AckError, match="status 503"):  # no stream stores the subject
            await pub.publish([(f"{bus_prefix}.nowhere", b"x", {MSG_ID: "n"})], 2.0)
        wrong = {MSG_ID: "w", "Nats-Expected-Stream": "NOT_THIS_ONE"}
        with pytest.raises(AckError, match="expected stream"):  # the stream's own refusal
            await pub.publish([(bus.subject(0), b"x", wrong)], 2.0)
        assert await bus.pending() == 0
        assert not pub._waiting  # nothing left waiting
    finally:
        await nc.close()
        await bus.close()


async def test_no_ack_in_time_is_a_timeout_and_forgotten(nats_url: str, bus_prefix: str) -> None:
    nc = await nats.connect(nats_url)

    async def silent(_msg: object) -> None:  # a responder that never answers
        return None

    await nc.subscribe(f"{bus_prefix}.silent", cb=silent)
    pub = AckedPublisher(nc)
    await pub.start()
    try:
        with pytest.raises(TimeoutError):
            await pub.publish([(f"{bus_prefix}.silent", b"x", {MSG_ID: "s"})] * 3, 0.2)
        assert not pub._waiting
    finally:
        await nc.close()


async def test_a_closed_bus_is_unavailable(nats_url: str, bus_prefix: str) -> None:
    bus = NatsBus(nats_url, prefix=bus_prefix, partitions=2, name="acks-test")
    await bus.connect(attempts=3)
    await bus.close()
    with pytest.raises(BusUnavailable):
        await bus.publish([(0, b"x", "c:0")], None)
