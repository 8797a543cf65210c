"""The escalation job: offers sent that got no reaction get one follow-up on the next channel
(geo_engine/decision/escalation.py decides it).

An outbox row is due when: it was sent (`status = 'sent'`) at least its campaign's
`escalation.after_s` ago (and at most 8 days ago: older ones are past any allowed delay),
its campaign is live and escalates, it is not itself a follow-up, no interaction (open, click)
and no redemption of its code was recorded (migration 009), and no follow-up decision exists
for it yet. The follow-up's decision, and its outbox row when it sends, are written in one
transaction. Several runners may run at once: the decision row is unique per (customer,
`esc:<outbox id>`) (migration 011), so the loser of a race rolls back and skips.

Runs inside `serve` next to the relay (adapters/composition.py) and in `geo-engine relay`
(adapters/cli.py), every `escalation_interval_s`; `run_once` for tests and ops. A standalone
runner reloads the campaigns before each round (`reload_book`): they change through the API
of another process. Its profiles are those of its start; a consent withdrawn since is still
honoured, by the relay's check at send time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from adapters.delivery.gateways.base import pseudonym
from adapters.services.decisions import DecisionService
from geo_engine.decision.escalation import FirstOffer, follow_up
from geo_engine.decision.facts import Customer, customer_of
from geo_engine.decision.ports import DecisionExists, DueOffer
from geo_engine.decision.rules import WEEK_S, pressure_of
from geo_engine.ports import Transactions

log = logging.getLogger(__name__)


class Escalator:
    def __init__(
        self,
        decisions: DecisionService,
        transactions: Transactions,
        *,
        batch_size: int = 200,
        interval_s: float = 60.0,
        reload_book: bool = False,
        clock: Callable[[], float] = time.time,
        owns: Callable[[str], bool] | None = None,
        fence: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        """In a cluster, `owns` keeps to this owner's customers (decided with its fresh memory)
        and `fence()` scopes each pass so its writes fail once a partition moved on."""
        self._transactions = transactions
        self.owns = owns
        self.fence = fence or contextlib.nullcontext
        self.decisions = decisions
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.reload_book = reload_book
        self.clock = clock

    async def run_once(self, now: float | None = None) -> dict[str, int]:
        """One pass over the due offers: {reason: count} of the follow-ups decided (`chosen`
        for those sent or held)."""
        at = self.clock() if now is None else now
        if self.reload_book:
            await self.decisions.reload()
        rows = await self.decisions.repo.due_follow_ups(at, self.batch_size)
        counts: dict[str, int] = {}
        with self.fence():
            for r in rows:
                if self.owns is not None and not self.owns(r.customer_id):
                    continue  # its owner follows it up
                reason = await self._one(r, at)
                if reason is not None:
                    counts[reason] = counts.get(reason, 0) + 1
        return counts

    async def _one(self, r: DueOffer, now: float) -> str | None:
        svc = self.decisions
        book = svc.book
        campaign = book.campaigns.get(r.campaign_id)
        if campaign is None:  # live in the table but not loadable: reported at reload
            return None
        index = svc.live.index
        # the fence of the first offer's trigger: where it was entered, or the store a search
        # or an abandoned cart was located at (migration 013)
        pos = None if r.fence_id is None else index.position(r.fence_id)
        fence = None if pos is None else index.fences[pos]
        first = FirstOffer(
            r.outbox_id,
            r.customer_id,
            r.campaign_id,
            r.offer_id,
            r.channel,
            r.sent_at,
            fence_id=None if fence is None else fence.id,
            fence_name=None if fence is None else fence.name,
            store_id=None if fence is None else fence.store_id,
            timezone=None if fence is None else fence.timezone,
        )
        profile = svc.profiles.profile(first.customer_id, now)
        customer = (
            Customer(first.customer_id, frozenset(), False, None)
            if profile is None
            else customer_of(profile)
        )
        try:
            async with self._transactions.transaction() as tx:
                cid = first.customer_id
                history = await svc.repo.history(tx, cid, now - WEEK_S)
                history += await svc.repo.call_history(tx, cid, now - WEEK_S)
                suppressed = await svc.repo.suppression_of(tx, cid)
                d, reason = follow_up(
                    first,
                    campaign,
                    book.offers.get(first.offer_id),
                    customer,
                    pressure_of(history, now),
                    suppressed,
                    svc.cfg,
                    now,
                )
                payload = svc.payload(d, book) if d.sends else None
                await svc.repo.record(tx, d, None, payload)
        except DecisionExists:  # another runner decided this follow-up first
            return None
        except Exception:
            log.exception(
                "follow-up of outbox %s failed (%s)", r.outbox_id, pseudonym(r.customer_id)
            )
            return None
        return reason

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # retried next tick; never kill the loop
                log.exception("escalation round failed")
            await asyncio.sleep(self.interval_s)
