"""The outbox as admins see it: rows by status, one row with its history, re-driving a dead
letter; and the webhook endpoints a 410 disabled, re-enabled by hand."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from adapters.delivery.relay import NOTIFY_CHANNEL

STATUSES = ("pending", "sending", "sent", "failed", "expired", "dead")


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
        await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
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


# --- webhook endpoints (migration 010) ------------------------------------------------------
# The table's key is the URL, which may carry a secret (a token in the query, a password):
# the API names an endpoint by a hash of it and shows the URL without those parts.
_ID_SQL = "substr(encode(sha256(convert_to(url, 'UTF8')), 'hex'), 1, 16)"


def endpoint_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def redact_url(url: str) -> str:
    """Scheme, host, port and path; a password and the query become `***`, no fragment."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        return "***"
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if u.username is not None:
        netloc = f"{u.username}{':***' if u.password is not None else ''}@{netloc}"
    return urlunsplit((u.scheme, netloc, u.path, "***" if u.query else "", ""))


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str  # redacted
    configured: bool  # the gateway's current GEO_ENGINE_WEBHOOK_URL
    disabled_at: datetime | None
    disabled_reason: str | None
    updated_at: datetime | None


async def list_endpoints(pool: asyncpg.Pool, configured: str | None) -> list[Endpoint]:
    """Every URL ever disabled, and the configured one (enabled when it has no row)."""
    rows = await pool.fetch(
        "SELECT url, disabled_at, disabled_reason, updated_at FROM webhook_endpoints ORDER BY url"
    )
    out = [
        Endpoint(
            endpoint_id(r["url"]),
            redact_url(r["url"]),
            r["url"] == configured,
            r["disabled_at"],
            r["disabled_reason"],
            r["updated_at"],
        )
        for r in rows
    ]
    if configured and all(r["url"] != configured for r in rows):
        out.append(
            Endpoint(endpoint_id(configured), redact_url(configured), True, None, None, None)
        )
    return out


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
            await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
        return row["url"], n
