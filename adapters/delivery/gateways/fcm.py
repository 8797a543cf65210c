"""App push through Firebase Cloud Messaging HTTP v1 (../shared/PROTOCOLS.md):
`POST /v1/projects/{project_id}/messages:send` with a bearer token (`token_source`: injectable;
a static token from the settings, or the service-account exchange of fcm_auth.py). A 401 drops
the cached token (`invalidate_token`) and the call is made once more with a fresh one.

The customer's registration tokens are tried newest first: UNREGISTERED (404) or
SENDER_ID_MISMATCH (403) → that token is removed and the next one tried; no token left → dead
letter. 400 INVALID_ARGUMENT / a payload over 4096 bytes → dead letter, never retried;
429 QUOTA_EXCEEDED → retry after at least a minute; 500 / 503 → retry honouring Retry-After;
garbage, resets and timeouts → a failed attempt, retried."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from adapters.delivery.gateways.base import Message, Result, retry_after_s
from adapters.delivery.gateways.fcm_auth import TokenError

MAX_PAYLOAD_BYTES = 4096
QUOTA_MIN_WAIT_S = 60.0
DROP_TOKEN = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})


class FcmGateway:
    name = "fcm"

    def __init__(
        self,
        *,
        project_id: str,
        token_source: Callable[[], Awaitable[str]],
        tokens_of: Callable[[str], Awaitable[list[str]]],
        remove_token: Callable[[str, str], Awaitable[None]],
        invalidate_token: Callable[[], None] | None = None,
        close_token_source: Callable[[], Awaitable[None]] | None = None,
        base_url: str = "https://fcm.googleapis.com",
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project_id = project_id
        self.token_source = token_source
        self.tokens_of = tokens_of
        self.remove_token = remove_token
        self.invalidate_token = invalidate_token
        self.close_token_source = close_token_source
        self.clock = clock
        self.client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    @property
    def path(self) -> str:
        return f"/v1/projects/{self.project_id}/messages:send"

    def body(self, msg: Message, token: str) -> dict[str, Any] | None:
        push = msg.payload.get("push")
        if not isinstance(push, dict):
            return None
        # message_id: what the app reports opens and clicks with (POST /v1/interactions)
        data = {"message_id": str(msg.id), "outbox_id": str(msg.id), "campaign_id": msg.campaign_id}
        if isinstance(push.get("deep_link"), str):
            data["deep_link"] = push["deep_link"]
        ttl = max(1, int(msg.expires_at - self.clock()))
        return {
            "message": {
                "token": token,
                "notification": {"title": str(push.get("title", "")), "body": str(push["body"])},
                "data": data,
                "android": {"ttl": f"{ttl}s", "collapse_key": msg.campaign_id},
                "apns": {"headers": {"apns-expiration": str(int(msg.expires_at))}},
            }
        }

    async def send(self, msg: Message) -> Result:
        push = msg.payload.get("push")
        if not isinstance(push, dict) or not isinstance(push.get("body"), str):
            return Result.dead("no_push_content")
        if msg.expires_at <= self.clock():
            return Result.dead("expired")
        for token in await self.tokens_of(msg.customer_id):
            body = self.body(msg, token)
            assert body is not None
            raw = json.dumps(body, ensure_ascii=False).encode()
            if len(raw) > MAX_PAYLOAD_BYTES:
                return Result.dead("payload_too_large")
            try:
                r = await self._post(raw)
                if r.status_code == 401 and self.invalidate_token is not None:
                    self.invalidate_token()  # expired or revoked: once more with a fresh one
                    r = await self._post(raw)
            except httpx.TimeoutException:
                return Result.retry("timeout")
            except httpx.HTTPError as exc:
                return Result.retry(f"transport: {type(exc).__name__}")
            except TokenError as exc:
                return Result.retry(str(exc))
            res = self._judge(r)
            if res is None:  # this token is gone: drop it, try the next
                await self.remove_token(msg.customer_id, token)
                continue
            return res
        return Result.dead("no_push_token")

    async def _post(self, raw: bytes) -> httpx.Response:
        bearer = await self.token_source()
        return await self.client.post(
            self.path,
            content=raw,
            headers={
                "Authorization": f"Bearer {bearer}",
                "Content-Type": "application/json; charset=UTF-8",
            },
        )

    def _judge(self, r: httpx.Response) -> Result | None:
        status = r.status_code
        try:
            body: Any = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        wait = retry_after_s(r.headers.get("Retry-After"))
        if status == 200:
            name = body.get("name")
            if isinstance(name, str) and name:
                return Result.sent(name, status)
            return Result.retry("garbage_response", status)
        code = error_code(body)
        if code in DROP_TOKEN or status == 404:
            return None
        if status == 429 or code == "QUOTA_EXCEEDED":
            return Result.retry("quota_exceeded", status, max(wait or 0.0, QUOTA_MIN_WAIT_S))
        if status >= 500 or status == 401:  # 401: the access token expired, a new one next
            return Result.retry(f"http_{status}", status, wait)
        return Result.dead(f"http_{status}_{code or 'error'}", status)

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.close_token_source is not None:
            await self.close_token_source()


def error_code(body: dict[str, Any]) -> str | None:
    """`error.details[].errorCode` (the FcmError detail), else `error.status`."""
    err = body.get("error")
    if not isinstance(err, dict):
        return None
    details = err.get("details")
    if isinstance(details, list):
        for d in details:
            if isinstance(d, dict) and isinstance(d.get("errorCode"), str):
                return str(d["errorCode"])
    status = err.get("status")
    return status if isinstance(status, str) else None
