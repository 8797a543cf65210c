"""Presence -> visits: a dwell in a store fence is a `store_visit`, in a competitor's a
`competitor_visit` (cross-shopping, seed 000). The dwell, not the enter: an enter alone may be
someone walking past, and presence fires one dwell per visit, whatever signal (GPS, beacon, NFC)
confirmed it."""

from __future__ import annotations

from geo_engine.models import PresenceEvent, PresenceEventType
from geo_engine.profile.events import BehaviouralEvent, Channel, EventType
from geofences.model import FenceKind

_VISITS = {FenceKind.STORE: EventType.STORE_VISIT, FenceKind.COMPETITOR: EventType.COMPETITOR_VISIT}


def visit_of(event: PresenceEvent, kind: FenceKind) -> BehaviouralEvent | None:
    """The visit a presence event in a fence of `kind` counts as, if any."""
    if event.type is not PresenceEventType.DWELL:
        return None
    visit = _VISITS.get(kind)
    if visit is None:
        return None
    return BehaviouralEvent(event.customer_id, visit, event.ts, Channel.STORE)
