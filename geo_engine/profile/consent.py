"""The location consent rule: whether a customer's location may be processed at all.

The CNIL requires *prior* consent for marketing use of location (its 2018 orders against
store-visit SDKs): with `require` (the legal default) a customer with no statement on record is
refused. A denial or a revocation is always honoured, even with the requirement off.
"""

from __future__ import annotations

from collections.abc import Mapping

from geo_engine.profile.attributes import Consent, ConsentPurpose, ConsentStatus

NO_LOCATION_CONSENT = "no_location_consent"  # no statement on record (and prior consent needed)
LOCATION_REFUSED = "location_consent_refused"  # denied or revoked
REFUSALS = (NO_LOCATION_CONSENT, LOCATION_REFUSED)


def location_refusal(consents: Mapping[ConsentPurpose, Consent], *, require: bool) -> str | None:
    """None when the location may be processed; else why not (one of REFUSALS)."""
    c = consents.get(ConsentPurpose.LOCATION)
    return refusal_of(None if c is None else c.status, require=require)


def refusal_of(status: ConsentStatus | None, *, require: bool) -> str | None:
    """The same from the location statement's status alone (None: no statement on record)."""
    if status is None:
        return NO_LOCATION_CONSENT if require else None
    return None if status is ConsentStatus.GRANTED else LOCATION_REFUSED
