"""Parsers for the wire formats of real mobile clients: OwnTracks (HTTP mode), Traccar Client and
OsmAnd (the OsmAnd protocol). See ../shared/PROTOCOLS.md, "Inbound: real mobile clients".

Pure: a payload goes in, `DecodedPings` (or another message kind) comes out. No FastAPI, no I/O,
so hypothesis can fuzz them. Whatever the input, the only exception they raise is
`ClientParseError`; the routes decide what each client is answered (OwnTracks gets 200 `[]`,
OsmAnd gets 400).

Shared here: the value readers (numbers, times, coordinates) both formats need.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from adapters.codecs.pings import DecodedPings, PingIn

MAX_ID_LEN = 128  # PingIn's Ident: a device id longer than this is refused everywhere
_MAX_VALUE_LEN = 64  # no number or time is longer; caps the work spent on junk
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


class ClientParseError(ValueError):
    """The payload cannot be used. `code` is a short, bounded label (for metrics); `field` and
    `reason` say what is wrong in words a client developer can act on."""

    def __init__(
        self,
        field: str,
        reason: str,
        *,
        code: str = "bad_field",
        index: int | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.code = code
        self.index = index
        self.status = status


@dataclass(frozen=True, slots=True)
class Dropped:
    """A well-formed fix that is not used (device says invalid, no coordinates, out of the
    accepted time window): acknowledged, counted, never stored."""

    index: int
    field: str
    code: str  # bounded label: invalid_fix, no_location, too_old, in_future
    reason: str


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Fix times the engine accepts, as for POST /v1/pings (GEO_ENGINE_MAX_FUTURE_SKEW_S and
    GEO_ENGINE_MAX_PAST_AGE_S)."""

    now: float
    max_future_s: float
    max_age_s: float

    def refuse(self, t: float) -> tuple[str, str] | None:
        """None if `t` is acceptable, else (code, reason)."""
        if t > self.now + self.max_future_s:
            return "in_future", f"more than {self.max_future_s:.0f} s in the future"
        if t < self.now - self.max_age_s:
            return "too_old", f"older than the {self.max_age_s:.0f} s accepted"
        return None


def decode_json(body: bytes | str) -> Any:
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError, RecursionError) as exc:
        raise ClientParseError("body", f"malformed JSON: {exc}", code="malformed_json") from None


def number(value: object, field: str, index: int | None = None) -> float:
    """A finite number. Numeric strings are accepted (some clients quote their numbers);
    booleans are not numbers here, whatever Python thinks."""
    if isinstance(value, bool) or value is None:
        raise ClientParseError(field, "must be a number", index=index)
    if isinstance(value, int | float):
        try:
            out = float(value)
        except OverflowError:
            out = math.inf
    elif isinstance(value, str) and len(value) <= _MAX_VALUE_LEN and _DECIMAL.fullmatch(value):
        out = float(value)
    else:
        raise ClientParseError(field, f"must be a number, got {_show(value)}", index=index)
    if not math.isfinite(out):
        raise ClientParseError(field, "must be a finite number", index=index)
    return out


def optional_number(value: object, field: str, index: int | None = None) -> float | None:
    return None if value is None else number(value, field, index)


def integer(value: object, field: str, lo: int, hi: int, index: int | None = None) -> int:
    if isinstance(value, str) and len(value) <= _MAX_VALUE_LEN and _INTEGER.fullmatch(value):
        out = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        out = value
    elif isinstance(value, float) and value.is_integer():
        out = int(value)
    else:
        raise ClientParseError(field, f"must be an integer, got {_show(value)}", index=index)
    if not lo <= out <= hi:
        raise ClientParseError(field, f"must be between {lo} and {hi}", index=index)
    return out


def text(value: object, field: str, max_len: int = 200, index: int | None = None) -> str:
    if not isinstance(value, str):
        raise ClientParseError(field, f"must be a string, got {_show(value)}", index=index)
    if len(value) > max_len:
        raise ClientParseError(field, f"longer than {max_len} characters", index=index)
    return storable(value, field, index)


def storable(value: str, field: str, index: int | None = None, code: str = "bad_field") -> str:
    """PostgreSQL text holds neither NUL nor lone surrogates (JSON can carry both): refuse them
    here, or the INSERT would fail with a 500 and the app would resend the message forever."""
    if "\x00" in value:
        raise ClientParseError(field, "must not contain NUL characters", index=index, code=code)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ClientParseError(field, "is not valid Unicode", index=index, code=code) from None
    return value


def optional_text(value: object, field: str, max_len: int = 200) -> str | None:
    return None if value is None else text(value, field, max_len)


def unknown_if_negative(value: float | None) -> float | None:
    """Android and iOS report an unknown speed, course or accuracy as -1."""
    return None if value is None or value < 0 else value


def accuracy(value: float | None) -> float | None:
    """0 is what some Android clients send for "unknown" (PROTOCOLS.md), not a perfect fix."""
    return None if value is None or value <= 0 else value


def heading(value: float | None) -> float | None:
    value = unknown_if_negative(value)
    return None if value is None else value % 360.0


def coordinates(lat: float, lon: float, prefix: str = "", index: int | None = None) -> None:
    if not -90.0 <= lat <= 90.0:
        raise ClientParseError(f"{prefix}lat", "must be between -90 and 90", index=index)
    if not -180.0 <= lon <= 180.0:
        raise ClientParseError(f"{prefix}lon", "must be between -180 and 180", index=index)


def unix_time(
    value: object, field: str, *, allow_ms: bool = False, index: int | None = None
) -> float:
    """Unix seconds (number or digits); with `allow_ms`, unix milliseconds too, told apart as
    Traccar does (a value from Java's Integer.MAX_VALUE on is milliseconds); ISO 8601 (UTC when
    no offset is given); or `yyyy-MM-dd HH:mm:ss` in UTC."""
    if isinstance(value, str):
        s = value.strip()
        if len(s) > _MAX_VALUE_LEN:
            raise ClientParseError(field, "not a time", index=index)
        if _DECIMAL.fullmatch(s):
            return unix_time(float(s), field, allow_ms=allow_ms, index=index)
        return _calendar_time(s, field, index)
    t = number(value, field, index)
    if allow_ms and abs(t) >= 2_147_483_647:
        t /= 1000.0
    return t


def _calendar_time(s: str, field: str, index: int | None) -> float:
    try:
        if "T" in s:
            dt = datetime.fromisoformat(s)
        else:
            fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in s else "%Y-%m-%d %H:%M:%S"
            dt = datetime.strptime(s, fmt)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    except (ValueError, OverflowError, OSError):
        raise ClientParseError(
            field,
            "not a time: unix seconds or milliseconds, ISO 8601 (2016-01-27T18:55:47Z) or"
            " yyyy-MM-dd HH:mm:ss (UTC)",
            index=index,
        ) from None


def as_object(value: object, field: str, index: int | None = None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ClientParseError(field, "must be a JSON object", code="not_an_object", index=index)
    return value


def decoded(pings: list[tuple[int, PingIn, float]]) -> DecodedPings:
    """What runtime.ingest() takes: the good rows, their request index and their fix time."""
    return DecodedPings(
        rows=[p for _, p, _ in pings],
        row_index=[i for i, _, _ in pings],
        ts=[t for _, _, t in pings],
        errors=[],
    )


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
