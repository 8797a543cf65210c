"""The outbox relay: claims due rows, sends them through the channel's gateway, records the
result.

- Claim: one short transaction, `SELECT ... FOR UPDATE SKIP LOCKED LIMIT n` marking the rows
  `sending` with a lease and counting the attempt; concurrent relays skip each other's rows.
  A relay that dies between the gateway's reply and its commit leaves a lapsed lease: the row is
  claimed again and resent under the same idempotency key (the receiver's de-duplication key).
- Record: guarded by the attempt number (a fencing token), so a relay whose lease lapsed cannot
  overwrite the result of the one that reclaimed the row.
- Retry: exponential backoff `base * 2^(attempt-1)` capped at `max`, with jitter, and never
  sooner than the provider's Retry-After; after `max_attempts` the row is a dead letter.
- Expiry: a row past `expires_at` is marked `expired` and counted, never sent; so is a retry
  that could only happen after it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from prometheus_client import Counter

from adapters.delivery.gateways.base import Gateway, Message, Result

log = logging.getLogger(__name__)

OUTCOMES = Counter("geo_outbox_total", "Outbox rows finished or retried, by outcome", ["outcome"])
ATTEMPTS = Counter("geo_delivery_attempts_total", "Gateway attempts, by gateway", ["gateway"])


@dataclass(frozen=True, slots=True)
class RelayConfig:
    batch_size: int = 100  # rows per claim
    lease_s: float = 60.0  # a claimed row is reclaimable after this (the relay died)
    max_attempts: int = 5  # then dead letter
    backoff_base_s: float = 30.0
    backoff_max_s: float = 3_600.0
    jitter: float = 0.2  # the delay is drawn in [d * (1 - jitter), d]
    poll_interval_s: float = 1.0  # idle wait between claims
    concurrency: int = 16  # sends in flight per gateway and relay
    rate_per_s: float = 0.0  # sends per second per gateway and relay (0 = unlimited)


@dataclass
class RelayStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    expired: int = 0
    lost: int = 0  # our lease lapsed and another relay took the row: result not recorded

    def add(self, other: RelayStats) -> None:
        for k in ("claimed", "sent", "retried", "dead", "expired", "lost"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def backoff_s(
    attempt: int, cfg: RelayConfig, rng: random.Random, retry_after: float | None = None
) -> float:
    """Delay before the attempt after `attempt` (1-based)."""
    d = min(cfg.backoff_max_s, cfg.backoff_base_s * 2.0 ** max(0, attempt - 1))
    d *= 1.0 - cfg.jitter * rng.random()
    if retry_after is not None:
        d = max(d, retry_after)
    return d


class Pacer:
    """Spaces calls at least 1/rate apart (monotonic time); rate 0 = no limit."""

    def __init__(self, rate_per_s: float) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


_CLAIM = """
UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1, lease_until = $2
WHERE o.id IN (
    SELECT id FROM outbox
    WHERE ((status = 'pending' AND coalesce(next_attempt_at, send_after) <= $1)
           OR (status = 'sending' AND lease_until <= $1))
      AND expires_at > $1
    ORDER BY coalesce(next_attempt_at, send_after), id
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
RETURNING o.id, o.idempotency_key, o.customer_id, o.campaign_id, o.channel, o.payload,
          o.attempts, o.expires_at
"""

_EXPIRE = """
UPDATE outbox o SET status = 'expired', lease_until = NULL, finished_at = $1,
       last_error = 'expired'
WHERE o.id IN (
    SELECT id FROM outbox
    WHERE (status = 'pending' OR (status = 'sending' AND lease_until <= $1))
      AND expires_at <= $1
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING o.id, o.customer_id, o.attempts
"""


class Relay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        gateways: Mapping[str, Gateway],  # channel -> gateway
        cfg: RelayConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.pool = pool
        self.gateways = dict(gateways)
        self.cfg = cfg
        self.clock = clock
        self.rng = rng or random.Random()
        self.totals = RelayStats()
        # per gateway: a slow provider does not starve the others
        self._sems = {g.name: asyncio.Semaphore(cfg.concurrency) for g in self.gateways.values()}
        self._pace = {g.name: Pacer(cfg.rate_per_s) for g in self.gateways.values()}

    async def run_once(self) -> RelayStats:
        """Expire what is past validity, claim one batch, send it, record each result."""
        stats = RelayStats()
        now = self.clock()
        async with self.pool.acquire() as conn:
            expired = await conn.fetch(_EXPIRE, _dt(now), self.cfg.batch_size)
            if expired:
                await conn.executemany(
                    "INSERT INTO delivery_attempts (outbox_id, customer_id, attempt, gateway,"
                    " outcome, error, ts) VALUES ($1, $2, $3, '-', 'expired', 'expired', $4)",
                    [(r["id"], r["customer_id"], r["attempts"], _dt(now)) for r in expired],
                )
            stats.expired = len(expired)
            rows = await conn.fetch(
                _CLAIM, _dt(now), _dt(now + self.cfg.lease_s), self.cfg.batch_size
            )
        stats.claimed = len(rows)
        msgs = [_message(r) for r in rows]
        results = await asyncio.gather(*(self._send(m) for m in msgs))
        now = self.clock()
        plans = [self._plan(m, gw, res, now) for m, (gw, res) in zip(msgs, results, strict=True)]
        await self._record(plans, stats)
        OUTCOMES.labels("expired").inc(stats.expired)
        self.totals.add(stats)
        return stats

    async def drain(self, max_rounds: int = 1_000) -> RelayStats:
        """Run until a round finds nothing due (tests, the bench)."""
        total = RelayStats()
        for _ in range(max_rounds):
            s = await self.run_once()
            total.add(s)
            if not s.claimed and not s.expired:
                break
        return total

    async def run_forever(self) -> None:
        while True:
            try:
                s = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("relay round failed")
                s = RelayStats()
            if s.claimed < self.cfg.batch_size:
                await asyncio.sleep(self.cfg.poll_interval_s)

    async def aclose(self) -> None:
        for gw in {id(g): g for g in self.gateways.values()}.values():
            await gw.aclose()

    async def _send(self, m: Message) -> tuple[str, Result]:
        gw = self.gateways.get(m.channel)
        if gw is None:
            return "-", Result.dead(f"no_gateway_for_{m.channel}")
        if m.expires_at <= self.clock():
            return gw.name, Result("dead", error="expired")
        async with self._sems[gw.name]:
            await self._pace[gw.name].wait()
            ATTEMPTS.labels(gw.name).inc()
            try:
                return gw.name, await gw.send(m)
            except Exception as exc:  # a gateway bug is a failed attempt, never a crash
                log.exception("gateway %s failed on outbox %d", gw.name, m.id)
                return gw.name, Result.retry(f"exception: {type(exc).__name__}")

    def _plan(self, m: Message, gateway: str, res: Result, now: float) -> _Planned:
        outcome: str = res.outcome
        error = res.error
        next_at: float | None = None
        status: str
        if res.outcome == "sent":
            status = "sent"
        elif res.error == "expired" or (res.outcome == "retry" and m.expires_at <= now):
            status, outcome, error = "expired", "expired", "expired"
        elif res.outcome == "retry" and m.attempt < self.cfg.max_attempts:
            next_at = now + backoff_s(m.attempt, self.cfg, self.rng, res.retry_after_s)
            if next_at >= m.expires_at:  # it could only arrive too late
                status, outcome = "expired", "expired"
                error = f"expired (last: {res.error})"
            else:
                status, outcome = "pending", "retry"
        else:
            status, outcome = "dead", "dead"
        return _Planned(m, gateway, res, status, outcome, error, next_at)

    async def _record(self, plans: list[_Planned], stats: RelayStats) -> None:
        """One transaction for the batch (one commit, not one per row), each row guarded by
        its attempt number."""
        if not plans:
            return
        now = _dt(self.clock())
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE outbox o SET status = u.status, lease_until = NULL,"
                " last_error = u.error, provider_id = coalesce(u.provider_id, o.provider_id),"
                " next_attempt_at = u.next_at,"
                " sent_at = CASE WHEN u.status = 'sent' THEN $8 ELSE o.sent_at END,"
                " finished_at = CASE WHEN u.status IN ('sent', 'expired', 'dead') THEN $8 END"
                " FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[],"
                "             $6::timestamptz[], $7::int[])"
                "      AS u(id, attempt, status, error, provider_id, next_at, i)"
                " WHERE o.id = u.id AND o.status = 'sending' AND o.attempts = u.attempt"
                " RETURNING u.i",
                [p.msg.id for p in plans],
                [p.msg.attempt for p in plans],
                [p.status for p in plans],
                [p.error for p in plans],
                [p.result.provider_id for p in plans],
                [None if p.next_at is None else _dt(p.next_at) for p in plans],
                list(range(len(plans))),
                now,
            )
            done = [plans[r["i"]] for r in rows]
            await conn.executemany(
                "INSERT INTO delivery_attempts (outbox_id, customer_id, attempt, gateway,"
                " outcome, http_status, error, ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    (
                        p.msg.id,
                        p.msg.customer_id,
                        p.msg.attempt,
                        p.gateway,
                        p.outcome,
                        p.result.http_status,
                        p.error,
                        now,
                    )
                    for p in done
                ],
            )
        stats.lost += len(plans) - len(done)
        for p in done:
            key = {"sent": "sent", "pending": "retried", "dead": "dead", "expired": "expired"}
            k = key[p.status]
            setattr(stats, k, getattr(stats, k) + 1)
            OUTCOMES.labels(k).inc()


@dataclass(frozen=True, slots=True)
class _Planned:
    msg: Message
    gateway: str
    result: Result
    status: str  # the row's next status
    outcome: str  # the attempt's, for delivery_attempts
    error: str | None
    next_at: float | None


def _message(r: asyncpg.Record) -> Message:
    payload: Any = r["payload"]
    return Message(
        id=r["id"],
        idempotency_key=r["idempotency_key"],
        customer_id=r["customer_id"],
        campaign_id=r["campaign_id"],
        channel=r["channel"],
        payload=payload if isinstance(payload, dict) else {},
        attempt=r["attempts"],
        expires_at=r["expires_at"].timestamp(),
    )


# --- admin: list and re-drive --------------------------------------------------------------
STATUSES = ("pending", "sending", "sent", "failed", "expired", "dead")


async def list_outbox(
    pool: asyncpg.Pool, status: str | None, limit: int, after_id: int | None = None
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, idempotency_key, customer_id, campaign_id, offer_id, channel, status,"
        " attempts, send_after, next_attempt_at, expires_at, last_error, provider_id,"
        " sent_at, finished_at, created_at FROM outbox"
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
        return status
