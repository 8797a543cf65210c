"""A store's presence in aggregate (the console's live counts): who is inside its fences now and
its events since a time. Read from what the partition owners committed, so the answer is the
same whichever process asks and whichever owns the customers; never a customer id out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from adapters.db.types import Pool

# one row per fence with someone inside, and the grand total row (geofence_id NULL) whose
# `people` counts a customer inside a store and one of its zones once
_INSIDE = """
SELECT geofence_id, count(*) AS n, count(DISTINCT customer_id) AS people
FROM presence_state WHERE geofence_id = ANY($1::text[])
GROUP BY GROUPING SETS ((geofence_id), ())
"""

_SINCE = """
SELECT type, count(*) AS n FROM presence_events
WHERE geofence_id = ANY($1::text[]) AND ts >= $2
GROUP BY type
"""

_LATEST = "SELECT coalesce(max(id), 0) FROM presence_events"


@dataclass(frozen=True, slots=True)
class StoreCounts:
    inside: int  # distinct customers inside any of the fences
    by_fence: dict[str, int] = field(default_factory=dict)  # customers inside each fence
    events: dict[str, int] = field(default_factory=dict)  # type -> events since the time


async def store_counts(
    pool: Pool, fence_ids: Sequence[str], event_fence_ids: Sequence[str], since: datetime
) -> StoreCounts:
    """Inside counts over `fence_ids`, events over `event_fence_ids` since `since`, read in one
    snapshot (an exit between the two reads cannot show in one and not the other)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        inside = await conn.fetch(_INSIDE, list(fence_ids))
        events = await conn.fetch(_SINCE, list(event_fence_ids), since)
    total = next((r["people"] for r in inside if r["geofence_id"] is None), 0)
    return StoreCounts(
        inside=int(total),
        by_fence={r["geofence_id"]: int(r["n"]) for r in inside if r["geofence_id"] is not None},
        events={r["type"]: int(r["n"]) for r in events},
    )


async def latest_event_id(pool: Pool) -> int:
    """The newest presence event's id: it moves whenever any presence changes (a cheap index
    lookup, what the live streams poll)."""
    async with pool.acquire() as conn:
        return int(await conn.fetchval(_LATEST))
