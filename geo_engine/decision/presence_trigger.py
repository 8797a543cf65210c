"""A presence event as a campaign trigger: one place for the live decision and the backtest."""

from __future__ import annotations

from geo_engine.decision.facts import TriggerEvent
from geo_engine.models import PresenceEvent, PresenceEventType
from geofences.model import FenceKind, Geofence


def in_store(event: PresenceEvent, fence: Geofence | None) -> bool:
    """The customer is in the store: an enter or dwell of a store fence (an exit is leaving).
    Zones are departments inside a store, but their store fence carries the visit: a beacon or
    tap in a zone is evidence for the store too, so its store fence has its own event."""
    return (
        fence is not None
        and fence.kind is FenceKind.STORE
        and event.type is not PresenceEventType.EXIT
    )


def presence_trigger(pid: int, event: PresenceEvent, fence: Geofence | None) -> TriggerEvent:
    """The trigger of presence event `pid` in `fence` (None: no longer in the index)."""
    return TriggerEvent(
        "presence",
        str(event.type),
        event.customer_id,
        event.ts,
        f"pe:{pid}",
        fence_id=event.geofence_id,
        fence_kind=None if fence is None else str(fence.kind),
        fence_name=None if fence is None else fence.name,
        store_id=None if fence is None else fence.store_id,
        source=event.source,
        timezone=None if fence is None else fence.timezone,
        opening_hours=None if fence is None else fence.opening_hours,
        in_store=in_store(event, fence),
    )
