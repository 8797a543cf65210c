"""An SMS a customer sent us: its keyword (STOP, ARRÊT, START...) changes the SMS consent at
once, in the database and in the profile service's memory (DeliveryDirectory), for the customer
whose `phone` identity is the sender's number.

Keywords (../shared/PROTOCOLS.md: Twilio's defaults, and the French market's, where a marketing
SMS offers a free STOP and an opt-out holds until START): matched case- and accent-insensitively,
whitespace and punctuation trimmed, on the whole message; an opt-out also on the first word
("Stop please"), as carriers do, while an opt-in needs the whole message to be the keyword: a
consent must be unambiguous, and "yes, but stop" is not one.

Nothing of the text is kept, nor the raw number: `inbound_messages` holds the keyword matched,
the action taken and the customer id (or, for an unknown number, a pseudonymous hash)."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import asyncpg

from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.base import pseudonym
from adapters.delivery.gateways.twilio import e164

log = logging.getLogger(__name__)

Action = Literal["opt_out", "opt_in", "help", "none"]

# after normalisation (upper case, no accents, single spaces): ARRÊT -> ARRET
OPT_OUT = frozenset(
    {
        "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT",
        "REVOKE",
        # French: STOP as French short codes print it, and its usual spellings
        "STOP SMS", "ARRET", "ARRETER", "DESABONNER", "DESABONNEMENT", "DESINSCRIPTION",
        "DESINSCRIRE", "ANNULER",
    }
)  # fmt: skip
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO", "AIDE"})
SOURCE = {"opt_out": "sms_inbound_stop", "opt_in": "sms_inbound_start"}
_PUNCT = re.compile(r"[^\w\s]+")


def normalise(body: str) -> str:
    """Upper case, accents removed, punctuation dropped, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", body)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_PUNCT.sub(" ", plain).upper().split())


def classify(body: str) -> tuple[Action, str | None]:
    """(what the message asks, the keyword matched)."""
    text = normalise(body)
    if text in OPT_OUT:
        return "opt_out", text
    if text in OPT_IN:
        return "opt_in", text
    if text in HELP:
        return "help", text
    first = text.split(" ", 1)[0]
    if first in OPT_OUT:
        return "opt_out", first
    return "none", None


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
    def __init__(self, pool: asyncpg.Pool, directory: DeliveryDirectory) -> None:
        self.pool = pool
        self.directory = directory

    async def customer_of(self, sender: str) -> str | None:
        """The customer whose phone identity is this number (compared in E.164, the form the
        identities API stores); a number reported invalid still names its owner."""
        number = e164(sender)
        if number is None:
            return None
        found: str | None = await self.pool.fetchval(
            "SELECT customer_id FROM identities WHERE type = 'phone' AND value = $1", number
        )
        return found

    async def handle(self, message_sid: str, sender: str, body: str) -> InboundResult:
        action, keyword = classify(body)
        seen = await self.pool.fetchval(
            "SELECT 1 FROM inbound_messages WHERE message_sid = $1", message_sid
        )
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
        await self.pool.execute(
            "INSERT INTO inbound_messages (message_sid, customer_id, phone_hash, keyword, action)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_sid) DO NOTHING",
            message_sid,
            customer,
            None if customer is not None else phone_hash(number),
            keyword,
            action,
        )
        who = pseudonym(customer) if customer is not None else "unknown " + phone_hash(number)
        log.info("inbound SMS from %s: %s (%s)", who, action, keyword or "no keyword")
        return InboundResult(action, keyword, customer, applied)
