"""A partition's feed: a JetStream pull consumer, pulled on an inbox of our own.

nats-py's `PullSubscription.fetch` awaits each message through `Subscription.next_msg`, which
makes a task, a `wait_for` and a uuid4 per message: 33 µs of client CPU a message, against
9.6 µs for the same messages taken by a subscription callback (`python
scripts/bench_fetch.py`; 1 KB messages, batches of 256). An owner reads one message per request
part, so that was ~1 µs of its CPU per fix in the end-to-end bench, and a whole single fix's
worth of it at 1 k requests/s. The protocol is JetStream's own (ADR-13): a pull request
`{"batch", "expires", "no_wait"}` on `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` with our
inbox as its reply subject; the messages come to the inbox, and a status message (404 no
messages, 408 expired, 409 conflict) ends a request early. Everything else stays nats-py's: the
consumer is made with `add_consumer`, the messages are its `Msg` (metadata, `ack`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

REPLY_HEADER = "Geo-Reply"
_STATUS = "Status"
_DESCRIPTION = "Description"
_V1_TOKENS = 9  # an ack subject without domain and account (nats-py's _V1_TOKEN_COUNT)
_GRACE_S = 2.0  # a request's end (its 408) this late after it expired: the consumer is gone


@dataclass(frozen=True, slots=True)
class Delivered:
    seq: int  # the stream sequence: what the owner commits as applied
    data: bytes
    reply_to: str | None  # where a waiting API process expects the result
    lag: int  # messages of the partition still after this one
    msg: Msg


class FeedLost(Exception):
    """The consumer is gone (deleted, its stream or server restarted): open a new feed."""


class PartitionFeed:
    """One partition's messages from a stream sequence on. At most one pull request is out at a
    time; messages it brings after `fetch` returned wait in `_box` for the next call."""

    def __init__(self, nc: Client, stream: str, consumer: str) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._stream = stream
        self._consumer = consumer
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._box: deque[Msg] = deque()
        self._open = 0  # messages the request out may still bring (0: none is out)
        self._ends_at = 0.0  # monotonic: when the request out is surely over
        self._wake = asyncio.Event()
        self._lost: str | None = None

    @classmethod
    async def open(
        cls, nc: Client, js: JetStreamContext, stream: str, subject: str, cfg: ConsumerConfig
    ) -> PartitionFeed:
        cfg.filter_subject = subject
        cfg.name = uuid.uuid4().hex  # ephemeral (no durable name): inactive_threshold ends it
        info = await js.add_consumer(stream, config=cfg)
        feed = cls(nc, stream, info.name)
        feed._sub = await nc.subscribe(feed._inbox, cb=feed._on_msg)
        return feed

    async def _on_msg(self, m: Msg) -> None:
        status = m.headers.get(_STATUS) if m.headers and not m.data else None  # ours have data
        if status is None:
            self._box.append(m)
            self._open = max(0, self._open - 1)
        elif status == "100":  # a heartbeat: none asked for
            return
        else:  # 404, 408, 409: the request is over; 409 and 503 may say the consumer is gone
            self._open = 0
            reason = (m.headers or {}).get(_DESCRIPTION, "")
            if status == "503" or "Deleted" in reason:
                self._lost = f"{status} {reason}".strip()
        self._wake.set()

    async def fetch(self, batch: int, timeout_s: float) -> list[Delivered]:
        """Up to `batch` messages, in order; [] when none came within `timeout_s`. Raises
        FeedLost when the consumer is gone."""
        deadline = time.monotonic() + timeout_s
        if not self._box and not self._open:
            # what is there now, at once (the server ignores no_wait when expires is given)
            await self._pull({"batch": batch, "no_wait": True}, batch, timeout_s)
            await self._until(lambda: not self._open, deadline)
        # a request that waits for what comes next: again when the one out ends with nothing
        # before our deadline (a 408 from a request the last call left out, say)
        while not self._box and not self._lost:
            if self._open:
                await self._until(lambda: bool(self._box) or not self._open, deadline)
                if self._open:
                    break  # our deadline came first; that request stays out for the next call
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self._pull({"batch": batch, "expires": int(left * 1e9)}, batch, left)
        if self._lost:
            raise FeedLost(self._lost)
        if self._sub is not None and self._sub.pending_msgs and len(self._box) < batch:
            # the rest of a burst the client already read: its callback takes them all in one go
            await asyncio.sleep(0)
        if not self._box and self._open and time.monotonic() > self._ends_at:
            raise FeedLost("a pull request was never answered")
        take = [self._box.popleft() for _ in range(min(batch, len(self._box)))]
        return [_delivered(m) for m in take]

    async def _pull(self, request: dict[str, object], batch: int, expires_s: float) -> None:
        self._open = batch
        self._ends_at = time.monotonic() + expires_s + _GRACE_S
        self._wake.clear()
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)

    async def _until(self, done: Callable[[], bool], deadline: float) -> None:
        while not done() and not self._lost:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def ack(self, last: Delivered) -> None:
        # AckPolicy.ALL: acking the last message of a batch acks the ones before it
        with contextlib.suppress(Exception):  # the committed sequence is the truth, not acks
            await last.msg.ack()

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None


def _delivered(m: Msg) -> Delivered:
    seq, pending = _positions(m.reply)
    return Delivered(seq, m.data, (m.headers or {}).get(REPLY_HEADER), pending, m)


def _positions(reply: str) -> tuple[int, int]:
    """(stream sequence, messages still pending) from the message's ack subject, v1 or v2
    (ADR-15) at nats-py's own token positions: the two fields of `Msg.metadata` an owner reads,
    without the frozen dataclasses and the datetime it builds (~8 µs a message, 4% of an
    owner's CPU by py-spy)."""
    t = reply.split(".")
    if len(t) == _V1_TOKENS:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(t[5]), int(t[8])
    return int(t[Msg.Ack.StreamSeq]), int(t[Msg.Ack.NumPending])
