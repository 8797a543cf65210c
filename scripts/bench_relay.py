"""Relay throughput and latency against a real HTTP gateway: the Standard Webhooks gateway
(signing, JSON, the endpoint-disabled check in PostgreSQL) POSTing to a loopback receiver in
another process (asyncio, 204), on a throwaway embedded PostgreSQL (or DATABASE_URL's server,
in a new database).

    python scripts/bench_relay.py --rows 5000 --relays 2 --rate 200 --seconds 15

Two measures, written to bench/relay.json and bench/relay.md:
- backlog: `--rows` rows committed at once, drained by `--relays` relays: offers/s;
- steady: offers committed at `--rate` per second for `--seconds` while the relays run as in
  production (`run_forever`, poll interval `--poll`): the time from the offer's commit (outbox
  `created_at`, in the decision's transaction) to its first attempt being recorded (the gateway
  round trip included), p50 / p99."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from machine_info import cpu_name

from adapters.db.connect import create_pool, embedded_url
from adapters.db.migrate import migrate
from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.webhook import WebhookGateway
from adapters.delivery.relay import Relay
from geo_engine.delivery.config import RelayConfig

SECRET = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA=="


class Receiver(asyncio.Protocol):
    """A partner endpoint that accepts everything with 204: a minimal HTTP/1.1 keep-alive
    server (headers to the blank line, Content-Length bytes of body), so that the receiver is
    not what the bench measures."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")


def serve_receiver(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Receiver, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fill(pool: asyncpg.Pool, start: int, n: int) -> None:
    """`n` decisions and their outbox rows in one transaction (as the decision service does)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "WITH d AS (INSERT INTO decisions (customer_id, trigger_kind, trigger_name,"
            " trigger_instance, ts, outcome, traces) SELECT 'c' || i, 'presence', 'enter',"
            " 'pe:' || i, now(), 'send', '[]' FROM generate_series($1::int, $2::int) i"
            " RETURNING id, customer_id, trigger_instance)"
            " INSERT INTO outbox (decision_id, idempotency_key, customer_id, campaign_id,"
            " trigger_instance, offer_id, channel, payload, send_after, expires_at)"
            " SELECT id, customer_id || '|c1|' || trigger_instance, customer_id, 'c1',"
            ' trigger_instance, \'o1\', \'push\', \'{"push": {"title": "-10%", "body": "hi"}}\','
            " now() - interval '1 s', now() + interval '1 h' FROM d",
            start,
            start + n - 1,
        )


def relay(pool: asyncpg.Pool, url: str, cfg: RelayConfig) -> Relay:
    d = DeliveryDirectory(pool, None)
    gw = WebhookGateway(
        url=url,
        secret=SECRET,
        is_disabled=d.webhook_disabled,
        disable=d.disable_webhook,
        # one connection per send in flight, kept alive
        transport=httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=cfg.concurrency)),
    )
    return Relay(pool, {"push": gw}, cfg)


async def first_attempt_latency(pool: asyncpg.Pool) -> list[float]:
    rows = await pool.fetch(
        "SELECT extract(epoch FROM a.ts - o.created_at) AS s FROM delivery_attempts a"
        " JOIN outbox o ON o.id = a.outbox_id WHERE a.attempt = 1 ORDER BY 1"
    )
    return [float(r["s"]) for r in rows]


def pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")


async def backlog(pools: list[asyncpg.Pool], url: str, rows: int, batch: int) -> dict[str, Any]:
    await fill(pools[0], 1, rows)
    cfg = RelayConfig(batch_size=batch, concurrency=32)
    rs = [relay(p, url, cfg) for p in pools]
    t0 = time.perf_counter()
    stats = await asyncio.gather(*(r.drain(max_rounds=100_000) for r in rs))
    elapsed = time.perf_counter() - t0
    for r in rs:
        await r.aclose()
    sent = sum(s.sent for s in stats)
    dupes = await pools[0].fetchval(
        "SELECT count(*) FROM (SELECT outbox_id FROM delivery_attempts"
        " GROUP BY outbox_id HAVING count(*) > 1) d"
    )
    return {
        "rows": rows,
        "sent": sent,
        "seconds": elapsed,
        "offers_per_s": sent / elapsed,
        "rows_attempted_twice": dupes,
    }


async def steady(
    pools: list[asyncpg.Pool], url: str, rate: float, seconds: float, poll: float
) -> dict[str, Any]:
    await pools[0].execute("TRUNCATE outbox, decisions, delivery_attempts CASCADE")
    cfg = RelayConfig(batch_size=100, concurrency=32, poll_interval_s=poll)
    rs = [relay(p, url, cfg) for p in pools]
    tasks = [asyncio.create_task(r.run_forever()) for r in rs]
    tick = 0.05  # commit every 50 ms, like decisions arriving in small groups
    per_tick = max(1, round(rate * tick))
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        await fill(pools[0], 10_000_000 + n, per_tick)
        n += per_tick
        await asyncio.sleep(max(0.0, t0 + (n / per_tick) * tick - time.monotonic()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = await pools[0].fetchval("SELECT count(*) FROM outbox WHERE status <> 'sent'")
        if not left:
            break
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t
    for r in rs:
        await r.aclose()
    xs = await first_attempt_latency(pools[0])
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "poll_interval_s": poll,
        "offers": n,
        "sent": len(xs),
        "decision_to_first_attempt_s": {"p50": pct(xs, 0.5), "p99": pct(xs, 0.99)},
    }


async def run(url: str, a: argparse.Namespace, hook_url: str) -> dict[str, Any]:
    admin = await asyncpg.connect(url)
    name = f"geo_bench_relay_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    parts = urlsplit(url)
    db_url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    pools = [await create_pool(db_url, 1, 8) for _ in range(a.relays)]
    try:
        await migrate(pools[0])
        out = {"backlog": await backlog(pools, hook_url, a.rows, a.batch)}
        out["steady"] = [await steady(pools, hook_url, a.rate, a.seconds, p) for p in a.poll]
        return out
    finally:
        for p in pools:
            await p.close()
        admin = await asyncpg.connect(url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit("the loopback receiver did not start")


def report(result: dict[str, Any], a: argparse.Namespace, out: Path) -> str:
    b = result["backlog"]
    lines = [
        f"Outbox relay -> Standard Webhooks gateway -> loopback receiver (asyncio, another"
        f" process, real HTTP/1.1); {a.relays} relay(s) in one process;"
        f" {result['machine']['database']}; {result['machine']['cpu']},"
        f" {result['machine']['cores']} cores, Python {platform.python_version()}",
        "",
        f"`python scripts/bench_relay.py --rows {a.rows} --relays {a.relays} --rate {a.rate:g}"
        f" --seconds {a.seconds:g} --poll {' '.join(f'{p:g}' for p in a.poll)}`",
        "",
        "| measure | value |",
        "|---|---|",
        f"| backlog of {b['rows']:,} drained: offers/s | {b['offers_per_s']:,.0f} |",
        f"| rows attempted twice (two relays) | {b['rows_attempted_twice']} |",
    ]
    for s in result["steady"]:
        lat = s["decision_to_first_attempt_s"]
        head = f"at {s['rate_per_s']:g} offers/s, poll {s['poll_interval_s']:g} s"
        lines += [
            f"| {head}: decision -> first attempt p50 | {lat['p50'] * 1000:.0f} ms |",
            f"| {head}: decision -> first attempt p99 | {lat['p99'] * 1000:.0f} ms |",
        ]
    lines += [
        "",
        "Decision -> first attempt = outbox `created_at` (the decision's commit) to the first"
        " attempt's record (after the receiver's answer). A relay waiting between rounds wakes"
        " on the outbox's NOTIFY (a committed decision), so the poll interval"
        " (`GEO_ENGINE_RELAY_POLL_INTERVAL_S`) hardly matters here: it only bounds how late"
        " held rows, retries and lapsed leases are seen."
        f" Load average during the run: {result['machine']['load_avg']} (other work on the"
        " machine: figures are lower bounds for an idle one).",
    ]
    md = "\n".join(lines) + "\n"
    out.mkdir(exist_ok=True)
    (out / "relay.json").write_text(json.dumps(result, indent=2))
    (out / "relay.md").write_text(md)
    return md


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000)
    ap.add_argument("--relays", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rate", type=float, default=200.0, help="steady: offers/s committed")
    ap.add_argument("--seconds", type=float, default=15.0, help="steady: for how long")
    ap.add_argument("--poll", type=float, nargs="+", default=[1.0, 0.1], help="poll interval(s)")
    ap.add_argument("--out", type=Path, default=Path("bench"))
    a = ap.parse_args()
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(target=serve_receiver, args=(port,))
    proc.start()
    try:
        wait_port(port)
        hook = f"http://127.0.0.1:{port}/hook"
        url = os.environ.get("DATABASE_URL")
        if url:
            result = asyncio.run(run(url, a, hook))
        else:
            with tempfile.TemporaryDirectory(prefix="geo-bench-relay-") as tmp:
                result = asyncio.run(run(embedded_url(Path(tmp)), a, hook))
    finally:
        proc.terminate()
        proc.join(10)
    cpu = cpu_name()
    result["machine"] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg": round(os.getloadavg()[0], 1),
        "database": "PostgreSQL at DATABASE_URL"
        if os.environ.get("DATABASE_URL")
        else "embedded pgserver",
    }
    print(report(result, a, a.out))


if __name__ == "__main__":
    main()
