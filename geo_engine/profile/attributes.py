"""Socio-demographics and consents: the declared part of a profile (seed 004: age, sex, CSP,
household), and what the customer agreed or objected to."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    UNSPECIFIED = "unspecified"


# INSEE socio-professional groups (PCS 2020, level 1, with the two groups of people without a
# job that census tables add): the "CSP" of French marketing.
CSP_LABELS: Mapping[str, str] = {
    "1": "Agriculteurs exploitants",
    "2": "Artisans, commerçants et chefs d'entreprise",
    "3": "Cadres et professions intellectuelles supérieures",
    "4": "Professions intermédiaires",
    "5": "Employés",
    "6": "Ouvriers",
    "7": "Retraités",
    "8": "Autres personnes sans activité professionnelle",
}

# French postcodes: 01000-95999 for metropolitan France (20xxx is Corsica), 97xxx/98xxx overseas.
POSTCODE = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-8])\d{3}$")


class ConsentPurpose(StrEnum):
    LOCATION = "location"  # use of the device's location
    SMS = "sms"
    PUSH = "push"
    EMAIL = "email"
    PROFILING = "profiling"  # behavioural profiling; denied/revoked = objection to processing
    # direct marketing as a whole (GDPR art. 21(2)); denied/revoked = objection to it
    DIRECT_MARKETING = "direct_marketing"


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    REVOKED = "revoked"


_REFUSED = (ConsentStatus.DENIED, ConsentStatus.REVOKED)


@dataclass(frozen=True, slots=True)
class Consent:
    status: ConsentStatus
    at: float  # when the customer gave or withdrew it (unix s)
    source: str  # where: "app", "web", "store", "call_center", ...


@dataclass(frozen=True, slots=True)
class Attributes:
    first_name: str | None = None  # for templating offers only
    age_band: str | None = None
    sex: Sex | None = None
    csp: str | None = None  # key of CSP_LABELS
    household_size: int | None = None
    home_postcode: str | None = None
    updated_at: float = 0.0


def objects_to_processing(consents: Mapping[ConsentPurpose, Consent]) -> bool:
    """Profiling denied or revoked: no behavioural event of this customer is recorded."""
    c = consents.get(ConsentPurpose.PROFILING)
    return c is not None and c.status in _REFUSED


def refuses(consents: Mapping[ConsentPurpose, Consent], purpose: ConsentPurpose) -> bool:
    c = consents.get(purpose)
    return c is not None and c.status in _REFUSED


def merge_consents(
    current: Mapping[ConsentPurpose, Consent], given: Mapping[ConsentPurpose, Consent]
) -> dict[ConsentPurpose, Consent]:
    """Per purpose, the latest statement wins (by its `at`); an older one is ignored, so a
    replayed or out-of-order update never undoes a newer choice."""
    out = dict(current)
    for purpose, c in given.items():
        old = out.get(purpose)
        if old is None or c.at >= old.at:
            out[purpose] = c
    return out
