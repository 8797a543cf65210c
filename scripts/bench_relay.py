"""Relay throughput: N due outbox rows sent by K concurrent relays through the Twilio gateway
(real request encoding and answer parsing, httpx.MockTransport answering 201 in process: no
socket), on a throwaway embedded PostgreSQL (or DATABASE_URL's server, in a new database).

    python scripts/bench_relay.py --rows 5000 --relays 2

Prints offers/s and the time from the outbox row's commit to its first attempt (p50/p99): with
all rows committed at once, that is the backlog's drain time, an upper bound."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from adapters.db.connect import create_pool, embedded_url
from adapters.db.migrate import migrate
from adapters.delivery.gateways.twilio import TwilioGateway
from adapters.delivery.relay import Relay, RelayConfig


async def fill(pool: asyncpg.Pool, rows: int) -> None:
    now = time.time()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO identities (type, value, customer_id)"
            " SELECT 'phone', '+3361' || lpad(i::text, 7, '0'), 'c' || i"
            " FROM generate_series(1, $1) i",
            rows,
        )
        await conn.execute(
            "INSERT INTO decisions (customer_id, trigger_kind, trigger_name, trigger_instance,"
            " ts, outcome, traces) SELECT 'c' || i, 'presence', 'enter', 'pe:' || i,"
            " to_timestamp($2), 'send', '[]' FROM generate_series(1, $1) i",
            rows,
            now,
        )
        await conn.execute(
            "INSERT INTO outbox (decision_id, idempotency_key, customer_id, campaign_id,"
            " trigger_instance, offer_id, channel, payload, send_after, expires_at)"
            " SELECT id, customer_id || '|c1|' || trigger_instance, customer_id, 'c1',"
            " trigger_instance, 'o1', 'sms', '{\"sms\": {\"text\": \"Bonjour -10%\"}}',"
            " to_timestamp($1 - 1), to_timestamp($1 + 3600) FROM decisions",
            now,
        )


def gateway(pool: asyncpg.Pool) -> TwilioGateway:
    n = 0

    def answer(_: httpx.Request) -> httpx.Response:
        nonlocal n
        n += 1
        return httpx.Response(201, json={"sid": f"SM{n:032d}", "status": "queued"})

    async def phone_of(customer_id: str) -> str | None:
        v: str | None = await pool.fetchval(
            "SELECT value FROM identities WHERE customer_id = $1 AND type = 'phone'", customer_id
        )
        return v

    async def nothing(*_: str) -> None:
        return None

    return TwilioGateway(
        account_sid="ACbench",
        auth_token="t",
        phone_of=phone_of,
        on_opt_out=nothing,
        on_invalid_number=nothing,
        from_number="+33700000000",
        transport=httpx.MockTransport(answer),
    )


async def run(url: str, rows: int, relays: int, batch: int) -> None:
    admin = await asyncpg.connect(url)
    name = f"geo_bench_relay_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    parts = urlsplit(url)
    db_url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    pools = [await create_pool(db_url, 1, 8) for _ in range(relays)]
    try:
        await migrate(pools[0])
        await fill(pools[0], rows)
        cfg = RelayConfig(batch_size=batch, concurrency=32)
        rs = [Relay(p, {"sms": gateway(p)}, cfg) for p in pools]
        t0 = time.perf_counter()
        stats = await asyncio.gather(*(r.drain(max_rounds=100_000) for r in rs))
        elapsed = time.perf_counter() - t0
        sent = sum(s.sent for s in stats)
        lat = await pools[0].fetch(
            "SELECT extract(epoch FROM a.ts - o.created_at) AS s FROM delivery_attempts a"
            " JOIN outbox o ON o.id = a.outbox_id WHERE a.attempt = 1 ORDER BY 1"
        )
        dupes = await pools[0].fetchval(
            "SELECT count(*) FROM (SELECT outbox_id FROM delivery_attempts"
            " GROUP BY outbox_id HAVING count(*) > 1) d"
        )
        xs = [float(r["s"]) for r in lat]
        p50 = xs[len(xs) // 2]
        p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
        print(
            f"{sent:,} offers sent by {relays} relay(s) in {elapsed:.2f} s:"
            f" {sent / elapsed:,.0f} offers/s; commit -> first attempt p50 {p50:.2f} s,"
            f" p99 {p99:.2f} s; rows attempted twice: {dupes}"
        )
        for r in rs:
            await r.aclose()
    finally:
        for p in pools:
            await p.close()
        admin = await asyncpg.connect(url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000)
    ap.add_argument("--relays", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    a = ap.parse_args()
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(run(url, a.rows, a.relays, a.batch))
        return
    with tempfile.TemporaryDirectory(prefix="geo-bench-relay-") as tmp:
        asyncio.run(run(embedded_url(Path(tmp)), a.rows, a.relays, a.batch))


if __name__ == "__main__":
    main()
