"""PostgreSQL backends terminated under load: every request gets 200 or 503 + Retry-After, never a
500; a client that resends each 503'd batch (as told) ends with every visit stored exactly once,
even when the connection died with COMMIT on its way (stored, yet answered 503: the unit of work
reads those customers back, so the resend finds them inside and enters nobody twice)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import asyncpg
import httpx

from tests.helpers import LAT0, LON0, offset, ping, square_feature

T0 = time.time() - 3000.0
CUSTOMERS = 40
ROUNDS = 12


async def _terminate_backends(
    server: asyncpg.Connection, database: str, stop: asyncio.Event
) -> int:
    """Kill every connection the engine holds to `database`, again and again, until `stop`."""
    killed = 0
    while not stop.is_set():
        killed += await server.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        await asyncio.sleep(0.05)
    return int(killed)


async def test_terminated_backends_give_503_never_500_and_lose_nothing(
    client: httpx.AsyncClient,
    database_url: str,
    services,  # type: ignore[no-untyped-def]
) -> None:
    r = await client.post("/v1/geofences", json=square_feature("opera", store_id="opera"))
    assert r.status_code == 201, r.text
    far = offset(LAT0, LON0, 400, 0)
    database = urlsplit(database_url).path.lstrip("/")  # the embedded URL has a socket query
    server = await asyncpg.connect(database_url)
    stop = asyncio.Event()
    killer = asyncio.create_task(_terminate_backends(server, database, stop))
    statuses: list[int] = []
    refused: list[list[dict[str, object]]] = []  # batches answered 503, to resend
    try:
        for k in range(ROUNDS):
            # each customer walks in at round k: one enter per customer, if the batch is stored
            batch = []
            for c in range(CUSTOMERS):
                who = f"c{k}-{c}"
                batch += [ping(who, *far, T0 + k), ping(who, LAT0, LON0, T0 + k + 60)]
            r = await client.post("/v1/pings?wait=true", json={"pings": batch})
            statuses.append(r.status_code)
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1", r.headers
                assert r.json()["errors"][0]["field"] == "database"
                refused.append(batch)
                continue
            assert r.status_code == 200, r.text
            assert len(r.json()["events"]) == CUSTOMERS
    finally:
        stop.set()
        killed = await killer
        await server.close()
    assert killed > 0 and 500 not in statuses
    assert refused, statuses  # the outage was seen, and answered as one
    for batch in refused:  # the client resends what got a 503, once the database is back
        r = await client.post("/v1/pings?wait=true", json={"pings": batch})
        assert r.status_code == 200, r.text
    stored = await services.pool.fetch(
        "SELECT customer_id, count(*) AS n FROM presence_events WHERE type = 'enter'"
        " GROUP BY customer_id"
    )
    everyone = {f"c{k}-{i}" for k in range(ROUNDS) for i in range(CUSTOMERS)}
    assert {r["customer_id"] for r in stored} == everyone
    assert {r["n"] for r in stored} == {1}  # nobody entered twice
    # memory equals storage: everyone is inside the store, as stored
    engine = services.live.engine
    assert all(set(engine.inside(c)) == {"opera"} for c in everyone)
    assert await services.pool.fetchval("SELECT count(*) FROM presence_state") == len(everyone)
