"""The location consent gate: a fix, beacon sighting or NFC tap of a customer without `location`
consent is neither processed nor stored; it is counted per reason and reported per row. The rule
is geo_engine/profile/consent.py; the statements are read from the profile service's memory (no
database round trip on the hot path). Unlinked `device:<id>` customers are like any other id:
the app records its own opt-in as `PUT /v1/customers/device:<id>/consents`.
"""

from __future__ import annotations

from adapters.services.profiles import ProfileService
from geo_engine.profile.attributes import ConsentPurpose
from geo_engine.profile.consent import refusal_of


class LocationConsentGate:
    def __init__(self, profiles: ProfileService, *, require: bool) -> None:
        self.profiles = profiles
        self.require = require

    def reason(self, customer_id: str) -> str | None:
        """None when the customer's location may be processed; else why not."""
        status = self.profiles.state.consents.status(customer_id, ConsentPurpose.LOCATION)
        return refusal_of(status, require=self.require)
