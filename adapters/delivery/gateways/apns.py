"""App push through Apple's APNs provider API (HTTP/2; ../shared/PROTOCOLS.md):
`POST /3/device/{token}` with a provider JWT (ES256, header `kid` = key id, claims `iss` = team
id and `iat`). Apple refuses tokens older than an hour and throttles ones renewed more often than
every 20 minutes: ours is reused for `JWT_MAX_AGE_S` (50 min), and renewed at once on
403 ExpiredProviderToken (the call is then made once more).

`apns-id` and `apns-collapse-id` are a UUID derived (uuid5) from the outbox row's idempotency key:
a resend after a crash carries the same ids, and the device shows the second copy in place of the
first instead of next to it.

The customer's tokens are tried newest first: 410 Unregistered / ExpiredToken and 400
BadDeviceToken → that token is removed, the next one tried; no token left → dead letter.
429 TooManyRequests and 5xx → retry (honouring Retry-After); 413 PayloadTooLarge and other
400s → dead letter; garbage, resets and timeouts → retry."""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt

from adapters.delivery.gateways.base import Message, Result, retry_after_s

MAX_PAYLOAD_BYTES = 4096
JWT_MAX_AGE_S = 50 * 60.0
DROP_TOKEN = frozenset({"Unregistered", "ExpiredToken", "BadDeviceToken"})
# a fixed namespace: the same idempotency key gives the same apns-id in every process
APNS_ID_NAMESPACE = uuid.UUID("6f1c3c2e-2b0a-5d8e-9a51-0c9d1f4e7a10")


def apns_id(idempotency_key: str) -> str:
    return str(uuid.uuid5(APNS_ID_NAMESPACE, idempotency_key))


class ProviderToken:
    """The ES256 provider JWT, cached for at most `JWT_MAX_AGE_S`."""

    def __init__(
        self, key_pem: str, key_id: str, team_id: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.key_pem = key_pem
        self.key_id = key_id
        self.team_id = team_id
        self.clock = clock
        self._token: str | None = None
        self._issued = 0.0
        self.issued = 0  # how many were signed (tests, metrics)

    def __call__(self) -> str:
        now = self.clock()
        if self._token is None or now - self._issued >= JWT_MAX_AGE_S:
            self._token = jwt.encode(
                {"iss": self.team_id, "iat": int(now)},
                self.key_pem,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
            self._issued = now
            self.issued += 1
        return self._token

    def invalidate(self) -> None:
        self._token = None


class ApnsGateway:
    name = "apns"

    def __init__(
        self,
        *,
        provider_token: ProviderToken,
        topic: str,
        tokens_of: Callable[[str], Awaitable[list[str]]],
        remove_token: Callable[[str, str], Awaitable[None]],
        base_url: str = "https://api.push.apple.com",
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider_token = provider_token
        self.topic = topic
        self.tokens_of = tokens_of
        self.remove_token = remove_token
        self.clock = clock
        # APNs speaks HTTP/2 only (the h2 package), negotiated by ALPN in the TLS handshake.
        # `verify`: the trust store (True: certifi, or SSL_CERT_FILE / SSL_CERT_DIR when set);
        # a context lets the tests verify a loopback fake through this very client
        self.client = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, transport=transport, http2=True, verify=verify
        )

    def body(self, msg: Message, push: dict[str, Any]) -> dict[str, Any]:
        alert = {"title": str(push.get("title", "")), "body": str(push["body"])}
        out: dict[str, Any] = {
            "aps": {"alert": alert, "sound": "default"},
            # what the app reports opens and clicks with (POST /v1/interactions)
            "message_id": str(msg.id),
            "campaign_id": msg.campaign_id,
        }
        if isinstance(push.get("deep_link"), str):
            out["deep_link"] = push["deep_link"]
        return out

    def headers(self, msg: Message) -> dict[str, str]:
        ident = apns_id(msg.idempotency_key)
        return {
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-id": ident,
            "apns-collapse-id": ident,
            "apns-expiration": str(int(msg.expires_at)),
            "apns-priority": "10",  # at once: the customer is in or near the store now
            "content-type": "application/json",
        }

    async def send(self, msg: Message) -> Result:
        push = msg.payload.get("push")
        if not isinstance(push, dict) or not isinstance(push.get("body"), str):
            return Result.dead("no_push_content")
        if msg.expires_at <= self.clock():
            return Result.dead("expired")
        raw = json.dumps(self.body(msg, push), ensure_ascii=False).encode()
        if len(raw) > MAX_PAYLOAD_BYTES:
            return Result.dead("payload_too_large")
        headers = self.headers(msg)
        for token in await self.tokens_of(msg.customer_id):
            try:
                r = await self._post(token, raw, headers)
                if r.status_code == 403 and reason_of(r) == "ExpiredProviderToken":
                    self.provider_token.invalidate()
                    r = await self._post(token, raw, headers)
            except httpx.TimeoutException:
                return Result.retry("timeout")
            except httpx.HTTPError as exc:
                return Result.retry(f"transport: {type(exc).__name__}")
            res = self._judge(r)
            if res is None:  # this token is gone: drop it, try the next
                await self.remove_token(msg.customer_id, token)
                continue
            return res
        return Result.dead("no_push_token")

    async def _post(self, token: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
        auth = {"authorization": f"bearer {self.provider_token()}"}
        return await self.client.post(f"/3/device/{token}", content=raw, headers=headers | auth)

    def _judge(self, r: httpx.Response) -> Result | None:
        status = r.status_code
        wait = retry_after_s(r.headers.get("Retry-After"))
        if status == 200:
            return Result.sent(r.headers.get("apns-id"), status)
        reason = reason_of(r)
        if reason is None and status < 500 and status != 429:
            return Result.retry("garbage_response", status)
        if status == 410 or reason in DROP_TOKEN:
            return None
        if status == 429 or status >= 500 or reason == "ExpiredProviderToken":
            return Result.retry(f"http_{status}_{reason or 'error'}", status, wait)
        return Result.dead(f"http_{status}_{reason}", status)

    async def aclose(self) -> None:
        await self.client.aclose()


def reason_of(r: httpx.Response) -> str | None:
    try:
        body: Any = r.json()
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) and reason else None
