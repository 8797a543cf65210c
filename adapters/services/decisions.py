"""The decision service: keeps the live campaigns in memory and, called by the reaction pipeline
(adapters/services/reactions.py) for presence events, velocity crossings and behavioural
events, decides, then persists the decision and its outbox row in the caller's transaction (so
they commit atomically with the event or signal that caused them).

A decision never fails the ping path: each one runs in a savepoint, and an error only loses
that decision (logged). A campaign whose conditions raise is disabled and reported."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from adapters.services.live import LivePresence
from adapters.services.profiles import PostedEvents, ProfileService
from geo_engine.decision.bandit import Snapshot, draws_for
from geo_engine.decision.book import Book
from geo_engine.decision.calls import call_reason
from geo_engine.decision.codes import new_code
from geo_engine.decision.decide import Decision, decide
from geo_engine.decision.facts import (
    Customer,
    TriggerEvent,
    context_facts,
    customer_of,
    profile_facts,
)
from geo_engine.decision.models import CALL_CENTER, Campaign, Offer, parse_campaign, parse_offer
from geo_engine.decision.payload import offer_payload
from geo_engine.decision.ports import CampaignStore, NewTask
from geo_engine.decision.presence_trigger import presence_trigger
from geo_engine.decision.rules import WEEK_S, DecisionConfig, pressure_of, warm
from geo_engine.decision.sms_mentions import SmsMentions
from geo_engine.decision.triggers import (
    event_instance,
    event_trigger,
    locate,
    needs_of,
    velocity_trigger,
)
from geo_engine.models import PresenceEvent
from geo_engine.ports import Tx
from geo_engine.profile.velocity import Crossing

log = logging.getLogger(__name__)


class DecisionService:
    def __init__(
        self,
        repo: CampaignStore,
        profiles: ProfileService,
        live: LivePresence,
        cfg: DecisionConfig,
        *,
        clock: Callable[[], float] = time.time,
        fix_max_age_s: float = 1800.0,
        call_due_s: float = 86400.0,
        mentions: SmsMentions | None = None,
    ) -> None:
        self.repo = repo
        self.mentions = mentions or SmsMentions()  # sender and STOP in every marketing SMS
        # an event gets a store context only from presence this fresh (and only if it is itself
        # this recent): a fix older than that says nothing of where the customer is now
        self.fix_max_age_s = fix_max_age_s
        self.call_due_s = call_due_s  # a call-center task is due this long after its trigger
        self.profiles = profiles
        self.live = live
        self.cfg = cfg
        self.clock = clock
        self.book = Book([], {})
        self.calls = False  # some live campaign makes call-center tasks
        self.disabled: list[tuple[str, str]] = []  # (campaign, reason) disabled since start
        # learned outcomes per arm (ranking "bandit"): swapped whole by adapters/services/bandit.py
        self.arms = Snapshot()
        warm(cfg)

    async def reload(self) -> None:
        """Rebuild the in-memory book from the database (after every change through the API)."""
        offers: dict[str, Offer] = {}
        for s in await self.repo.offers():
            offers[s.id] = parse_offer(s.doc)
        live: list[Campaign] = []
        for s in await self.repo.campaigns("live"):
            try:
                live.append(parse_campaign(s.doc, offers))
            except ValueError as exc:  # saved valid, but e.g. an offer changed under it
                log.warning("campaign %s not loaded: %s", s.id, exc)
        self.book = self.book_of(live, offers)
        # calls count toward pressure; read them only while some campaign can make one (a
        # query less on every other decision)
        self.calls = any(c.action != "message" for c in live)

    def book_of(self, campaigns: Iterable[Campaign], offers: Mapping[str, Offer]) -> Book:
        """A book of `campaigns`, ranked as configured: with ranking "bandit" it carries the
        arms' latest snapshot (live decisions, and a backtest that must rank as live does)."""
        if self.cfg.ranking != "bandit":
            return Book(campaigns, offers)
        # the book carries the snapshot its rank bounds come from: a decision draws from it
        return Book(campaigns, offers, self.arms, self.cfg.bandit)

    def use_arms(self, arms: Snapshot) -> None:
        """A fresh snapshot of the arms' outcomes (adapters/services/bandit.py): swapped whole,
        with a book bounded by it (a decision in flight keeps the book it started with)."""
        self.arms = arms
        book = self.book
        self.book = self.book_of(book.campaigns.values(), book.offers)

    # --- reactions (adapters/services/reactions.py), inside the change's transaction --------
    async def on_presence(self, tx: Tx, stored: list[tuple[int, PresenceEvent]]) -> None:
        for pid, ev in stored:
            await self._one(tx, self.presence_trigger(pid, ev), pid)

    async def on_crossings(self, tx: Tx, crossings: list[Crossing]) -> None:
        for c in crossings:
            trig = velocity_trigger(c.customer_id, c.figure, c.trend, c.as_of)
            await self._one(tx, trig, None)

    async def on_events(self, tx: Tx, events: PostedEvents) -> None:
        """Posted behavioural events (POST /v1/events), in the transaction storing them."""
        book = self.book
        for event_id, e in events:
            name = str(e.type)
            needs = needs_of(book.triggers("event", name))
            if not needs.any_trigger:  # most events fire nothing: no presence read, no row
                continue
            store, in_store = None, False
            if needs.location and self.clock() - e.ts <= self.fix_max_age_s:
                # a read of the presence engine's state, no await in between: nothing changes
                # it under us. Not under the unit of work's lock: the presence path takes the
                # profile lock (store visits) while holding it, and this runs under the profile
                # lock.
                engine = self.live.engine
                store, in_store = locate(
                    needs,
                    engine.inside(e.customer_id),
                    engine.cursor(e.customer_id),
                    self.live.index,
                    e.ts,
                    self.fix_max_age_s,
                )
            inst = event_instance(name, e.ts, event_id)
            trig = event_trigger(e.customer_id, name, e.ts, inst, store, in_store=in_store)
            await self._one(tx, trig, None)

    def presence_trigger(self, pid: int, ev: PresenceEvent) -> TriggerEvent:
        index = self.live.index
        pos = index.position(ev.geofence_id)
        return presence_trigger(pid, ev, None if pos is None else index.fences[pos])

    async def _one(self, tx: Tx, ev: TriggerEvent, pid: int | None) -> None:
        book = self.book
        if not book.candidates(ev):  # most events fire nothing: no query, no row
            return
        try:
            async with tx.savepoint():  # a failure here spares the presence change
                d = await self._decide(tx, book, ev)
                call = d.sends and d.channel == CALL_CENTER
                payload = self.payload(d, book) if d.sends and not call else None
                did = await self.repo.record(tx, d, pid, payload)
                if call:
                    await self._task(tx, d, did, book)
                for cid, reason in d.broken:
                    await self.repo.disable(tx, cid, reason)
                    self.disabled.append((cid, reason))
                    log.error("campaign %s disabled: %s", cid, reason)
            if d.broken:
                broken = {c for c, _ in d.broken}
                self.book = self.book_of(
                    [c for c in book.campaigns.values() if c.id not in broken], book.offers
                )
        except Exception:
            log.exception("decision failed for %s (%s)", ev.customer_id, ev.instance)

    def subject(self, ev: TriggerEvent) -> tuple[Customer, dict[str, object]]:
        """The customer and the condition facts for `ev`, from the in-memory profile."""
        profile = self.profiles.profile(ev.customer_id, ev.ts)
        if profile is None:
            customer = Customer(ev.customer_id, frozenset(), False, None)
            facts: dict[str, object] = {}
        else:
            customer = customer_of(profile)
            facts = profile_facts(profile)
        facts.update(context_facts(ev, self.cfg.default_timezone))
        return customer, facts

    async def _decide(self, tx: Tx, book: Book, ev: TriggerEvent) -> Decision:
        now = ev.ts
        customer, facts = self.subject(ev)
        history = await self.repo.history(tx, ev.customer_id, now - WEEK_S)
        if self.calls:
            history += await self.repo.call_history(tx, ev.customer_id, now - WEEK_S)
        suppressed = await self.repo.suppression_of(tx, ev.customer_id)
        usage = await self.repo.usage(tx, list(book.offers))
        prop = None
        if book.arms is not None:  # ranking "bandit"; seeded by the trigger: a replay draws alike
            prop = draws_for(book.arms, self.cfg.bandit, ev.customer_id, ev.instance)
        return decide(
            ev, customer, facts, book, pressure_of(history, now), suppressed, self.cfg, usage, prop
        )

    async def _task(self, tx: Tx, d: Decision, did: int, book: Book) -> None:
        """A call-center campaign won: its task, instead of an outbox row."""
        ev = d.trigger
        c = book.campaigns[d.campaign_id or ""]
        _, facts = self.subject(ev)
        new = NewTask(
            d.customer_id,
            c.id,
            d.offer_id,
            did,
            ev.instance,
            call_reason(ev, facts),
            c.priority,
            ev.ts,
            ev.ts + self.call_due_s,
        )
        await self.repo.create_task(tx, new)

    def payload(self, d: Decision, book: Book) -> dict[str, Any]:
        """The rendered content of the offer `d` sends, with a fresh redemption code."""
        profile = self.profiles.profile(d.customer_id, d.trigger.ts)
        # one redemption code per delivery (adapters/db/outcomes.py)
        return offer_payload(d, book.offers[d.offer_id or ""], profile, self.mentions, new_code())
