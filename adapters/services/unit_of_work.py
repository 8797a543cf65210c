"""The presence unit of work: the one way any presence change is made.

    lock -> begin -> apply -> commit in memory -> write -> reactions -> (commit in storage)

and if anything after `begin` fails (the apply, the write, a reaction, the storage commit
itself) memory is rolled back to what it was and the error raised: memory always equals what is
stored. One case needs more: the connection lost while COMMIT was on its way. PostgreSQL may
have committed, and the rollback would then leave memory behind storage (a client retrying the
batch would enter the customer twice). So after a failure that followed the write, the customers
it touched are read back from storage; if storage cannot be read either, they stay marked and
the next change reads them back first (and fails, 503, while it cannot).

GPS batches, the dwell/exit sweep, beacon sightings, NFC taps, identity links and erasure all
come through `transact`; nothing else calls the engine's begin/commit/rollback or
the store's write (tests/unit/test_layers.py checks it).

The reactions (adapters/services/reactions.py) run inside the same storage transaction as the
change, so a store visit, a decision and its outbox row commit with the presence event that
caused them, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from adapters import metrics
from adapters.services.reactions import Reactions
from geo_engine.models import FenceState, PresenceEvent
from geo_engine.ports import PresenceCommit, PresenceStore, RawFix, Transactions, Tx
from geo_engine.presence import PresenceEngine

Stored = list[tuple[int, PresenceEvent]]  # (presence event id, event)


@dataclass(frozen=True, slots=True)
class Change:
    """What an apply step did to the engine: the events it produced, the raw fixes to keep."""

    events: Sequence[PresenceEvent] = ()
    raw_fixes: Sequence[RawFix] = ()


NO_CHANGE = Change()


class PresenceUnitOfWork:
    def __init__(
        self,
        engine: PresenceEngine,
        store: PresenceStore,
        transactions: Transactions,
        reactions: Reactions,
    ) -> None:
        self.engine = engine
        self.store = store
        self.transactions = transactions
        self.reactions = reactions
        # one change at a time: memory moves with commits (one owner per partition, DESIGN.md)
        self.lock = asyncio.Lock()
        # customers whose stored state may differ from memory (a commit of unknown outcome)
        self._unsure: set[str] = set()

    async def transact(
        self,
        apply: Callable[[PresenceEngine], Change],
        *,
        before: Callable[[Tx], Awaitable[None]] | None = None,
        after: Callable[[Tx, Stored], Awaitable[None]] | None = None,
        hold: AbstractAsyncContextManager[object] | None = None,
        settled: Callable[[], Awaitable[None]] | None = None,
    ) -> Stored:
        """Make one presence change; return its stored events.

        `before(tx)`: storage work the change depends on, done first (an NFC counter that must
        advance, identifiers that must be free); raising there changes nothing.
        `apply(engine)`: the change itself, pure and synchronous.
        `after(tx, stored)`: writes that go with the change (the tap's record, a merged
        device's history), before the reactions.
        `hold`: another lock held from after the presence lock to the end (erasure holds the
        profile writers' so no event is stored for a customer while they are erased).
        `settled()`: after the storage commit, still under the locks (erasure reloads the
        profiles from what is now stored)."""
        async with self.lock, hold or contextlib.nullcontext():
            engine = self.engine
            if self._unsure:
                await self._reread()
            touched: set[str] = set()
            engine.begin()
            try:
                async with self.transactions.transaction() as tx:
                    if before is not None:
                        await before(tx)
                    change = apply(engine)
                    delta = engine.commit()  # rollback() below still undoes it
                    touched = {*delta.cursors, *(cid for cid, _ in delta.states)}
                    stored: Stored = []
                    if change.events or change.raw_fixes or delta.cursors or delta.states:
                        ids = await self.store.write(
                            tx,
                            PresenceCommit(
                                cursors=delta.cursors,
                                states=delta.states,
                                events=change.events,
                                raw_fixes=change.raw_fixes,
                            ),
                        )
                        stored = list(zip(ids, change.events, strict=True))
                    if after is not None:
                        await after(tx, stored)
                    if stored:
                        await self.reactions.after_presence(tx, stored)
            except BaseException:
                engine.rollback()
                if touched:  # written: the storage commit may have happened all the same
                    self._unsure |= touched
                    with contextlib.suppress(Exception):  # the error raised is the first one
                        await self._reread()
                raise
            if settled is not None:
                await settled()
        for _, e in stored:
            metrics.EVENTS.labels(str(e.type), e.source).inc()
        metrics.CUSTOMERS_INSIDE.set(engine.customers_inside())
        return stored

    async def refresh(self, customer_ids: Sequence[str]) -> None:
        """Set these customers' memory to what storage holds (state another process wrote)."""
        async with self.lock:
            self._unsure |= set(customer_ids)
            await self._reread()

    async def resync(self, keep: Callable[[str], bool]) -> None:
        """Hold exactly what storage holds for the customers `keep` accepts, nothing of the
        others: a partition owner's memory after its set of partitions changed."""
        async with self.lock:
            cursors, states = await self.store.load()
            engine = self.engine
            for cid in engine.customers():
                engine.replace_customer(cid, None, {})
            engine.load(
                [(cid, cur) for cid, cur in cursors if keep(cid)],
                [(cid, fid, st) for cid, fid, st in states if keep(cid)],
            )
            self._unsure.clear()
        metrics.CUSTOMERS_INSIDE.set(self.engine.customers_inside())

    async def _reread(self) -> None:
        """Set the unsure customers' memory to what storage holds (outside any transaction:
        applied directly, as at start)."""
        ids = sorted(self._unsure)
        cursors, states = await self.store.load(ids)
        cursor_of = dict(cursors)
        states_of: dict[str, dict[str, FenceState]] = {}
        for cid, fid, st in states:
            states_of.setdefault(cid, {})[fid] = st
        for cid in ids:
            self.engine.replace_customer(cid, cursor_of.get(cid), states_of.get(cid, {}))
        self._unsure.clear()
