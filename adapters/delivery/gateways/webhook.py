"""A partner's system delivers the offer: a Standard Webhooks POST (https://www.standardwebhooks.com;
../shared/PROTOCOLS.md), usable as the push or the SMS gateway.

Headers: `webhook-id` = the outbox row's idempotency key (stable across retries and crashes:
the receiver de-duplicates on it), `webhook-timestamp` = unix seconds of this attempt,
`webhook-signature: v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` keyed with the base64
part of the `whsec_` secret. Body: `{"type": "offer", "message_id", "customer_id", "campaign_id",
"channel", "payload", "expires_at"}`. The customer id is sent as is (not the log pseudonym):
the receiver is the partner's own system, which must know whom to deliver to.

Answers: 2xx → sent; 410 → the endpoint is disabled (table webhook_endpoints) and every later
message is a dead letter `endpoint_disabled` without a call; 429 and 5xx → retry (honouring
Retry-After); timeouts and resets → retry; any other 4xx → dead letter.

The endpoint's state is read from PostgreSQL at most every `state_ttl_s` (5 s), not once per
message: a 410 seen here applies at once, one seen by another relay process within the TTL
(its extra calls get 410 too), and the enable route forgets the cached state of its own
process's gateways (`forget_state`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from adapters.delivery.gateways.base import Message, Result, retry_after_s

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64 after `whsec_` (a secret without the prefix is used as is)."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            raise ValueError("webhook secret: not base64 after whsec_") from None
    return secret.encode()


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(key: bytes, headers: dict[str, str], body: bytes, tolerance_s: float = 300.0) -> bool:
    """The receiver's check (used by our tests' receiver; a partner uses its own library)."""
    try:
        msg_id, ts = headers["webhook-id"], int(headers["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    expected = sign(key, msg_id, ts, body)
    return any(
        hmac.compare_digest(expected, s) for s in headers.get("webhook-signature", "").split()
    )


class WebhookGateway:
    name = "webhook"

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        is_disabled: Callable[[str], Awaitable[bool]],
        disable: Callable[[str, str], Awaitable[None]],
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        state_ttl_s: float = 5.0,
    ) -> None:
        if not url:
            raise ValueError("the webhook gateway needs GEO_ENGINE_WEBHOOK_URL")
        self.url = url
        self.key = secret_key(secret)
        self.is_disabled = is_disabled
        self.disable = disable
        self.clock = clock
        self.state_ttl_s = state_ttl_s
        self._state: tuple[float, bool] | None = None  # (read at, monotonic; disabled)
        self.client = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def _disabled(self) -> bool:
        now = time.monotonic()
        if self._state is not None and now - self._state[0] < self.state_ttl_s:
            return self._state[1]
        disabled = await self.is_disabled(self.url)
        self._state = (now, disabled)
        return disabled

    def forget_state(self) -> None:
        """Read the endpoint's state again before the next message (it was re-enabled)."""
        self._state = None

    def body(self, msg: Message) -> dict[str, Any]:
        return {
            "type": "offer",
            "message_id": msg.id,  # what the app reports opens and clicks with
            "customer_id": msg.customer_id,
            "campaign_id": msg.campaign_id,
            "channel": msg.channel,
            "payload": msg.payload,
            "expires_at": datetime.fromtimestamp(msg.expires_at, UTC).isoformat(),
        }

    async def send(self, msg: Message) -> Result:
        if msg.expires_at <= self.clock():
            return Result.dead("expired")
        if await self._disabled():
            return Result.dead("endpoint_disabled")
        raw = json.dumps(self.body(msg), ensure_ascii=False, separators=(",", ":")).encode()
        ts = int(self.clock())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg.idempotency_key,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.key, msg.idempotency_key, ts, raw),
        }
        try:
            r = await self.client.post(self.url, content=raw, headers=headers)
        except httpx.TimeoutException:
            return Result.retry("timeout")  # maybe delivered: the receiver dedupes on the id
        except httpx.HTTPError as exc:
            return Result.retry(f"transport: {type(exc).__name__}")
        status = r.status_code
        if 200 <= status < 300:
            return Result.sent(None, status)  # the receiver's id is ours: webhook-id
        if status == 410:
            self._state = (time.monotonic(), True)  # this relay's next messages: no call
            await self.disable(self.url, "http_410")
            return Result.dead("endpoint_disabled", status)
        if status == 429 or status >= 500:
            wait = retry_after_s(r.headers.get("Retry-After"))
            return Result.retry(f"http_{status}", status, wait)
        return Result.dead(f"http_{status}", status)

    async def aclose(self) -> None:
        await self.client.aclose()
