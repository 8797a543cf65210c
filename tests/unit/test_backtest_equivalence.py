"""The replay's fast subject (`ProfileSubject`: the parts of a profile that do not move with time
read once per customer, the condition facts built only when a condition reads one) gives what
the live path gives (`DecisionService.subject`: the whole profile built for every event), on
random small worlds: per event, and as a whole backtest."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from geo_engine.decision.backtest import backtest, retarget
from geo_engine.decision.book import Book
from geo_engine.decision.facts import (
    Customer,
    TriggerEvent,
    context_facts,
    customer_of,
    profile_facts,
)
from geo_engine.decision.models import parse_campaign, parse_offer
from geo_engine.decision.replay_subject import LazyFacts, ProfileSubject
from geo_engine.decision.rules import DecisionConfig
from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose, ConsentStatus
from geo_engine.profile.config import ProfileConfig
from geo_engine.profile.events import CHANNELS, N_KPIS
from geo_engine.profile.profile import build_profile
from geo_engine.profile.rfm import RfmFigures
from geo_engine.profile.state import ProfileState
from tests.unit.test_decision import TUE_11, campaign_doc, offer_doc

TZ = "Europe/Paris"
CATS = ("shoes", "bags", "kids", "sport")
FENCES = (("opera", "store"), ("bastille", "store"), ("mall", "zone"), ("rival", "competitor"))
CONDITIONS: tuple[dict[str, Any] | None, ...] = (
    None,
    {"field": "context.local_hour", "op": "between", "value": [9, 19]},
    {"field": "profile.segment", "op": "in", "value": ["champions", "loyal", "prospect"]},
    {"field": "profile.velocity.search.trend", "op": "eq", "value": "rising"},
    {
        "any": [
            {"field": "profile.affinity.shoes", "op": "gte", "value": 0.3},
            {"field": "profile.churn_risk", "op": "ne", "value": "none"},
        ]
    },
)


def reference_subject(st: ProfileState) -> Any:
    """`DecisionService.subject` (adapters/services/decisions.py), the straightforward way."""

    def subject(ev: TriggerEvent) -> tuple[Customer, dict[str, object]]:
        profile = build_profile(st, ev.customer_id, ev.ts)
        if profile is None:
            customer = Customer(ev.customer_id, frozenset(), False, None)
            facts: dict[str, object] = {}
        else:
            customer = customer_of(profile)
            facts = profile_facts(profile)
        facts.update(context_facts(ev, TZ))
        return customer, facts

    return subject


def world(rng: random.Random, n: int = 40) -> ProfileState:
    """Customers with and without a slot: channel and category scores (some tied, some a hair
    apart), orders, daily counts for velocity, consents and attributes."""
    now = TUE_11
    st = ProfileState(ProfileConfig(), ref=now - rng.uniform(0, 20) * 86400)
    granted = Consent(ConsentStatus.GRANTED, now - 86400, "app")
    denied = Consent(ConsentStatus.DENIED, now - 86400, "app")
    counts: list[tuple[str, int, int, int]] = []
    for k in range(n):
        cid = f"cust{k}"
        shape = rng.random()
        if shape < 0.15:
            continue  # unknown customer: no profile at all
        st.consents[cid] = {
            p: rng.choice((granted, granted, denied))
            for p in rng.sample(list(ConsentPurpose), rng.randint(0, 3))
        }
        st.consents[cid].setdefault(ConsentPurpose.PUSH, granted)
        if rng.random() < 0.7:
            st.attributes[cid] = Attributes(first_name=rng.choice(("Léa", "Tom", None)))
        if shape < 0.35:
            continue  # no slot: nothing of the customer moves with time
        s = st.slot(cid)
        base = rng.uniform(0.5, 50)
        for i in rng.sample(range(len(CHANNELS)), rng.randint(0, 3)):
            # ties and near-ties on purpose: the order after decay must be the live one
            st.channel[s, i] = rng.choice((base, base, base * (1 + 1e-15), rng.uniform(0.1, 60)))
        cats = {c: rng.choice((base, base * (1 + 2e-16), rng.uniform(0.01, 9))) for c in CATS}
        st.categories[s] = dict(rng.sample(sorted(cats.items()), rng.randint(0, len(CATS))))
        if rng.random() < 0.5:
            last = now - rng.uniform(0, 400) * 86400
            orders = rng.randint(1, 12)
            st.set_rfm(cid, RfmFigures(orders, orders, rng.uniform(5, 900), last - 86400, last))
        for _ in range(rng.randint(0, 12)):
            day = int(now // 86400) - rng.randint(0, 20)
            counts.append((cid, rng.randrange(N_KPIS), day, rng.randint(1, 4)))
    st.load_counts(counts, now)
    st.refresh_scores(now)
    return st


def events(rng: random.Random, n: int) -> list[TriggerEvent]:
    """Presence and behavioural triggers over a week, oldest first."""
    out: list[TriggerEvent] = []
    for i in range(n):
        ts = TUE_11 - 2 * 86400 + rng.uniform(0, 7 * 86400)
        cid = f"cust{rng.randrange(44)}"  # a few beyond the world: no profile
        fid, kind = rng.choice(FENCES)
        if rng.random() < 0.7:
            name = rng.choice(("enter", "enter", "dwell", "exit"))
            out.append(
                TriggerEvent(
                    "presence", name, cid, ts, f"pe:{i}", fence_id=fid, fence_kind=kind,
                    store_id=fid, timezone=TZ, source="gps",
                    in_store=kind == "store" and name != "exit",
                )
            )  # fmt: skip
        else:
            here = kind == "store" and rng.random() < 0.6
            out.append(
                TriggerEvent(
                    "event", "search", cid, ts, f"ev:{i}",
                    fence_id=fid if here else None, fence_kind="store" if here else None,
                    store_id=fid if here else None, timezone=TZ if here else None,
                    in_store=here,
                )
            )  # fmt: skip
    out.sort(key=lambda e: e.ts)
    return out


def book_of(rng: random.Random) -> Book:
    offers = {
        o.id: o
        for o in (
            parse_offer(offer_doc("o1", category=rng.choice(CATS), value=rng.uniform(1, 20))),
            parse_offer(offer_doc("o2", category=rng.choice(CATS), value=rng.uniform(1, 20))),
        )
    }
    triggers = [
        {"type": "presence", "event": "enter", "fence_kinds": ["store"]},
        {"type": "event", "event": "search", "in_store": rng.random() < 0.5},
    ]
    doc = campaign_doc(
        triggers=triggers,
        offer_ids=["o1", "o2"],
        cooldown_s=rng.choice((0.0, 3600.0, 86400.0)),
        conditions=rng.choice(CONDITIONS),
    )
    if doc["conditions"] is None:
        doc.pop("conditions")
    return Book([parse_campaign(doc, offers)], offers)


@pytest.mark.parametrize("seed", range(12))
def test_fast_subject_gives_the_live_customer_and_facts(seed: int) -> None:
    rng = random.Random(seed)
    st = world(rng)
    ref, fast = reference_subject(st), ProfileSubject(st, TZ)
    for ev in events(rng, 300):
        want_customer, want_facts = ref(ev)
        got_customer, got_facts = fast(ev)
        assert got_customer == want_customer, ev
        assert list(got_customer.affinity) == list(want_customer.affinity)  # same order too
        assert dict(got_facts) == want_facts
        for key in ("context.local_hour", "profile.segment", "profile.churn_risk", "nope"):
            assert got_facts.get(key) == want_facts.get(key)


@pytest.mark.parametrize("seed", range(25))
def test_replay_with_the_fast_subject_equals_the_reference(seed: int) -> None:
    rng = random.Random(1000 + seed)
    st = world(rng)
    b = book_of(rng)
    evs = events(rng, 400)
    suppressed = {f"cust{k}": frozenset({"partner"}) for k in range(0, 44, 7)}
    cfg = DecisionConfig(
        holdout_pct=rng.choice((0.0, 5.0, 30.0)),
        max_per_day=rng.choice((1, 2)),
        suppression_lists=frozenset({"partner"}) if rng.random() < 0.5 else frozenset(),
    )

    def sup(cid: str) -> frozenset[str]:
        return suppressed.get(cid, frozenset())

    want = backtest(evs, b, "c1", reference_subject(st), sup, cfg)
    got = backtest(evs, b, "c1", ProfileSubject(st, TZ), sup, cfg)
    assert got == want
    assert want.events > 0 and sum(want.by_reason.values()) > 0  # the world fires something


def test_lazy_facts_read_the_profile_only_when_asked() -> None:
    calls: list[str] = []

    def profile(cid: str, now: float) -> dict[str, object]:
        calls.append(cid)
        return {"profile.segment": "loyal"}

    ev = TriggerEvent("presence", "enter", "alice", TUE_11, "pe:1", timezone=TZ)
    facts = LazyFacts(ev, TZ, profile)
    assert facts.get("context.local_hour") == 11.0 and calls == []
    assert facts.get("profile.segment") == "loyal" and facts.get("profile.x", 3) == 3
    assert calls == ["alice"]  # once
    assert facts["context.trigger"] == "presence:enter" and "profile.segment" in facts
    assert len(facts) == len(context_facts(ev, TZ)) + 1


def test_retarget_keeps_every_other_field() -> None:
    """A presence trigger is built once per (type, fence, source) and retargeted: a field added
    to TriggerEvent must be carried over too."""
    proto = TriggerEvent(
        "presence", "enter", "alice", 1.0, "pe:1", fence_id="opera", fence_kind="store",
        fence_name="Opéra", store_id="s1", source="beacon", kpi="k", timezone=TZ,
        distance_m=3.0, store_open=True, in_store=True, opening_hours={"mon": [["09:00", "20:00"]]},
    )  # fmt: skip
    got = retarget(proto, "bob", 2.0, "pe:2")
    want = dataclasses.replace(proto, customer_id="bob", ts=2.0, instance="pe:2")
    assert got == want
    assert all(getattr(got, f.name) == getattr(want, f.name) for f in dataclasses.fields(want))
