"""Request edges: body size limit, per-key rate limit with Retry-After, CORS closed by default."""

from __future__ import annotations

import httpx

from adapters.api.app import create_app
from adapters.ratelimit import RateLimiter
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_body_over_the_limit_is_413_and_changes_nothing(services) -> None:  # type: ignore[no-untyped-def]
    services.settings.max_body_bytes = 1000
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        big = b'{"pings": [' + b" " * 2000 + b"]}"
        r = await c.post(
            "/v1/pings?wait=true", content=big, headers={**AUTH, "content-type": "application/json"}
        )
        assert r.status_code == 413
        assert r.json()["errors"][0]["field"] == "body"

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(20):
                yield b" " * 100  # no Content-Length: counted while streaming

        r = await c.post(
            "/v1/pings?wait=true",
            content=chunks(),
            headers={**AUTH, "content-type": "application/json"},
        )
        assert r.status_code == 413
        r = await c.post("/v1/pings?wait=true", json={"pings": []}, headers=AUTH)
        assert r.status_code == 200


async def test_rate_limit_per_key_answers_429_with_retry_after(services) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]
    services.limiter = RateLimiter(rate=1.0, burst=3.0, clock=lambda: now[0])
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        codes = [(await c.get("/v1/geofences", headers=AUTH)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = await c.get("/v1/geofences", headers=AUTH)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        now[0] += 1.0
        assert (await c.get("/v1/geofences", headers=AUTH)).status_code == 200
        assert (await c.get("/healthz")).status_code == 200  # unauthenticated routes are not keyed


async def test_cors_is_closed_unless_configured(services) -> None:  # type: ignore[no-untyped-def]
    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.options("/v1/pings?wait=true", headers=pre)
        assert "access-control-allow-origin" not in r.headers
    services.settings.cors_origins = ["https://console.example"]
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.options(
            "/v1/pings?wait=true", headers={**pre, "Origin": "https://console.example"}
        )
        assert r.headers["access-control-allow-origin"] == "https://console.example"
        r = await c.options("/v1/pings?wait=true", headers=pre)
        assert "access-control-allow-origin" not in r.headers
