"""PostgreSQL backends terminated under load: ingest only needs the log to accept (2xx), or says
503 + Retry-After, never 500; the partition owners retry through the outage, and every visit is
stored exactly once, even when a connection died with COMMIT on its way (the unit of work reads
those customers back, and the log position committed with the effects says what was applied)."""

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
            r = await client.post("/v1/pings", json={"pings": batch})
            statuses.append(r.status_code)
            if r.status_code == 503:  # the API key's lookup may need the database
                assert r.headers["retry-after"] == "1", r.headers
                refused.append(batch)
                continue
            assert r.status_code == 202, r.text
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        killed = await killer
        await server.close()
    assert killed > 0 and 500 not in statuses
    for batch in refused:  # the client resends what got a 503, once the database is back
        r = await client.post("/v1/pings", json={"pings": batch})
        assert r.status_code == 202, r.text
    everyone = {f"c{k}-{i}" for k in range(ROUNDS) for i in range(CUSTOMERS)}
    query = (
        "SELECT customer_id, count(*) AS n FROM presence_events WHERE type = 'enter'"
        " GROUP BY customer_id"
    )
    deadline = time.monotonic() + 30
    while True:  # the owners catch up once the database answers again
        stored = await services.pool.fetch(query)
        if len(stored) == len(everyone) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert {r["customer_id"] for r in stored} == everyone
    assert {r["n"] for r in stored} == {1}  # nobody entered twice
    # memory equals storage: everyone is inside the store, as stored
    engine = services.live.engine
    assert all(set(engine.inside(c)) == {"opera"} for c in everyone)
    assert await services.pool.fetchval("SELECT count(*) FROM presence_state") == len(everyone)
