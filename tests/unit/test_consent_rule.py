"""The location consent rule (geo_engine/profile/consent.py), on its own."""

from __future__ import annotations

import pytest

from geo_engine.profile.attributes import Consent, ConsentPurpose, ConsentStatus
from geo_engine.profile.consent import LOCATION_REFUSED, NO_LOCATION_CONSENT, location_refusal

T = 1_790_000_000.0


def _loc(status: ConsentStatus) -> dict[ConsentPurpose, Consent]:
    return {ConsentPurpose.LOCATION: Consent(status, T, "app")}


@pytest.mark.parametrize("require", [True, False])
def test_a_grant_allows_and_a_denial_or_revocation_refuses_either_way(require: bool) -> None:
    assert location_refusal(_loc(ConsentStatus.GRANTED), require=require) is None
    for refused in (ConsentStatus.DENIED, ConsentStatus.REVOKED):
        assert location_refusal(_loc(refused), require=require) == LOCATION_REFUSED


def test_no_statement_is_refused_only_when_prior_consent_is_required() -> None:
    sms_only = {ConsentPurpose.SMS: Consent(ConsentStatus.GRANTED, T, "app")}
    assert location_refusal(sms_only, require=True) == NO_LOCATION_CONSENT
    assert location_refusal({}, require=False) is None
