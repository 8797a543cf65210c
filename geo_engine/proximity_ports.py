"""The proximity registries: BLE beacons and NFC tags as the proximity service and the registry
routes see them, the canonical beacon identities sightings are matched on, and the ports they
are stored through. PostgreSQL: adapters/db/beacons.py; memory: adapters/memory/beacons.py; one
contract suite runs on both (tests/contract/test_proximity_registry.py).

A beacon or tag is placed in a fence and belongs to that fence's store: `store_id` is read from
the fence, never stored, and deleting the fence removes what is placed in it (and a tag's taps).
"""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from geo_engine.ports import Tx

IBEACON = "ibeacon"
EDDYSTONE_UID = "eddystone_uid"
_HEX = re.compile(r"^[0-9a-f]*$")


class Conflict(Exception):
    """A registry write refused by what is stored: the id or the beacon identity is taken, or
    the fence it names is not there (`field` says which)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class UnknownTag(LookupError):
    """A tap recorded for a tag that is no longer registered (deleted since it was read)."""


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


@dataclass(frozen=True, slots=True)
class NfcTap:
    """An accepted tap, as recorded (whether or not it changed presence)."""

    id: int
    tag_id: str
    customer_id: str
    device_id: str | None
    ts: float
    counter: int | None  # the SUN read counter, when the tap carried a verified message
    verified: bool
    flag: str | None  # e.g. late: recorded, no presence transition


class BeaconRegistry(Protocol):
    """Beacons by id and by canonical identity. Reads carry `store_id` from the fence."""

    async def get(self, beacon_id: str) -> Beacon | None: ...

    async def find(
        self, store_id: str | None = None, geofence_id: str | None = None
    ) -> list[Beacon]:
        """Those of a store and/or a fence (all when neither), by id."""
        ...

    async def by_identity(self, identities: Sequence[str]) -> dict[str, Beacon]:
        """The registered ones among canonical `identities`, keyed by identity."""
        ...

    async def create(self, beacon: Beacon) -> None:
        """Conflict on "id" (the id is taken), "identity" (another beacon has it) or
        "geofence_id" (no such fence). Its store_id, times are the registry's, not the
        argument's."""
        ...

    async def put(self, beacon: Beacon) -> bool:
        """Create or replace (keeping its creation time); True when created. Conflict on
        "identity" or "geofence_id" as `create`."""
        ...

    async def delete(self, beacon_id: str) -> bool:
        """False when there was none."""
        ...


class NfcTagRegistry(Protocol):
    """NFC tags, the SUN replay guard and the taps. The `Tx` methods write in the caller's
    transaction: the counter and the tap commit with the presence they caused, or not at all."""

    async def get(self, tag_id: str) -> NfcTag | None: ...

    async def find(self, store_id: str | None = None) -> list[NfcTag]:
        """Those of a store (all when None), by id."""
        ...

    async def create(self, tag: NfcTag) -> None:
        """A new tag has no counter yet. Conflict on "id" (taken) or "geofence_id" (no such
        fence)."""
        ...

    async def delete(self, tag_id: str) -> bool:
        """Removes its taps too; False when there was none."""
        ...

    async def advance_counter(self, tx: Tx, tag_id: str, counter: int) -> bool:
        """Raise the tag's SUN counter to `counter` if it is greater. False: a replay, an
        unknown tag, or a concurrent tap with a counter as high (which waits for this one's
        transaction on PostgreSQL, then loses)."""
        ...

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
        """The new tap's id (ids grow). UnknownTag when the tag is gone."""
        ...

    async def taps(self, tag_id: str) -> list[NfcTap]:
        """The tag's recorded taps, oldest first."""
        ...
