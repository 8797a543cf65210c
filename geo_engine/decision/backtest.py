"""Backtest: replay stored triggers through one campaign exactly as live, without sending or
writing anything. Offers the campaign would have given feed its own pressure and cooldown as
they would have live (other campaigns' offers are not replayed: the figure is the campaign's
own reach)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from geo_engine.decision.book import Book
from geo_engine.decision.conditions import Facts
from geo_engine.decision.decide import decide
from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.rules import WEEK_S, DecisionConfig, Sent, pressure_of, tz_of


@dataclass
class BacktestResult:
    events: int = 0
    offers: int = 0  # would-be sends (send + held)
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)  # the campaign's trace result
    by_store: Counter[str] = field(default_factory=Counter)  # offers per store
    by_day: Counter[str] = field(default_factory=Counter)  # offers per local day
    by_channel: Counter[str] = field(default_factory=Counter)


def backtest(
    events: Iterable[TriggerEvent],
    book: Book,
    campaign_id: str,
    subject: Callable[[TriggerEvent], tuple[Customer, Facts]],
    suppressed: Callable[[str], frozenset[str]],
    cfg: DecisionConfig,
) -> BacktestResult:
    """`events` oldest first; `subject` gives the customer and facts at that event."""
    out = BacktestResult()
    history: dict[str, list[Sent]] = {}
    for ev in events:
        if not book.candidates(ev):
            continue
        out.events += 1
        customer, facts = subject(ev)
        past = [s for s in history.get(ev.customer_id, ()) if ev.ts - s.ts < WEEK_S]
        d = decide(
            ev, customer, facts, book, pressure_of(past, ev.ts), suppressed(ev.customer_id), cfg
        )
        out.by_outcome[d.outcome] += 1
        for t in d.traces:
            if t.campaign_id == campaign_id:
                out.by_reason[t.result] += 1
        if d.sends and d.channel is not None and d.send_after is not None:
            out.offers += 1
            past.append(Sent(d.send_after, d.channel, campaign_id))
            history[ev.customer_id] = past
            out.by_store[ev.store_id or "-"] += 1
            local = datetime.fromtimestamp(d.send_after, tz_of(ev.timezone or cfg.default_timezone))
            out.by_day[local.date().isoformat()] += 1
            out.by_channel[d.channel] += 1
    return out
