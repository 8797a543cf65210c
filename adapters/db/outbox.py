"""The relay's work on the outbox: expiring what is past validity, claiming due rows under a
lease, recording each attempt's result, and the NOTIFY channel that wakes relays.

- Claim: `SELECT ... FOR UPDATE SKIP LOCKED LIMIT n` marking the rows `sending` with a lease and
  counting the attempt; concurrent relays skip each other's rows.
- Record: guarded by the attempt number (a fencing token), so a relay whose lease lapsed cannot
  overwrite the result of the one that reclaimed the row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

NOTIFY_CHANNEL = "geo_outbox"  # migration 012: NOTIFY after every statement inserting rows


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


# The pick is a MATERIALIZED CTE, not `WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`:
# the planner may rescan an IN-subquery (the inner side of a nested loop), and each rescan can
# lock further rows, so a claim of n could take more than n (seen on the embedded PostgreSQL).
_CLAIM = """
WITH picked AS MATERIALIZED (
    SELECT id FROM outbox
    WHERE ((status = 'pending' AND coalesce(next_attempt_at, send_after) <= $1)
           OR (status = 'sending' AND lease_until <= $1))
      AND expires_at > $1
    ORDER BY coalesce(next_attempt_at, send_after), id
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1, lease_until = $2
FROM picked WHERE o.id = picked.id
RETURNING o.id, o.idempotency_key, o.customer_id, o.campaign_id, o.channel, o.payload,
          o.attempts, o.expires_at
"""

_EXPIRE = """
WITH picked AS MATERIALIZED (
    SELECT id FROM outbox
    WHERE (status = 'pending' OR (status = 'sending' AND lease_until <= $1))
      AND expires_at <= $1
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
UPDATE outbox o SET status = 'expired', lease_until = NULL, finished_at = $1,
       last_error = 'expired'
FROM picked WHERE o.id = picked.id
RETURNING o.id, o.customer_id, o.attempts
"""

# Claimed rows whose customer withdrew the channel's consent, or objected to direct marketing,
# after the decision (an SMS held for the sending window, a retry): an opt-out is honoured at
# once, so they are never sent (../shared/PROTOCOLS.md, French rules).
_WITHDRAWN = """
SELECT DISTINCT u.id
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, customer_id, channel)
JOIN customer_consents c ON c.customer_id = u.customer_id
 AND c.purpose IN (u.channel, 'direct_marketing') AND c.status IN ('denied', 'revoked')
"""

_RECORD = """
UPDATE outbox o SET status = u.status, lease_until = NULL,
       last_error = u.error, provider_id = coalesce(u.provider_id, o.provider_id),
       next_attempt_at = u.next_at,
       sent_at = CASE WHEN u.status = 'sent' THEN $8 ELSE o.sent_at END,
       finished_at = CASE WHEN u.status IN ('sent', 'expired', 'dead') THEN $8 END
FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[],
            $6::timestamptz[], $7::int[])
     AS u(id, attempt, status, error, provider_id, next_at, i)
WHERE o.id = u.id AND o.status = 'sending' AND o.attempts = u.attempt
RETURNING u.i
"""

_ATTEMPT = (
    "INSERT INTO delivery_attempts (outbox_id, customer_id, attempt, gateway,"
    " outcome, http_status, error, ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)


@dataclass(frozen=True, slots=True)
class Claim:
    expired: int  # rows found past their expiry, marked and logged
    rows: list[asyncpg.Record]  # claimed: id, idempotency_key, customer_id, ..., attempts
    withdrawn: set[int]  # of those, the ids whose customer said no since the decision


async def claim(pool: asyncpg.Pool, now: float, lease_s: float, limit: int) -> Claim:
    """Expire what is past validity, then claim up to `limit` due rows until `now + lease_s`."""
    async with pool.acquire() as conn:
        expired = await conn.fetch(_EXPIRE, _dt(now), limit)
        if expired:
            await conn.executemany(
                "INSERT INTO delivery_attempts (outbox_id, customer_id, attempt, gateway,"
                " outcome, error, ts) VALUES ($1, $2, $3, '-', 'expired', 'expired', $4)",
                [(r["id"], r["customer_id"], r["attempts"], _dt(now)) for r in expired],
            )
        rows = await conn.fetch(_CLAIM, _dt(now), _dt(now + lease_s), limit)
        withdrawn: set[int] = set()
        if rows:
            found = await conn.fetch(
                _WITHDRAWN,
                [r["id"] for r in rows],
                [r["customer_id"] for r in rows],
                [r["channel"] for r in rows],
            )
            withdrawn = {r["id"] for r in found}
    return Claim(len(expired), list(rows), withdrawn)


@dataclass(frozen=True, slots=True)
class Attempted:
    """One attempt's result, as the row and delivery_attempts record it."""

    outbox_id: int
    customer_id: str
    attempt: int  # the fencing token: recorded only while the row is still this attempt's
    gateway: str
    status: str  # the row's next status
    outcome: str  # the attempt's
    error: str | None
    provider_id: str | None
    http_status: int | None
    next_at: float | None  # unix s


async def record(pool: asyncpg.Pool, results: Sequence[Attempted], now: float) -> list[int]:
    """One transaction for the batch (one commit, not one per row). Returns the positions in
    `results` recorded; the others lost their lease to another relay."""
    at = _dt(now)
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            _RECORD,
            [a.outbox_id for a in results],
            [a.attempt for a in results],
            [a.status for a in results],
            [a.error for a in results],
            [a.provider_id for a in results],
            [None if a.next_at is None else _dt(a.next_at) for a in results],
            list(range(len(results))),
            at,
        )
        done: list[int] = [r["i"] for r in rows]
        await conn.executemany(
            _ATTEMPT,
            [
                (
                    a.outbox_id,
                    a.customer_id,
                    a.attempt,
                    a.gateway,
                    a.outcome,
                    a.http_status,
                    a.error,
                    at,
                )
                for a in (results[i] for i in done)
            ],
        )
    return done


async def listen_until_lost(pool: asyncpg.Pool, on_notify: Callable[[], None]) -> None:
    """LISTEN on the outbox channel, calling `on_notify` for each NOTIFY, until the connection
    is lost (raises what acquiring or listening raised)."""
    async with pool.acquire() as conn:
        lost = asyncio.Event()

        def on_close(_conn: object) -> None:
            lost.set()

        def notified(*_: object) -> None:
            on_notify()

        conn.add_termination_listener(on_close)
        await conn.add_listener(NOTIFY_CHANNEL, notified)
        try:
            await lost.wait()
        finally:
            # a terminated connection may already be released by the pool: then there is
            # nothing left to unregister (asyncpg raises InterfaceError on the released proxy)
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.remove_termination_listener(on_close)
                if not conn.is_closed():
                    await conn.remove_listener(NOTIFY_CHANNEL, notified)


async def wake_relays(conn: asyncpg.Connection) -> None:
    """NOTIFY the relays (sent at the commit of `conn`'s transaction): rows are due now."""
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
