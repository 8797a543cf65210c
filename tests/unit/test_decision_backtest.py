"""Backtest (pure): its own would-be offers count for cooldown and pressure, as live."""

from __future__ import annotations

from geo_engine.decision.backtest import backtest
from geo_engine.decision.book import Book
from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.models import parse_campaign, parse_offer
from geo_engine.decision.rules import DecisionConfig
from tests.unit.test_decision import TUE_11, campaign_doc, customer, event, offer_doc


def test_cooldown_applies_across_replayed_visits() -> None:
    offers = {"o1": parse_offer(offer_doc())}
    book = Book([parse_campaign(campaign_doc(cooldown_s=86400.0), offers)], offers)
    evs: list[TriggerEvent] = [event(TUE_11 + h * 3600, instance=f"pe:{h}") for h in range(6)]
    evs.append(event(TUE_11 + 3600, customer_id="bob", fence_kind="competitor"))  # no trigger

    def subject(ev: TriggerEvent) -> tuple[Customer, dict[str, object]]:
        return customer(customer_id=ev.customer_id), {}

    res = backtest(evs, book, "c1", subject, lambda _: frozenset(), DecisionConfig(holdout_pct=0.0))
    assert (res.events, res.offers) == (6, 1)
    assert res.by_reason == {"chosen": 1, "cooldown": 5}
    assert res.by_channel == {"push": 1} and res.by_day == {"2026-11-24": 1}
