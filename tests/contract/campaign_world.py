"""The campaign store's contract world: one store per backend, with the presence and profile
stores its replay reads and what the relay and the outcome routes record (no port yet: each
backend records it its own way)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from adapters.db.campaigns import PgCampaignRepository
from adapters.db.presence_store import PgPresenceStore
from adapters.db.profile_store import PgProfileStore
from adapters.db.tx import PgTransactions
from adapters.memory.campaigns import MemoryCampaignStore
from adapters.memory.profiles import MemoryProfileStore
from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import MemoryTransactions
from geo_engine.decision.decide import Decision
from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.ports import (
    CampaignStore,
)
from geo_engine.ports import PresenceStore, Transactions
from geo_engine.profile.ports import ProfileStore

T = 1_790_000_000.0
H = 3600.0
DAY = 86400.0


class Boom(Exception):
    pass


@dataclass
class World:
    store: CampaignStore
    transactions: Transactions
    presence: PresenceStore
    profiles: ProfileStore
    deliver: Callable[[int, float], Awaitable[None]]  # the relay sent outbox row `id` at `ts`
    redeem: Callable[[str, float], Awaitable[None]]  # a till redeemed `code` at `ts`
    click: Callable[[int], Awaitable[None]]  # the app reported a click on outbox row `id`


def memory_world() -> World:
    presence = MemoryPresenceStore()
    profiles = MemoryProfileStore(presence)
    store = MemoryCampaignStore(presence, profiles)

    async def deliver(oid: int, ts: float) -> None:
        store.mark_sent(oid, ts)

    async def redeem(code: str, ts: float) -> None:
        store.redeem(code, ts)

    async def click(oid: int) -> None:
        store.interact(oid, "clicked")

    return World(store, MemoryTransactions(), presence, profiles, deliver, redeem, click)


def postgres_world(pool: asyncpg.Pool) -> World:
    async def deliver(oid: int, ts: float) -> None:
        await pool.execute(
            "UPDATE outbox SET status = 'sent', sent_at = $2 WHERE id = $1", oid, _dt(ts)
        )

    async def redeem(code: str, ts: float) -> None:
        await pool.execute(
            "UPDATE redemption_codes SET redeemed_at = $2 WHERE code = $1", code, _dt(ts)
        )

    async def click(oid: int) -> None:
        await pool.execute(
            "INSERT INTO interactions (outbox_id, customer_id, campaign_id, kind, ts)"
            " SELECT id, customer_id, campaign_id, 'clicked', now() FROM outbox WHERE id = $1",
            oid,
        )

    return World(
        PgCampaignRepository(pool),
        PgTransactions(pool),
        PgPresenceStore(pool),
        PgProfileStore(pool),
        deliver,
        redeem,
        click,
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def decision(
    instance: str,
    *,
    who: str = "alice",
    ts: float = T,
    outcome: str = "send",
    campaign: str = "c1",
    offer: str = "o1",
    kind: str = "presence",
) -> Decision:
    trig = TriggerEvent(kind, "enter", who, ts, instance, fence_id="f1")
    if outcome not in ("send", "held"):
        return Decision(who, trig, outcome, None, None, None, None, None, ())
    return Decision(who, trig, outcome, campaign, offer, "sms", ts, ts + DAY, ())


def payload(code: str, value: float = 5.0) -> dict[str, object]:
    return {"value": value, "code": code, "sms": {"text": f"-10% with {code}", "segments": 1}}


async def record(w: World, d: Decision, code: str | None = None) -> int:
    async with w.transactions.transaction() as tx:
        return await w.store.record(tx, d, None, None if code is None else payload(code))
