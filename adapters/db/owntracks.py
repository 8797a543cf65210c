"""What OwnTracks reports besides locations, kept as the app sent it: its own region
transitions (for comparison with ours; never trusted over our fences) and its iBeacon sightings.
Both are de-duplicated by the table's unique key, since the app resends what was not answered.

The messages are described here by what is read from them (the codec's dataclasses in
adapters/codecs/owntracks.py fit), so this module does not import the codecs, which import it.
"""

from __future__ import annotations

from typing import Protocol

import asyncpg


class TransitionMessage(Protocol):
    @property
    def event(self) -> str: ...
    @property
    def region_key(self) -> str: ...
    @property
    def region_id(self) -> str | None: ...
    @property
    def region_desc(self) -> str | None: ...
    @property
    def trigger(self) -> str | None: ...
    @property
    def lat(self) -> float | None: ...
    @property
    def lon(self) -> float | None: ...
    @property
    def accuracy_m(self) -> float | None: ...
    @property
    def ts(self) -> float: ...
    @property
    def waypoint_ts(self) -> float | None: ...


class BeaconMessage(Protocol):
    @property
    def uuid(self) -> str: ...
    @property
    def major(self) -> int: ...
    @property
    def minor(self) -> int: ...
    @property
    def rssi(self) -> int | None: ...
    @property
    def accuracy_m(self) -> float | None: ...
    @property
    def proximity(self) -> int | None: ...
    @property
    def desc(self) -> str | None: ...
    @property
    def ts(self) -> float: ...


async def insert_transition(
    pool: asyncpg.Pool, device_id: str, customer_id: str, t: TransitionMessage
) -> bool:
    """False when this transition was recorded already (a resend)."""
    async with pool.acquire() as conn:
        status: str = await conn.execute(
            "INSERT INTO owntracks_transitions (device_id, customer_id, event, region_key,"
            " region_id, region_desc, trigger, lat, lon, accuracy_m, ts, waypoint_ts)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, to_timestamp($11),"
            " to_timestamp($12)) ON CONFLICT DO NOTHING",
            device_id,
            customer_id,
            t.event,
            t.region_key,
            t.region_id,
            t.region_desc,
            t.trigger,
            t.lat,
            t.lon,
            t.accuracy_m,
            t.ts,
            t.waypoint_ts,
        )
    return status.endswith(" 1")


async def insert_beacon(
    pool: asyncpg.Pool, device_id: str, customer_id: str, b: BeaconMessage
) -> bool:
    """False when this sighting was recorded already (a resend)."""
    async with pool.acquire() as conn:
        status: str = await conn.execute(
            "INSERT INTO owntracks_beacons (device_id, customer_id, uuid, major, minor, rssi,"
            " accuracy_m, proximity, region_desc, ts)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp($10))"
            " ON CONFLICT DO NOTHING",
            device_id,
            customer_id,
            b.uuid,
            b.major,
            b.minor,
            b.rssi,
            b.accuracy_m,
            b.proximity,
            b.desc,
            b.ts,
        )
    return status.endswith(" 1")
