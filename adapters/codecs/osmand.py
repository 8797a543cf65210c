"""Traccar Client / OsmAnd protocol -> DecodedPings.

Mirrors Traccar's own server, traccar/traccar src/main/java/org/traccar/protocol/
OsmAndProtocolDecoder.java (decodeQuery, decodeJson) and its OsmAndProtocolDecoderTest.java:
- query string, or the form body when the query string is empty (as Traccar reads it);
  `id`/`deviceid`; `lat`+`lon` or `location=lat,lon`; `speed` in knots; `bearing`/`heading`;
  `timestamp` as unix s, unix ms (from Integer.MAX_VALUE on), ISO 8601 (contains a T) or
  `yyyy-MM-dd HH:mm:ss` (Traccar: server time zone; here UTC); no timestamp = now; empty values
  are skipped; `valid` is true unless `true`/`1`; any other key is an attribute (ignored here).
- JSON (`Content-Type: application/json`, Traccar Client 9 on flutter_background_geolocation,
  template in traccar/traccar-client lib/preferences.dart): `device_id` and `location` with an
  ISO `timestamp` and `coords` (speed in m/s; -1 speed, heading or battery level = unknown).
- no coordinates (cell/wifi-only reports): Traccar reuses the device's last position; we never
  invent one, so such a report is acknowledged and dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from adapters.codecs.client_values import (
    MAX_ID_LEN,
    ClientParseError,
    Dropped,
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
    storable,
    unix_time,
    unknown_if_negative,
)
from adapters.codecs.pings import DecodedPings, PingIn

KNOTS_TO_MPS = 1852.0 / 3600.0
_MAX_FIELDS = 200  # a real report has about 15; the rest is junk not worth parsing
_NUMERIC = ("altitude", "hdop", "batt")  # checked like Traccar does, then unused


@dataclass(frozen=True, slots=True)
class OsmAndRequest:
    """Read but not decoded: the device id is known, so the route authenticates before it
    spends anything on the values."""

    device_id: str | None
    variant: str  # query | json
    fixes: tuple[Any, ...]  # per fix: the (key, value) pairs, or a JSON `location`


@dataclass(frozen=True, slots=True)
class OsmAndFixes:
    pings: DecodedPings
    dropped: list[Dropped]


def read_query(raw: str | bytes) -> OsmAndRequest:
    """The query string (or form body): a `+` is a space, as in any form encoding."""
    s = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        pairs = parse_qsl(s, errors="replace", max_num_fields=_MAX_FIELDS)
    except ValueError:
        raise ClientParseError("query", f"more than {_MAX_FIELDS} fields") from None
    device_id = None
    for key, value in pairs:
        if key in ("id", "deviceid") and value:
            device_id = value
    return OsmAndRequest(_device_id(device_id, "id"), "query", (pairs,))


def read_json(body: bytes | str | Mapping[str, Any]) -> OsmAndRequest:
    root = as_object(decode_json(body) if isinstance(body, bytes | str) else body, "body")
    raw_id = root.get("device_id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(integer(raw_id, "device_id", -(2**63), 2**63 - 1))
    elif raw_id is not None and not isinstance(raw_id, str):
        raise ClientParseError("device_id", "must be a string")
    location = root.get("location")
    # flutter_background_geolocation sends a list of locations when batchSync is on
    fixes = tuple(location) if isinstance(location, list) else (location,)
    return OsmAndRequest(_device_id(raw_id or None, "device_id"), "json", fixes)


def decode(request: OsmAndRequest, window: TimeWindow, max_fixes: int) -> OsmAndFixes:
    if len(request.fixes) > max_fixes:
        reason = f"{len(request.fixes)} locations exceed the limit of {max_fixes}"
        raise ClientParseError("location", reason, status=413)
    good: list[tuple[int, PingIn, float]] = []
    dropped: list[Dropped] = []
    for i, raw in enumerate(request.fixes):
        if request.variant == "query":
            fix = _query_fix(raw, request.device_id, window.now)
        else:
            fix = _json_fix(raw, request.device_id, window.now, i)
        if isinstance(fix, Dropped):
            dropped.append(Dropped(i, fix.field, fix.code, fix.reason))
            continue
        ping, t = fix
        refused = window.refuse(t)
        if refused is not None:
            field = "timestamp" if request.variant == "query" else "location.timestamp"
            dropped.append(Dropped(i, field, *refused))
            continue
        good.append((i, ping, t))
    return OsmAndFixes(decoded(good), dropped)


def _device_id(value: str | None, field: str) -> str | None:
    if value is not None and len(value) > MAX_ID_LEN:
        raise ClientParseError(field, f"longer than {MAX_ID_LEN} characters")
    return None if value is None else storable(value, field)


def _query_fix(
    pairs: Sequence[tuple[str, str]], device_id: str | None, now: float
) -> tuple[PingIn, float] | Dropped:
    lat = lon = speed = course = acc = t = None
    valid, mock = True, False
    for key, value in pairs:
        if not value:
            continue  # Traccar skips empty values too
        if key == "valid":
            valid = value.lower() == "true" or value == "1"
        elif key == "timestamp":
            t = unix_time(value, "timestamp", allow_ms=True)
        elif key == "lat":
            lat = number(value, key)
        elif key == "lon":
            lon = number(value, key)
        elif key == "location":
            parts = value.split(",")
            if len(parts) < 2:
                raise ClientParseError("location", "must be lat,lon")
            lat, lon = number(parts[0], "location"), number(parts[1], "location")
        elif key == "speed":
            knots = unknown_if_negative(number(value, key))
            speed = None if knots is None else knots * KNOTS_TO_MPS
        elif key in ("bearing", "heading"):
            course = heading(number(value, key))
        elif key == "accuracy":
            acc = accuracy(number(value, key))
        elif key == "mock":
            mock = value.lower() in ("true", "1")
        elif key == "cell":
            _cell(value)
        elif key == "wifi":
            _wifi(value)
        elif key in _NUMERIC:
            number(value, key)
    if lat is None or lon is None:
        return Dropped(0, "lat", "no_location", "no lat/lon (or location): nothing to place")
    coordinates(lat, lon)
    if not valid:
        return Dropped(0, "valid", "invalid_fix", "the device marked this fix invalid")
    t = now if t is None else t  # Traccar: a report without a time is dated on arrival
    ping = PingIn(
        lat=lat,
        lon=lon,
        ts=t,
        device_id=device_id,
        accuracy_m=acc,
        speed_mps=speed,
        heading=course,
        mock=mock,
    )
    return ping, t


def _cell(value: str) -> None:
    """cell=mcc,mnc,lac,cid[,rssi]: integers, as Traccar's CellTower.from needs them."""
    parts = value.split(",")
    if len(parts) not in (4, 5):
        raise ClientParseError("cell", "must be mcc,mnc,lac,cid[,rssi]")
    for part in parts:
        integer(part, "cell", -(2**31), 2**31 - 1)


def _wifi(value: str) -> None:
    """wifi=mac,rssi (Traccar turns `-` into `:` in the MAC)."""
    parts = value.split(",")
    if len(parts) != 2 or not parts[0]:
        raise ClientParseError("wifi", "must be mac,rssi")
    integer(parts[1], "wifi", -(2**31), 2**31 - 1)


def _json_fix(
    raw: object, device_id: str | None, now: float, i: int
) -> tuple[PingIn, float] | Dropped:
    if raw is None:
        raise ClientParseError("location", "required field is missing", index=i)
    loc = as_object(raw, "location", i)
    if loc.get("timestamp") is None:
        raise ClientParseError("location.timestamp", "required field is missing", index=i)
    t = unix_time(loc["timestamp"], "location.timestamp", allow_ms=True, index=i)
    mock = loc.get("mock", False)
    if not isinstance(mock, bool):
        raise ClientParseError("location.mock", "must be true or false", index=i)
    if loc.get("coords") is None:
        return Dropped(i, "location.coords", "no_location", "no coords: nothing to place")
    coords = as_object(loc["coords"], "location.coords", i)
    prefix = "location.coords."
    for name in ("latitude", "longitude"):
        if coords.get(name) is None:
            raise ClientParseError(prefix + name, "required field is missing", index=i)
    lat = number(coords["latitude"], prefix + "latitude", i)
    lon = number(coords["longitude"], prefix + "longitude", i)
    if not -90.0 <= lat <= 90.0:
        raise ClientParseError(prefix + "latitude", "must be between -90 and 90", index=i)
    if not -180.0 <= lon <= 180.0:
        raise ClientParseError(prefix + "longitude", "must be between -180 and 180", index=i)
    optional_number(coords.get("altitude"), prefix + "altitude", i)
    ping = PingIn(
        lat=lat,
        lon=lon,
        ts=t,
        device_id=device_id,
        accuracy_m=accuracy(optional_number(coords.get("accuracy"), prefix + "accuracy", i)),
        speed_mps=unknown_if_negative(optional_number(coords.get("speed"), prefix + "speed", i)),
        heading=heading(optional_number(coords.get("heading"), prefix + "heading", i)),
        mock=mock,
    )
    return ping, t
