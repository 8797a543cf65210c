"""Decisions on PostgreSQL: a decision written with its outbox row and redemption code (in the
caller's transaction), and read back. `PgCampaignRepository` (adapters/db/campaigns.py)
exposes them as the campaign store's `record` and `recorded`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from adapters.db.outcomes import issue_code
from geo_engine.decision.decide import Decision
from geo_engine.decision.ports import Recorded
from geo_engine.decision.trace import explained


def _ts(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


async def record(
    conn: asyncpg.Connection,
    d: Decision,
    presence_event_id: int | None,
    payload: dict[str, Any] | None,
    *,
    valid_days: float,
) -> int:
    """Insert the decision, and its outbox row and redemption code when it sends: the port's
    `record` (geo_engine/decision/ports.py)."""
    traces = explained(d.traces, d.not_evaluated)
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
                valid_days=valid_days,
            )
    return did


async def recorded(pool: asyncpg.Pool, customer_id: str) -> list[Recorded]:
    rows = await pool.fetch(
        "SELECT d.id, d.trigger_instance, d.outcome, d.campaign_id, d.offer_id, d.channel,"
        " o.id AS outbox_id, o.payload, r.code, d.traces FROM decisions d"
        " LEFT JOIN outbox o ON o.decision_id = d.id"
        " LEFT JOIN redemption_codes r ON r.outbox_id = o.id"
        " WHERE d.customer_id = $1 ORDER BY d.id",
        customer_id,
    )
    return [
        Recorded(
            r["id"],
            r["trigger_instance"],
            r["outcome"],
            r["campaign_id"],
            r["offer_id"],
            r["channel"],
            r["outbox_id"],
            r["payload"],
            r["code"],
            tuple(r["traces"] or ()),
        )
        for r in rows
    ]
