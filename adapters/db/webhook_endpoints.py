"""Webhook endpoints a 410 disabled (migration 010): the webhook gateway's check and switch-off,
and the admin's list and re-enable."""

from __future__ import annotations

import hashlib

import asyncpg

from adapters.db.outbox import wake_relays

# The table's key is the URL, which may carry a secret (a token in the query, a password): the
# API names an endpoint by a hash of it. Computed in SQL too, to find a row by it: the two must
# agree.
_ID_SQL = "substr(encode(sha256(convert_to(url, 'UTF8')), 'hex'), 1, 16)"


def endpoint_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


async def endpoint_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Every URL ever disabled: url, disabled_at, disabled_reason, updated_at; by URL."""
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT url, disabled_at, disabled_reason, updated_at FROM webhook_endpoints ORDER BY url"
    )
    return rows


async def is_disabled(pool: asyncpg.Pool, url: str) -> bool:
    disabled: bool | None = await pool.fetchval(
        "SELECT disabled_at IS NOT NULL FROM webhook_endpoints WHERE url = $1", url
    )
    return bool(disabled)


async def disable(pool: asyncpg.Pool, url: str, reason: str) -> None:
    await pool.execute(
        "INSERT INTO webhook_endpoints (url, disabled_at, disabled_reason) VALUES"
        " ($1, now(), $2) ON CONFLICT (url) DO UPDATE SET disabled_at = now(),"
        " disabled_reason = $2, updated_at = now()",
        url,
        reason,
    )


async def enable_endpoint(
    pool: asyncpg.Pool, ident: str, *, redrive_dead: bool = False
) -> tuple[str, int] | None:
    """Clear the disabled state: the gateway reads it on every send, so the next message goes
    out. With `redrive_dead`, the messages dead-lettered `endpoint_disabled` while it was off
    and not yet expired go back to `pending` too. Returns (URL, re-driven count), None when no
    row has that id."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT url, disabled_at FROM webhook_endpoints WHERE {_ID_SQL} = $1 FOR UPDATE",
            ident,
        )
        if row is None:
            return None
        await conn.execute(
            "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL,"
            " updated_at = now() WHERE url = $1",
            row["url"],
        )
        if not redrive_dead or row["disabled_at"] is None:
            return row["url"], 0
        # the message that got the 410 died a moment before disabled_at was written
        n: int = await conn.fetchval(
            "WITH r AS (UPDATE outbox SET status = 'pending', attempts = 0,"
            " next_attempt_at = NULL, finished_at = NULL, lease_until = NULL"
            " WHERE status = 'dead' AND last_error = 'endpoint_disabled'"
            " AND finished_at >= $1::timestamptz - interval '1 minute' AND expires_at > now()"
            " RETURNING 1) SELECT count(*) FROM r",
            row["disabled_at"],
        )
        if n:
            await wake_relays(conn)
        return row["url"], n
