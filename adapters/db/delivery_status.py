"""Delivery statuses a provider reports on the outbox rows it sent (migration 008): the row's
current status, and every callback in `delivery_status_log`, applied or not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class StatusWrite:
    outbox_id: int
    customer_id: str
    previous: str | None  # the row's delivery status before this callback
    applied: bool  # the status replaced it
    first_error: bool  # the callback carries an error code not seen before on this row


async def record_status(
    pool: asyncpg.Pool,
    provider_id: str,
    status: str,
    error_code: int | None,
    replaces: Callable[[str | None], bool],
) -> StatusWrite | None:
    """Log the callback on the newest row with this provider id, and set its status when
    `replaces(current status)`; one transaction, the row locked. None: no such row."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, customer_id, delivery_status FROM outbox WHERE provider_id = $1"
            " ORDER BY id DESC LIMIT 1 FOR UPDATE",
            provider_id,
        )
        if row is None:
            return None
        applied = replaces(row["delivery_status"])
        first_error = error_code is not None and not await conn.fetchval(
            "SELECT 1 FROM delivery_status_log WHERE outbox_id = $1 AND error_code = $2",
            row["id"],
            error_code,
        )
        if applied:
            await conn.execute(
                "UPDATE outbox SET delivery_status = $2, delivery_status_at = now(),"
                " delivered_at = CASE WHEN $2 IN ('delivered', 'read')"
                "   THEN coalesce(delivered_at, now()) ELSE delivered_at END,"
                " delivery_error_code = coalesce($3, delivery_error_code) WHERE id = $1",
                row["id"],
                status,
                error_code,
            )
        await conn.execute(
            "INSERT INTO delivery_status_log (outbox_id, customer_id, provider_id, status,"
            " error_code, applied) VALUES ($1, $2, $3, $4, $5, $6)",
            row["id"],
            row["customer_id"],
            provider_id,
            status,
            error_code,
            applied,
        )
    return StatusWrite(
        int(row["id"]), str(row["customer_id"]), row["delivery_status"], applied, first_error
    )
