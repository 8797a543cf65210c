"""Behavioural events (seed 004: purchase history, a click, a cancelled purchase, an information
request) and the KPIs their velocity is measured on (seed 000)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class EventType(StrEnum):
    PAGE_VIEW = "page_view"
    SEARCH = "search"
    PRODUCT_VIEW = "product_view"
    CLICK = "click"
    CART_ADD = "cart_add"
    CART_ABANDON = "cart_abandon"
    PURCHASE = "purchase"
    PURCHASE_CANCEL = "purchase_cancel"
    INFO_REQUEST = "info_request"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    APP_OPEN = "app_open"
    CALL_CENTER_CONTACT = "call_center_contact"
    # from presence only (a dwell in a store / competitor fence), never posted
    STORE_VISIT = "store_visit"
    COMPETITOR_VISIT = "competitor_visit"


PRESENCE_TYPES = frozenset({EventType.STORE_VISIT, EventType.COMPETITOR_VISIT})
POSTED_TYPES = frozenset(EventType) - PRESENCE_TYPES


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    EMAIL = "email"
    SMS = "sms"
    STORE = "store"
    SOCIAL = "social"
    CALL_CENTER = "call_center"


CHANNELS: tuple[Channel, ...] = tuple(Channel)


class Kpi(IntEnum):
    """Columns of the per-day count ring. The first five have a velocity (plus the weighted
    "interest" total); the last two feed churn signals."""

    STORE_VISIT = 0
    PAGE_VIEW = 1
    SEARCH = 2
    CLICK = 3
    PURCHASE = 4
    COMPETITOR_VISIT = 5
    SENSITIVE_PAGE = 6


N_KPIS = len(Kpi)
VELOCITY_KPIS: tuple[Kpi, ...] = (
    Kpi.STORE_VISIT,
    Kpi.PAGE_VIEW,
    Kpi.SEARCH,
    Kpi.CLICK,
    Kpi.PURCHASE,
)
# velocity is reported for these names, in this order: the five KPIs then "interest"
VELOCITY_NAMES: tuple[str, ...] = (*(k.name.lower() for k in VELOCITY_KPIS), "interest")

# Which KPI an event type counts in. Types not listed (cart_abandon, info_request, email_open,
# app_open, call_center_contact, purchase_cancel) feed channel affinity only: they are not one
# of the interest signals seed 000 names (visits, searches, page views, clicks). A cancelled
# purchase is reversed in RFM, not in velocity: the purchase did show interest.
KPI_OF: dict[EventType, Kpi] = {
    EventType.STORE_VISIT: Kpi.STORE_VISIT,
    EventType.PAGE_VIEW: Kpi.PAGE_VIEW,
    EventType.PRODUCT_VIEW: Kpi.PAGE_VIEW,
    EventType.SEARCH: Kpi.SEARCH,
    EventType.CLICK: Kpi.CLICK,
    EventType.EMAIL_CLICK: Kpi.CLICK,
    EventType.CART_ADD: Kpi.CLICK,
    EventType.PURCHASE: Kpi.PURCHASE,
    EventType.COMPETITOR_VISIT: Kpi.COMPETITOR_VISIT,
}


@dataclass(frozen=True, slots=True)
class BehaviouralEvent:
    """What the core needs of an event: who, what, when, where, and what it says of interests.
    `categories` are (category, weight multiplier, e.g. an item's quantity)."""

    customer_id: str
    type: EventType
    ts: float
    channel: Channel
    categories: tuple[tuple[str, float], ...] = ()
    url: str | None = None


class SensitivePages:
    """Pages marked sensitive (terms, cancellation: seed 003's telco churn case), by regular
    expressions searched case-insensitively in the URL."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self._re = re.compile("|".join(f"(?:{p})" for p in patterns), re.I) if patterns else None

    def match(self, url: str | None) -> bool:
        return url is not None and self._re is not None and self._re.search(url) is not None


def kpis_of(event: BehaviouralEvent, sensitive: SensitivePages) -> tuple[Kpi, ...]:
    kpi = KPI_OF.get(event.type)
    out: tuple[Kpi, ...] = () if kpi is None else (kpi,)
    if event.type is EventType.PAGE_VIEW and sensitive.match(event.url):
        out = (*out, Kpi.SENSITIVE_PAGE)
    return out
