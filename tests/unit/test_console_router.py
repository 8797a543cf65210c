"""The console's router alone: the page with its tile setting and Content-Security-Policy, its
static files with the types a browser insists on, nothing outside its folder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from adapters.console import router


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console.test"
    ) as c:
        yield c


async def test_the_page_works_offline_by_default(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEO_ENGINE_CONSOLE_TILE_URL", raising=False)
    r = await client.get("/console", follow_redirects=True)
    assert r.status_code == 200
    assert '<meta name="geo-engine-tile-url" content="">' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "img-src 'self' data:;" in csp
    assert "https://" not in r.text  # no CDN: every script and style is ours


async def test_a_tile_server_is_passed_to_the_page_and_allowed_by_its_policy(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = 'https://{s}.tile.example.org/{z}/{x}/{y}.png?k="x"'
    monkeypatch.setenv("GEO_ENGINE_CONSOLE_TILE_URL", url)
    r = await client.get("/console/")
    assert 'content="https://{s}.tile.example.org/{z}/{x}/{y}.png?k=&quot;x&quot;"' in r.text
    assert (
        "img-src 'self' data: https://*.tile.example.org;" in r.headers["content-security-policy"]
    )


async def test_static_files_and_nothing_else(client: httpx.AsyncClient) -> None:
    js = await client.get("/console/js/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    css = await client.get("/console/vendor/leaflet-1.9.4/leaflet.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for path in ("/console/../router.py", "/console/%2e%2e/router.py", "/console/js/nope.js"):
        assert (await client.get(path)).status_code == 404, path
