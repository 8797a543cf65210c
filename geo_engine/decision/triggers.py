"""Behavioural-event triggers: which store an event happened in or near (and the velocity
trigger, built in one place for the live hook and the backtest).

A campaign trigger `{"type": "event", "event": "search", "in_store": true}` fires on a posted
event while the customer is inside a store fence (showrooming, seed 004: 10 % check prices
online in the store); `{"type": "event", "event": "cart_abandon", "near_store_m": 500}` while
their last known fix, fresh enough, is within 500 m of a store fence. The store found fills the
trigger (fence, name, store id, time zone, distance) so templates get {store_name} and offers
scoped to stores are matched.

Pure: the caller hands over the presence state it read (the fences the customer is inside,
their latest fix) and the live fence index.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.models import Trigger
from geo_engine.models import CustomerCursor, FenceState
from geofences.geodesy import EARTH_RADIUS_M
from geofences.index import FenceIndex
from geofences.model import FenceKind


@dataclass(frozen=True, slots=True)
class StoreContext:
    fence_id: str
    name: str
    store_id: str | None
    timezone: str | None
    distance_m: float  # 0 inside the fence
    # for the store_open fact; a dict, so neither compared nor hashed
    opening_hours: Mapping[str, Sequence[Sequence[str]]] | None = field(
        default=None, compare=False, hash=False
    )


@dataclass(frozen=True, slots=True)
class Needs:
    """What the live triggers of one event type need to know about the customer's location."""

    any_trigger: bool
    # look up the store the customer is in: for every event trigger, not only `in_store` ones,
    # since the store also fills the templates ({store_name}) and store-scoped offers
    in_store: bool
    near_m: float | None  # the widest near_store_m asked for

    @property
    def location(self) -> bool:
        return self.in_store or self.near_m is not None


def needs_of(triggers: Iterable[Trigger]) -> Needs:
    ts = list(triggers)
    near = [t.near_store_m for t in ts if t.near_store_m is not None]
    return Needs(bool(ts), bool(ts), max(near) if near else None)


def store_inside(inside: Mapping[str, FenceState], index: FenceIndex) -> StoreContext | None:
    """The store fence the customer is in (the latest entered when several overlap)."""
    best: tuple[float, str] | None = None
    for fid, st in inside.items():
        pos = index.position(fid)
        if pos is None or index.fences[pos].kind is not FenceKind.STORE:
            continue
        if best is None or (st.entered_at, fid) > best:
            best = (st.entered_at, fid)
    if best is None:
        return None
    f = index.fences[index.position(best[1]) or 0]
    return StoreContext(f.id, f.name, f.store_id, f.timezone, 0.0, f.opening_hours)


def fresh_fix(cursor: CustomerCursor | None, ts: float, max_age_s: float) -> bool:
    """A position known within `max_age_s` of `ts` (before or after it)."""
    if cursor is None or cursor.last_ts == float("-inf"):
        return False
    return abs(ts - cursor.last_ts) <= max_age_s


# the store fences of the latest index seen (positions, lat/lon boxes): an index is immutable
# and swapped whole, so identity says when to rebuild
_stores: tuple[FenceIndex | None, np.ndarray, np.ndarray] = (
    None,
    np.empty(0, dtype=np.int32),
    np.empty((0, 4)),
)
_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0


def _store_boxes(index: FenceIndex) -> tuple[np.ndarray, np.ndarray]:
    global _stores
    if _stores[0] is not index:
        pos: list[int] = []
        boxes: list[tuple[float, float, float, float]] = []
        for i, f in enumerate(index.fences):
            if f.kind is not FenceKind.STORE:
                continue
            pos.append(i)
            if f.shape is not None:
                lon0, lat0, lon1, lat1 = f.shape.bounds
                boxes.append((lat0, lat1, lon0, lon1))
            else:  # a circle: its centre +- the radius
                lon, lat = f.geometry["coordinates"][:2]
                dlat = (f.radius_m or 0.0) / _M_PER_DEG
                dlon = dlat / max(math.cos(math.radians(lat)), 1e-3)
                boxes.append((lat - dlat, lat + dlat, lon - dlon, lon + dlon))
        _stores = (index, np.asarray(pos, dtype=np.int32), np.asarray(boxes).reshape(-1, 4))
    return _stores[1], _stores[2]


def nearest_store(
    index: FenceIndex, lat: float, lon: float, within_m: float
) -> StoreContext | None:
    """The store fence nearest to (lat, lon), if its boundary is within `within_m` (0 when the
    point is inside it). Distances to the boundary, not the centre: a big store is near from
    its car park. Only fences whose box, grown by `within_m`, holds the point are measured."""
    pos, box = _store_boxes(index)
    if pos.size == 0:
        return None
    dlat = within_m / _M_PER_DEG * 1.01  # a margin for the boxes' flat-earth growth
    dlon = dlat / max(math.cos(math.radians(min(abs(lat) + dlat, 90.0))), 1e-3)
    near = (box[:, 0] - dlat <= lat) & (lat <= box[:, 1] + dlat)
    if lon - dlon > -180.0 and lon + dlon < 180.0:  # else (antimeridian): all of them
        near &= (box[:, 2] - dlon <= lon) & (lon <= box[:, 3] + dlon)
    cand = pos[near]
    if cand.size == 0:
        return None
    depth = index.depth_m(cand, np.full(cand.size, lat), np.full(cand.size, lon))
    dist = np.maximum(-depth, 0.0)
    i = int(np.argmin(dist))
    d = float(dist[i])
    if d > within_m:
        return None
    f = index.fences[int(cand[i])]
    return StoreContext(f.id, f.name, f.store_id, f.timezone, round(d), f.opening_hours)


def event_instance(event_type: str, ts: float, event_id: str | None) -> str:
    """The trigger instance (idempotency, per customer in the outbox key): the client's event
    id, else the type and the millisecond (the same event posted twice without an id is then
    one offer)."""
    return f"ev:{event_id}" if event_id else f"ev:{event_type}:{round(ts * 1000)}"


def velocity_trigger(customer_id: str, figure: str, trend: str, as_of: float) -> TriggerEvent:
    """A velocity crossing (live from the profile service, or a stored `velocity_signals` row
    in a backtest) as a trigger: no store. The instance names the figure, the trend and the
    second of the crossing, so a signal delivered twice is one offer."""
    instance = f"vel:{figure}:{trend}:{int(as_of)}"
    return TriggerEvent("velocity", trend, customer_id, as_of, instance, kpi=figure)


def event_trigger(
    customer_id: str,
    event_type: str,
    ts: float,
    instance: str,
    store: StoreContext | None,
    *,
    in_store: bool,
) -> TriggerEvent:
    return TriggerEvent(
        "event",
        event_type,
        customer_id,
        ts,
        instance,
        fence_id=None if store is None else store.fence_id,
        fence_kind=None if store is None else str(FenceKind.STORE),
        fence_name=None if store is None else store.name,
        store_id=None if store is None else store.store_id,
        timezone=None if store is None else store.timezone,
        distance_m=None if store is None else store.distance_m,
        opening_hours=None if store is None else store.opening_hours,
        in_store=in_store,
    )


def locate(
    needs: Needs,
    inside: Mapping[str, FenceState],
    cursor: CustomerCursor | None,
    index: FenceIndex,
    ts: float,
    max_fix_age_s: float,
) -> tuple[StoreContext | None, bool]:
    """(the store context, in_store) for an event at `ts`, from the presence state read."""
    if not needs.location:
        return None, False
    here = store_inside(inside, index)
    if here is not None:
        return here, True
    if needs.near_m is not None and fresh_fix(cursor, ts, max_fix_age_s):
        assert cursor is not None
        return nearest_store(index, cursor.last_lat, cursor.last_lon, needs.near_m), False
    return None, False
