"""What the gateways need from the rest of the engine: the customer's phone number, the SMS
opt-out (21610: consent revoked at once, in the database and the profile service's memory),
and numbers the provider rejected."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from adapters.db import delivery_contacts as contacts
from adapters.db import webhook_endpoints
from adapters.db.consents import record_consents
from adapters.db.types import Pool
from adapters.delivery.gateways.base import pseudonym
from geo_engine.profile.attributes import Consent, ConsentPurpose, ConsentStatus

log = logging.getLogger(__name__)


class ConsentRecorder(Protocol):
    """Where a consent statement goes so that decisions see it: the customer's partition owner
    (through the log, adapters/cluster/submit.py), or a process's own profiles in tests."""

    async def put_consents(
        self, customer_id: str, consents: dict[ConsentPurpose, Consent]
    ) -> object: ...


class DeliveryDirectory:
    def __init__(self, pool: Pool, profiles: ConsentRecorder | None) -> None:
        self.pool = pool
        self.profiles = profiles

    async def phone_of(self, customer_id: str) -> str | None:
        """The customer's most recently linked phone not reported invalid."""
        return await contacts.phone_of(self.pool, customer_id)

    async def revoke_sms(self, customer_id: str, source: str = "sms_gateway_stop") -> None:
        await self._set_sms(customer_id, ConsentStatus.REVOKED, source)
        log.info("SMS consent of %s revoked (%s)", pseudonym(customer_id), source)

    async def grant_sms(self, customer_id: str, source: str = "sms_inbound_start") -> None:
        """The customer texted START (or YES, UNSTOP): an explicit opt-in, from their number."""
        await self._set_sms(customer_id, ConsentStatus.GRANTED, source)
        log.info("SMS consent of %s granted (%s)", pseudonym(customer_id), source)

    async def _set_sms(self, customer_id: str, status: ConsentStatus, source: str) -> None:
        """At once in the database (consent_log too) and in the memory of the customer's owner,
        which the decisions read (through the log when there is one)."""
        new = {ConsentPurpose.SMS: Consent(status, time.time(), source)}
        prof = self.profiles
        if prof is None:
            await record_consents(self.pool, customer_id, new)
            return
        await prof.put_consents(customer_id, new)

    async def mark_phone_invalid(self, customer_id: str, phone: str, reason: str) -> None:
        await contacts.mark_phone_invalid(self.pool, customer_id, phone, reason)
        log.info("a phone of %s marked invalid (%s)", pseudonym(customer_id), reason)

    async def push_tokens_of(self, customer_id: str, provider: str = "fcm") -> list[str]:
        """The customer's registration tokens of that provider (fcm, apns), newest first."""
        return await contacts.push_tokens_of(self.pool, customer_id, provider)

    async def apns_tokens_of(self, customer_id: str) -> list[str]:
        return await self.push_tokens_of(customer_id, "apns")

    async def push_providers_of(self, customer_id: str) -> list[str]:
        """The providers the customer has tokens with, the one of the newest token first."""
        return await contacts.push_providers_of(self.pool, customer_id)

    async def webhook_disabled(self, url: str) -> bool:
        return await webhook_endpoints.is_disabled(self.pool, url)

    async def disable_webhook(self, url: str, reason: str) -> None:
        await webhook_endpoints.disable(self.pool, url, reason)
        log.warning("webhook endpoint disabled (%s): further messages are dead letters", reason)

    async def remove_push_token(self, customer_id: str, token: str) -> None:
        await contacts.remove_push_token(self.pool, customer_id, token)
        log.info("a push token of %s removed (unregistered)", pseudonym(customer_id))
