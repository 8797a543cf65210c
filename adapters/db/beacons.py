"""Registries of BLE beacons and NFC tags on PostgreSQL, and the canonical beacon identities
sightings are matched on."""

from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

IBEACON = "ibeacon"
EDDYSTONE_UID = "eddystone_uid"
_HEX = re.compile(r"^[0-9a-f]*$")


class Conflict(Exception):
    """An id or a beacon identity is taken."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def canonical_uuid(value: str) -> str:
    """A proximity UUID in its canonical form (lower case, dashed). ValueError if not one."""
    try:
        return str(uuidlib.UUID(hex=value.strip()))
    except ValueError:
        raise ValueError("not a UUID (32 hex digits, dashes optional)") from None


def canonical_hex(value: str, n_bytes: int) -> str:
    """`n_bytes` bytes as lower-case hex, from hex with an optional 0x. ValueError if not."""
    v = value.strip().lower()
    v = v.removeprefix("0x")
    if len(v) != 2 * n_bytes or not _HEX.match(v):
        raise ValueError(f"must be {n_bytes} bytes as {2 * n_bytes} hex digits")
    return v


def ibeacon_identity(uuid: str, major: int, minor: int) -> str:
    return f"{IBEACON}:{uuid}:{major}:{minor}"


def eddystone_identity(namespace: str, instance: str) -> str:
    return f"{EDDYSTONE_UID}:{namespace}:{instance}"


@dataclass(frozen=True, slots=True)
class Beacon:
    id: str
    kind: str  # ibeacon | eddystone_uid
    geofence_id: str  # the zone it is placed in
    uuid: str | None = None
    major: int | None = None
    minor: int | None = None
    namespace: str | None = None
    instance: str | None = None
    measured_power: int | None = None  # RSSI at 1 m, dBm
    placement: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    store_id: str | None = None  # the fence's store (read from the fence, never stored)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def identity(self) -> str:
        if self.kind == IBEACON:
            assert self.uuid is not None and self.major is not None and self.minor is not None
            return ibeacon_identity(self.uuid, self.major, self.minor)
        assert self.namespace is not None and self.instance is not None
        return eddystone_identity(self.namespace, self.instance)


_BEACON_SELECT = """
SELECT b.*, g.store_id FROM beacons b JOIN geofences g ON g.id = b.geofence_id
"""
_BEACON_COLUMNS = (
    "id, kind, identity, uuid, major, minor, namespace, instance, measured_power, placement,"
    " metadata, geofence_id"
)


def _beacon(r: asyncpg.Record) -> Beacon:
    return Beacon(
        id=r["id"],
        kind=r["kind"],
        geofence_id=r["geofence_id"],
        uuid=None if r["uuid"] is None else str(r["uuid"]),
        major=r["major"],
        minor=r["minor"],
        namespace=r["namespace"],
        instance=r["instance"],
        measured_power=r["measured_power"],
        placement=r["placement"],
        metadata=r["metadata"] or {},
        store_id=r["store_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def _beacon_args(b: Beacon) -> tuple[Any, ...]:
    return (
        b.id,
        b.kind,
        b.identity,
        None if b.uuid is None else uuidlib.UUID(b.uuid),
        b.major,
        b.minor,
        b.namespace,
        b.instance,
        b.measured_power,
        b.placement,
        b.metadata,
        b.geofence_id,
    )


def _conflict(exc: asyncpg.UniqueViolationError, what: str) -> Conflict:
    if exc.constraint_name == "beacons_identity_key":
        return Conflict("identity", "another beacon has this identity")
    return Conflict("id", f"{what} exists: use PUT to replace it")


class PgBeaconRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, beacon_id: str) -> Beacon | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_BEACON_SELECT + " WHERE b.id = $1", beacon_id)
        return None if row is None else _beacon(row)

    async def find(
        self, store_id: str | None = None, geofence_id: str | None = None
    ) -> list[Beacon]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                _BEACON_SELECT + " WHERE ($1::text IS NULL OR g.store_id = $1)"
                " AND ($2::text IS NULL OR b.geofence_id = $2) ORDER BY b.id",
                store_id,
                geofence_id,
            )
        return [_beacon(r) for r in rows]

    async def by_identity(self, identities: list[str]) -> dict[str, Beacon]:
        if not identities:
            return {}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                _BEACON_SELECT + " WHERE b.identity = ANY($1::text[])", list(set(identities))
            )
        return {r["identity"]: _beacon(r) for r in rows}

    async def create(self, b: Beacon) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    f"INSERT INTO beacons ({_BEACON_COLUMNS}) VALUES"
                    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    *_beacon_args(b),
                )
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc, f"beacon {b.id!r}") from None

    async def put(self, b: Beacon) -> bool:
        """Create or replace; True when created."""
        try:
            async with self._pool.acquire() as conn:
                created: bool = await conn.fetchval(
                    f"INSERT INTO beacons ({_BEACON_COLUMNS}) VALUES"
                    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                    " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,"
                    " identity = excluded.identity, uuid = excluded.uuid,"
                    " major = excluded.major, minor = excluded.minor,"
                    " namespace = excluded.namespace, instance = excluded.instance,"
                    " measured_power = excluded.measured_power, placement = excluded.placement,"
                    " metadata = excluded.metadata, geofence_id = excluded.geofence_id,"
                    " updated_at = now() RETURNING (xmax = 0)",
                    *_beacon_args(b),
                )
        except asyncpg.UniqueViolationError as exc:
            raise _conflict(exc, f"beacon {b.id!r}") from None
        return created

    async def delete(self, beacon_id: str) -> bool:
        async with self._pool.acquire() as conn:
            status: str = await conn.execute("DELETE FROM beacons WHERE id = $1", beacon_id)
        return status.endswith(" 1")


@dataclass(frozen=True, slots=True)
class NfcTag:
    id: str
    geofence_id: str  # a store fence, or a zone fence (its store is implied)
    uid: str | None = None  # 7-byte UID hex a SUN message must carry, when set
    sun_file_key: bytes | None = None  # K_SDMFileRead: verifies the SUN CMAC
    sun_meta_key: bytes | None = None  # K_SDMMetaRead: decrypts PICCData
    last_counter: int | None = None
    placement: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    store_id: str | None = None  # the fence's store (read from the fence)
    created_at: datetime | None = None


_TAG_SELECT = "SELECT t.*, g.store_id FROM nfc_tags t JOIN geofences g ON g.id = t.geofence_id"


def _tag(r: asyncpg.Record) -> NfcTag:
    return NfcTag(
        id=r["id"],
        geofence_id=r["geofence_id"],
        uid=r["uid"],
        sun_file_key=r["sun_file_key"],
        sun_meta_key=r["sun_meta_key"],
        last_counter=r["last_counter"],
        placement=r["placement"],
        metadata=r["metadata"] or {},
        store_id=r["store_id"],
        created_at=r["created_at"],
    )


class PgNfcTagRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, tag_id: str) -> NfcTag | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_TAG_SELECT + " WHERE t.id = $1", tag_id)
        return None if row is None else _tag(row)

    async def find(self, store_id: str | None = None) -> list[NfcTag]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                _TAG_SELECT + " WHERE ($1::text IS NULL OR g.store_id = $1) ORDER BY t.id",
                store_id,
            )
        return [_tag(r) for r in rows]

    async def create(self, t: NfcTag) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO nfc_tags (id, geofence_id, uid, sun_file_key, sun_meta_key,"
                    " placement, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    t.id,
                    t.geofence_id,
                    t.uid,
                    t.sun_file_key,
                    t.sun_meta_key,
                    t.placement,
                    t.metadata,
                )
        except asyncpg.UniqueViolationError:
            raise Conflict("id", f"NFC tag {t.id!r} exists: delete it first") from None

    async def delete(self, tag_id: str) -> bool:
        async with self._pool.acquire() as conn:
            status: str = await conn.execute("DELETE FROM nfc_tags WHERE id = $1", tag_id)
        return status.endswith(" 1")


async def advance_counter(conn: asyncpg.Connection, tag_id: str, counter: int) -> bool:
    """Raise the tag's SUN counter to `counter` if it is greater (in the caller's transaction).
    False: a replay (or a concurrent tap with a counter as high)."""
    status: str = await conn.execute(
        "UPDATE nfc_tags SET last_counter = $2 WHERE id = $1"
        " AND (last_counter IS NULL OR last_counter < $2)",
        tag_id,
        counter,
    )
    return status.endswith(" 1")


async def record_tap(
    conn: asyncpg.Connection,
    *,
    tag_id: str,
    customer_id: str,
    device_id: str | None,
    ts: float,
    counter: int | None,
    verified: bool,
    flag: str | None,
) -> int:
    tap_id: int = await conn.fetchval(
        "INSERT INTO nfc_taps (tag_id, customer_id, device_id, ts, counter, verified, flag)"
        " VALUES ($1, $2, $3, to_timestamp($4), $5, $6, $7) RETURNING id",
        tag_id,
        customer_id,
        device_id,
        ts,
        counter,
        verified,
        flag,
    )
    return tap_id
