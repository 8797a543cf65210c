"""Decoding `POST /v1/beacon-sightings` with msgspec: a reason per bad row, good rows go on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import msgspec

from adapters.codecs.pings import Ident, RowError, batch_rows, parse_ts, split_error
from geo_engine.proximity import Proximity
from geo_engine.proximity_ports import (
    EDDYSTONE_UID,
    IBEACON,
    canonical_hex,
    canonical_uuid,
    eddystone_identity,
    ibeacon_identity,
)


@dataclass(frozen=True, slots=True)
class Sighting:
    index: int  # the row in the request
    customer_id: str
    identity: str  # canonical beacon identity (geo_engine/proximity_ports.py)
    rssi: float | None  # dBm; None: unknown (then `proximity` must say)
    ts: float
    tx_power: float | None = None  # as advertised: iBeacon 1 m power, Eddystone 0 m power
    proximity: Proximity | None = None  # the client's own class, used when rssi is unknown


Short = Annotated[str, msgspec.Meta(max_length=64)]
U16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class SightingIn(msgspec.Struct):
    rssi: Annotated[float, msgspec.Meta(ge=-120.0, le=0.0)]
    ts: float | str
    device_id: Ident | None = None
    customer_id: Ident | None = None
    uuid: Short | None = None
    major: U16 | None = None
    minor: U16 | None = None
    namespace: Short | None = None
    instance: Short | None = None
    # as the frame advertises it: iBeacon measured power (1 m), Eddystone Tx power (0 m)
    tx_power: Annotated[int, msgspec.Meta(ge=-127, le=20)] | None = None


class _Envelope(msgspec.Struct):
    sightings: list[msgspec.Raw]


_envelope = msgspec.json.Decoder(_Envelope)
_row = msgspec.json.Decoder(SightingIn)


class _Bad(Exception):
    """One row is rejected: which field, why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def _identity(s: SightingIn) -> tuple[str, str]:
    """(canonical identity, kind); _Bad when incomplete or malformed."""
    if s.uuid is not None or s.major is not None or s.minor is not None:
        if s.namespace is not None or s.instance is not None:
            raise _Bad("uuid", "either uuid, major, minor or namespace, instance")
        for name in ("uuid", "major", "minor"):
            if getattr(s, name) is None:
                raise _Bad(name, "required for an iBeacon sighting")
        assert s.uuid is not None and s.major is not None and s.minor is not None
        try:
            return ibeacon_identity(canonical_uuid(s.uuid), s.major, s.minor), IBEACON
        except ValueError as exc:
            raise _Bad("uuid", str(exc)) from None
    if s.namespace is None or s.instance is None:
        raise _Bad("uuid", "a beacon identity is required: uuid+major+minor or namespace+instance")
    try:
        ns = canonical_hex(s.namespace, 10)
    except ValueError as exc:
        raise _Bad("namespace", str(exc)) from None
    try:
        return eddystone_identity(ns, canonical_hex(s.instance, 6)), EDDYSTONE_UID
    except ValueError as exc:
        raise _Bad("instance", str(exc)) from None


def decode_sightings(
    body: bytes,
    *,
    max_batch: int,
    max_future_s: float,
    max_age_s: float,
    customer_for: Callable[[str], str],
) -> tuple[list[Sighting], list[RowError]]:
    """Good rows as sightings (customer resolved), bad rows with field and reason."""
    raws = batch_rows(_envelope, body, "sightings", max_batch)
    now = time.time()
    rows: list[Sighting] = []
    errors: list[RowError] = []
    for i, raw in enumerate(raws):
        try:
            row = _row.decode(raw)
            if row.customer_id is None and row.device_id is None:
                raise _Bad("device_id", "one of device_id or customer_id is required")
            identity, kind = _identity(row)
            if kind == IBEACON and row.tx_power is not None and row.tx_power >= 0:
                raise _Bad("tx_power", "an iBeacon's 1 m power must be negative")
            try:
                ts = parse_ts(row.ts)
            except ValueError as exc:
                raise _Bad("ts", str(exc)) from None
            if ts > now + max_future_s:
                raise _Bad("ts", f"more than {max_future_s:.0f} s in the future")
            if ts < now - max_age_s:
                raise _Bad("ts", f"older than the {max_age_s:.0f} s accepted")
        except msgspec.ValidationError as exc:
            field, reason = split_error(str(exc))
            errors.append(RowError(i, field or "row", reason))
            continue
        except msgspec.DecodeError as exc:
            errors.append(RowError(i, "row", str(exc)))
            continue
        except _Bad as exc:
            errors.append(RowError(i, exc.field, exc.reason))
            continue
        cid = row.customer_id or customer_for(row.device_id or "")
        rows.append(Sighting(i, cid, identity, row.rssi, ts, row.tx_power))
    return rows, errors
