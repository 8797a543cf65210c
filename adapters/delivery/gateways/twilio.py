"""Twilio-compatible SMS (Programmable Messaging; ../shared/PROTOCOLS.md): a form POST to
`/2010-04-01/Accounts/{sid}/Messages.json` with Basic auth.

The number comes from the customer's `phone` identities (the caller's `phone_of`); it is
validated with `phonenumbers` and sent as E.164. Answers: 201 + sid → sent; 21610 (the
recipient sent STOP) → the customer's SMS consent is revoked (`on_opt_out`), dead letter;
21211 / 21614 → the number is marked invalid (`on_invalid_number`), dead letter; 429 / 20429
and 5xx → retry (honouring Retry-After); timeouts and resets → retry (Twilio has no idempotency
key: a timeout is "maybe sent"); any other 4xx → dead letter; a garbage answer → a failed
attempt, retried."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import phonenumbers

from adapters.delivery.gateways.base import Message, Result, pseudonym, retry_after_s

log = logging.getLogger(__name__)

OPTED_OUT = 21610
INVALID_NUMBER = frozenset({21211, 21614})
TOO_MANY_REQUESTS = 20429
MAX_VALIDITY_S = 36_000  # Twilio's ValidityPeriod ceiling


class TwilioGateway:
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        phone_of: Callable[[str], Awaitable[str | None]],
        on_opt_out: Callable[[str], Awaitable[None]],
        on_invalid_number: Callable[[str, str, str], Awaitable[None]],
        base_url: str = "https://api.twilio.com",
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("a Twilio gateway needs a From number or a MessagingServiceSid")
        self.account_sid = account_sid
        self.phone_of = phone_of
        self.on_opt_out = on_opt_out
        self.on_invalid_number = on_invalid_number
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.clock = clock
        self.client = httpx.AsyncClient(
            base_url=base_url,
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=timeout_s,
            transport=transport,
        )

    @property
    def path(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    async def send(self, msg: Message) -> Result:
        sms = msg.payload.get("sms")
        text = sms.get("text") if isinstance(sms, dict) else None
        if not isinstance(text, str) or not text:
            return Result.dead("no_sms_content")
        phone = await self.phone_of(msg.customer_id)
        if phone is None:
            return Result.dead("no_phone")
        to = e164(phone)
        if to is None:
            await self.on_invalid_number(msg.customer_id, phone, "not_e164")
            return Result.dead("invalid_number")
        form: dict[str, str] = {"To": to, "Body": text}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number or ""
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        validity = int(msg.expires_at - self.clock())
        if validity < 1:
            return Result.dead("expired")
        form["ValidityPeriod"] = str(min(validity, MAX_VALIDITY_S))
        try:
            r = await self.client.post(self.path, data=form)
        except httpx.TimeoutException:
            return Result.retry("timeout")  # maybe sent: resent under the same outbox row
        except httpx.HTTPError as exc:
            return Result.retry(f"transport: {type(exc).__name__}")
        return await self._judge(msg, phone, r)

    async def _judge(self, msg: Message, phone: str, r: httpx.Response) -> Result:
        status = r.status_code
        body: Any
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        code = body.get("code")
        wait = retry_after_s(r.headers.get("Retry-After"))
        if 200 <= status < 300:
            sid = body.get("sid")
            if isinstance(sid, str) and sid:
                return Result.sent(sid, status)
            return Result.retry("garbage_response", status)
        if code == OPTED_OUT:
            log.info("%s replied STOP (21610): SMS consent revoked", pseudonym(msg.customer_id))
            await self.on_opt_out(msg.customer_id)
            return Result.dead("opted_out_21610", status)
        if code in INVALID_NUMBER:
            await self.on_invalid_number(msg.customer_id, phone, f"twilio_{code}")
            return Result.dead(f"invalid_number_{code}", status)
        if status == 429 or code == TOO_MANY_REQUESTS:
            return Result.retry("too_many_requests", status, wait)
        if status >= 500:
            return Result.retry(f"http_{status}", status, wait)
        suffix = f"_{code}" if isinstance(code, int) else ""
        return Result.dead(f"http_{status}{suffix}", status)

    async def aclose(self) -> None:
        await self.client.aclose()


def e164(raw: str) -> str | None:
    """The number as E.164 when it is a valid one (with its country code), else None."""
    try:
        n = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
