"""What the decision caches (per book: each trigger shape's campaigns, bounds, offers and the
lists of campaigns not reached; per process: step strings and consent answers) never outlives a
change: a campaign or offer edited is a new book, and the new book decides by the new
definition while a decision in flight on the old one keeps the old."""

from __future__ import annotations

from typing import Any

from geo_engine.decision.book import Book
from geo_engine.decision.decide import Decision, decide
from geo_engine.decision.facts import Customer
from geo_engine.decision.models import parse_campaign, parse_offer
from geo_engine.decision.rules import pressure_of
from tests.unit.test_decision import NO_HOLDOUT, TUE_11, campaign_doc, event, offer_doc


def book_of(campaigns: list[dict[str, Any]], offers: list[dict[str, Any]]) -> Book:
    os_ = {o.id: o for o in (parse_offer(d) for d in offers)}
    return Book([parse_campaign(c, os_) for c in campaigns], os_)


def run(b: Book, consented: tuple[str, ...] = ("push", "sms")) -> Decision:
    cust = Customer("alice", frozenset(consented), False, None)
    return decide(event(), cust, {}, b, pressure_of([], TUE_11), frozenset(), NO_HOLDOUT)


def test_an_edited_campaign_is_decided_by_its_new_definition() -> None:
    offers = [offer_doc("o1", value=10.0), offer_doc("o2", value=30.0)]
    old = book_of([campaign_doc("c1", offer_ids=["o1"])], offers)
    assert run(old).offer_id == "o1"  # the shape is cached in `old` now
    new = book_of([campaign_doc("c1", offer_ids=["o1", "o2"])], offers)
    assert run(new).offer_id == "o2"
    assert run(old).offer_id == "o1"  # a decision on the old book: the old definition
    # a trigger no longer listened to: nothing fires, though the old shape fired c1
    moved = book_of([campaign_doc("c1", triggers=[{"type": "presence", "event": "exit"}])], offers)
    assert moved.candidates(event()) == ()
    assert run(moved).traces == ()


def test_an_edited_offer_and_rank_order_follow_the_new_book() -> None:
    offers = [offer_doc("o1", value=10.0), offer_doc("o2", value=30.0)]
    two = [campaign_doc("c1", offer_ids=["o1"]), campaign_doc("c2", offer_ids=["o2"])]
    first = book_of(two, offers)
    d = run(first)
    assert (d.campaign_id, d.not_evaluated) == ("c2", ("c1",))  # c1's bound is below c2's
    # o1 now worth more: c1 ranks first, c2 is the one not reached
    richer = [offer_doc("o1", value=50.0), offer_doc("o2", value=30.0)]
    second = book_of(two, richer)
    d = run(second)
    assert (d.campaign_id, d.not_evaluated) == ("c1", ("c2",))
    # o1 expired: c1 has no valid offer, c2 wins
    expired = [offer_doc("o1", value=50.0, valid_until=TUE_11 - 1), offer_doc("o2", value=30.0)]
    d = run(book_of(two, expired))
    assert d.campaign_id == "c2"
    assert [t.result for t in d.traces] == ["no_valid_offer", "chosen"]
    assert run(first).campaign_id == "c2"  # the first book is unchanged


def test_consent_and_channel_steps_follow_each_decisions_inputs() -> None:
    b = book_of([campaign_doc("c1")], [offer_doc("o1")])
    assert run(b).traces[0].steps[0] == "consent:push,sms"
    assert run(b, ("sms",)).traces[0].steps[0] == "consent:sms"
    assert run(b, ()).traces[0].result == "no_consent"
    push_only = book_of([campaign_doc("c1", channels=["push"])], [offer_doc("o1")])
    assert run(push_only).traces[0].steps[0] == "consent:push"
    assert run(push_only, ("sms",)).traces[0].steps == ("consent:none",)
    assert run(b).channel == "push" and run(b, ("sms",)).channel == "sms"
