"""The API side of the log: publish a request's commands, one per partition, and (when asked)
wait for their owners' replies.

Each part's `Nats-Msg-Id` is the request's idempotency key and its partition: a client resending
the same request (same `Idempotency-Key`) after a timeout or a 503 adds nothing the stream
already holds. A 2xx is sent only once every part is durable in the stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from adapters.bus.nats_bus import NatsBus
from adapters.cluster import commands as c
from adapters.cluster.metrics import PUBLISHED
from adapters.cluster.partition_cache import PartitionCache
from geo_engine.profile.attributes import Consent, ConsentPurpose


@dataclass(frozen=True, slots=True)
class Submitted:
    parts: int
    duplicates: int  # parts the stream held already (a resent request)
    replies: list[c.Reply] | None  # the owners' replies, when waited for and in time

    @property
    def resent(self) -> bool:
        return self.parts > 0 and self.duplicates == self.parts

    @property
    def results(self) -> list[c.Reply] | None:
        """Every part's result, or None when some is not known (not waited for, late, a
        resend, or applied with its result lost with a database connection)."""
        if self.replies is None or any(r.status == 202 for r in self.replies):
            return None
        return self.replies


class IngestLog:
    def __init__(self, bus: NatsBus, partitions: int, wait_timeout_s: float) -> None:
        self.bus = bus
        self.partitions = partitions
        self.wait_timeout_s = wait_timeout_s
        # blake2b costs ~1 µs a row, more than the rest of routing: customers come back often
        self._partitions = PartitionCache(partitions)

    async def put_consents(self, customer_id: str, consents: dict[ConsentPurpose, Consent]) -> None:
        """Consent statements from the delivery side (an SMS STOP, a gateway's opt-out) to the
        customer's owner, waited for (bounded): the next decision already sees them."""
        cmd = c.Consents(customer_id, consents)
        await self.submit({self.partition(customer_id): cmd}, key=uuid.uuid4().hex, wait=True)

    def partition(self, customer_id: str) -> int:
        return self._partitions.one(customer_id)

    def partitions_of(self, customer_ids: list[str]) -> NDArray[np.int32]:
        """Each customer's partition (a request's rows at once)."""
        return self._partitions.of(customer_ids)

    async def submit(
        self, parts: Mapping[int, c.Command], *, key: str, wait: bool = False
    ) -> Submitted:
        """Raises BusUnavailable when a part is not confirmed durable (the client retries with
        the same key: the parts already held are not added twice)."""
        if not parts:
            return Submitted(0, 0, [] if wait else None)
        waiter = self.bus.expect(len(parts)) if wait else None
        subject = None if waiter is None else waiter[0]
        try:
            dups = await self.bus.publish(
                [(p, c.encode(cmd), f"{key}:{p}") for p, cmd in parts.items()], subject
            )
        except BaseException:
            if subject is not None:
                self.bus.forget(subject)
            raise
        duplicates = sum(dups)
        PUBLISHED.labels("new").inc(len(parts) - duplicates)
        PUBLISHED.labels("duplicate").inc(duplicates)
        if waiter is None:
            return Submitted(len(parts), duplicates, None)
        subject, fut = waiter
        if duplicates:  # a resend: its parts were answered the first time, not now
            self.bus.forget(subject)
            return Submitted(len(parts), duplicates, None)
        try:
            raw = await asyncio.wait_for(fut, self.wait_timeout_s)
        except TimeoutError:
            self.bus.forget(subject)
            return Submitted(len(parts), 0, None)
        return Submitted(len(parts), 0, [c.decode_reply(r) for r in raw])
