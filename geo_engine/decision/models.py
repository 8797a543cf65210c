"""Offers and campaigns as the decision reads them, checked at save (`parse_*` raise
InvalidDefinition naming the path). Input is the JSON document the API stores."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from geo_engine.decision import templates
from geo_engine.decision.conditions import FIGURES, Predicate, compile_condition
from geo_engine.decision.errors import InvalidDefinition
from geo_engine.decision.gsm7 import SmsLength, sms_length

CHANNELS = ("push", "sms")  # message channels an offer can be sent on
STATUSES = ("draft", "live", "paused", "disabled")  # disabled: set by the engine on errors
PRESENCE_EVENTS = ("enter", "dwell", "exit")
TREND_DIRECTIONS = ("rising", "falling")
FENCE_KINDS = ("store", "zone", "competitor")
SOURCES = ("gps", "beacon", "nfc")
MAX_SMS_SEGMENTS = 3


@dataclass(frozen=True, slots=True)
class SmsContent:
    text: str
    length: SmsLength  # of the template itself; placeholders change it when rendered


@dataclass(frozen=True, slots=True)
class PushContent:
    title: str
    body: str
    deep_link: str | None


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    name: str
    sms: SmsContent | None
    push: PushContent | None
    valid_from: float
    valid_until: float
    store_ids: frozenset[str]  # empty: every store
    value: float  # expected worth of a redemption (EUR): the ranking's numerator
    category: str | None  # product category, matched against the customer's affinities
    product: str | None
    redemption_cap: int | None  # offers issued at most
    budget: float | None  # value issued at most
    channels: tuple[str, ...] = ()  # those with content, set by parse_offer

    def valid_at(self, t: float) -> bool:
        return self.valid_from <= t < self.valid_until

    def serves(self, store_id: str | None) -> bool:
        return not self.store_ids or (store_id is not None and store_id in self.store_ids)


@dataclass(frozen=True, slots=True)
class Trigger:
    """What fires a campaign: kind presence (event, fence ids/kinds, sources), velocity (KPI,
    direction) or event (behavioural event type; in_store = only while inside a store)."""

    kind: str
    name: str  # enter|dwell|exit, rising|falling, or the event type
    fence_ids: frozenset[str] = frozenset()
    fence_kinds: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    kpi: str | None = None
    in_store: bool = False


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    status: str
    start: float
    end: float
    priority: int
    triggers: tuple[Trigger, ...]
    condition: Predicate | None
    offer_ids: tuple[str, ...]
    channels: tuple[str, ...]
    control_pct: float  # per-campaign control group, % of customers
    cooldown_s: float  # re-eligibility of a customer for this campaign
    suppression_lists: frozenset[str]

    def live_at(self, t: float) -> bool:
        return self.status == "live" and self.start <= t < self.end


def parse_offer(doc: Mapping[str, Any]) -> Offer:
    sms = push = None
    content = doc.get("content") or {}
    if s := content.get("sms"):
        text = s["text"]
        templates.check(text, "content.sms.text")
        length = sms_length(text)
        if length.segments > MAX_SMS_SEGMENTS:
            raise InvalidDefinition(
                "content.sms.text",
                f"{length.segments} segments ({length.encoding}, {length.units} units): "
                f"at most {MAX_SMS_SEGMENTS}",
            )
        sms = SmsContent(text, length)
    if p := content.get("push"):
        templates.check(p["title"], "content.push.title")
        templates.check(p["body"], "content.push.body")
        push = PushContent(p["title"], p["body"], p.get("deep_link"))
    if sms is None and push is None:
        raise InvalidDefinition("content", "give at least one channel: sms or push")
    vf, vu = float(doc["valid_from"]), float(doc["valid_until"])
    if vu <= vf:
        raise InvalidDefinition("valid_until", "must be after valid_from")
    return Offer(
        id=doc["id"],
        name=doc.get("name") or doc["id"],
        sms=sms,
        push=push,
        valid_from=vf,
        valid_until=vu,
        store_ids=frozenset(doc.get("store_ids") or ()),
        value=float(doc.get("value", 0.0)),
        category=doc.get("category"),
        product=doc.get("product"),
        redemption_cap=doc.get("redemption_cap"),
        budget=doc.get("budget"),
        channels=tuple(c for c, x in (("push", push), ("sms", sms)) if x is not None),
    )


def parse_campaign(doc: Mapping[str, Any], offers: Mapping[str, Offer]) -> Campaign:
    """`offers`: the offers that exist; the campaign may only name those."""
    start, end = float(doc["start"]), float(doc["end"])
    if end <= start:
        raise InvalidDefinition("end", "must be after start")
    status = doc.get("status", "draft")
    if status not in STATUSES:
        raise InvalidDefinition("status", f"{status!r} is not one of {list(STATUSES)}")
    triggers = doc.get("triggers") or []
    if not triggers:
        raise InvalidDefinition("triggers", "give at least one trigger")
    parsed = tuple(_trigger(t, f"triggers.{i}") for i, t in enumerate(triggers))
    offer_ids = tuple(doc.get("offer_ids") or ())
    if not offer_ids:
        raise InvalidDefinition("offer_ids", "give at least one offer")
    for i, oid in enumerate(offer_ids):
        if oid not in offers:
            raise InvalidDefinition(f"offer_ids.{i}", f"no offer {oid!r}")
    channels = tuple(doc.get("channels") or CHANNELS)
    for i, ch in enumerate(channels):
        if ch not in CHANNELS:
            raise InvalidDefinition(f"channels.{i}", f"{ch!r} is not one of {list(CHANNELS)}")
    if not any(set(channels) & set(offers[o].channels) for o in offer_ids):
        raise InvalidDefinition("channels", "no offer has content for any allowed channel")
    cond = doc.get("conditions")
    control = float(doc.get("control_pct", 0.0))
    if not 0.0 <= control <= 50.0:
        raise InvalidDefinition("control_pct", "between 0 and 50")
    return Campaign(
        id=doc["id"],
        name=doc.get("name") or doc["id"],
        status=status,
        start=start,
        end=end,
        priority=int(doc.get("priority", 0)),
        triggers=parsed,
        condition=None if cond is None else compile_condition(cond),
        offer_ids=offer_ids,
        channels=channels,
        control_pct=control,
        cooldown_s=float(doc.get("cooldown_s", 7 * 86400.0)),
        suppression_lists=frozenset(doc.get("suppression_lists") or ()),
    )


def _one_of(v: object, allowed: Collection[str], path: str) -> str:
    if not isinstance(v, str) or v not in allowed:
        raise InvalidDefinition(path, f"{v!r} is not one of {list(allowed)}")
    return v


def _trigger(t: Mapping[str, Any], path: str) -> Trigger:
    kind = _one_of(t.get("type"), ("presence", "velocity", "event"), f"{path}.type")
    if kind == "presence":
        ev = _one_of(t.get("event"), PRESENCE_EVENTS, f"{path}.event")
        kinds = t.get("fence_kinds") or []
        for i, k in enumerate(kinds):
            _one_of(k, FENCE_KINDS, f"{path}.fence_kinds.{i}")
        srcs = t.get("sources") or []
        for i, s in enumerate(srcs):
            _one_of(s, SOURCES, f"{path}.sources.{i}")
        return Trigger(
            kind, ev, frozenset(t.get("fence_ids") or ()), frozenset(kinds), frozenset(srcs)
        )
    if kind == "velocity":
        kpi = _one_of(t.get("kpi"), FIGURES, f"{path}.kpi")
        direction = _one_of(t.get("direction"), TREND_DIRECTIONS, f"{path}.direction")
        return Trigger(kind, direction, kpi=kpi)
    et = t.get("event_type")
    if not isinstance(et, str) or not et:
        raise InvalidDefinition(f"{path}.event_type", "name the behavioural event type")
    return Trigger(kind, et, in_store=bool(t.get("in_store", False)))
