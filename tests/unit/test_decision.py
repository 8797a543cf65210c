"""The pure decision: rule order, explanations, and its invariants (hypothesis)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_engine.decision import rules
from geo_engine.decision.book import Book
from geo_engine.decision.decide import Decision, decide
from geo_engine.decision.errors import InvalidDefinition
from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.models import parse_campaign, parse_offer
from geo_engine.decision.rules import DecisionConfig, Sent, pressure_of, send_time

PARIS = ZoneInfo("Europe/Paris")
# Tuesday 2026-11-24 11:00 Paris: inside every window
TUE_11 = datetime(2026, 11, 24, 11, 0, tzinfo=PARIS).timestamp()
NO_HOLDOUT = DecisionConfig(holdout_pct=0.0)


def offer_doc(oid: str = "o1", **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": oid,
        "content": {
            "sms": {"text": "Bonjour {first_name}, -10% chez {store_name}. STOP 36180"},
            "push": {"title": "-10%", "body": "À {distance_m} m", "deep_link": "app://o"},
        },
        "valid_from": TUE_11 - 86400,
        "valid_until": TUE_11 + 90 * 86400,
        "value": 10.0,
    }
    doc.update(kw)
    return doc


def campaign_doc(cid: str = "c1", **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": cid,
        "status": "live",
        "start": TUE_11 - 86400,
        "end": TUE_11 + 90 * 86400,
        "triggers": [{"type": "presence", "event": "enter", "fence_kinds": ["store"]}],
        "offer_ids": ["o1"],
        "channels": ["push", "sms"],
    }
    doc.update(kw)
    return doc


def book(*campaigns: dict[str, Any], offers: tuple[dict[str, Any], ...] = ()) -> Book:
    os_ = {o.id: o for o in (parse_offer(d) for d in (offers or (offer_doc(),)))}
    return Book([parse_campaign(c, os_) for c in campaigns], os_)


def event(ts: float = TUE_11, **kw: Any) -> TriggerEvent:
    base: dict[str, Any] = {
        "kind": "presence",
        "name": "enter",
        "customer_id": "alice",
        "ts": ts,
        "instance": "pe:1",
        "fence_id": "opera",
        "fence_kind": "store",
        "store_id": "opera",
        "timezone": "Europe/Paris",
    }
    base.update(kw)
    return TriggerEvent(**base)


def customer(consented: tuple[str, ...] = ("push", "sms"), **kw: Any) -> Customer:
    return Customer(
        kw.pop("customer_id", "alice"),
        frozenset(consented),
        kw.pop("objects", False),
        kw.pop("preferred", None),
        **kw,
    )


def run(
    b: Book, cust: Customer | None = None, ev: TriggerEvent | None = None, **kw: Any
) -> Decision:
    return decide(
        ev or event(),
        cust or customer(),
        kw.pop("facts", {}),
        b,
        kw.pop("pressure", pressure_of([], TUE_11)),
        kw.pop("suppressed", frozenset()),
        kw.pop("cfg", NO_HOLDOUT),
    )


def test_chosen_with_fallback_order_and_explanation() -> None:
    d = run(book(campaign_doc()))
    assert (d.outcome, d.campaign_id, d.offer_id, d.channel) == ("send", "c1", "o1", "push")
    assert d.send_after == TUE_11
    assert d.traces[0].result == "chosen"
    assert d.traces[0].steps[0] == "consent:push,sms"
    d = run(book(campaign_doc()), customer(preferred="sms"))
    assert d.channel == "sms"


def test_consent_objection_suppression_order() -> None:
    assert run(book(campaign_doc()), customer(consented=())).traces[0].result == "no_consent"
    d = run(book(campaign_doc()), customer(consented=("sms",)))
    assert d.channel == "sms"
    assert run(book(campaign_doc()), customer(objects=True)).outcome == "none"
    b = book(campaign_doc(suppression_lists=["bad_payers"]))
    d = run(b, suppressed=frozenset({"bad_payers"}))
    assert (d.outcome, d.traces[0].result) == ("none", "suppressed")
    global_cfg = DecisionConfig(holdout_pct=0.0, suppression_lists=frozenset({"partners_out"}))
    d = run(book(campaign_doc()), suppressed=frozenset({"partners_out"}), cfg=global_cfg)
    assert d.traces[0].result == "suppressed"


def test_pressure_and_cooldown() -> None:
    history = [Sent(TUE_11 - 3600, "push", "other")]
    d = run(book(campaign_doc()), pressure=pressure_of(history, TUE_11))
    assert d.channel == "sms"  # push used today: the channel cap moves it to sms
    history.append(Sent(TUE_11 - 7200, "sms", "other2"))
    d = run(book(campaign_doc()), pressure=pressure_of(history, TUE_11))
    assert d.traces[0].result == "pressure_cap"
    d = run(
        book(campaign_doc()), pressure=pressure_of([Sent(TUE_11 - 2 * 86400, "sms", "c1")], TUE_11)
    )
    assert d.traces[0].result == "cooldown"


def test_quiet_hours_hold_and_drop() -> None:
    night = datetime(2026, 11, 24, 22, 30, tzinfo=PARIS).timestamp()
    d = run(book(campaign_doc()), ev=event(night))
    assert d.outcome == "held"
    assert d.send_after == datetime(2026, 11, 25, 9, 0, tzinfo=PARIS).timestamp()
    assert d.expires_at is not None and d.expires_at > d.send_after
    short = offer_doc(valid_until=night + 3600)
    d = run(book(campaign_doc(), offers=(short,)), ev=event(night))
    assert (d.outcome, d.traces[0].result) == ("none", "outside_hours")


def test_sms_waits_past_sunday_and_holiday() -> None:
    sunday = datetime(2026, 11, 22, 11, 0, tzinfo=PARIS).timestamp()
    early = offer_doc(valid_from=sunday - 3600)
    b = book(campaign_doc(channels=["sms"], start=sunday - 3600), offers=(early,))
    d = run(b, ev=event(sunday))
    assert d.send_after == datetime(2026, 11, 23, 9, 0, tzinfo=PARIS).timestamp()
    xmas = datetime(2026, 12, 25, 11, 0, tzinfo=PARIS).timestamp()
    d = run(book(campaign_doc(channels=["sms"])), ev=event(xmas))
    assert d.send_after == datetime(2026, 12, 26, 9, 0, tzinfo=PARIS).timestamp()


def test_ranking_priority_then_value_and_outranked() -> None:
    offers = (offer_doc("o1", value=5.0), offer_doc("o2", value=50.0, category="shoes"))
    b = book(campaign_doc("c1"), campaign_doc("c2", offer_ids=["o2"]), offers=offers)
    d = run(b)
    assert d.campaign_id == "c2"
    assert [t.result for t in d.traces] == ["chosen"]
    assert d.not_evaluated == ("c1",)  # 5 x 1.0 cannot beat 50 x 0.1: not even evaluated
    b = book(campaign_doc("c1", priority=5), campaign_doc("c2", offer_ids=["o2"]), offers=offers)
    assert run(b).campaign_id == "c1"


def test_holdout_and_control_not_sent() -> None:
    d = run(book(campaign_doc()), cfg=DecisionConfig(holdout_pct=100.0))
    assert (d.outcome, d.sends) == ("holdout", False)
    ids = [f"cust{i}" for i in range(200)]
    outcomes = [
        run(book(campaign_doc(control_pct=50.0)), customer(customer_id=i)).outcome for i in ids
    ]
    assert 60 < outcomes.count("control") < 140
    again = [
        run(book(campaign_doc(control_pct=50.0)), customer(customer_id=i)).outcome for i in ids
    ]
    assert outcomes == again  # stable buckets


def test_trigger_conditions_and_broken_campaign() -> None:
    cond = {"field": "profile.segment", "op": "eq", "value": "loyal"}
    b = book(campaign_doc(conditions=cond))
    assert run(b, facts={"profile.segment": "lost"}).traces[0].result == "conditions"
    assert run(b, facts={"profile.segment": "loyal"}).outcome == "send"
    assert run(b, ev=event(fence_kind="competitor")).traces == ()
    c = parse_campaign(campaign_doc("bad"), {"o1": parse_offer(offer_doc())})

    def boom(_: object) -> bool:
        raise ZeroDivisionError("x")

    broken = type(c)(**{**{f: getattr(c, f) for f in c.__slots__}, "condition": boom})
    b2 = Book(
        [broken, parse_campaign(campaign_doc("ok"), {"o1": parse_offer(offer_doc())})],
        {"o1": parse_offer(offer_doc())},
    )
    d = run(b2)
    assert d.campaign_id == "ok"
    assert d.broken and d.broken[0][0] == "bad"


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (campaign_doc(end=TUE_11 - 2 * 86400), "end"),
        (campaign_doc(offer_ids=["nope"]), "offer_ids.0"),
        (campaign_doc(triggers=[{"type": "presence", "event": "walk"}]), "triggers.0.event"),
        (campaign_doc(conditions={"field": "x", "op": "eq", "value": 1}), "conditions.field"),
    ],
)
def test_invalid_campaigns(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidDefinition) as e:
        parse_campaign(doc, {"o1": parse_offer(offer_doc())})
    assert e.value.field == path


def test_invalid_offers() -> None:
    with pytest.raises(InvalidDefinition, match="unknown placeholder"):
        parse_offer(offer_doc(content={"sms": {"text": "Hi {prenom}"}}))
    with pytest.raises(InvalidDefinition, match="segments"):
        parse_offer(offer_doc(content={"sms": {"text": "é" * 300 + "ë"}}))
    with pytest.raises(InvalidDefinition):
        parse_offer(offer_doc(valid_until=TUE_11 - 2 * 86400))


# --- properties -------------------------------------------------------------------------------
channels = st.frozensets(st.sampled_from(["push", "sms"]))
sent = st.builds(
    Sent,
    ts=st.floats(TUE_11 - 8 * 86400, TUE_11),
    channel=st.sampled_from(["push", "sms"]),
    campaign_id=st.sampled_from(["c0", "c1", "c2", "zz"]),
)


@settings(max_examples=300, deadline=None)
@given(
    consented=channels,
    preferred=st.sampled_from([None, "push", "sms"]),
    history=st.lists(sent, max_size=8),
    n=st.integers(1, 4),
    hour=st.floats(0, 24 * 7),
    objects=st.booleans(),
)
def test_invariants(
    consented: frozenset[str],
    preferred: str | None,
    history: list[Sent],
    n: int,
    hour: float,
    objects: bool,
) -> None:
    cfg = DecisionConfig(holdout_pct=0.0)
    b = book(*(campaign_doc(f"c{i}", cooldown_s=3600.0 * i) for i in range(n)))
    ts = TUE_11 + hour * 3600
    p = pressure_of(history, ts)
    d = decide(
        event(ts),
        customer(tuple(consented), preferred=preferred, objects=objects),
        {},
        b,
        p,
        frozenset(),
        cfg,
    )
    chosen = [t for t in d.traces if t.result in ("chosen", "holdout", "control")]
    assert len(chosen) <= 1  # never more than one offer per decision
    # a reason for every campaign considered
    assert sorted([t.campaign_id for t in d.traces] + list(d.not_evaluated)) == [
        f"c{i}" for i in range(n)
    ]
    if d.sends:
        assert d.channel in consented  # never a channel without consent
        assert not objects
        assert p.day < cfg.max_per_day and p.week < cfg.max_per_week  # caps never exceeded
        assert p.channel_day.get(d.channel, 0) < cfg.max_per_channel_day
        assert p.channel_week.get(d.channel, 0) < cfg.max_per_channel_week
        assert d.send_after is not None and d.expires_at is not None
        assert ts <= d.send_after < d.expires_at
    else:
        assert d.channel is None or d.outcome in ("holdout", "control")


def test_caps_hold_over_a_sequence() -> None:
    """Feeding every sent offer back: never more than the caps in any day or week."""
    cfg = DecisionConfig(holdout_pct=0.0)
    b = book(*(campaign_doc(f"c{i}", cooldown_s=0.0) for i in range(5)))
    history: list[Sent] = []
    for k in range(14 * 24):
        ts = TUE_11 + k * 3600
        d = decide(event(ts), customer(), {}, b, pressure_of(history, ts), frozenset(), cfg)
        if d.sends:
            assert d.send_after is not None and d.channel is not None
            history.append(Sent(d.send_after, d.channel, d.campaign_id or ""))
    for s in history:
        day = [h for h in history if s.ts <= h.ts < s.ts + 86400]
        week = [h for h in history if s.ts <= h.ts < s.ts + 7 * 86400]
        assert len(day) <= cfg.max_per_day and len(week) <= cfg.max_per_week
    assert history


@settings(max_examples=300, deadline=None)
@given(ts=st.lists(st.floats(TUE_11 - 40 * 86400, TUE_11 + 40 * 86400), min_size=1, max_size=20))
def test_window_cache_agrees_with_a_fresh_computation(ts: list[float]) -> None:
    """next_allowed remembers its latest interval, send_time its latest open span: in any
    order of times, same answers."""
    cfg = DecisionConfig()
    for t in ts:
        cached = [send_time(t, ch, "Europe/Paris", cfg) for ch in ("sms", "push")]
        rules._last.clear()
        rules._spans.clear()
        fresh = [send_time(t, ch, "Europe/Paris", cfg) for ch in ("sms", "push")]
        assert cached == fresh
        for ch, got in zip(("sms", "push"), fresh, strict=True):
            local = datetime.fromtimestamp(got, PARIS)
            assert got >= t
            assert 9 <= local.hour < 21 if ch == "push" else 9 <= local.hour < 20
            if ch == "sms":
                assert local.weekday() < 6
