"""Partitioned ingest in one test process: two engines over one database and one log share the
partitions, a resent request is accepted once, the owners' sweep and takeover keep effects once.
(Process-level faults — kill -9, a restarted bus, a zombie — are tests/integration/
test_cluster_faults.py.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from geo_engine.partitions import partition_of
from tests.helpers import LAT0, LON0, offset, open_services, ping, square_feature

T0 = time.time() - 3000.0


async def _wait(predicate: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_resent_request_is_accepted_once(client: httpx.AsyncClient, services: Any) -> None:
    assert (await client.post("/v1/geofences", json=square_feature("shop"))).status_code == 201
    far = offset(LAT0, LON0, 400, 0)
    batch = {"pings": [ping(f"c{i}", *far, T0) for i in range(6)]}
    batch["pings"] += [ping(f"c{i}", LAT0, LON0, T0 + 60) for i in range(6)]
    key = {"Idempotency-Key": "batch-0001"}
    first = await client.post("/v1/pings?wait=true", json=batch, headers=key)
    assert first.status_code == 200 and len(first.json()["events"]) == 6
    again = await client.post("/v1/pings?wait=true", json=batch, headers=key)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert await services.pool.fetchval("SELECT count(*) FROM raw_fixes") == 12
    assert await services.pool.fetchval("SELECT count(*) FROM presence_events") == 6
    # another key is another request (its fixes are duplicates for presence, not for the log)
    other = await client.post("/v1/pings?wait=true", json=batch, headers={"Idempotency-Key": "x"})
    assert other.json()["events"] == [] and other.json()["accepted"] == 12
    bad = await client.post("/v1/pings", json=batch, headers={"Idempotency-Key": "a b"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_two_engines_share_the_partitions_and_take_over(
    clean_pool: Any, settings_factory: Any
) -> None:
    async with open_services(settings_factory) as (a, svc_a):
        assert svc_a.worker is not None and sorted(svc_a.worker.owned) == [0, 1, 2, 3]
        assert (await a.post("/v1/geofences", json=square_feature("shop"))).status_code == 201
        async with open_services(settings_factory) as (b, svc_b):
            wa, wb = svc_a.worker, svc_b.worker
            assert wa is not None and wb is not None

            async def shared() -> bool:
                await wa.tick()
                await wb.tick()
                return len(wa.owned) == 2 and len(wb.owned) == 2

            await _wait(shared)  # a fair share, no partition twice
            assert not set(wa.owned) & set(wb.owned)
            # customers of every partition, posted through either API, applied by their owner
            who = [f"k{i}" for i in range(40)]
            assert {partition_of(c, 4) for c in who} == {0, 1, 2, 3}
            far = offset(LAT0, LON0, 400, 0)
            rows = [ping(c, *far, T0) for c in who] + [ping(c, LAT0, LON0, T0 + 60) for c in who]
            r = await b.post("/v1/pings?wait=true", json={"pings": rows})
            assert r.status_code == 200 and len(r.json()["events"]) == len(who)
            # each engine holds only its own partitions' customers
            for svc in (svc_a, svc_b):
                held = svc.live.engine.customers()
                assert held and all(svc.worker.owns(c) for c in held)
            # a profile is read from its owner's memory, whichever API process is asked
            theirs = next(c for c in who if wb.owns(c))
            event = {"customer_id": theirs, "type": "app_open", "channel": "app", "ts": T0}
            r = await b.post("/v1/events?wait=true", json={"events": [event]})
            assert r.json()["accepted"] == 1
            doc = (await a.get(f"/v1/customers/{theirs}/profile")).json()
            assert doc["customer_id"] == theirs and doc["channel_affinity"]["channels"]
            assert theirs not in svc_a.profiles.state.slots  # a never held it: b answered
            nobody = (await a.get("/v1/customers/nobody-at-all/profile")).status_code
            assert nobody == 404
        # b stopped cleanly: a takes everything back, with b's customers read from storage
        await _wait(lambda: _owns_all(svc_a))
        assert sorted(svc_a.live.engine.customers()) == sorted(who)
        # still inside: a resend by another key enters nobody twice
        back = [ping(c, LAT0, LON0, T0 + 120) for c in who]
        r = await a.post("/v1/pings?wait=true", json={"pings": back})
        assert r.json()["events"] == []
        enters = await svc_a.pool.fetchval(
            "SELECT count(*) FROM presence_events WHERE type = 'enter'"
        )
        assert enters == len(who)


async def _owns_all(svc: Any) -> bool:
    await svc.worker.tick()
    return len(svc.worker.owned) == 4


async def test_a_stale_epoch_commits_nothing(services: Any) -> None:
    from adapters.cluster.checkpoint import Position, applying
    from geo_engine.cluster_ports import Fenced

    w = services.worker
    p, o = next(iter(w.owned.items()))
    stale = Position(p, o.epoch - 1 if o.epoch > 1 else o.epoch + 7, 10**9)
    try:
        with applying(stale):
            async with services.transactions.transaction() as tx:
                from adapters.db.tx import conn_of

                await conn_of(tx).execute("INSERT INTO cluster_config VALUES ('probe', 'x')")
        raise AssertionError("a stale epoch committed")
    except Fenced:
        pass
    assert (
        await services.pool.fetchval("SELECT count(*) FROM cluster_config WHERE key = 'probe'") == 0
    )


async def test_cluster_endpoint_lists_workers_and_leases(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/cluster")
    assert r.status_code == 200
    doc = r.json()
    assert doc["partitions"] == 4 and doc["bus_connected"] is True
    (worker,) = [w for w in doc["workers"] if w["live"]]
    assert worker["partitions"] == [0, 1, 2, 3]
    assert [x["owner"] for x in doc["leases"]] == [worker["worker_id"]] * 4
    assert all(x["caught_up"] is True for x in doc["leases"])  # nothing published yet


async def test_batches_nobody_waits_for_apply_once_each_in_order(
    client: httpx.AsyncClient, services: Any
) -> None:
    """Runs of unawaited batches are applied in one transaction per run (group commit): every
    fix stored once, the walk-in entered once, and the owner's head reached."""
    assert (await client.post("/v1/geofences", json=square_feature("shop"))).status_code == 201
    far = offset(LAT0, LON0, 400, 0)
    for k in range(20):  # each customer walks from far to the shop over the 20 batches
        at = far if k < 10 else (LAT0, LON0)
        batch = {"pings": [ping(f"g{i}", *at, T0 + 30 * k) for i in range(25)]}
        r = await client.post("/v1/pings", json=batch)
        assert r.status_code == 202 and r.json()["accepted"] == 25

    async def caught_up() -> bool:
        leases = (await client.get("/v1/cluster")).json()["leases"]
        return all(x["caught_up"] for x in leases)

    await _wait(caught_up)
    assert await services.pool.fetchval("SELECT count(*) FROM raw_fixes") == 500
    enters = await services.pool.fetch(
        "SELECT customer_id FROM presence_events WHERE type = 'enter'"
    )
    assert sorted(r["customer_id"] for r in enters) == sorted(f"g{i}" for i in range(25))
    heads = (await client.get("/v1/cluster")).json()["leases"]
    assert all(x["applied_seq"] == x["head_seq"] for x in heads if x["head_seq"])


async def test_a_trickle_of_single_fixes_lingers_into_shared_commits(
    clean_pool: Any, settings_factory: Any
) -> None:
    """One fire-and-forget fix per request, 30 ms apart, for one customer (one partition): the
    owner commits the first alone, lingers, and the rest share a commit (without the linger,
    each its own). Rows a transaction
    inserted share its xmin, so the commits are counted in storage, not by timing."""
    async with open_services(settings_factory, worker_linger_s=1.0) as (c, svc):
        t0 = T0 + 1000
        for k in range(10):
            r = await c.post("/v1/pings", json={"pings": [ping("solo", LAT0, LON0, t0 + k)]})
            assert r.status_code == 202 and r.json()["accepted"] == 1
            await asyncio.sleep(0.03)

        async def all_stored() -> bool:
            n = await svc.pool.fetchval("SELECT count(*) FROM raw_fixes WHERE customer_id='solo'")
            return bool(n == 10)

        await _wait(all_stored)
        commits = await svc.pool.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM raw_fixes WHERE customer_id = 'solo'"
        )
        assert 1 <= commits <= 4, commits
        # a waited-for fix is applied and answered as ever
        r = await c.post("/v1/pings?wait=true", json={"pings": [ping("solo", LAT0, LON0, t0 + 20)]})
        assert r.status_code == 200 and r.json()["accepted"] == 1


async def test_bus_gone_means_503_with_retry_after_never_500(
    clean_pool: Any, settings_factory: Any
) -> None:
    async with open_services(settings_factory) as (c, svc):
        assert (await c.get("/readyz")).status_code == 200
        await svc.bus.close()  # as if NATS were unreachable
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and ready.headers["retry-after"]
        for path, body in (
            ("/v1/pings", {"pings": [ping("z", LAT0, LON0, T0)]}),
            ("/v1/pings?wait=true", {"pings": [ping("z", LAT0, LON0, T0)]}),
            ("/v1/nfc-taps", {"customer_id": "z", "tag_id": "t", "ts": T0}),
        ):
            r = await c.post(path, json=body)
            assert r.status_code == 503, (path, r.text)
            assert r.headers["retry-after"] and r.json()["errors"][0]["field"] == "bus"
