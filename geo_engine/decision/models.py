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
from geo_engine.models import PresenceEventType
from geo_engine.profile.events import POSTED_TYPES

CHANNELS = ("push", "sms")  # message channels an offer can be sent on
STATUSES = ("draft", "live", "paused", "disabled")  # disabled: set by the engine on errors
PRESENCE_EVENTS = tuple(str(t) for t in PresenceEventType)
TREND_DIRECTIONS = ("rising", "falling")
FENCE_KINDS = ("store", "zone", "competitor")
SOURCES = ("gps", "beacon", "nfc")
POSTED_EVENTS = tuple(sorted(str(t) for t in POSTED_TYPES))  # what an event trigger may name
MAX_SMS_SEGMENTS = 3
ACTIONS = ("message", "call_center_task")  # what a winning campaign does
CALL_CENTER = "call_center"  # the decision's channel when the action is a call-center task
MAX_NEAR_STORE_M = 50_000.0
ESCALATION_MIN_S, ESCALATION_MAX_S = 60.0, 7 * 86400.0


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
    near_store_m: float | None = None  # event: only within this distance of a store fence


@dataclass(frozen=True, slots=True)
class Escalation:
    """A follow-up on another channel when the offer sent got no open, click nor redemption
    within `after_s` (geo_engine/decision/escalation.py)."""

    after_s: float
    channels: tuple[str, ...]  # tried in order, skipping the channel the offer went out on


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
    escalation: Escalation | None = None
    action: str = "message"  # or call_center_task: a task for the call center, no message

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
    action = _one_of(doc.get("action") or "message", ACTIONS, "action")
    escalation = _escalation(doc.get("escalation"), channels)
    if escalation is not None and action != "message":
        raise InvalidDefinition("escalation", "only a message campaign can escalate")
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
        escalation=escalation,
        action=action,
    )


def _escalation(e: object, channels: tuple[str, ...]) -> Escalation | None:
    if e is None:
        return None
    if not isinstance(e, Mapping):
        raise InvalidDefinition("escalation", "an object: {after_s, channels}")
    after = e.get("after_s")
    if not isinstance(after, int | float) or isinstance(after, bool):
        raise InvalidDefinition("escalation.after_s", "a number of seconds")
    if not ESCALATION_MIN_S <= float(after) <= ESCALATION_MAX_S:
        raise InvalidDefinition(
            "escalation.after_s", f"between {ESCALATION_MIN_S:.0f} and {ESCALATION_MAX_S:.0f}"
        )
    chans = e.get("channels")
    if not isinstance(chans, list | tuple) or not chans:
        raise InvalidDefinition("escalation.channels", "give at least one channel")
    for i, ch in enumerate(chans):
        _one_of(ch, CHANNELS, f"escalation.channels.{i}")
    if len(set(chans)) != len(chans):
        raise InvalidDefinition("escalation.channels", "a channel appears twice")
    # a follow-up needs a channel the first offer may not have used: with one campaign channel
    # only, the follow-up must name another
    if len(channels) == 1 and set(chans) <= set(channels):
        raise InvalidDefinition(
            "escalation.channels", f"must name a channel other than the campaign's {channels[0]!r}"
        )
    return Escalation(float(after), tuple(chans))


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
    # the behavioural event type: `event` (as presence triggers name theirs) or `event_type`
    key = "event" if t.get("event") is not None else "event_type"
    et = _one_of(t.get(key), POSTED_EVENTS, f"{path}.{key}")
    near = t.get("near_store_m")
    if near is not None:
        if not isinstance(near, int | float) or isinstance(near, bool):
            raise InvalidDefinition(f"{path}.near_store_m", "a distance in metres")
        if not 0.0 < float(near) <= MAX_NEAR_STORE_M:
            raise InvalidDefinition(
                f"{path}.near_store_m", f"above 0 and at most {MAX_NEAR_STORE_M:.0f} m"
            )
        near = float(near)
    return Trigger(kind, et, in_store=bool(t.get("in_store", False)), near_store_m=near)
