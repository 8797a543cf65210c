"""FenceRepository on PostgreSQL. Fences are stored as their accepted GeoJSON and re-read
through the same validation (with permissive limits, so tightening a limit never hides a fence)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from geofences.model import Geofence
from geofences.validation import ValidationLimits, fence_from_feature

_LOAD_LIMITS = ValidationLimits(
    max_area_km2=1e9, min_area_m2=0.0, max_radius_m=1e9, max_vertices=10**9
)

_UPSERT = """
INSERT INTO geofences (id, name, kind, store_id, geometry, radius_m, timezone, opening_hours,
    metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
    store_id = excluded.store_id, geometry = excluded.geometry, radius_m = excluded.radius_m,
    timezone = excluded.timezone, opening_hours = excluded.opening_hours,
    metadata = excluded.metadata, updated_at = now()
RETURNING (xmax = 0) AS created
"""


def _args(f: Geofence) -> tuple[Any, ...]:
    return (
        f.id,
        f.name,
        str(f.kind),
        f.store_id,
        f.geometry,
        f.radius_m,
        f.timezone,
        f.opening_hours,
        f.metadata,
    )


def fence_from_row(r: asyncpg.Record) -> Geofence:
    props: dict[str, Any] = {"name": r["name"], "kind": r["kind"], "store_id": r["store_id"]}
    for key in ("radius_m", "timezone", "opening_hours"):
        if r[key] is not None:
            props[key] = r[key]
    props["metadata"] = r["metadata"] or {}
    feature = {"type": "Feature", "id": r["id"], "geometry": r["geometry"], "properties": props}
    return fence_from_feature(feature, _LOAD_LIMITS, fence_id=r["id"])


class PgFenceRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def all(self) -> list[Geofence]:
        return await self.find()

    async def get(self, fence_id: str) -> Geofence | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM geofences WHERE id = $1", fence_id)
        return None if row is None else fence_from_row(row)

    async def find(self, store_id: str | None = None, kind: str | None = None) -> list[Geofence]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM geofences WHERE ($1::text IS NULL OR store_id = $1)"
                " AND ($2::text IS NULL OR kind = $2) ORDER BY id",
                store_id,
                kind,
            )
        return [fence_from_row(r) for r in rows]

    async def upsert(self, fence: Geofence) -> bool:
        async with self._pool.acquire() as conn:
            created: bool = await conn.fetchval(_UPSERT, *_args(fence))
        return created

    async def upsert_many(self, fences: Sequence[Geofence]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_UPSERT, [_args(f) for f in fences])

    async def delete(self, fence_id: str) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM presence_state WHERE geofence_id = $1", fence_id)
            status: str = await conn.execute("DELETE FROM geofences WHERE id = $1", fence_id)
        return status.endswith(" 1")


async def store_exists(pool: asyncpg.Pool, store_id: str) -> bool:
    """Whether some geofence names this store (a store exists only through its fences)."""
    found: bool = await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM geofences WHERE store_id = $1)", store_id
    )
    return found
