"""OwnTracks HTTP mode: one JSON message per POST -> a ping, a transition, a beacon, or another
`_type` to acknowledge and drop.

Wire format: owntracks/booklet docs/tech/json.md (fields, units: `vel` km/h, `tst` unix s, `acc`
m; "acc, alt, cog, vac, vel are only added if they are not zero") and docs/tech/http.md. Sender:
both apps send `X-Limit-U`/`X-Limit-D` (owntracks/android HttpMessageProcessorEndpoint.kt; iOS
defaults them to "user"/"device"); iOS also puts `topic` = `owntracks/<user>/<device>` in the
body. The headers win: Android's HTTP pseudo-topic is `owntracks/http/<tid>`, not a sender.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.codecs.client_values import (
    MAX_ID_LEN,
    ClientParseError,
    TimeWindow,
    accuracy,
    as_object,
    coordinates,
    decode_json,
    decoded,
    heading,
    integer,
    number,
    optional_number,
    optional_text,
    storable,
    text,
    unix_time,
    unknown_if_negative,
)
from adapters.codecs.pings import DecodedPings, PingIn

KMH_TO_MPS = 1 / 3.6

# `_type`s named in the booklet (and `status`, sent by recent iOS). Anything else is counted as
# "other": the metrics label must stay bounded whatever a client sends.
KNOWN_TYPES = frozenset(
    {
        "location",
        "transition",
        "beacon",
        "lwt",
        "waypoint",
        "waypoints",
        "card",
        "cmd",
        "steps",
        "encrypted",
        "configuration",
        "status",
        "msg",
        "request",
    }
)


@dataclass(frozen=True, slots=True)
class Location:
    pings: DecodedPings  # exactly one row, ready for runtime.ingest()
    # When the app built the message (tst is the fix time). Parsed, not stored: the engine has
    # no use for it, and raw_fixes has no column for it.
    created_at: float | None


@dataclass(frozen=True, slots=True)
class Transition:
    """The app's own view of one of its regions: recorded, never trusted over our fences."""

    event: str  # enter | leave
    ts: float
    region_id: str | None  # rid
    region_desc: str | None  # desc
    trigger: str | None  # t: c circle, b beacon, l location
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    waypoint_ts: float | None  # wtst: when the region was created

    @property
    def region_key(self) -> str:
        """Part of the resend key: the same region is the same rid (else the same name)."""
        return self.region_id or self.region_desc or ""


@dataclass(frozen=True, slots=True)
class Beacon:
    """iOS beacon ranging: one sighting of an iBeacon."""

    uuid: str
    major: int
    minor: int
    rssi: int | None  # dBm; iOS reports 0 when it could not measure
    accuracy_m: float | None  # iOS's distance estimate, -1 when unknown
    proximity: int | None  # 0 unknown, 1 immediate, 2 near, 3 far
    ts: float
    desc: str | None


@dataclass(frozen=True, slots=True)
class Other:
    type: str  # lwt, waypoint, card, cmd, steps, encrypted, ...: acknowledged, not used


Message = Location | Transition | Beacon | Other


@dataclass(frozen=True, slots=True)
class Parsed:
    message: Message
    device_id: str | None  # user/device; None only for Other (needs no sender)


def type_label(payload: object) -> str:
    """The message's `_type` as a bounded metrics label."""
    t = payload.get("_type") if isinstance(payload, Mapping) else None
    return t if isinstance(t, str) and t in KNOWN_TYPES else "other"


def parse(
    body: bytes | str | Mapping[str, Any],
    *,
    user: str | None,
    device: str | None,
    window: TimeWindow,
) -> Parsed:
    """`user`/`device`: from X-Limit-U/X-Limit-D (or the Recorder's ?u=&d=), None if absent."""
    payload = as_object(decode_json(body) if isinstance(body, bytes | str) else body, "body")
    kind = payload.get("_type")
    if kind not in ("location", "transition", "beacon"):
        return Parsed(Other(kind if isinstance(kind, str) else ""), None)
    device_id = sender(user, device, payload.get("topic"))
    if kind == "location":
        return Parsed(_location(payload, device_id, window), device_id)
    if kind == "transition":
        return Parsed(_transition(payload, window), device_id)
    return Parsed(_beacon(payload, window), device_id)


def sender(user: str | None, device: str | None, topic: object) -> str:
    """device id = user/device: headers first, then the payload's topic."""
    parts = topic.split("/") if isinstance(topic, str) else []
    if len(parts) >= 3:
        user = user or parts[1]
        device = device or parts[2]
    if not user or not device:
        raise ClientParseError(
            "sender",
            "unknown sender: send X-Limit-U and X-Limit-D, or topic owntracks/<user>/<device>",
            code="missing_sender",
        )
    device_id = f"{user}/{device}"
    if len(device_id) > MAX_ID_LEN:
        raise ClientParseError(
            "sender", f"user/device is longer than {MAX_ID_LEN} characters", code="bad_sender"
        )
    return storable(device_id, "sender", code="bad_sender")


def _fix_time(payload: Mapping[str, Any], window: TimeWindow, field: str = "tst") -> float:
    if payload.get(field) is None:
        raise ClientParseError(field, "required field is missing")
    t = unix_time(payload[field], field)
    refused = window.refuse(t)
    if refused is not None:
        raise ClientParseError(field, refused[1], code="out_of_window")
    return t


def _location(payload: Mapping[str, Any], device_id: str, window: TimeWindow) -> Location:
    for field in ("lat", "lon"):
        if payload.get(field) is None:
            raise ClientParseError(field, "required field is missing")
    lat, lon = number(payload["lat"], "lat"), number(payload["lon"], "lon")
    coordinates(lat, lon)
    t = _fix_time(payload, window)
    vel = unknown_if_negative(optional_number(payload.get("vel"), "vel"))
    ping = PingIn(
        lat=lat,
        lon=lon,
        ts=t,
        device_id=device_id,
        accuracy_m=accuracy(optional_number(payload.get("acc"), "acc")),
        speed_mps=None if vel is None else vel * KMH_TO_MPS,
        heading=heading(optional_number(payload.get("cog"), "cog")),
    )
    created = payload.get("created_at")
    try:
        created_at = None if created is None else unix_time(created, "created_at")
    except ClientParseError:
        created_at = None  # informative only: never a reason to lose the fix
    return Location(decoded([(0, ping, t)]), created_at)


def _transition(payload: Mapping[str, Any], window: TimeWindow) -> Transition:
    event = payload.get("event")
    if event not in ("enter", "leave"):
        raise ClientParseError("event", "must be enter or leave")
    lat = optional_number(payload.get("lat"), "lat")
    lon = optional_number(payload.get("lon"), "lon")
    if (lat is None) != (lon is None):
        raise ClientParseError("lat" if lat is None else "lon", "lat and lon come together")
    if lat is not None and lon is not None:
        coordinates(lat, lon)
    wtst = payload.get("wtst")
    return Transition(
        event=str(event),
        ts=_fix_time(payload, window),
        region_id=_optional_id(payload.get("rid"), "rid"),
        region_desc=optional_text(payload.get("desc"), "desc"),
        trigger=optional_text(payload.get("t"), "t", 8),
        lat=lat,
        lon=lon,
        accuracy_m=accuracy(optional_number(payload.get("acc"), "acc")),
        waypoint_ts=None if wtst is None else unix_time(wtst, "wtst"),
    )


def _beacon(payload: Mapping[str, Any], window: TimeWindow) -> Beacon:
    for field in ("uuid", "major", "minor"):
        if payload.get(field) is None:
            raise ClientParseError(field, "required field is missing")
    rssi = payload.get("rssi")
    prox = payload.get("prox")
    rssi_dbm = None if rssi is None else integer(rssi, "rssi", -200, 50)
    return Beacon(
        uuid=text(payload["uuid"], "uuid", 64).upper(),
        major=integer(payload["major"], "major", 0, 65_535),
        minor=integer(payload["minor"], "minor", 0, 65_535),
        rssi=None if rssi_dbm == 0 else rssi_dbm,
        accuracy_m=unknown_if_negative(optional_number(payload.get("acc"), "acc")),
        proximity=None if prox is None else integer(prox, "prox", 0, 3),
        ts=_fix_time(payload, window),
        desc=optional_text(payload.get("desc"), "desc"),
    )


def _optional_id(value: object, field: str) -> str | None:
    """rid is a string in both apps; a number is accepted and kept as its text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(integer(value, field, -(2**63), 2**63 - 1))
    return optional_text(value, field, MAX_ID_LEN)
