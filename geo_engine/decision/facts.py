"""What the decision reads: the trigger (with its fence) and the customer, flattened once per
decision into the `Facts` the compiled conditions look up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from geo_engine.decision.conditions import DAYS
from geo_engine.decision.rules import tz_of
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


@dataclass(frozen=True, slots=True)
class Customer:
    """The customer as the rules see it."""

    customer_id: str
    consented: frozenset[str]  # message channels with a granted consent
    objects_to_direct_marketing: bool
    preferred_channel: str | None
    affinity: dict[str, float] = field(default_factory=dict)  # category -> share
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
    granted = frozenset(
        [
            name
            for purpose, name in _MESSAGE_PURPOSES
            if (c := consents.get(purpose)) is not None and c.status is ConsentStatus.GRANTED
        ]
    )
    pref = p.preferred_channel
    pref = "push" if pref == "app" else pref  # the app channel is reached by push
    return Customer(
        customer_id=p.customer_id,
        consented=granted,
        objects_to_direct_marketing=p.objects_to_direct_marketing,
        preferred_channel=pref,
        affinity={a.name: a.share for a in p.categories},
        first_name=p.attributes.first_name if p.attributes else None,
        segment=p.segment,
    )


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
        f[f"profile.velocity.{fig.name}.trend"] = fig.trend
        f[f"profile.velocity.{fig.name}.pct_change"] = fig.pct_change
    for c in p.categories:
        f[f"profile.affinity.{c.name}"] = c.share
    return f


def context_facts(ev: TriggerEvent, default_tz: str) -> dict[str, object]:
    """Local time, day and store hours in the fence's zone; the distance to the store: given
    for behavioural triggers (the last fix to the nearest store), 0 for a presence enter or
    dwell (the customer is inside the fence), unknown after an exit."""
    local = datetime.fromtimestamp(ev.ts, tz_of(ev.timezone or default_tz))
    distance = ev.distance_m
    if distance is None and ev.kind == "presence" and ev.name != "exit":
        distance = 0.0
    store_open = ev.store_open
    if store_open is None:
        store_open = open_at(ev.opening_hours, local)
    return {
        "context.local_hour": local.hour + local.minute / 60,
        "context.day_of_week": DAYS[local.weekday()],
        "context.distance_m": distance,
        "context.store_id": ev.store_id,
        "context.fence_id": ev.fence_id,
        "context.fence_kind": ev.fence_kind,
        "context.store_open": store_open,
        "context.source": ev.source,
        "context.trigger": f"{ev.kind}:{ev.name}",
    }
