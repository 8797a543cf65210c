"""The campaign store (geo_engine/decision/ports.py) on PostgreSQL: offers, campaigns,
suppression lists, decisions, outbox rows and call-center tasks. JSON columns go through the
pool's json/jsonb codec (adapters/db/connect.py): dicts in, dicts out.

The services pass the port's `Tx` (adapters/db/tx.py) to the methods that take one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from adapters.db import campaign_reads as reads
from adapters.db import decision_log as log
from adapters.db import tasks
from adapters.db.tx import conn_of
from geo_engine.decision.bandit import ArmKey, ArmStats
from geo_engine.decision.decide import Decision, Usage
from geo_engine.decision.ports import (
    DecisionExists,
    DueOffer,
    NewTask,
    Recorded,
    ReplayQuery,
    ReplayRow,
)
from geo_engine.decision.ports import Stored as Stored  # adapters/api/routes read it here
from geo_engine.decision.rules import Sent
from geo_engine.ports import Tx


def _ts(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def _row(r: asyncpg.Record) -> Stored:
    return Stored(
        r["id"],
        r["doc"],
        r["created_at"],
        r["updated_at"],
        r.get("status"),
        r.get("disabled_reason"),
    )


class PgCampaignRepository:
    def __init__(self, pool: asyncpg.Pool, *, redemption_valid_days: float = 7.0) -> None:
        self.pool = pool
        self.redemption_valid_days = redemption_valid_days  # see outcomes.code_expiry

    # --- offers -----------------------------------------------------------------------------
    async def offers(self) -> list[Stored]:
        rows = await self.pool.fetch("SELECT * FROM offers ORDER BY id")
        return [_row(r) for r in rows]

    async def put_offer(self, oid: str, doc: dict[str, Any], *, create: bool) -> Stored | None:
        """create: None if the id is taken; update: None if unknown."""
        if create:
            sql = (
                "INSERT INTO offers (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"
                " RETURNING *"
            )
        else:
            sql = "UPDATE offers SET doc = $2, updated_at = now() WHERE id = $1 RETURNING *"
        r = await self.pool.fetchrow(sql, oid, doc)
        return None if r is None else _row(r)

    async def offer_in_use(self, oid: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT campaign_id FROM campaign_offers WHERE offer_id = $1 ORDER BY 1", oid
        )
        return [r[0] for r in rows]

    async def delete_offer(self, oid: str) -> bool:
        n = await self.pool.fetchval("DELETE FROM offers WHERE id = $1 RETURNING 1", oid)
        return bool(n == 1)

    # --- campaigns --------------------------------------------------------------------------
    async def campaigns(self, status: str | None = None) -> list[Stored]:
        rows = await self.pool.fetch(
            "SELECT * FROM campaigns WHERE $1::text IS NULL OR status = $1 ORDER BY id", status
        )
        return [_row(r) for r in rows]

    async def put_campaign(self, cid: str, doc: dict[str, Any], *, create: bool) -> Stored | None:
        async with self.pool.acquire() as conn, conn.transaction():
            if create:
                r = await conn.fetchrow(
                    "INSERT INTO campaigns (id, status, doc) VALUES ($1, $2, $3)"
                    " ON CONFLICT (id) DO NOTHING RETURNING *",
                    cid,
                    doc["status"],
                    doc,
                )
            else:
                r = await conn.fetchrow(
                    "UPDATE campaigns SET status = $2, doc = $3, disabled_reason = NULL,"
                    " updated_at = now() WHERE id = $1 RETURNING *",
                    cid,
                    doc["status"],
                    doc,
                )
            if r is None:
                return None
            await conn.execute("DELETE FROM campaign_offers WHERE campaign_id = $1", cid)
            await conn.executemany(
                "INSERT INTO campaign_offers VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [(cid, o) for o in doc["offer_ids"]],
            )
            return _row(r)

    async def delete_campaign(self, cid: str) -> bool:
        n = await self.pool.fetchval("DELETE FROM campaigns WHERE id = $1 RETURNING 1", cid)
        return bool(n == 1)

    async def disable(self, tx: Tx, cid: str, reason: str) -> None:
        await conn_of(tx).execute(
            "UPDATE campaigns SET status = 'disabled', disabled_reason = $2,"
            " doc = jsonb_set(doc, '{status}', '\"disabled\"'), updated_at = now()"
            " WHERE id = $1",
            cid,
            reason,
        )

    # --- suppression lists ------------------------------------------------------------------
    async def add_suppressed(self, name: str, customer_ids: Sequence[str]) -> int:
        r = await self.pool.fetch(
            "INSERT INTO suppression_entries (list_name, customer_id)"
            " SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING 1",
            name,
            list(customer_ids),
        )
        return len(r)

    async def suppression_of(self, tx: Tx, customer_id: str) -> frozenset[str]:
        rows = await conn_of(tx).fetch(
            "SELECT list_name FROM suppression_entries WHERE customer_id = $1", customer_id
        )
        return frozenset(r[0] for r in rows)

    # --- pressure and usage -----------------------------------------------------------------
    async def history(self, tx: Tx, customer_id: str, since: float) -> list[Sent]:
        rows = await conn_of(tx).fetch(
            "SELECT extract(epoch FROM send_after) AS ts, channel, campaign_id FROM outbox"
            " WHERE customer_id = $1 AND send_after >= $2 AND status <> 'expired'",
            customer_id,
            _ts(since),
        )
        return [Sent(float(r["ts"]), r["channel"], r["campaign_id"]) for r in rows]

    async def call_history(self, tx: Tx, customer_id: str, since: float) -> list[Sent]:
        return await tasks.history(conn_of(tx), customer_id, since)

    async def usage(self, tx: Tx, offer_ids: Sequence[str]) -> dict[str, Usage]:
        rows = await conn_of(tx).fetch(
            "SELECT offer_id, count(*) AS n, sum((payload->>'value')::float8) AS v FROM outbox"
            " WHERE offer_id = ANY($1::text[]) GROUP BY offer_id",
            list(offer_ids),
        )
        return {r["offer_id"]: Usage(r["n"], r["v"] or 0.0) for r in rows}

    # --- decisions and outbox ---------------------------------------------------------------
    async def record(
        self,
        tx: Tx,
        d: Decision,
        presence_event_id: int | None,
        payload: dict[str, Any] | None,
    ) -> int:
        days = self.redemption_valid_days
        try:
            return await log.record(conn_of(tx), d, presence_event_id, payload, valid_days=days)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "decisions_followup_once":
                raise
            raise DecisionExists(d.trigger.instance) from exc

    async def create_task(self, tx: Tx, task: NewTask) -> int | None:
        return await tasks.create(conn_of(tx), task)

    async def recorded(self, customer_id: str) -> list[Recorded]:
        return await log.recorded(self.pool, customer_id)

    async def decisions(
        self,
        customer_id: str | None,
        campaign_id: str | None,
        since: datetime | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            "SELECT d.*, o.idempotency_key, o.status AS outbox_status FROM decisions d"
            " LEFT JOIN outbox o ON o.decision_id = d.id"
            " WHERE ($1::text IS NULL OR d.customer_id = $1)"
            " AND ($2::text IS NULL OR d.campaign_id = $2"
            "      OR d.traces @> jsonb_build_array(jsonb_build_object('campaign_id', $2::text)))"
            " AND ($3::timestamptz IS NULL OR d.ts >= $3)"
            " ORDER BY d.id LIMIT $4",
            customer_id,
            campaign_id,
            since,
            limit,
        )
        return rows

    # --- backtest, bandit, escalation: read only ---------------------------------------------
    async def replay_count(self, query: ReplayQuery) -> int:
        return await reads.replay_count(self.pool, query)

    def replay(
        self, query: ReplayQuery, *, limit: int, chunk: int
    ) -> AsyncGenerator[Sequence[ReplayRow], None]:
        return reads.replay(self.pool, query, limit, chunk)

    async def arms(self, since: float) -> dict[ArmKey, ArmStats]:
        return await reads.arms(self.pool, since)

    async def due_follow_ups(self, now: float, limit: int) -> list[DueOffer]:
        return await reads.due_follow_ups(self.pool, now, limit)

    async def presence_events(
        self, since: datetime, until: datetime, limit: int
    ) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            "SELECT id, customer_id, geofence_id, type, extract(epoch FROM ts) AS ts, source,"
            " reason FROM presence_events WHERE ts >= $1 AND ts < $2 ORDER BY ts, id LIMIT $3",
            since,
            until,
            limit,
        )
        return rows

    async def all_suppressions(self) -> dict[str, frozenset[str]]:
        rows = await self.pool.fetch(
            "SELECT customer_id, array_agg(list_name) AS lists FROM suppression_entries"
            " GROUP BY customer_id"
        )
        return {r["customer_id"]: frozenset(r["lists"]) for r in rows}
