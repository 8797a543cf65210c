"""The lean lane (adapters/api/lean.py) answers `POST /v1/pings` ahead of FastAPI: each request
below gets the same status, body and headers from the lane as from the FastAPI route (reached
with an `Origin` header, which the lane leaves to FastAPI), and the same audit trail."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from adapters.api.app import create_app
from tests.conftest import ADMIN_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
BROWSER = {"Origin": "https://app.example"}  # no CORS configured: FastAPI answers, as it did


def _fix(cid: str, dx: float = 0.0) -> dict[str, Any]:
    return {"customer_id": cid, "lat": 48.8566, "lon": 2.3522 + dx, "ts": time.time() - 5}


async def _key(c: httpx.AsyncClient, role: str) -> str:
    body: dict[str, Any] = {"name": role, "role": role}
    if role == "staff":
        body["store_ids"] = ["s1"]
    r = await c.post("/v1/api-keys", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _mixed(who: str) -> dict[str, Any]:
    return {"pings": [_fix(f"lane-{who}"), {**_fix(f"lane-{who}2"), "lat": 91}, {"lat": 1}]}


def _seen(r: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    kept = ("retry-after", "www-authenticate", "content-type")
    return r.status_code, r.json(), {k: v for k, v in r.headers.items() if k in kept}


async def test_the_lane_answers_as_the_fastapi_route(services) -> None:  # type: ignore[no-untyped-def]
    services.settings.max_body_bytes = 4000
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ingest, staff = await _key(c, "ingest"), await _key(c, "staff")
        good = {"pings": [_fix("lane-a"), _fix("lane-b", 1e-4)]}
        cases: list[tuple[str, dict[str, Any]]] = [
            ("no key", {"json": good}),
            ("another scheme", {"json": good, "headers": {"Authorization": f"Basic {ingest}"}}),
            ("unknown key", {"json": good, "headers": {"Authorization": "Bearer nope"}}),
            ("staff key", {"json": good, "headers": {"Authorization": f"Bearer {staff}"}}),
            ("not JSON", {"content": b"{", "headers": {"Authorization": f"Bearer {ingest}"}}),
            (
                "too large",
                {"content": b" " * 5000, "headers": {"Authorization": f"Bearer {ingest}"}},
            ),
            ("bad wait", {"json": good, "params": {"wait": "maybe"}}),
            ("bad key", {"json": good, "headers": {"Idempotency-Key": "a b"}}),
            ("mixed rows", {"params": {"wait": "true"}}),
        ]
        for name, kw in cases:
            headers = {"Authorization": f"Bearer {ingest}", **kw.pop("headers", {})}
            if name == "no key":
                headers.pop("Authorization")
            if name == "mixed rows":  # one customer per path: the second is no duplicate
                lane = await c.post("/v1/pings", headers=headers, json=_mixed("l"), **kw)
                route = await c.post(
                    "/v1/pings", headers={**headers, **BROWSER}, json=_mixed("r"), **kw
                )
            else:
                lane = await c.post("/v1/pings", headers=headers, **kw)
                route = await c.post("/v1/pings", headers={**headers, **BROWSER}, **kw)
            assert _seen(lane) == _seen(route), name
            assert lane.status_code >= 400 or name == "mixed rows", (name, lane.text)
        assert lane.status_code == 200 and [r["index"] for r in lane.json()["rejected"]] == [1, 2]

        # a resend with the same Idempotency-Key adds nothing, whichever path took either
        key = {"Authorization": f"Bearer {ingest}", "Idempotency-Key": "lane-resend-1"}
        first = await c.post("/v1/pings", json=good, headers=key)
        again = await c.post("/v1/pings", json=good, headers={**key, **BROWSER})
        assert (first.status_code, first.json()["duplicate"]) == (202, False)
        assert (again.status_code, again.json()["duplicate"]) == (202, True)


async def test_the_lane_keeps_the_audit_trail(services) -> None:  # type: ignore[no-untyped-def]
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ingest = await _key(c, "ingest")
        body = {"pings": [_fix("lane-audit")]}
        assert (await c.post("/v1/pings", json=body, headers=ADMIN)).status_code == 202
        r = await c.post("/v1/pings", json=body, headers={"Authorization": f"Bearer {ingest}"})
        assert r.status_code == 202  # an ingest key is not audited
        assert (await c.post("/v1/pings", content=b"[", headers=ADMIN)).status_code == 422
        items = (await c.get("/v1/audit-log", headers=ADMIN)).json()["items"]
        pings = [(i["method"], i["path"], i["status"]) for i in items if i["path"] == "/v1/pings"]
        assert pings == [("POST", "/v1/pings", 202), ("POST", "/v1/pings", 422)]


@pytest.mark.parametrize("path", ["/v1/pings"])
async def test_lane_routes_stay_in_the_openapi_schema(services, path: str) -> None:  # type: ignore[no-untyped-def]
    schema = create_app(services=services).openapi()
    assert "post" in schema["paths"][path]
