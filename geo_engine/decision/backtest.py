"""Backtest: replay stored triggers through one campaign exactly as live, without sending or
writing anything. Offers the campaign would have given feed its own pressure and cooldown as
they would have live (other campaigns' offers are not replayed: the figure is the campaign's
own reach). The subject built for speed with the live result: replay_subject.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from geo_engine.decision.bandit import draws_for
from geo_engine.decision.book import Book
from geo_engine.decision.conditions import Facts
from geo_engine.decision.decide import decide
from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.rules import WEEK_S, DecisionConfig, Sent, pressure_of, tz_of

Subject = Callable[[TriggerEvent], tuple[Customer, Facts]]


@dataclass
class BacktestResult:
    events: int = 0
    offers: int = 0  # would-be sends (send + held)
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)  # the campaign's trace result
    by_store: Counter[str] = field(default_factory=Counter)  # offers per store
    by_day: Counter[str] = field(default_factory=Counter)  # offers per local day
    by_channel: Counter[str] = field(default_factory=Counter)
    by_offer: Counter[str] = field(default_factory=Counter)  # which of its offers it would give


def backtest(
    events: Iterable[TriggerEvent],
    book: Book,
    campaign_id: str,
    subject: Subject,
    suppressed: Callable[[str], frozenset[str]],
    cfg: DecisionConfig,
) -> BacktestResult:
    """`events` oldest first; `subject` gives the customer and facts at that event."""
    run = Replay(book, campaign_id, subject, suppressed, cfg)
    run.feed(events)
    return run.result


class Replay:
    """A backtest fed in chunks (events streamed from storage, oldest first): the would-be
    offers so far feed pressure and cooldown of the events after them."""

    def __init__(
        self,
        book: Book,
        campaign_id: str,
        subject: Subject,
        suppressed: Callable[[str], frozenset[str]],
        cfg: DecisionConfig,
    ) -> None:
        self.book = book
        self.campaign_id = campaign_id
        self.subject = subject
        self.suppressed = suppressed
        self.cfg = cfg
        self.result = BacktestResult()
        self._history: dict[str, list[Sent]] = {}

    def feed(self, events: Iterable[TriggerEvent], *, matched: bool = False) -> None:
        """`matched`: the caller kept only events that fire the campaign (`book.candidates`)."""
        out, book, cfg, campaign_id = self.result, self.book, self.cfg, self.campaign_id
        history, subject, suppressed = self._history, self.subject, self.suppressed
        by_outcome, by_reason = out.by_outcome, out.by_reason
        arms = book.arms
        for ev in events:
            if not matched and not book.candidates(ev):
                continue
            out.events += 1
            cid, ts = ev.customer_id, ev.ts
            customer, facts = subject(ev)
            sent = history.get(cid)
            past = [s for s in sent if ts - s.ts < WEEK_S] if sent else []
            # ranking "bandit": the draws live made, seeded by the trigger (bandit.py)
            prop = None if arms is None else draws_for(arms, cfg.bandit, cid, ev.instance)
            pressure = pressure_of(past, ts)
            d = decide(ev, customer, facts, book, pressure, suppressed(cid), cfg, None, prop)
            by_outcome[d.outcome] += 1
            for t in d.traces:
                if t.campaign_id == campaign_id:
                    by_reason[t.result] += 1
            if d.sends and d.channel is not None and d.send_after is not None:
                out.offers += 1
                past.append(Sent(d.send_after, d.channel, campaign_id))
                history[cid] = past
                out.by_store[ev.store_id or "-"] += 1
                zone = tz_of(ev.timezone or cfg.default_timezone)
                out.by_day[datetime.fromtimestamp(d.send_after, zone).date().isoformat()] += 1
                out.by_channel[d.channel] += 1
                out.by_offer[d.offer_id or "-"] += 1


def retarget(proto: TriggerEvent, customer_id: str, ts: float, instance: str) -> TriggerEvent:
    """`proto` for another customer, time and instance, every other field as it is."""
    p = proto
    return TriggerEvent(
        p.kind,
        p.name,
        customer_id,
        ts,
        instance,
        fence_id=p.fence_id,
        fence_kind=p.fence_kind,
        fence_name=p.fence_name,
        store_id=p.store_id,
        source=p.source,
        kpi=p.kpi,
        timezone=p.timezone,
        distance_m=p.distance_m,
        store_open=p.store_open,
        in_store=p.in_store,
        opening_hours=p.opening_hours,
    )
