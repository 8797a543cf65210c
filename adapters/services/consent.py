"""The location consent gate: a fix, beacon sighting or NFC tap of a customer without `location`
consent is neither processed nor stored; it is counted per reason and reported per row.

The CNIL requires *prior* consent for marketing use of location (its 2018 orders against
store-visit SDKs), so with `require_location_consent` (the default) a customer with no consent
record is refused. Unlinked `device:<id>` customers are treated like any other id: the app
records its own opt-in as `PUT /v1/customers/device:<id>/consents`; until it does, their fixes
are dropped. A denial or a revocation is always honoured, even with the requirement off.
The read is from the profile service's memory (no database round trip on the hot path).
"""

from __future__ import annotations

from adapters.privacy.metrics import LOCATION_REFUSED, NO_LOCATION_CONSENT
from adapters.services.profiles import ProfileService
from geo_engine.profile.attributes import ConsentPurpose, ConsentStatus


class LocationConsentGate:
    def __init__(self, profiles: ProfileService, *, require: bool) -> None:
        self.profiles = profiles
        self.require = require

    def reason(self, customer_id: str) -> str | None:
        """None when the customer's location may be processed; else why not."""
        c = self.profiles.state.consents.get(customer_id, {}).get(ConsentPurpose.LOCATION)
        if c is None:
            return NO_LOCATION_CONSENT if self.require else None
        if c.status is ConsentStatus.GRANTED:
            return None
        return LOCATION_REFUSED
