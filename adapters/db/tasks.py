"""Call-center tasks on PostgreSQL (migration 011): written with the decision that made them
(the campaign store's `create_task` and `call_history`: adapters/db/campaigns.py), listed and
closed by the call center through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from geo_engine.decision.models import CALL_CENTER
from geo_engine.decision.ports import NewTask as NewTask
from geo_engine.decision.rules import Sent

STATUSES = ("open", "done", "cancelled")


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


async def create(conn: asyncpg.Connection, t: NewTask) -> int | None:
    """The task's id; None when this trigger already made one (replayed)."""
    tid: int | None = await conn.fetchval(
        "INSERT INTO call_center_tasks (customer_id, campaign_id, offer_id, decision_id,"
        " trigger_instance, reason, priority, created_at, due_at)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING RETURNING id",
        t.customer_id,
        t.campaign_id,
        t.offer_id,
        t.decision_id,
        t.trigger_instance,
        t.reason,
        t.priority,
        _ts(t.created_at),
        _ts(t.due_at),
    )
    return tid


async def history(conn: asyncpg.Connection, customer_id: str, since: float) -> list[Sent]:
    """The customer's calls since `since`, as marketing pressure counts them (cancelled ones
    were never made: not counted)."""
    rows = await conn.fetch(
        "SELECT extract(epoch FROM created_at) AS ts, campaign_id FROM call_center_tasks"
        " WHERE customer_id = $1 AND created_at >= $2 AND status <> 'cancelled'",
        customer_id,
        _ts(since),
    )
    return [Sent(float(r["ts"]), CALL_CENTER, r["campaign_id"]) for r in rows]


async def list_tasks(
    pool: asyncpg.Pool,
    status: str | None,
    campaign_id: str | None,
    customer_id: str | None,
    limit: int,
    after_id: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM call_center_tasks WHERE ($1::text IS NULL OR status = $1)"
        " AND ($2::text IS NULL OR campaign_id = $2) AND ($3::text IS NULL OR customer_id = $3)"
        " AND id > $4 ORDER BY id LIMIT $5",
        status,
        campaign_id,
        customer_id,
        after_id,
        limit,
    )
    return rows


async def get(pool: asyncpg.Pool, task_id: int) -> asyncpg.Record | None:
    r: asyncpg.Record | None = await pool.fetchrow(
        "SELECT * FROM call_center_tasks WHERE id = $1", task_id
    )
    return r


async def close(
    pool: asyncpg.Pool, task_id: int, status: str, outcome: str, note: str | None, by: str | None
) -> asyncpg.Record | None:
    """Close an open task (done or cancelled); None if it is not open (or does not exist)."""
    r: asyncpg.Record | None = await pool.fetchrow(
        "UPDATE call_center_tasks SET status = $2, outcome = $3, note = $4, done_by = $5,"
        " done_at = now() WHERE id = $1 AND status = 'open' RETURNING *",
        task_id,
        status,
        outcome,
        note,
        by,
    )
    return r
