"""The outbox as admins see it: rows by status, one row with its history, and the re-drive of
a dead letter."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from adapters.db.outbox import wake_relays

_COLUMNS = (
    "id, idempotency_key, customer_id, campaign_id, offer_id, channel, status,"
    " attempts, send_after, next_attempt_at, expires_at, last_error, provider_id,"
    " sent_at, finished_at, created_at, delivery_status, delivered_at, delivery_error_code"
)


async def list_outbox(
    pool: asyncpg.Pool, status: str | None, limit: int, after_id: int | None = None
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        f"SELECT {_COLUMNS} FROM outbox"
        " WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR id > $2)"
        " ORDER BY id LIMIT $3",
        status,
        after_id,
        limit,
    )
    return rows


async def redrive(pool: asyncpg.Pool, outbox_id: int) -> str | None:
    """A dead letter back to `pending` with a fresh attempt budget. Returns the row's status
    before the call (only a `dead` one was re-driven), None when there is no such row."""
    async with pool.acquire() as conn, conn.transaction():
        status: str | None = await conn.fetchval(
            "SELECT status FROM outbox WHERE id = $1 FOR UPDATE", outbox_id
        )
        if status != "dead":
            return status
        await conn.execute(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = NULL,"
            " finished_at = NULL, lease_until = NULL WHERE id = $1",
            outbox_id,
        )
        await wake_relays(conn)
        return status


@dataclass(frozen=True, slots=True)
class OutboxDetail:
    row: asyncpg.Record
    attempts: list[asyncpg.Record]  # delivery_attempts, in order
    status_log: list[asyncpg.Record]  # the provider's status callbacks, in order of arrival


async def outbox_detail(pool: asyncpg.Pool, outbox_id: int) -> OutboxDetail | None:
    """One row with its gateway attempts and status callbacks; one snapshot (a transaction)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM outbox WHERE id = $1", outbox_id)
        if row is None:
            return None
        attempts = await conn.fetch(
            "SELECT attempt, gateway, outcome, http_status, error, ts FROM delivery_attempts"
            " WHERE outbox_id = $1 ORDER BY id",
            outbox_id,
        )
        log = await conn.fetch(
            "SELECT status, error_code, applied, ts FROM delivery_status_log"
            " WHERE outbox_id = $1 ORDER BY id",
            outbox_id,
        )
    return OutboxDetail(row, list(attempts), list(log))
