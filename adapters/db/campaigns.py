"""Offers, campaigns, suppression lists, decisions and outbox rows on PostgreSQL. JSON columns
go through the pool's json/jsonb codec (adapters/db/connect.py): dicts in, dicts out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from adapters.db.outcomes import issue_code
from geo_engine.decision.decide import Decision, Usage
from geo_engine.decision.rules import Sent


@dataclass(frozen=True, slots=True)
class Stored:
    id: str
    doc: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: str | None = None
    disabled_reason: str | None = None


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

    async def disable(self, conn: asyncpg.Connection, cid: str, reason: str) -> None:
        await conn.execute(
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

    async def suppression_of(self, conn: asyncpg.Connection, customer_id: str) -> frozenset[str]:
        rows = await conn.fetch(
            "SELECT list_name FROM suppression_entries WHERE customer_id = $1", customer_id
        )
        return frozenset(r[0] for r in rows)

    # --- pressure and usage -----------------------------------------------------------------
    async def history(self, conn: asyncpg.Connection, customer_id: str, since: float) -> list[Sent]:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM send_after) AS ts, channel, campaign_id FROM outbox"
            " WHERE customer_id = $1 AND send_after >= $2 AND status <> 'expired'",
            customer_id,
            _ts(since),
        )
        return [Sent(float(r["ts"]), r["channel"], r["campaign_id"]) for r in rows]

    async def usage(self, conn: asyncpg.Connection, offer_ids: Sequence[str]) -> dict[str, Usage]:
        rows = await conn.fetch(
            "SELECT offer_id, count(*) AS n, sum((payload->>'value')::float8) AS v FROM outbox"
            " WHERE offer_id = ANY($1::text[]) GROUP BY offer_id",
            list(offer_ids),
        )
        return {r["offer_id"]: Usage(r["n"], r["v"] or 0.0) for r in rows}

    # --- decisions and outbox ---------------------------------------------------------------
    async def record(
        self,
        conn: asyncpg.Connection,
        d: Decision,
        presence_event_id: int | None,
        payload: dict[str, Any] | None,
    ) -> int:
        traces = [
            {
                "campaign_id": t.campaign_id,
                "offer_id": t.offer_id,
                "score": t.score,
                "result": t.result,
                "steps": list(t.steps),
            }
            for t in d.traces
        ]
        traces += [
            {
                "campaign_id": c,
                "offer_id": None,
                "score": 0.0,
                "result": "outranked",
                "steps": ["not_evaluated"],
            }
            for c in d.not_evaluated
        ]
        ev = d.trigger
        did: int = await conn.fetchval(
            "INSERT INTO decisions (customer_id, trigger_kind, trigger_name, trigger_instance,"
            " presence_event_id, ts, outcome, campaign_id, offer_id, channel, send_after,"
            " expires_at, traces, fence_id)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) RETURNING id",
            d.customer_id,
            ev.kind,
            ev.name,
            ev.instance,
            presence_event_id,
            _ts(ev.ts),
            d.outcome,
            d.campaign_id,
            d.offer_id,
            d.channel,
            _ts(d.send_after),
            _ts(d.expires_at),
            traces,
            ev.fence_id,
        )
        if d.sends and payload is not None:
            assert d.campaign_id and d.offer_id and d.channel
            key = f"{d.customer_id}|{d.campaign_id}|{ev.instance}"
            oid: int | None = await conn.fetchval(
                "INSERT INTO outbox (decision_id, idempotency_key, customer_id, campaign_id,"
                " trigger_instance, offer_id, channel, payload, send_after, expires_at)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
                " ON CONFLICT DO NOTHING RETURNING id",  # the same trigger replayed: one offer
                did,
                key,
                d.customer_id,
                d.campaign_id,
                ev.instance,
                d.offer_id,
                d.channel,
                payload,
                _ts(d.send_after),
                _ts(d.expires_at),
            )
            if oid is not None and payload.get("code"):  # its redemption code, same commit
                await issue_code(
                    conn,
                    outbox_id=oid,
                    decision_id=did,
                    customer_id=d.customer_id,
                    campaign_id=d.campaign_id,
                    offer_id=d.offer_id,
                    payload=payload,
                    issued_at=_ts(ev.ts) or datetime.now(UTC),  # the decision's clock (replays)
                    send_after=_ts(d.send_after) or datetime.now(UTC),
                    valid_days=self.redemption_valid_days,
                )
        return did

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

    # --- backtest: read only ----------------------------------------------------------------
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
