"""What the decision reads: the trigger (with its fence) and the customer, flattened once per
decision into the `Facts` the compiled conditions look up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from geo_engine.decision.conditions import DAYS
from geo_engine.decision.local_clock import clock_at, local_datetime
from geo_engine.profile.attributes import ConsentPurpose, ConsentStatus
from geo_engine.profile.profile import CustomerProfile
from geofences.model import open_at


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """One thing that happened: a presence event, a velocity crossing or a behavioural event.
    `instance` identifies it for idempotency (the presence event id, the signal...)."""

    kind: str  # presence | velocity | event
    name: str  # enter|dwell|exit, rising|falling, or the event type
    customer_id: str
    ts: float
    instance: str
    fence_id: str | None = None
    fence_kind: str | None = None
    fence_name: str | None = None
    store_id: str | None = None
    source: str | None = None
    kpi: str | None = None
    timezone: str | None = None
    distance_m: float | None = None  # from the fix to the store (behavioural triggers)
    store_open: bool | None = None  # None: from `opening_hours` at `ts`, if given
    in_store: bool = False
    # the fence's validated opening hours ({"mon": [["09:00", "20:00"]], ...}); not compared
    # or hashed (a dict): the trigger's identity is the fields above
    opening_hours: Mapping[str, Sequence[Sequence[str]]] | None = field(
        default=None, compare=False, hash=False
    )


class Customer(NamedTuple):
    """The customer as the rules see it. Immutable; a NamedTuple rather than a frozen
    dataclass: built once per decision on the ping path, in a third of the time."""

    customer_id: str
    consented: frozenset[str]  # message channels with a granted consent
    objects_to_direct_marketing: bool
    preferred_channel: str | None
    # category -> share (read only: the default is shared by every customer without one)
    affinity: Mapping[str, float] = MappingProxyType({})
    first_name: str | None = None
    segment: str = "prospect"


# the consent purposes that are message channels, with the channel's name (plain str: a
# StrEnum's str() is a method call per decision)
_MESSAGE_PURPOSES = (
    (ConsentPurpose.SMS, "sms"),
    (ConsentPurpose.PUSH, "push"),
    (ConsentPurpose.EMAIL, "email"),
)


def customer_of(p: CustomerProfile) -> Customer:
    consents = p.consents
    names = tuple(
        [
            name
            for purpose, name in _MESSAGE_PURPOSES
            if (c := consents.get(purpose)) is not None and c.status is ConsentStatus.GRANTED
        ]
    )
    # one shared frozenset per combination (there are 8): its hash is computed once, and the
    # rules look it up per decision
    granted = _GRANTED.get(names)
    if granted is None:
        granted = _GRANTED[names] = frozenset(names)
    pref = p.preferred_channel
    pref = "push" if pref == "app" else pref  # the app channel is reached by push
    cats = p.categories
    return Customer(
        p.customer_id,
        granted,
        p.objects_to_direct_marketing,
        pref,
        {a.name: a.share for a in cats} if cats else _NO_AFFINITY,
        p.attributes.first_name if p.attributes else None,
        p.segment,
    )


_GRANTED: dict[tuple[str, ...], frozenset[str]] = {}
_NO_AFFINITY: Mapping[str, float] = Customer._field_defaults["affinity"]


def profile_facts(p: CustomerProfile) -> dict[str, object]:
    f: dict[str, object] = {
        "profile.segment": p.segment,
        "profile.churn_risk": p.churn_risk,
        "profile.preferred_channel": p.preferred_channel,
        "profile.top_category": p.categories[0].name if p.categories else None,
    }
    if p.rfm is not None:
        f["profile.rfm.recency_days"] = max(0.0, (p.as_of - p.rfm.last_ts) / 86400.0)
        f["profile.rfm.frequency"] = p.rfm.orders
        f["profile.rfm.monetary"] = p.rfm.total
    if p.rfm_scores is not None:
        s = p.rfm_scores
        f["profile.rfm.r"], f["profile.rfm.f"], f["profile.rfm.m"] = s.r, s.f, s.m
    a = p.attributes
    if a is not None:
        f["profile.age_band"] = a.age_band
        f["profile.sex"] = None if a.sex is None else str(a.sex)
        f["profile.csp"] = a.csp
        f["profile.household_size"] = a.household_size
        f["profile.home_postcode"] = a.home_postcode
    for fig in p.velocity.figures:
        trend, pct = _velocity_keys(fig.name)
        f[trend] = fig.trend
        f[pct] = fig.pct_change
    for c in p.categories:
        f[_affinity_key(c.name)] = c.share
    return f


def _velocity_keys(figure: str) -> tuple[str, str]:
    """The fact names of a velocity figure: built once per figure, not per decision."""
    hit = _VELOCITY_KEYS.get(figure)
    if hit is None:
        hit = _VELOCITY_KEYS[figure] = (
            f"profile.velocity.{figure}.trend",
            f"profile.velocity.{figure}.pct_change",
        )
    return hit


def _affinity_key(category: str) -> str:
    """The fact name of a category's share: built once per category while they are few."""
    hit = _AFFINITY_KEYS.get(category)
    if hit is None:
        hit = f"profile.affinity.{category}"
        if len(_AFFINITY_KEYS) < _KEYS_MAX:  # categories are a catalogue's: few, but not bounded
            _AFFINITY_KEYS[category] = hit
    return hit


_KEYS_MAX = 10_000
_VELOCITY_KEYS: dict[str, tuple[str, str]] = {}
_AFFINITY_KEYS: dict[str, str] = {}


def context_facts(ev: TriggerEvent, default_tz: str) -> dict[str, object]:
    """Local time, day and store hours in the fence's zone; the distance to the store: given
    for behavioural triggers (the last fix to the nearest store), 0 for a presence enter or
    dwell (the customer is inside the fence), unknown after an exit."""
    tz = ev.timezone or default_tz
    clock = clock_at(ev.ts, tz)
    distance = ev.distance_m
    if distance is None and ev.kind == "presence" and ev.name != "exit":
        distance = 0.0
    store_open = ev.store_open
    if store_open is None and ev.opening_hours is not None:
        store_open = open_at(ev.opening_hours, local_datetime(clock, tz))
    trigger = _TRIGGERS.get((ev.kind, ev.name))
    if trigger is None:
        trigger = f"{ev.kind}:{ev.name}"
        if len(_TRIGGERS) < _KEYS_MAX:  # kinds x names: a few dozen
            _TRIGGERS[(ev.kind, ev.name)] = trigger
    return {
        "context.local_hour": clock[1] + clock[2] / 60,
        "context.day_of_week": DAYS[clock[4]],
        "context.distance_m": distance,
        "context.store_id": ev.store_id,
        "context.fence_id": ev.fence_id,
        "context.fence_kind": ev.fence_kind,
        "context.store_open": store_open,
        "context.source": ev.source,
        "context.trigger": trigger,
    }


_TRIGGERS: dict[tuple[str, str], str] = {}
