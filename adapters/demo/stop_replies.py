"""A few customers answer an offer SMS with STOP (or the French ARRÊT) through the real inbound
callback, signed as Twilio signs it: their SMS consent is revoked at once, so the rest of their
day's SMS decisions stop at `no_consent`. The phone number is linked first (the app knows it),
since the callback finds the customer by the sender's number."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import numpy as np

from adapters.delivery.twilio_signature import compute_signature
from adapters.demo.loop import Delivered

INBOUND_URL = "https://demo.invalid/v1/callbacks/twilio/inbound"  # the URL "Twilio" signs
P_STOP = 0.03  # an offer SMS answered with a STOP keyword
WORDS = ("STOP", "Stop", "ARRÊT", "stop sms")


def phone_of(customer: str) -> str:
    """A valid French mobile number per demo customer ("c123" -> +33610000123)."""
    return f"+336{10_000_000 + int(customer[1:]):08d}"


@dataclass
class StopReplies:
    auth_token: str
    seed: int
    seen: int = 0  # messages of the inbox already considered
    replied: dict[str, float] = field(default_factory=dict)  # customer -> when (sim time)
    refused: int = 0  # callbacks not answered 200

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, 0x53544F50])

    async def reply(
        self, client: httpx.AsyncClient, phones: dict[str, str], inbox: list[Delivered], now: float
    ) -> None:
        """Consider the SMS delivered since the last call; some get a STOP back."""
        new, self.seen = inbox[self.seen :], len(inbox)
        for m in new:
            if m.channel != "sms" or m.customer in self.replied or self.rng.random() >= P_STOP:
                continue
            phone = phone_of(m.customer)
            link = {"customer_id": m.customer, "identifiers": [{"type": "phone", "value": phone}]}
            (await client.post("/v1/identities/link", json=link, headers=phones)).raise_for_status()
            form = {
                "MessageSid": f"SMdemo{m.id:08d}",
                "AccountSid": "ACdemo",
                "From": phone,
                "To": "+33700000000",
                "Body": WORDS[int(self.rng.integers(len(WORDS)))],
            }
            sig = compute_signature(self.auth_token, INBOUND_URL, form.items())
            r = await client.post(
                "/v1/callbacks/twilio/inbound", data=form, headers={"X-Twilio-Signature": sig}
            )
            if r.status_code == 200:
                self.replied[m.customer] = now
            else:
                self.refused += 1


async def honoured(client: httpx.AsyncClient, admin: dict[str, str], stops: StopReplies) -> int:
    """How many STOP senders the engine now holds as SMS-revoked (GET .../profile)."""
    n = 0
    for cid in stops.replied:
        r = await client.get(f"/v1/customers/{cid}/profile", headers=admin)
        sms = r.raise_for_status().json()["consents"].get("sms") or {}
        n += sms.get("status") == "revoked"
    return n


def sms_after_stop(stops: StopReplies, inbox: list[Delivered]) -> int:
    """Offer SMS that left after their customer's STOP: must be 0."""
    return sum(
        1 for m in inbox if m.channel == "sms" and m.ts > stops.replied.get(m.customer, m.ts)
    )
