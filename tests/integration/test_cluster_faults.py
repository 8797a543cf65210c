"""Process-level faults of the partitioned cluster (real `geo-engine serve` processes, 8
partitions, 2 s leases): a worker killed with -9, the API killed right after its 2xx replies,
NATS restarted, PostgreSQL backends terminated, a zombie owner (SIGSTOP past its lease, outside
a transaction, then inside one), a device linked into a customer of another partition. Each
time: nothing acknowledged is lost and nothing is applied twice (tests/cluster_harness.py counts
fixes, events and outbox rows)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from geo_engine.partitions import partition_of
from tests.cluster_harness import (
    AUTH,
    PARTITIONS,
    Load,
    OwnNats,
    Proc,
    assert_exactly_once,
    cluster,
    customers_over_partitions,
    fix_counts,
    settle,
    share_of,
    wait_owners,
)
from tests.helpers import LAT0, LON0, ping, square_feature
from tests.integration.test_campaigns_api import campaign, offer

T0 = float(int(time.time()) - 3600)  # each test's fixes are its own (fresh database)
DECIDE = {"GEO_ENGINE_DECISION_HOURS": "[0, 24]", "GEO_ENGINE_DECISION_HOLDOUT_PCT": "0"}


def _lanes(customers: list[str], n: int) -> list[list[str]]:
    return [customers[i::n] for i in range(n)]


async def _setup(url: str, customers: list[str], *, offers: bool = False) -> None:
    """The store fence; with `offers`, a live campaign on enter and customers who consent to
    push (so the outbox gets rows)."""
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=15) as c:
        r = await c.post("/v1/geofences", json=square_feature("shop", store_id="shop"))
        assert r.status_code == 201, r.text
        if not offers:
            return
        assert (await c.post("/v1/offers", json=offer())).status_code == 201
        r = await c.post("/v1/campaigns", json=campaign())
        assert r.status_code == 201, r.text
        at = datetime.fromtimestamp(T0 - 86400, UTC).isoformat()
        granted = {"status": "granted", "at": at, "source": "app"}
        for cid in customers:
            r = await c.put(f"/v1/customers/{cid}", json={"consents": {"push": granted}})
            assert r.status_code == 200, r.text


async def test_kill_9_a_worker_under_load(
    clean_pool: asyncpg.Pool, database_url: str, nats_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    customers = customers_over_partitions(2)
    with cluster(tmp_path, database_url, nats_url, bus_prefix, **DECIDE) as c:
        api, w1, w2 = c.start_many("api", "worker", "worker")
        await _setup(api.url, customers, offers=True)
        await wait_owners(api.url, share_of(w1, w2), 15)
        load = Load(api.url, _lanes(customers, 4), T0)
        load.start()
        try:
            await load.until(40)
            c.kill(w2)
            killed = time.monotonic()
            await wait_owners(api.url, lambda o: set(o.values()) == {w1.worker_id}, 10)
            took_over_s = time.monotonic() - killed
            await load.until(40)
        finally:
            await load.halt()
        db = await asyncpg.connect(database_url)
        try:
            await settle(db, nats_url, bus_prefix)
            events = await assert_exactly_once(db, load.acked)
            outbox = await db.fetchval("SELECT count(*) FROM outbox")
        finally:
            await db.close()
    assert events["enter"] > 0 and events["exit"] > 0 and outbox > 0, (events, outbox)
    assert 500 not in load.counts(), load.counts()
    print(f"takeover {took_over_s:.1f} s, {len(load.acked)} requests, {events}, outbox {outbox}")


async def test_kill_9_the_api_right_after_its_replies(
    clean_pool: asyncpg.Pool, database_url: str, nats_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    customers = customers_over_partitions(1)
    with cluster(tmp_path, database_url, nats_url, bus_prefix) as c:
        api, _ = c.start_many("api", "worker")
        await _setup(api.url, customers)
        load = Load(api.url, _lanes(customers, 4), T0)

        # killed the moment its 60th 2xx is read: whatever it answered must be durable already
        def kill_at_60(_: object) -> None:
            if len(load.acked) == 60:
                os.kill(api.pid, signal.SIGKILL)

        load.on_ack = kill_at_60
        load.start()
        try:
            await load.until(60)
            api.popen.wait(10)
            last_before_kill = list(load.acked)
            # same port: the lanes resend what was in flight with its key, as clients do
            api2 = await asyncio.to_thread(c.start, "api", port=api.port)
            await load.until(20)
        finally:
            await load.halt()
        db = await asyncpg.connect(database_url)
        try:
            await settle(db, nats_url, bus_prefix)
            await assert_exactly_once(db, load.acked)
            before = await fix_counts(db)
            async with httpx.AsyncClient(base_url=api2.url, headers=AUTH, timeout=10) as client:
                for req in last_before_kill[-8:] + last_before_kill[:4]:
                    for wait in ("false", "true"):
                        r = await client.post(
                            f"/v1/pings?wait={wait}",
                            json=req.body,
                            headers={"Idempotency-Key": req.key},
                        )
                        assert r.status_code == 202 and r.json()["duplicate"] is True, r.text
            await settle(db, nats_url, bus_prefix)
            assert await fix_counts(db) == before
        finally:
            await db.close()
    assert 500 not in load.counts(), load.counts()


async def test_nats_restarted_under_load(
    clean_pool: asyncpg.Pool, database_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    bus = OwnNats(tmp_path / "js")
    bus.start()
    try:
        with cluster(tmp_path, database_url, bus.url, bus_prefix) as c:
            api, w1, w2 = c.start_many("api", "worker", "worker")
            customers = customers_over_partitions(1)
            await _setup(api.url, customers)
            await wait_owners(api.url, share_of(w1, w2), 15)
            load = Load(api.url, _lanes(customers, 4), T0)
            load.start()
            try:
                await load.until(30)
                await asyncio.to_thread(bus.stop)
                down = time.monotonic()
                await asyncio.sleep(3)
                await asyncio.to_thread(bus.start)
                up = time.monotonic()
                await load.until(40, timeout_s=20)
            finally:
                await load.halt()
            db = await asyncpg.connect(database_url)
            try:
                await settle(db, bus.url, bus_prefix)
                await assert_exactly_once(db, load.acked)
            finally:
                await db.close()
    finally:
        bus.stop()
    outage = [(s, ra) for t, s, ra in load.statuses if down + 0.5 < t < up]
    assert outage and all(s == 503 and ra for s, ra in outage), Counter(outage)
    assert 500 not in load.counts(), load.counts()
    back = min(t for t, s, _ in load.statuses if t > up and 200 <= s < 300) - up
    assert back < 5, back
    print(f"503 while down: {len(outage)}; 2xx again {back:.1f} s after the restart")


async def test_postgres_backends_terminated_under_load(
    clean_pool: asyncpg.Pool, database_url: str, nats_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    database = urlsplit(database_url).path.lstrip("/")
    customers = customers_over_partitions(2)
    with cluster(tmp_path, database_url, nats_url, bus_prefix) as c:
        api, w1, w2 = c.start_many("api", "worker", "worker")
        await _setup(api.url, customers)
        await wait_owners(api.url, share_of(w1, w2), 15)
        load = Load(api.url, _lanes(customers, 4), T0)
        admin = await asyncpg.connect(database_url)
        load.start()
        killed = 0
        try:
            for _ in range(8):
                await load.until(8)
                killed += await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
            await load.until(30)
        finally:
            await load.halt()
            await admin.close()
        # the API only needs the log to accept: the database going away is no reason to refuse
        assert set(load.counts()) == {202}, load.counts()
        assert killed >= 8
        db = await asyncpg.connect(database_url)
        try:
            await settle(db, nats_url, bus_prefix)
            print(f"{killed} backends terminated, {len(load.acked)} requests")
            events = await assert_exactly_once(db, load.acked)
        finally:
            await db.close()
    assert events["enter"] > 0


# a stopped worker's backend, in a transaction (its last statement done, the next never sent)
_STOPPED_IN_TX = (
    "SELECT count(*) FROM pg_stat_activity a WHERE datname = current_database()"
    " AND state LIKE 'idle in transaction%' AND now() - state_change > interval '0.2 s'"
)
# ... that has written presence (it has appended to the cursors' log)
_STOPPED_IN_WRITE = _STOPPED_IN_TX + (
    " AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid"
    " AND l.relation = 'customer_cursor_log'::regclass AND l.mode = 'RowExclusiveLock')"
)


async def _stop(proc: Proc, db: asyncpg.Connection, *, in_write: bool) -> None:
    """SIGSTOP `proc` again and again until it is stopped outside any transaction, or (with
    `in_write`) inside one that has written presence."""
    for _ in range(200):
        os.kill(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(0.3)
        if bool(await db.fetchval(_STOPPED_IN_WRITE if in_write else _STOPPED_IN_TX)) == in_write:
            return
        os.kill(proc.pid, signal.SIGCONT)
        await asyncio.sleep(random.uniform(0.01, 0.1))
    raise AssertionError("never stopped where wanted")


async def test_a_zombie_owner_commits_nothing(
    clean_pool: asyncpg.Pool, database_url: str, nats_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    customers = customers_over_partitions(2)
    with cluster(tmp_path, database_url, nats_url, bus_prefix) as c:
        api, w1, w2 = c.start_many("api", "worker", "worker")
        await _setup(api.url, customers)
        owners = await wait_owners(api.url, share_of(w1, w2), 15)
        zombie_parts = sorted(p for p, o in owners.items() if o == w2.worker_id)
        load = Load(api.url, _lanes(customers, 4), T0)
        db = await asyncpg.connect(database_url)
        try:
            load.start()
            await load.until(20)
            await load.halt()
            await settle(db, nats_url, bus_prefix)
            epochs = dict(await db.fetch("SELECT partition, epoch FROM partition_leases"))
            await _stop(w2, db, in_write=False)
            stopped = time.monotonic()
            load.start()  # pings for every partition, w2's too, while it is stopped
            await wait_owners(api.url, lambda o: set(o.values()) == {w1.worker_id}, 10)
            took_over_s = time.monotonic() - stopped
            await load.until(30)  # and more once w1 owns them
            await load.halt()
            await settle(db, nats_url, bus_prefix)
            taken = dict(await db.fetch("SELECT partition, epoch FROM partition_leases"))
            before = (await db.fetch(_POSITIONS), await fix_counts(db))
            os.kill(w2.pid, signal.SIGCONT)
            # awake, its commits are fenced; it gets its share back through a handover
            await wait_owners(api.url, share_of(w1, w2), 10)
            await asyncio.sleep(1)
            assert (await db.fetch(_POSITIONS), await fix_counts(db)) == before  # nothing new
            load.start()
            await load.until(30)
            await load.halt()
            await settle(db, nats_url, bus_prefix)
            await assert_exactly_once(db, load.acked)
        finally:
            await load.halt()
            await db.close()
        log = w2.log_text()
    # w1 took w2's partitions with a new epoch (w2's cannot commit), kept its own
    assert all(taken[p] > epochs[p] for p in zombie_parts)
    assert all(taken[p] == epochs[p] for p in set(epochs) - set(zombie_parts))
    print(f"takeover {took_over_s:.1f} s; zombie fenced: {'fenced' in log}")


_POSITIONS = "SELECT partition, applied_seq FROM partition_leases ORDER BY partition"


async def test_an_owner_stopped_mid_write_does_not_stall_its_successor(
    clean_pool: asyncpg.Pool, database_url: str, nats_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    """Its open transaction holds row locks its successor needs: PostgreSQL ends it once idle
    past the lease ttl, or the successor (and, through the unit of work, all its partitions)
    would wait for as long as it stays stopped."""
    customers = customers_over_partitions(2)
    with cluster(tmp_path, database_url, nats_url, bus_prefix) as c:
        api, w1, w2 = c.start_many("api", "worker", "worker")
        await _setup(api.url, customers)
        await wait_owners(api.url, share_of(w1, w2), 15)
        load = Load(api.url, _lanes(customers, 4), T0)
        db = await asyncpg.connect(database_url)
        try:
            load.start()
            await load.until(10)
            await _stop(w2, db, in_write=True)  # a VM paused, a GC pause, a frozen container
            try:
                await wait_owners(api.url, lambda o: set(o.values()) == {w1.worker_id}, 10)
                await load.until(20)  # the API only needs the log
                await load.halt()
                # the lease ttl bounds a takeover: w1 applies everything while w2 stays stopped
                await settle(db, nats_url, bus_prefix, timeout_s=10)
            except AssertionError as exc:  # say what w1 waits for
                waits = await db.fetch(
                    "SELECT left(query, 60) AS q FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                queries = [r["q"] for r in waits]
                raise AssertionError(f"{exc}; waiting on a lock: {queries}") from exc
            os.kill(w2.pid, signal.SIGCONT)  # its session is gone: it commits nothing
            await wait_owners(api.url, share_of(w1, w2), 10)
            load.start()
            await load.until(20)
            await load.halt()
            await settle(db, nats_url, bus_prefix)
            await assert_exactly_once(db, load.acked)
        finally:
            await load.halt()
            await db.close()


async def test_a_device_linked_into_a_customer_of_another_partition(
    clean_pool: asyncpg.Pool, database_url: str, nats_url: str, bus_prefix: str, tmp_path: Path
) -> None:
    # the old owner's sweep exits what it holds 6 s after the last fix: if it still held the
    # device's visit after the link, an exit of `device:<d>` would be stored
    env = {
        "GEO_ENGINE_STALE_EXIT_AFTER_S": "6",
        "GEO_ENGINE_SWEEP_INTERVAL_S": "0.5",
        "GEO_ENGINE_SWEEP_GRACE_S": "0",
        "GEO_ENGINE_DWELL_AFTER_S": "3600",
    }
    with cluster(tmp_path, database_url, nats_url, bus_prefix, **env) as c:
        api, w1, w2 = c.start_many("api", "worker", "worker")
        await _setup(api.url, [])
        owners = await wait_owners(api.url, share_of(w1, w2), 15)

        device = next(f"d{i}" for i in range(999) if owners[_part(f"device:d{i}")] == w1.worker_id)
        cid = next(f"c{i}" for i in range(999) if owners[_part(f"c{i}")] == w2.worker_id)
        async with httpx.AsyncClient(base_url=api.url, headers=AUTH, timeout=15) as client:

            async def pings(*ts: float) -> list[dict[str, Any]]:
                rows = [ping(device, LAT0, LON0, t, device=True) for t in ts]
                r = await client.post("/v1/pings?wait=true", json={"pings": rows})
                assert r.status_code == 200, r.text
                events: list[dict[str, Any]] = r.json()["events"]
                return events

            async def inside(who: str) -> list[str]:
                r = await client.get(f"/v1/customers/{who}/presence")
                assert r.status_code == 200, r.text
                return [f["geofence_id"] for f in r.json()["inside"]]

            first = time.time() - 1
            events = await pings(first)
            assert [(e["type"], e["customer_id"]) for e in events] == [
                ("enter", f"device:{device}")
            ]
            assert await inside(f"device:{device}") == ["shop"]
            link = {"customer_id": cid, "identifiers": [{"type": "device", "value": device}]}
            r = await client.post("/v1/identities/link", json=link)
            assert r.status_code == 200 and r.json()["merged_events"] == 1, r.text
            # its next fixes go to c's partition, owned by the other worker: still inside
            assert await pings(time.time()) == []
            assert await inside(cid) == ["shop"] and await inside(f"device:{device}") == []
            while time.time() < first + 9:  # past the device's old visit's stale exit
                assert await pings(time.time()) == []
                await asyncio.sleep(1)
            assert await inside(cid) == ["shop"] and await inside(f"device:{device}") == []
        db = await asyncpg.connect(database_url)
        try:
            rows = await db.fetch("SELECT customer_id, type FROM presence_events")
            held = await db.fetchval(
                "SELECT count(*) FROM presence_state WHERE customer_id = $1", f"device:{device}"
            )
        finally:
            await db.close()
    assert sorted((r["customer_id"], r["type"]) for r in rows) == [(cid, "enter")]
    assert held == 0


def _part(customer_id: str) -> int:
    return partition_of(customer_id, PARTITIONS)
