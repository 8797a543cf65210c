"""What the gateways need from the rest of the engine: the customer's phone number, the SMS
opt-out (21610: consent revoked at once, in the database and the profile service's memory),
and numbers the provider rejected."""

from __future__ import annotations

import logging
import time

import asyncpg

from adapters.db import profiles as profiles_db
from adapters.delivery.gateways.base import pseudonym
from adapters.services.profiles import ProfileService
from geo_engine.profile.attributes import Consent, ConsentPurpose, ConsentStatus, merge_consents

log = logging.getLogger(__name__)


class DeliveryDirectory:
    def __init__(self, pool: asyncpg.Pool, profiles: ProfileService | None) -> None:
        self.pool = pool
        self.profiles = profiles

    async def phone_of(self, customer_id: str) -> str | None:
        """The customer's most recently linked phone not reported invalid."""
        value: str | None = await self.pool.fetchval(
            "SELECT value FROM identities WHERE customer_id = $1 AND type = 'phone'"
            " AND invalid_at IS NULL ORDER BY created_at DESC, value LIMIT 1",
            customer_id,
        )
        return value

    async def revoke_sms(self, customer_id: str, source: str = "sms_gateway_stop") -> None:
        await self._set_sms(customer_id, ConsentStatus.REVOKED, source)
        log.info("SMS consent of %s revoked (%s)", pseudonym(customer_id), source)

    async def grant_sms(self, customer_id: str, source: str = "sms_inbound_start") -> None:
        """The customer texted START (or YES, UNSTOP): an explicit opt-in, from their number."""
        await self._set_sms(customer_id, ConsentStatus.GRANTED, source)
        log.info("SMS consent of %s granted (%s)", pseudonym(customer_id), source)

    async def _set_sms(self, customer_id: str, status: ConsentStatus, source: str) -> None:
        """At once in the database (consent_log too) and the profile service's memory, which
        the decisions read."""
        new = {ConsentPurpose.SMS: Consent(status, time.time(), source)}
        prof = self.profiles
        if prof is None:
            async with self.pool.acquire() as conn, conn.transaction():
                await profiles_db.put_consents(conn, customer_id, new)
            return
        async with prof.lock, prof.pool.acquire() as conn:
            async with conn.transaction():
                await profiles_db.put_consents(conn, customer_id, new)
            merged = merge_consents(prof.state.consents.get(customer_id, {}), new)
            prof.state.set_consents(customer_id, merged)

    async def mark_phone_invalid(self, customer_id: str, phone: str, reason: str) -> None:
        await self.pool.execute(
            "UPDATE identities SET invalid_at = now(), invalid_reason = $3"
            " WHERE type = 'phone' AND value = $2 AND customer_id = $1",
            customer_id,
            phone,
            reason,
        )
        log.info("a phone of %s marked invalid (%s)", pseudonym(customer_id), reason)

    async def push_tokens_of(self, customer_id: str, provider: str = "fcm") -> list[str]:
        """The customer's registration tokens of that provider (fcm, apns), newest first."""
        rows = await self.pool.fetch(
            "SELECT token FROM push_tokens WHERE customer_id = $1 AND provider = $2"
            " ORDER BY created_at DESC, token",
            customer_id,
            provider,
        )
        return [r["token"] for r in rows]

    async def apns_tokens_of(self, customer_id: str) -> list[str]:
        return await self.push_tokens_of(customer_id, "apns")

    async def push_providers_of(self, customer_id: str) -> list[str]:
        """The providers the customer has tokens with, the one of the newest token first."""
        rows = await self.pool.fetch(
            "SELECT provider, max(created_at) AS newest FROM push_tokens WHERE customer_id = $1"
            " GROUP BY provider ORDER BY newest DESC, provider",
            customer_id,
        )
        return [r["provider"] for r in rows]

    async def webhook_disabled(self, url: str) -> bool:
        disabled: bool | None = await self.pool.fetchval(
            "SELECT disabled_at IS NOT NULL FROM webhook_endpoints WHERE url = $1", url
        )
        return bool(disabled)

    async def disable_webhook(self, url: str, reason: str) -> None:
        await self.pool.execute(
            "INSERT INTO webhook_endpoints (url, disabled_at, disabled_reason) VALUES"
            " ($1, now(), $2) ON CONFLICT (url) DO UPDATE SET disabled_at = now(),"
            " disabled_reason = $2, updated_at = now()",
            url,
            reason,
        )
        log.warning("webhook endpoint disabled (%s): further messages are dead letters", reason)

    async def remove_push_token(self, customer_id: str, token: str) -> None:
        await self.pool.execute(
            "DELETE FROM push_tokens WHERE token = $1 AND customer_id = $2", token, customer_id
        )
        log.info("a push token of %s removed (unregistered)", pseudonym(customer_id))
