"""Storing posted behavioural events: purchases and cancellations as orders (each once), every
event once per event id. Used by the profile service inside its transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.codecs.events import EventRow, categories_of, url_of
from geo_engine.ports import Tx
from geo_engine.profile.affinity import category_weight
from geo_engine.profile.config import ProfileConfig
from geo_engine.profile.events import BehaviouralEvent, EventType, SensitivePages, kpis_of
from geo_engine.profile.ports import EventRecord, OrderRecord, ProfileStore
from geo_engine.profile.state import Crossing


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    field: str
    reason: str
    status: int = 422


@dataclass
class EventsResult:
    accepted: int = 0
    duplicates: list[tuple[int, str]] = field(default_factory=list)
    dropped: list[tuple[int, str]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    signals: list[Crossing] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Resolved:
    row: EventRow
    customer_id: str


async def store_events(
    store: ProfileStore,
    tx: Tx,
    rows: list[Resolved],
    out: EventsResult,
    cfg: ProfileConfig,
    sensitive: SensitivePages,
) -> list[tuple[Resolved, BehaviouralEvent]]:
    """Store `rows` in `tx`: orders recorded or cancelled once, events once per event id.
    Returns those newly stored; duplicates and refusals go to `out`."""
    purchases = [r for r in rows if r.row.type is EventType.PURCHASE]
    orders: dict[tuple[str, str], OrderRecord] = {}
    for r in purchases:
        p = r.row.props
        key = (r.customer_id, p.order_id)
        if key in orders:
            continue
        base = cfg.to_base(p.amount, p.currency)
        orders[key] = OrderRecord(r.customer_id, p.order_id, r.row.ts, p.amount, p.currency, base)
    new_orders = await store.insert_orders(tx, list(orders.values()))
    cancel_at: dict[tuple[str, str], float] = {}
    for r in rows:
        if r.row.type is EventType.PURCHASE_CANCEL:
            cancel_at.setdefault((r.customer_id, r.row.props.order_id), r.row.ts)
    cancelled, before = await store.cancel_orders(
        tx, [(c, o, t) for (c, o), t in cancel_at.items()]
    )
    ok: list[Resolved] = []
    used: set[tuple[str, str, str]] = set()
    for r in rows:
        if r.row.type in (EventType.PURCHASE, EventType.PURCHASE_CANCEL):
            key = (r.customer_id, r.row.props.order_id)
            tag = (str(r.row.type), *key)
            if r.row.type is EventType.PURCHASE and (key not in new_orders or tag in used):
                out.duplicates.append((r.row.index, "order already recorded"))
                continue
            if r.row.type is EventType.PURCHASE_CANCEL:
                if key in before or tag in used:
                    out.duplicates.append((r.row.index, "order already cancelled"))
                    continue
                if key not in cancelled:
                    reason = "no purchase with this order id for this customer"
                    out.rejected.append(Rejected(r.row.index, "properties.order_id", reason, 404))
                    continue
            used.add(tag)
        ok.append(r)
    events = [_event(r) for r in ok]
    records = [_record(r, e, sensitive) for r, e in zip(ok, events, strict=True)]
    inserted = await store.insert_events(tx, records)
    new_ids = {eid for _, eid, _ in inserted if eid is not None}
    stored: list[tuple[Resolved, BehaviouralEvent]] = []
    undo_orders: list[tuple[str, str]] = []
    undo_cancels: list[tuple[str, str]] = []
    for r, e in zip(ok, events, strict=True):
        eid = r.row.event.event_id
        if eid is not None and eid not in new_ids:
            out.duplicates.append((r.row.index, "event_id already recorded"))
            if r.row.type is EventType.PURCHASE:
                undo_orders.append((r.customer_id, r.row.props.order_id))
            elif r.row.type is EventType.PURCHASE_CANCEL:
                undo_cancels.append((r.customer_id, r.row.props.order_id))
            continue
        stored.append((r, e))
    if undo_orders:  # an event id reused for another order: that order is not recorded
        await store.delete_orders(tx, undo_orders)
    if undo_cancels:
        await store.uncancel_orders(tx, undo_cancels)
    return stored


def _event(r: Resolved) -> BehaviouralEvent:
    return BehaviouralEvent(
        r.customer_id, r.row.type, r.row.ts, r.row.channel, categories_of(r.row), url_of(r.row)
    )


def _record(r: Resolved, e: BehaviouralEvent, sensitive: SensitivePages) -> EventRecord:
    cats: dict[str, float] | None = None
    if e.categories:
        cats = {}
        for c, mult in e.categories:
            cats[c] = cats.get(c, 0.0) + category_weight(e) * mult
    return EventRecord(
        customer_id=r.customer_id,
        type=str(e.type),
        channel=str(e.channel),
        ts=e.ts,
        properties=r.row.raw_properties.decode(),
        kpis=[int(k) for k in kpis_of(e, sensitive)],
        categories=cats,
        event_id=r.row.event.event_id,
    )
