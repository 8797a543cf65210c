"""The location consent gate: a fix, beacon sighting or NFC tap of a customer without `location`
consent is neither processed nor stored; it is counted per reason and reported per row. The rule
is geo_engine/profile/consent.py; the statements are read from the profile service's memory (no
database round trip on the hot path). Unlinked `device:<id>` customers are like any other id:
the app records its own opt-in as `PUT /v1/customers/device:<id>/consents`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from adapters.services.profiles import ProfileService
from geo_engine.profile.attributes import Consent, ConsentPurpose
from geo_engine.profile.consent import location_refusal

_NONE: Mapping[ConsentPurpose, Consent] = MappingProxyType({})


class LocationConsentGate:
    def __init__(self, profiles: ProfileService, *, require: bool) -> None:
        self.profiles = profiles
        self.require = require

    def reason(self, customer_id: str) -> str | None:
        """None when the customer's location may be processed; else why not."""
        consents = self.profiles.state.consents.get(customer_id, _NONE)
        return location_refusal(consents, require=self.require)
