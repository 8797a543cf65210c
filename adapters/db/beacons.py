"""The proximity registries (geo_engine/proximity_ports.py) on PostgreSQL: BLE beacons, NFC
tags, the SUN counter guard and the taps. Same contract as memory
(tests/contract/test_proximity_registry.py)."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from typing import Any

import asyncpg

from adapters.db.tx import conn_of
from geo_engine.ports import Tx
from geo_engine.proximity_ports import Beacon, Conflict, NfcTag, NfcTap, UnknownTag

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


def _no_fence(fence_id: str) -> Conflict:
    # the routes check the fence first: this is one deleted in between
    return Conflict("geofence_id", f"no geofence {fence_id!r}")


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

    async def by_identity(self, identities: Sequence[str]) -> dict[str, Beacon]:
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
        except asyncpg.ForeignKeyViolationError:
            raise _no_fence(b.geofence_id) from None

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
        except asyncpg.ForeignKeyViolationError:
            raise _no_fence(b.geofence_id) from None
        return created

    async def delete(self, beacon_id: str) -> bool:
        async with self._pool.acquire() as conn:
            status: str = await conn.execute("DELETE FROM beacons WHERE id = $1", beacon_id)
        return status.endswith(" 1")


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
        except asyncpg.ForeignKeyViolationError:
            raise _no_fence(t.geofence_id) from None

    async def delete(self, tag_id: str) -> bool:
        async with self._pool.acquire() as conn:
            status: str = await conn.execute("DELETE FROM nfc_tags WHERE id = $1", tag_id)
        return status.endswith(" 1")

    async def advance_counter(self, tx: Tx, tag_id: str, counter: int) -> bool:
        # the row lock makes a concurrent tap with the same counter wait for this transaction,
        # then find the counter no longer below its own
        status: str = await conn_of(tx).execute(
            "UPDATE nfc_tags SET last_counter = $2 WHERE id = $1"
            " AND (last_counter IS NULL OR last_counter < $2)",
            tag_id,
            counter,
        )
        return status.endswith(" 1")

    async def record_tap(
        self,
        tx: Tx,
        *,
        tag_id: str,
        customer_id: str,
        device_id: str | None,
        ts: float,
        counter: int | None,
        verified: bool,
        flag: str | None,
    ) -> int:
        try:
            tap_id: int = await conn_of(tx).fetchval(
                "INSERT INTO nfc_taps (tag_id, customer_id, device_id, ts, counter, verified,"
                " flag) VALUES ($1, $2, $3, to_timestamp($4), $5, $6, $7) RETURNING id",
                tag_id,
                customer_id,
                device_id,
                ts,
                counter,
                verified,
                flag,
            )
        except asyncpg.ForeignKeyViolationError:
            raise UnknownTag(tag_id) from None
        return tap_id

    async def taps(self, tag_id: str) -> list[NfcTap]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, tag_id, customer_id, device_id, ts, counter, verified, flag"
                " FROM nfc_taps WHERE tag_id = $1 ORDER BY id",
                tag_id,
            )
        return [
            NfcTap(
                id=r["id"],
                tag_id=r["tag_id"],
                customer_id=r["customer_id"],
                device_id=r["device_id"],
                ts=r["ts"].timestamp(),
                counter=r["counter"],
                verified=r["verified"],
                flag=r["flag"],
            )
            for r in rows
        ]
