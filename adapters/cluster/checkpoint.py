"""The log position a command's effects commit with.

An owner applies each message under `applying(position)`; every storage transaction opened
meanwhile (through `CheckpointedTransactions`, the `Transactions` port the services are wired
with) records the position — fenced by the lease's epoch — before it commits. The effects and
the partition's last applied sequence therefore commit together or not at all, whichever service
opened the transaction, and a worker whose lease moved on cannot commit anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from geo_engine.cluster_ports import PartitionLeases
from geo_engine.ports import Transactions, Tx


@dataclass(slots=True)
class Position:
    partition: int
    epoch: int
    seq: int
    recorded: bool = False  # committed by one of the command's transactions


_current: ContextVar[tuple[Position, ...]] = ContextVar("log_positions", default=())


@contextmanager
def applying(*positions: Position) -> Iterator[None]:
    """Transactions opened inside commit these positions (a command's), or, for work that
    consumes no message (the sweep of the owned partitions), check that their epochs still hold
    (a position at the partition's applied sequence moves nothing)."""
    token = _current.set(positions)
    try:
        yield
    finally:
        _current.reset(token)


class CheckpointedTransactions:
    """`Transactions` that also commit the position of the command being applied."""

    def __init__(self, inner: Transactions, leases: PartitionLeases) -> None:
        self._inner = inner
        self._leases = leases

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        positions = _current.get()
        async with self._inner.transaction() as tx:
            yield tx
            for pos in positions:
                await self._leases.advance(tx, pos.partition, pos.epoch, pos.seq)
        for pos in positions:
            pos.recorded = True
