"""The customer-keyed commands of the ingest log and their replies, as msgspec encodes them.

An API process decodes a request, resolves each row's customer, and publishes one command per
partition; the partition's owner decodes it and applies it (adapters/cluster/handlers.py). The
types inside are the services' own (dataclasses and msgspec structs): the owner gets exactly what
the API process validated, with no second parse."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from adapters.codecs.events import rebuilt_row
from adapters.codecs.fix_columns import Fixes
from adapters.codecs.nfc_sun import SunMessage
from adapters.codecs.owntracks import Beacon, Transition
from adapters.codecs.pings import PingIn
from adapters.codecs.sightings import Sighting
from adapters.services.behaviour_events import Resolved
from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose
from geo_engine.profile.events import Channel, EventType


class Pings(msgspec.Struct, tag="pings", array_like=True):
    """Fixes as rows: what earlier versions published (new ones publish Fixes, as columns);
    still applied, so a log written before an upgrade drains after it."""

    rows: list[PingIn]  # customer_id resolved by the API process
    row_index: list[int]  # each row's index in the request
    ts: list[float]


class Sightings(msgspec.Struct, tag="sightings", array_like=True):
    rows: list[Sighting]


class OwnTracksBeacon(msgspec.Struct, tag="ot_beacon", array_like=True):
    device_id: str
    customer_id: str
    beacon: Beacon


class OwnTracksTransition(msgspec.Struct, tag="ot_transition", array_like=True):
    device_id: str
    customer_id: str
    transition: Transition


class NfcTap(msgspec.Struct, tag="tap", array_like=True):
    customer_id: str
    device_id: str | None
    tag_id: str
    ts: float
    sun: SunMessage | None


class EventWire(msgspec.Struct, array_like=True):
    """A validated behavioural event and its customer (the request's JSON properties ride as
    bytes: msgpack cannot embed JSON)."""

    index: int
    customer_id: str
    type: EventType
    channel: Channel
    ts: float
    event_id: str | None
    raw_properties: bytes

    @classmethod
    def of(cls, r: Resolved) -> EventWire:
        row = r.row
        return cls(
            row.index,
            r.customer_id,
            row.type,
            row.channel,
            row.ts,
            row.event.event_id,
            row.raw_properties,
        )

    def resolved(self) -> Resolved:
        row = rebuilt_row(
            self.index,
            self.customer_id,
            self.type,
            self.channel,
            self.ts,
            self.event_id,
            self.raw_properties,
        )
        return Resolved(row, self.customer_id)


class Events(msgspec.Struct, tag="events", array_like=True):
    rows: list[EventWire]


class Consents(msgspec.Struct, tag="consents", array_like=True):
    customer_id: str
    consents: dict[ConsentPurpose, Consent]


class CustomerRecord(msgspec.Struct, tag="customer", array_like=True):
    customer_id: str
    attributes: Attributes
    consents: dict[ConsentPurpose, Consent]


class Link(msgspec.Struct, tag="link", array_like=True):
    customer_id: str
    pairs: list[tuple[str, str]]


class Unlink(msgspec.Struct, tag="unlink", array_like=True):
    customer_id: str
    pairs: list[tuple[str, str]]


class Erase(msgspec.Struct, tag="erase", array_like=True):
    customer_id: str


Command = (
    Fixes
    | Pings
    | Sightings
    | OwnTracksBeacon
    | OwnTracksTransition
    | NfcTap
    | Events
    | Consents
    | CustomerRecord
    | Link
    | Unlink
    | Erase
)


class Reply(msgspec.Struct, omit_defaults=True):
    """What the owner did with one command: `result` (the service's own result, encoded) or
    the refusal a client must see (status, field, reason)."""

    result: msgspec.Raw = msgspec.Raw(b"null")
    status: int = 200
    field: str = ""
    reason: str = ""


encode = msgspec.msgpack.Encoder().encode
_command = msgspec.msgpack.Decoder(Command)
_reply = msgspec.msgpack.Decoder(Reply)


def decode_command(data: bytes) -> Command:
    return _command.decode(data)


def decode_reply(data: bytes) -> Reply:
    return _reply.decode(data)


def reply_ok(result: Any) -> bytes:
    return encode(Reply(result=msgspec.Raw(encode(result))))


def reply_applied() -> bytes:
    """Applied, but its result was lost with the database connection (202: it stands)."""
    return encode(Reply(status=202, reason="applied; its result was lost with the connection"))


def reply_refused(status: int, field: str, reason: str) -> bytes:
    return encode(Reply(status=status, field=field, reason=reason))


T = TypeVar("T")


def result_of(reply: Reply, type_: type[T]) -> T:
    return msgspec.msgpack.decode(reply.result, type=type_)
