"""Request and response models more than one router uses: routers import them from here, never
from each other, so a router can change without reaching into another's module."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geo_engine.models import PresenceEvent, PresenceEventType
from geo_engine.profile.attributes import ConsentStatus

# --- common building blocks -------------------------------------------------------------------


# a request body that refuses unknown fields (a typo is a 422, not silently dropped)
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# an offer's or a campaign's id: also written in URLs and campaign definitions
DefinitionId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
CustomerId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\s/]+$")]


# --- presence: what pings, beacon sightings, NFC taps and the presence reads return ------------


class PresenceEventOut(BaseModel):
    id: int
    type: PresenceEventType
    customer_id: str
    geofence_id: str
    ts: datetime
    source: str
    reason: str | None = None


def event_out(event_id: int, e: PresenceEvent) -> PresenceEventOut:
    return PresenceEventOut(
        id=event_id,
        type=e.type,
        customer_id=e.customer_id,
        geofence_id=e.geofence_id,
        ts=datetime.fromtimestamp(e.ts, UTC),
        source=e.source,
        reason=e.reason,
    )


class RowRejected(BaseModel):
    index: int
    field: str
    reason: str


class RowIgnored(BaseModel):
    index: int
    # the last two: no location consent, so the row was neither processed nor stored
    reason: Literal[
        "duplicate",
        "late",
        "impossible_speed",
        "mock",
        "low_accuracy",
        "no_location_consent",
        "location_consent_refused",
    ]


# the reply to a batch of fixes: `POST /v1/pings`, and Traccar Client / OsmAnd
class PingBatchResult(BaseModel):
    accepted: int = Field(
        description="Rows stored and applied (not those dropped for lack of location consent)"
    )
    rejected: list[RowRejected] = Field(description="Bad rows: index, field, reason")
    ignored: list[RowIgnored] = Field(
        description="Rows that caused no transition, and why (duplicate, late, ...); rows"
        " without location consent are listed here too (no_location_consent,"
        " location_consent_refused), neither processed nor stored"
    )
    events: list[PresenceEventOut]


class Accepted(BaseModel):
    """202: durable in the log, not applied yet (the partition owners apply it in order)."""

    accepted: int = Field(description="Rows durable in the log, to be applied by their owner")
    rejected: list[RowRejected] = Field(description="Bad rows: index, field, reason")
    duplicate: bool = Field(
        False,
        description="The log already held this request (same Idempotency-Key): nothing added",
    )


# a command applied by its partition owner: 202 when it was durable but not applied within the
# wait, or when the log already held it (a resend with the same Idempotency-Key)
PENDING: dict[int | str, dict[str, Any]] = {
    202: {"model": Accepted, "description": "Durable in the log; not applied within the wait"}
}


# --- identities -------------------------------------------------------------------------------

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class IdentifierType(StrEnum):
    DEVICE = "device"
    APP_INSTALL = "app_install"
    COOKIE = "cookie"
    PHONE = "phone"
    EMAIL_HASH = "email_hash"


# normalised: a phone in E.164, an e-mail hash in lower case (linking, and events naming
# their customer by identifier)
class Identifier(BaseModel):
    type: IdentifierType
    value: str = Field(min_length=1, max_length=128)

    @model_validator(mode="after")
    def _normalise(self) -> Identifier:
        if self.type is IdentifierType.PHONE:
            try:
                number = phonenumbers.parse(self.value, "FR")
            except phonenumbers.NumberParseException as exc:
                raise ValueError(f"not a phone number: {exc}") from None
            if not phonenumbers.is_valid_number(number):
                raise ValueError("not a valid phone number")
            self.value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        elif self.type is IdentifierType.EMAIL_HASH:
            # a hash, never the address: the engine does not need to hold e-mails in clear
            value = self.value.lower()
            if not _SHA256.match(value):
                raise ValueError("email_hash must be the SHA-256 hex digest of the address")
            self.value = value
        return self


# --- consents ---------------------------------------------------------------------------------

CONSENT_FUTURE_SKEW_S = 300.0


# a consent statement: in a customer's record and on its own (`PUT .../consents`); no
# docstring, which OpenAPI would publish as the schema's description
class ConsentIn(BaseModel):
    status: ConsentStatus
    at: datetime = Field(description="When the customer said it (ISO 8601 with an offset)")
    source: str = Field(min_length=1, max_length=64, description="app, web, store, ...")

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("needs a UTC offset (e.g. Z or +01:00)")
        if v.timestamp() > time.time() + CONSENT_FUTURE_SKEW_S:
            raise ValueError("is in the future")
        return v
