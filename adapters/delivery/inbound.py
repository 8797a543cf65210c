"""An SMS a customer sent us: its keyword (STOP, ARRÊT, START...: geo_engine/delivery/keywords.py)
changes the SMS consent at once, in the database and in the profile service's memory
(DeliveryDirectory), for the customer whose `phone` identity is the sender's number.

Nothing of the text is kept, nor the raw number: `inbound_messages` holds the keyword matched,
the action taken and the customer id (or, for an unknown number, a pseudonymous hash)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from adapters.db import delivery_contacts, inbound_messages
from adapters.db.types import Pool
from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.base import pseudonym
from adapters.delivery.gateways.twilio import e164
from geo_engine.delivery.keywords import SOURCE, Action, classify

log = logging.getLogger(__name__)


def phone_hash(number: str) -> str:
    """Pseudonymous, not anonymous: enough to group an unknown sender's messages, not to read
    the number back from the table or a log."""
    return "p_" + hashlib.sha256(("geo-engine:phone:" + number).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class InboundResult:
    action: Action
    keyword: str | None
    customer_id: str | None  # None: the number is nobody's
    applied: bool  # consent changed (False for a replayed MessageSid too)


class InboundSms:
    def __init__(self, pool: Pool, directory: DeliveryDirectory) -> None:
        self.pool = pool
        self.directory = directory

    async def customer_of(self, sender: str) -> str | None:
        """The customer whose phone identity is this number (compared in E.164, the form the
        identities API stores); a number reported invalid still names its owner."""
        number = e164(sender)
        if number is None:
            return None
        return await delivery_contacts.customer_of_phone(self.pool, number)

    async def handle(self, message_sid: str, sender: str, body: str) -> InboundResult:
        action, keyword = classify(body)
        seen = await inbound_messages.is_seen(self.pool, message_sid)
        customer = await self.customer_of(sender)
        if seen:  # Twilio's retry, or a replay of a signed request: never applied twice
            return InboundResult(action, keyword, customer, applied=False)
        applied = False
        if customer is not None and action == "opt_out":
            await self.directory.revoke_sms(customer, SOURCE[action])
            applied = True
        elif customer is not None and action == "opt_in":
            await self.directory.grant_sms(customer, SOURCE[action])
            applied = True
        number = e164(sender) or sender
        await inbound_messages.record_inbound(
            self.pool,
            message_sid,
            customer,
            None if customer is not None else phone_hash(number),
            keyword,
            action,
        )
        who = pseudonym(customer) if customer is not None else "unknown " + phone_hash(number)
        log.info("inbound SMS from %s: %s (%s)", who, action, keyword or "no keyword")
        return InboundResult(action, keyword, customer, applied)
