"""GET /v1/stores/{id}/presence/stream over a real socket: the aggregate at once, a ping posted
through the API moves it within 2 s, keepalives when idle; the stream ends when the client
leaves and when the server stops (nothing left running), and says why when the database goes
away, while the plain read answers 503 + Retry-After."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx

from adapters.api.app import create_app
from tests.conftest import ADMIN_KEY
from tests.helpers import LAT0, LON0, offset, ping, square_feature
from tests.live import Event, PgProxy, serving, sse_events

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
STREAM = "/v1/stores/s1/presence/stream"


async def _next(events: AsyncIterator[Event], name: str | None, within_s: float) -> Event:
    """The next event called `name` (None: a comment), skipping others, within a bound."""
    async with asyncio.timeout(within_s):
        async for ev in events:
            if ev.name == name:
                return ev
    raise AssertionError(f"the stream ended before an event {name!r}")


async def _wait(condition, within_s: float) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(within_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_a_ping_moves_the_live_count_within_2_s_and_streams_end_cleanly(
    clean_pool,  # type: ignore[no-untyped-def]
    settings_factory,  # type: ignore[no-untyped-def]
) -> None:
    from adapters.composition import build_services

    svc = await build_services(settings_factory(presence_stream_keepalive_s=0.3), background=False)
    app = create_app(services=svc)
    try:
        async with (
            serving(app) as (url, server),
            httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client,
        ):
            r = await client.post("/v1/geofences", json=square_feature("s1-shop", store_id="s1"))
            assert r.status_code == 201, r.text
            async with client.stream("GET", STREAM) as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                events = sse_events(resp)
                first = await _next(events, "presence", 5)
                assert first.data["inside"] == 0 and first.data["store_id"] == "s1"
                # idle: a keepalive comment, not the same aggregate again
                idle = await asyncio.wait_for(anext(events), 5)
                assert idle.name is None and idle.comment == "keepalive", idle
                t = time.time() - 90
                walk = [
                    ping("dora", *offset(LAT0, LON0, 500, 0), t),
                    ping("dora", LAT0, LON0, t + 60),
                ]
                posted = asyncio.create_task(
                    client.post("/v1/pings?wait=true", json={"pings": walk})
                )
                moved = await _next(events, "presence", 2.0)  # end to end, bounded
                assert moved.data["inside"] == 1, moved.data
                assert moved.data["fences"][0]["inside"] == 1
                assert (await posted).status_code == 200
            feed = app.state.presence_feed
            await _wait(lambda: feed.watching == 0, 5)  # the client left: unsubscribed
            # a fence edit shows at once (no presence event needed); a store whose last fence
            # is deleted ends its streams, saying so
            r = await client.post("/v1/geofences", json=square_feature("s9-shop", store_id="s9"))
            assert r.status_code == 201, r.text
            async with client.stream("GET", "/v1/stores/s9/presence/stream") as resp:
                events = sse_events(resp)
                assert (await _next(events, "presence", 5)).data["fences"][0]["name"] == "s9-shop"
                renamed = square_feature("s9-shop", store_id="s9", name="Bastille")
                assert (await client.put("/v1/geofences/s9-shop", json=renamed)).status_code == 200
                edited = await _next(events, "presence", 5)
                assert edited.data["fences"][0]["name"] == "Bastille"
                assert (await client.delete("/v1/geofences/s9-shop")).status_code == 204
                gone = await _next(events, "error", 5)
                assert "'s9'" in gone.data["detail"] and gone.data["retry_after"] is None
            # the server stops with a stream open: the stream ends, the server does not hang
            async with client.stream("GET", STREAM) as resp:
                events = sse_events(resp)
                assert (await _next(events, "presence", 5)).data["inside"] == 1
                server.stop()
                bye = await _next(events, "error", 10)
                assert "stopping" in bye.data["detail"] and bye.data["retry_after"] == 1
                async with asyncio.timeout(5):
                    assert [e async for e in events] == []  # and it is over
        assert feed.watching == 0 and (feed._task is None or feed._task.done())
    finally:
        await svc.close()


async def test_database_outage_ends_the_stream_with_a_reason_and_reads_answer_503(
    clean_pool,  # type: ignore[no-untyped-def]
    database_url: str,
    settings_factory,  # type: ignore[no-untyped-def]
) -> None:
    from adapters.composition import build_services

    proxy = PgProxy(database_url)
    await proxy.up()
    # an API process (no partitions: nothing of its own writes while the database is away)
    svc = await build_services(
        settings_factory(database_url=proxy.url, role="api"), background=False
    )
    app = create_app(services=svc)
    try:
        async with (
            serving(app) as (url, _),
            httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as client,
        ):
            r = await client.post("/v1/geofences", json=square_feature("s1-shop", store_id="s1"))
            assert r.status_code == 201, r.text
            async with client.stream("GET", STREAM) as resp:
                events = sse_events(resp)
                assert (await _next(events, "presence", 5)).data["inside"] == 0
                await proxy.down()
                err = await _next(events, "error", 10)
                assert "database" in err.data["detail"] and err.data["retry_after"] == 1
                async with asyncio.timeout(5):
                    assert [e async for e in events] == []
            r = await client.get("/v1/stores/s1/presence")
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1" and r.json()["errors"][0]["field"] == "database"
            r = await client.get(STREAM)  # a new stream: at once the same reason
            assert r.status_code == 200 and "event: error" in r.text
            await proxy.up()  # back: the reads recover (the pool reconnects)
            async with asyncio.timeout(10):
                while True:
                    if (await client.get("/v1/stores/s1/presence")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
    finally:
        await proxy.down()
        await svc.close()


async def test_a_key_revoked_while_its_stream_is_open_ends_the_stream(
    clean_pool,  # type: ignore[no-untyped-def]
    settings_factory,  # type: ignore[no-untyped-def]
) -> None:
    from adapters.composition import build_services

    svc = await build_services(settings_factory(presence_stream_keepalive_s=0.3), background=False)
    app = create_app(services=svc)
    try:
        async with (
            serving(app) as (url, _),
            httpx.AsyncClient(base_url=url, headers=AUTH, timeout=10) as admin,
        ):
            r = await admin.post("/v1/geofences", json=square_feature("s1-shop", store_id="s1"))
            assert r.status_code == 201, r.text
            r = await admin.post(
                "/v1/api-keys", json={"name": "shop", "role": "staff", "store_ids": ["s1"]}
            )
            staff = {"Authorization": f"Bearer {r.json()['key']}"}
            async with admin.stream("GET", STREAM, headers=staff) as resp:
                events = sse_events(resp)
                assert (await _next(events, "presence", 5)).data["store_id"] == "s1"
                assert (await admin.delete(f"/v1/api-keys/{r.json()['id']}")).status_code == 204
                # the key ring caches a key for 5 s: the stream ends within that, saying why
                gone = await _next(events, "error", 10)
                assert gone.data == {"detail": "API key revoked", "retry_after": None}
                async with asyncio.timeout(5):
                    assert [e async for e in events] == []
    finally:
        await svc.close()
