"""The optimised decision (trigger index, rank-bound walk, cached traces, compiled conditions)
picks exactly what a straightforward evaluation picks: every campaign checked, every eligible
one ranked, the rules applied in rank order until one passes. The reference is written here,
independently of decide.py, over random catalogues, customers, pressure and times."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo_engine.decision.bandit import (
    Propensity,
)
from geo_engine.decision.book import Book
from geo_engine.decision.decide import Usage, decide
from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.models import Campaign, Offer, parse_campaign, parse_offer
from geo_engine.decision.rules import DecisionConfig, Pressure, Sent, bucket, pressure_of, send_time

PARIS = ZoneInfo("Europe/Paris")
TUE_11 = datetime(2026, 11, 24, 11, 0, tzinfo=PARIS).timestamp()
HOUR = 3600.0
BOTH: frozenset[str] = frozenset({"push", "sms"})
NONE: frozenset[str] = frozenset()
CONDITIONS: list[dict[str, Any] | None] = [
    None,
    {"field": "profile.segment", "op": "in", "value": ["loyal", "champions"]},
    {"field": "context.local_hour", "op": "between", "value": [8, 12]},
    {
        "any": [
            {"field": "profile.affinity.shoes", "op": "gte", "value": 0.3},
            {"not": {"field": "profile.segment", "op": "eq", "value": "lost"}},
        ]
    },
    {"field": "profile.rfm.frequency", "op": "gt", "value": 2},  # missing fact: false
]
TRIGGERS = [
    {"type": "presence", "event": "enter", "fence_kinds": ["store"]},
    {"type": "presence", "event": "enter"},
    {"type": "presence", "event": "enter", "fence_ids": ["opera"]},
    {"type": "presence", "event": "enter", "fence_ids": ["bastille"]},
    {"type": "presence", "event": "dwell"},
    {"type": "presence", "event": "enter", "sources": ["beacon"]},
]


@st.composite
def offers(draw: st.DrawFn, i: int) -> dict[str, Any]:
    content: dict[str, Any] = {}
    kinds = draw(st.sampled_from([("sms",), ("push",), ("sms", "push")]))
    if "sms" in kinds:
        content["sms"] = {"text": "-10% chez {store_name}. STOP 36180"}
    if "push" in kinds:
        content["push"] = {"title": "-10%", "body": "{store_name}", "deep_link": None}
    return {
        "id": f"o{i}",
        "content": content,
        # not yet valid, valid, expiring soon, or expired
        "valid_from": TUE_11 - draw(st.sampled_from([86400.0] * 5 + [-HOUR])),
        "valid_until": TUE_11 + draw(st.sampled_from([30 * 86400.0] * 5 + [2 * HOUR, -0.5 * HOUR])),
        "value": draw(st.sampled_from([10.0, -1.0, 0.0, 3.0, 5.0, 10.0, 25.0, 40.0])),  # ties too
        "category": draw(st.sampled_from(["shoes", None, "bags"])),
        "store_ids": draw(st.sampled_from([[], [], ["opera"], ["bastille"]])),
        "redemption_cap": draw(st.sampled_from([None, None, 3])),
    }


@st.composite
def campaigns(draw: st.DrawFn, i: int, offer_ids: list[str]) -> dict[str, Any]:
    return {
        "id": f"c{i:02d}",
        "status": draw(st.sampled_from(["live"] * 6 + ["paused"])),
        "start": TUE_11 - draw(st.sampled_from([86400.0] * 6 + [-HOUR])),
        "end": TUE_11 + draw(st.sampled_from([30 * 86400.0] * 4 + [3 * HOUR])),
        "priority": draw(st.sampled_from([0, 0, 0, 1])),
        "triggers": [draw(st.sampled_from(TRIGGERS[:2] * 4 + TRIGGERS))],
        "conditions": draw(st.sampled_from([None, *CONDITIONS])),
        "offer_ids": draw(st.lists(st.sampled_from(offer_ids), min_size=1, max_size=3)),
        "channels": draw(st.sampled_from([["push", "sms"], ["sms", "push"], ["push"], ["sms"]])),
        "control_pct": draw(st.sampled_from([0.0, 0.0, 30.0])),
        "cooldown_s": draw(st.sampled_from([0.0, 86400.0])),
        "suppression_lists": draw(st.sampled_from([[], [], [], ["vip"]])),
    }


@st.composite
def worlds(draw: st.DrawFn, contested: bool = False) -> dict[str, Any]:
    """contested: a reachable customer and many live campaigns on valid offers, so the
    ranking (not the customer-wide rules) decides."""
    odocs = [draw(offers(i)) for i in range(draw(st.integers(2 if contested else 1, 5)))]
    for d in odocs:
        if contested:
            d.update(valid_from=TUE_11 - 86400, valid_until=TUE_11 + 86400, store_ids=[])
        d["valid_from"] = min(d["valid_from"], d["valid_until"] - 60)
    parsed = {o.id: o for o in (parse_offer(d) for d in odocs)}
    cdocs: list[Campaign] = []
    for i in range(draw(st.integers(4 if contested else 1, 12))):
        doc = draw(campaigns(i, list(parsed)))
        if contested:
            doc.update(status="live", start=TUE_11 - 86400, triggers=TRIGGERS[:1])
        try:
            cdocs.append(parse_campaign(doc, parsed))
        except ValueError:  # no offer with content for its channels: not saveable
            continue
    cids = [c.id for c in cdocs] or ["c00"]
    history = [
        Sent(
            TUE_11 - draw(st.sampled_from([600.0, 5 * HOUR, 3 * 86400.0])),
            draw(st.sampled_from(["push", "sms"])),
            draw(st.sampled_from(cids)),
        )
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 5])))
    ]
    w: dict[str, Any] = {
        "offers": parsed,
        "campaigns": cdocs,
        "customer": Customer(
            draw(st.sampled_from(["alice", "bob", "chloe", "dan", "eve"])),
            draw(
                st.sampled_from([BOTH, BOTH, BOTH, frozenset({"push"}), frozenset({"sms"}), NONE])
            ),
            draw(st.sampled_from([False] * 7 + [True])),
            draw(st.sampled_from([None, "push", "sms"])),
            draw(
                st.dictionaries(
                    st.sampled_from(["shoes", "bags"]), st.sampled_from([1.0, 0.0, 0.5])
                )
            ),
        ),
        "facts": {
            "profile.segment": draw(st.sampled_from(["loyal", "prospect", "lost"])),
            "profile.affinity.shoes": draw(st.sampled_from([0.0, 0.6])),
            "context.local_hour": draw(st.sampled_from([9.5, 11.0, 22.0])),
        },
        "history": history,
        "suppressed": draw(st.sampled_from([NONE] * 4 + [frozenset({"vip"}), frozenset({"all"})])),
        "cfg": DecisionConfig(
            holdout_pct=draw(st.sampled_from([0.0, 0.0, 30.0])),
            suppression_lists=frozenset(draw(st.sampled_from([[], ["all"]]))),
        ),
        "usage": {"o0": Usage(issued=draw(st.sampled_from([0, 3])))},
        "ts": TUE_11 + draw(st.sampled_from([0.0, 0.0, 0.0, 11 * HOUR, 4 * 86400.0 + 2 * HOUR])),
        "trigger": draw(
            st.sampled_from(
                [
                    ("enter", "opera", "gps"),
                    ("enter", "opera", "gps"),
                    ("enter", "opera", "gps"),
                    ("enter", "bastille", "beacon"),
                    ("dwell", "opera", "gps"),
                ]
            )
        ),
    }
    if contested:
        w.update(history=[], suppressed=NONE, ts=TUE_11, trigger=("enter", "opera", "gps"))
        cust: Customer = w["customer"]
        w["customer"] = cust._replace(consented=BOTH, objects_to_direct_marketing=False)
    return w


def fires(c: Campaign, ev: TriggerEvent) -> bool:
    for t in c.triggers:
        if (t.kind, t.name) != (ev.kind, ev.name):
            continue
        if t.fence_ids and ev.fence_id not in t.fence_ids:
            continue
        if t.fence_kinds and ev.fence_kind not in t.fence_kinds:
            continue
        if t.sources and ev.source not in t.sources:
            continue
        return True
    return False


def reference(
    ev: TriggerEvent,
    cust: Customer,
    facts: dict[str, object],
    cs: list[Campaign],
    os_: dict[str, Offer],
    p: Pressure,
    suppressed: frozenset[str],
    cfg: DecisionConfig,
    usage: dict[str, Usage],
    prop: Propensity | None = None,
) -> tuple[str, str | None, str | None, str | None, float | None]:
    none = ("none", None, None, None, None)
    if not cust.consented or cust.objects_to_direct_marketing:
        return none
    if p.day >= cfg.max_per_day or p.week >= cfg.max_per_week:
        return none
    ranked = []
    for c in cs:
        if not (c.status == "live" and c.start <= ev.ts < c.end and fires(c, ev)):
            continue
        if c.condition is not None and not c.condition(facts):
            continue
        scored = []
        for n, oid in enumerate(c.offer_ids):
            o = os_[oid]
            if not (o.valid_from <= ev.ts < o.valid_until):
                continue
            if o.store_ids and ev.store_id not in o.store_ids:
                continue
            u = usage.get(oid, Usage())
            if o.redemption_cap is not None and u.issued >= o.redemption_cap:
                continue
            aff = cust.affinity.get(o.category, 0.0) if o.category else 0.0
            static = 0.1 + 0.9 * aff
            p_ = static if prop is None else prop(c.id, o.id, static)
            scored.append((o.value * p_, -n, o))  # ties: the first listed
        if scored:
            score, _, o = max(scored, key=lambda s: (s[0], s[1]))
            ranked.append(((-c.priority, -score, c.id), c, o))
    for _, c, o in sorted(ranked, key=lambda r: r[0]):
        chans = [ch for ch in c.channels if ch in o.channels and ch in cust.consented]
        if not chans or (c.suppression_lists | cfg.suppression_lists) & suppressed:
            continue
        last = p.last_by_campaign.get(c.id)
        if last is not None and ev.ts - last < c.cooldown_s:
            continue
        chans = [
            ch
            for ch in chans
            if p.channel_day.get(ch, 0) < cfg.max_per_channel_day
            and p.channel_week.get(ch, 0) < cfg.max_per_channel_week
        ]
        timed = {}
        for ch in chans:
            t = send_time(ev.ts, ch, "Europe/Paris", cfg)
            if t < o.valid_until and t < c.end:
                timed[ch] = t
        if not timed:
            continue
        channel = next(
            ch for ch in (cust.preferred_channel, *cfg.fallback_order, *c.channels) if ch in timed
        )
        if bucket(cust.customer_id) < cfg.holdout_pct:
            outcome = "holdout"
        elif c.control_pct and bucket(f"{c.id}:{cust.customer_id}") < c.control_pct:
            outcome = "control"
        else:
            outcome = "held" if timed[channel] > ev.ts else "send"
        return (outcome, c.id, o.id, channel, timed[channel])
    return none


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(worlds(), worlds(contested=True)))
def test_optimised_decision_matches_the_reference(w: dict[str, Any]) -> None:
    name, fence, source = w["trigger"]
    ev = TriggerEvent(
        "presence",
        name,
        w["customer"].customer_id,
        w["ts"],
        "pe:1",
        fence_id=fence,
        fence_kind="store",
        store_id=fence,
        source=source,
        timezone="Europe/Paris",
    )
    book = Book(w["campaigns"], w["offers"])
    args = (w["suppressed"], w["cfg"], w["usage"])
    pressure = pressure_of(w["history"], ev.ts)
    want = reference(ev, w["customer"], w["facts"], w["campaigns"], w["offers"], pressure, *args)
    for _ in range(2):  # the second time from the book's caches
        d = decide(ev, w["customer"], w["facts"], book, pressure, *args)
        got = (d.outcome, d.campaign_id, d.offer_id, d.channel, d.send_after)
        assert got == want
        # every campaign the event fires is explained once: a trace or not evaluated
        fired = sorted(c.id for c in w["campaigns"] if fires(c, ev) and c.live_at(ev.ts))
        explained = [t.campaign_id for t in d.traces] + list(d.not_evaluated)
        assert set(fired) <= set(explained)
        assert len(explained) == len(set(explained))


def test_customer_wide_stop_names_cooldown_per_campaign_from_the_cached_traces() -> None:
    """Capped customer: every campaign stops at pressure_cap, except those cooling down,
    also when the traces come from the book's cache (second call)."""
    os_ = {
        "o1": parse_offer(
            {
                "id": "o1",
                "content": {"push": {"title": "t", "body": "b", "deep_link": None}},
                "valid_from": TUE_11 - 86400,
                "valid_until": TUE_11 + 86400,
                "value": 5.0,
            }
        )
    }
    cs = [
        parse_campaign(
            {
                "id": cid,
                "status": "live",
                "start": TUE_11 - 86400,
                "end": TUE_11 + 86400,
                "triggers": [TRIGGERS[0]],
                "offer_ids": ["o1"],
                "channels": ["push"],
                "cooldown_s": 86400.0,
            },
            os_,
        )
        for cid in ("a", "b", "c")
    ]
    book = Book(cs, os_)
    ev = TriggerEvent(
        "presence", "enter", "alice", TUE_11, "pe:1", fence_id="opera", fence_kind="store"
    )
    hist = [Sent(TUE_11 - 60 * k, "push", "b") for k in range(1, 6)]
    cust = Customer("alice", frozenset({"push"}), False, None)
    for _ in range(2):
        d = decide(ev, cust, {}, book, pressure_of(hist, TUE_11), frozenset(), DecisionConfig())
        assert [(t.campaign_id, t.result) for t in d.traces] == [
            ("a", "pressure_cap"),
            ("b", "cooldown"),
            ("c", "pressure_cap"),
        ]
        assert all(t.steps == ("customer:pressure_cap",) for t in d.traces)


def test_a_campaign_whose_bound_can_still_win_is_evaluated() -> None:
    """Equal bounds (both 10 at propensity 1): 'a' (shoes, affinity 0.5: 5.5) is evaluated
    first, but 'b' (bags, affinity 1: 10) can still beat it, so it is evaluated and wins."""
    os_ = {
        o.id: o
        for o in (
            parse_offer(
                {
                    "id": oid,
                    "content": {"push": {"title": "t", "body": "b", "deep_link": None}},
                    "valid_from": TUE_11 - 86400,
                    "valid_until": TUE_11 + 86400,
                    "value": 10.0,
                    "category": cat,
                }
            )
            for oid, cat in (("oa", "shoes"), ("ob", "bags"))
        )
    }
    cs = [
        parse_campaign(
            {
                "id": cid,
                "status": "live",
                "start": TUE_11 - 86400,
                "end": TUE_11 + 86400,
                "triggers": [TRIGGERS[0]],
                "offer_ids": [oid],
                "channels": ["push"],
            },
            os_,
        )
        for cid, oid in (("a", "oa"), ("b", "ob"))
    ]
    ev = TriggerEvent(
        "presence", "enter", "alice", TUE_11, "pe:1", fence_id="opera", fence_kind="store"
    )
    cust = Customer("alice", frozenset({"push"}), False, None, {"shoes": 0.5, "bags": 1.0})
    cfg = DecisionConfig(holdout_pct=0.0)
    d = decide(ev, cust, {}, Book(cs, os_), pressure_of([], TUE_11), frozenset(), cfg)
    assert (d.campaign_id, d.offer_id) == ("b", "ob")
    assert [(t.campaign_id, t.result) for t in d.traces] == [("b", "chosen"), ("a", "outranked")]
