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
import contextlib
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
from adapters.delivery.pacing import Pacer, backoff_s

log = logging.getLogger(__name__)

OUTCOMES = Counter("geo_outbox_total", "Outbox rows finished or retried, by outcome", ["outcome"])
NOTIFY_CHANNEL = "geo_outbox"  # migration 012: NOTIFY after every statement inserting rows
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
        self._wake = asyncio.Event()

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
            withdrawn: set[int] = set()
            if rows:
                found = await conn.fetch(
                    _WITHDRAWN,
                    [r["id"] for r in rows],
                    [r["customer_id"] for r in rows],
                    [r["channel"] for r in rows],
                )
                withdrawn = {r["id"] for r in found}
        stats.claimed = len(rows)
        await self._send_and_record([_message(r) for r in rows], stats, withdrawn)
        OUTCOMES.labels("expired").inc(stats.expired)
        self.totals.add(stats)
        return stats

    async def _send_and_record(
        self, msgs: list[Message], stats: RelayStats, withdrawn: set[int]
    ) -> None:
        """Send concurrently; record results as they come, whatever finished while the previous
        write ran going in one transaction. Waiting for the whole batch would hold a fast
        reply's provider id back behind the slowest gateway call: a status callback could then
        arrive for a message we have not recorded as sent yet."""
        finished: asyncio.Queue[_Planned] = asyncio.Queue()

        async def one(m: Message) -> None:
            if m.id in withdrawn:  # never sent: the customer said no since the decision
                gateway, res = "-", Result.dead("consent_withdrawn")
            else:
                gateway, res = await self._send(m)
            finished.put_nowait(self._plan(m, gateway, res, self.clock()))

        tasks = [asyncio.create_task(one(m)) for m in msgs]
        try:
            recorded = 0
            while recorded < len(msgs):
                plans = [await finished.get()]
                while not finished.empty():
                    plans.append(finished.get_nowait())
                await self._record(plans, stats)
                recorded += len(plans)
        finally:
            for t in tasks:
                t.cancel()

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
        """Claim rounds until cancelled. Between rounds, wait for an outbox NOTIFY (a decision
        committed a row) or the poll interval (rows held until a sending window, retries due,
        lapsed leases): a new offer is claimed within milliseconds, not up to a poll later."""
        listener = asyncio.create_task(self._listen())
        try:
            while True:
                try:
                    s = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("relay round failed")
                    s = RelayStats()
                if s.claimed < self.cfg.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_s)
                    self._wake.clear()
        finally:
            listener.cancel()

    async def _listen(self) -> None:
        """LISTEN on the outbox channel (migration 012's trigger); reconnects after a failure.
        Polling still works without it."""
        while True:
            try:
                async with self.pool.acquire() as conn:
                    lost = asyncio.Event()

                    def on_close(_conn: object, lost: asyncio.Event = lost) -> None:
                        lost.set()

                    conn.add_termination_listener(on_close)
                    await conn.add_listener(NOTIFY_CHANNEL, self._notified)
                    try:
                        await lost.wait()
                    finally:
                        conn.remove_termination_listener(on_close)
                        if not conn.is_closed():
                            await conn.remove_listener(NOTIFY_CHANNEL, self._notified)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("relay: outbox LISTEN lost, polling meanwhile", exc_info=True)
            await asyncio.sleep(self.cfg.poll_interval_s)

    def _notified(self, *_: object) -> None:
        self._wake.set()

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
