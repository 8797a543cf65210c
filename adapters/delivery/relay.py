"""The outbox relay: claims due rows, sends them through the channel's gateway, records the
result.

The claim is a lease (adapters/db/outbox.py): a relay that dies between the gateway's reply and
its commit leaves a lapsed lease, and the row is claimed again and resent under the same
idempotency key (the receiver's de-duplication key). What each answer makes of the row (sent,
retried with backoff, dead, expired) is the core's rule (geo_engine/delivery/retry.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from adapters.db import outbox
from adapters.db.types import Pool, Record
from adapters.delivery.gateways.base import Gateway, Message, Result
from adapters.delivery.pacing import Pacer
from geo_engine.delivery.config import RelayConfig
from geo_engine.delivery.retry import EXPIRED, Step, step_after

# RelayConfig: built here by the demo, the bench and the tests, with the relay it configures
__all__ = ["Relay", "RelayConfig", "RelayStats"]

log = logging.getLogger(__name__)

OUTCOMES = Counter("geo_outbox_total", "Outbox rows finished or retried, by outcome", ["outcome"])
ATTEMPTS = Counter("geo_delivery_attempts_total", "Gateway attempts, by gateway", ["gateway"])
# the RelayStats field counting a row recorded with this status
_STAT = {"sent": "sent", "pending": "retried", "dead": "dead", "expired": "expired"}


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


class Relay:
    def __init__(
        self,
        pool: Pool,
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
        claim = await outbox.claim(self.pool, self.clock(), self.cfg.lease_s, self.cfg.batch_size)
        stats = RelayStats(claimed=len(claim.rows), expired=claim.expired)
        await self._send_and_record([_message(r) for r in claim.rows], stats, claim.withdrawn)
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
                await outbox.listen_until_lost(self.pool, self._wake.set)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("relay: outbox LISTEN lost, polling meanwhile", exc_info=True)
            await asyncio.sleep(self.cfg.poll_interval_s)

    async def aclose(self) -> None:
        for gw in {id(g): g for g in self.gateways.values()}.values():
            await gw.aclose()

    async def _send(self, m: Message) -> tuple[str, Result]:
        gw = self.gateways.get(m.channel)
        if gw is None:
            return "-", Result.dead(f"no_gateway_for_{m.channel}")
        if m.expires_at <= self.clock():
            return gw.name, Result("dead", error=EXPIRED)
        async with self._sems[gw.name]:
            await self._pace[gw.name].wait()
            ATTEMPTS.labels(gw.name).inc()
            try:
                return gw.name, await gw.send(m)
            except Exception as exc:  # a gateway bug is a failed attempt, never a crash
                log.exception("gateway %s failed on outbox %d", gw.name, m.id)
                return gw.name, Result.retry(f"exception: {type(exc).__name__}")

    def _plan(self, m: Message, gateway: str, res: Result, now: float) -> _Planned:
        step = step_after(
            res.outcome,
            res.error,
            res.retry_after_s,
            attempt=m.attempt,
            expires_at=m.expires_at,
            now=now,
            cfg=self.cfg,
            rng=self.rng,
        )
        return _Planned(m, gateway, res, step)

    async def _record(self, plans: list[_Planned], stats: RelayStats) -> None:
        if not plans:
            return
        done = await outbox.record(self.pool, [p.attempted() for p in plans], self.clock())
        stats.lost += len(plans) - len(done)
        for i in done:
            k = _STAT[plans[i].step.status]
            setattr(stats, k, getattr(stats, k) + 1)
            OUTCOMES.labels(k).inc()


@dataclass(frozen=True, slots=True)
class _Planned:
    msg: Message
    gateway: str
    result: Result
    step: Step

    def attempted(self) -> outbox.Attempted:
        m, res, step = self.msg, self.result, self.step
        return outbox.Attempted(
            m.id,
            m.customer_id,
            m.attempt,
            self.gateway,
            step.status,
            step.outcome,
            step.error,
            res.provider_id,
            res.http_status,
            step.next_at,
        )


def _message(r: Record) -> Message:
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
