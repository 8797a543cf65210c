"""OAuth2 access tokens for FCM from a Google service-account key (RFC 7523 JWT bearer grant):
an RS256 JWT assertion signed with the key's private key is POSTed to its `token_uri`
(`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`); the access token is cached until
`REFRESH_MARGIN_S` before it expires, and dropped at once when FCM answers 401 (`invalidate`).

Hand-written on PyJWT rather than google-auth: the exchange is one POST, and it then goes through
the same injectable httpx transport as the FCM calls (tests fake both)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600  # Google's maximum
REFRESH_MARGIN_S = 300.0  # a token this close to its expiry is replaced before use


class TokenError(Exception):
    """The token endpoint refused or answered garbage (the FCM send is then retried)."""


class ServiceAccountTokenSource:
    def __init__(
        self,
        info: dict[str, Any],
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
        if missing:
            raise ValueError(f"service-account key without {', '.join(missing)}")
        self.email = str(info["client_email"])
        self.private_key = str(info["private_key"])
        self.key_id = info.get("private_key_id")
        self.token_uri = str(info["token_uri"])
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()  # one exchange at a time, however many sends wait
        self.exchanges = 0

    @classmethod
    def from_file(cls, path: Path, **kw: Any) -> ServiceAccountTokenSource:
        return cls(json.loads(path.read_text()), **kw)

    def assertion(self) -> str:
        now = int(self.clock())
        claims = {
            "iss": self.email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers=headers)

    async def __call__(self) -> str:
        async with self._lock:
            if self._token is None or self.clock() >= self._expires_at - REFRESH_MARGIN_S:
                await self._exchange()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """FCM said 401: the next call exchanges again."""
        self._token = None

    async def _exchange(self) -> None:
        self.exchanges += 1
        try:
            r = await self.client.post(
                self.token_uri, data={"grant_type": GRANT_TYPE, "assertion": self.assertion()}
            )
        except httpx.HTTPError as exc:
            raise TokenError(f"token endpoint: {type(exc).__name__}") from None
        try:
            body: Any = r.json()
        except ValueError:
            body = None
        if r.status_code != 200 or not isinstance(body, dict):
            # the error text only (never the assertion): e.g. invalid_grant for a revoked key
            err = body.get("error") if isinstance(body, dict) else None
            raise TokenError(f"token endpoint: http {r.status_code} {err or ''}".strip())
        token, ttl = body.get("access_token"), body.get("expires_in", 3600)
        if not isinstance(token, str) or not token or not isinstance(ttl, int | float):
            raise TokenError("token endpoint: no access_token")
        self._token = token
        self._expires_at = self.clock() + float(ttl)

    async def aclose(self) -> None:
        await self.client.aclose()
