"""Decoding `POST /v1/events` with msgspec: one pass, a reason per bad row.

The envelope is decoded once; each row from its raw JSON slice, then its `properties` with the
struct of its type, so a bad row is reported with its index, field and reason while the good
rows go on. Unknown properties are kept (stored as sent), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from adapters.codecs.pings import RowError, batch_rows, parse_ts, split_error
from geo_engine.profile.currencies import currency_problem
from geo_engine.profile.events import POSTED_TYPES, PRESENCE_TYPES, Channel, EventType

Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
NonNeg = Annotated[float, msgspec.Meta(ge=0.0)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
Currency = Annotated[str, msgspec.Meta(min_length=3, max_length=3)]


class IdentifierIn(msgspec.Struct):
    type: str
    value: Ident


class EventIn(msgspec.Struct):
    type: str
    ts: float | str
    channel: str
    customer_id: Ident | None = None
    identifier: IdentifierIn | None = None
    event_id: Ident | None = None  # idempotency key: a resent event is recorded once
    properties: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"{}"))


class _Props(msgspec.Struct, kw_only=True):
    """Base: every type may say which category it is about."""

    category: Category | None = None


class PageView(_Props):
    url: Url


class Search(_Props):
    query: Text
    product_ids: list[Ident] = []


class ProductView(_Props):
    product_id: Ident
    price: NonNeg | None = None


class Click(_Props):
    url: Url | None = None
    target: Text | None = None


class CartAdd(_Props):
    product_id: Ident
    quantity: Quantity = 1
    price: NonNeg | None = None


class CartAbandon(_Props):
    cart_id: Ident | None = None
    amount: NonNeg | None = None


class Item(msgspec.Struct):
    category: Category
    product_id: Ident | None = None
    quantity: Quantity = 1
    price: NonNeg | None = None


class Purchase(msgspec.Struct):
    order_id: Ident
    amount: NonNeg
    currency: Currency
    items: Annotated[list[Item], msgspec.Meta(min_length=1, max_length=1000)]


class PurchaseCancel(msgspec.Struct):
    order_id: Ident
    reason: Text | None = None


class InfoRequest(_Props):
    topic: Text | None = None


class EmailOpen(_Props):
    campaign_id: Ident | None = None


class EmailClick(_Props):
    campaign_id: Ident | None = None
    url: Url | None = None


class CallCenterContact(_Props):
    reason: Text | None = None


PROPERTIES: dict[EventType, type[msgspec.Struct]] = {
    EventType.PAGE_VIEW: PageView,
    EventType.SEARCH: Search,
    EventType.PRODUCT_VIEW: ProductView,
    EventType.CLICK: Click,
    EventType.CART_ADD: CartAdd,
    EventType.CART_ABANDON: CartAbandon,
    EventType.PURCHASE: Purchase,
    EventType.PURCHASE_CANCEL: PurchaseCancel,
    EventType.INFO_REQUEST: InfoRequest,
    EventType.EMAIL_OPEN: EmailOpen,
    EventType.EMAIL_CLICK: EmailClick,
    EventType.APP_OPEN: _Props,
    EventType.CALL_CENTER_CONTACT: CallCenterContact,
}


class _Envelope(msgspec.Struct):
    events: list[msgspec.Raw]


_DECODERS = {t: msgspec.json.Decoder(s) for t, s in PROPERTIES.items()}
_envelope = msgspec.json.Decoder(_Envelope)
_row = msgspec.json.Decoder(EventIn)
_TYPES = ", ".join(sorted(POSTED_TYPES))
_CHANNELS = ", ".join(Channel)


@dataclass(frozen=True, slots=True)
class EventRow:
    index: int  # in the request
    event: EventIn
    type: EventType
    channel: Channel
    ts: float
    props: Any  # the type's struct (PROPERTIES)
    raw_properties: bytes  # as sent, stored as jsonb


@dataclass(frozen=True, slots=True)
class DecodedEvents:
    rows: list[EventRow]
    errors: list[RowError]


def rebuilt_row(
    index: int,
    customer_id: str,
    type_: EventType,
    channel: Channel,
    ts: float,
    event_id: str | None,
    raw_properties: bytes,
) -> EventRow:
    """A row validated by another process, from what it sent on (adapters/cluster/commands.py):
    the properties, already checked there, decoded again into their type's struct."""
    event = EventIn(
        type=str(type_),
        ts=ts,
        channel=str(channel),
        customer_id=customer_id,
        event_id=event_id,
        properties=msgspec.Raw(raw_properties),
    )
    props = _DECODERS[type_].decode(raw_properties)
    return EventRow(index, event, type_, channel, ts, props, raw_properties)


def _props(t: EventType, raw: msgspec.Raw) -> tuple[Any, bytes]:
    data = bytes(raw)
    return _DECODERS[t].decode(data), data


def _check(t: EventType, props: Any) -> tuple[str, str] | None:
    """Rules msgspec's types cannot say: (field, reason) of the first problem."""
    if t is EventType.PURCHASE:
        problem = currency_problem(props.currency)
        if problem is not None:
            return "properties.currency", problem
    return None


def decode_row(
    i: int, raw: bytes, *, now: float, max_future_s: float, max_age_s: float
) -> EventRow | RowError:
    try:
        e = _row.decode(raw)
    except msgspec.ValidationError as exc:
        field, reason = split_error(str(exc))
        return RowError(i, field or "row", reason)
    except msgspec.DecodeError as exc:
        return RowError(i, "row", str(exc))
    try:
        t = EventType(e.type)
    except ValueError:
        t = None
    if t is None or t not in POSTED_TYPES:
        reason = f"unknown event type {e.type!r} (known: {_TYPES})"
        if t in PRESENCE_TYPES:
            reason = f"{e.type} comes from presence (a dwell in a fence), it cannot be posted"
        return RowError(i, "type", reason)
    try:
        channel = Channel(e.channel)
    except ValueError:
        return RowError(i, "channel", f"unknown channel {e.channel!r} (known: {_CHANNELS})")
    if (e.customer_id is None) == (e.identifier is None):
        return RowError(i, "customer_id", "exactly one of customer_id or identifier is required")
    try:
        ts = parse_ts(e.ts)
    except ValueError as exc:
        return RowError(i, "ts", str(exc))
    if ts > now + max_future_s:
        return RowError(i, "ts", f"more than {max_future_s:.0f} s in the future")
    if ts < now - max_age_s:
        return RowError(i, "ts", f"older than the {max_age_s:.0f} s accepted")
    try:
        props, data = _props(t, e.properties)
    except msgspec.ValidationError as exc:
        field, reason = split_error(str(exc))
        return RowError(i, f"properties.{field}" if field else "properties", reason)
    except msgspec.DecodeError as exc:
        return RowError(i, "properties", str(exc))
    bad = _check(t, props)
    if bad is not None:
        return RowError(i, bad[0], bad[1])
    return EventRow(i, e, t, channel, ts, props, data)


def decode_events(
    body: bytes, *, max_batch: int, now: float, max_future_s: float, max_age_s: float
) -> DecodedEvents:
    raws = batch_rows(_envelope, body, "events", max_batch)
    rows: list[EventRow] = []
    errors: list[RowError] = []
    for i, raw in enumerate(raws):
        out = decode_row(i, bytes(raw), now=now, max_future_s=max_future_s, max_age_s=max_age_s)
        (rows if isinstance(out, EventRow) else errors).append(out)  # type: ignore[arg-type]
    return DecodedEvents(rows, errors)


def categories_of(row: EventRow) -> tuple[tuple[str, float], ...]:
    """(category, multiplier) the event speaks of: a purchase's items (x quantity), else the
    event's own `category`."""
    p = row.props
    if row.type is EventType.PURCHASE:
        return tuple((it.category, float(it.quantity)) for it in p.items)
    cat = getattr(p, "category", None)
    if cat is None:
        return ()
    return ((cat, float(getattr(p, "quantity", 1))),)


def url_of(row: EventRow) -> str | None:
    url = getattr(row.props, "url", None)
    return url if isinstance(url, str) else None
