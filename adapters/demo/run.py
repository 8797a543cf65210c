"""Run the demo: build the city, simulate the day, send it through the real HTTP API, score it.

The app runs in process, called through `httpx.ASGITransport`: every ping goes through the real
FastAPI app (auth, msgspec decoding, validation, the fence index, the presence engine, the
PostgreSQL commit), and the demo drives `runtime.sweep(now=...)`, the outbox relay, the
event triggers' presence reads and the profile's velocity windows with the simulated clock, which
a server in another process would not allow. Only TCP and HTTP/1.1 parsing are left out (scripts/
benchmarks measure those over real sockets). The stores' beacons and NFC tags: radio.py; what
the phones hear and tap: phones.py; pings, sightings and taps in one upload stream: stream.py,
send.py. The app's past weeks, posted at the start of the day: history.py; its events during the
day: app_events.py; after it, opens, clicks, redemptions, purchases and each campaign's
results: loop.py; the scorecard: summary.py, detection.py (visits per signal).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import Counter
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr
from rich.console import Console

from adapters.demo import marketing as mkt
from adapters.demo import readback
from adapters.demo import simulate as sim
from adapters.demo.app_events import app_events
from adapters.demo.city import TIMEZONE, build_city
from adapters.demo.history import history, post_history
from adapters.demo.loop import Delivery, close_loop
from adapters.demo.phones import simulate_signals
from adapters.demo.radio import install, register
from adapters.demo.report import write_report
from adapters.demo.send import send_day
from adapters.demo.stop_replies import INBOUND_URL, StopReplies, honoured, sms_after_stop
from adapters.demo.stream import flushed
from adapters.demo.summary import DemoSummary, print_summary, score, summary_tables
from adapters.settings import Settings

BATCH = 500  # pings per request, as a phone fleet's gateway would upload them
DEMO_DATABASE = "geo_demo"


def demo_day(now: datetime | None = None) -> date:
    """The latest day before today (Paris) when shops open (not a Sunday): at most 2 days ago,
    well inside the 7 days of fixes the API accepts."""
    tz = ZoneInfo(TIMEZONE)
    d = (now or datetime.now(tz)).astimezone(tz).date() - timedelta(days=1)
    return d - timedelta(days=1) if d.weekday() == 6 else d


async def fresh_database(settings: Settings, name: str = DEMO_DATABASE) -> str:
    """Drop and create database `name` on the configured server (embedded, or DATABASE_URL's),
    so every run starts empty and the engine's own database is never touched."""
    from adapters.db.connect import resolve_url
    from adapters.db.connect import with_database as on
    from adapters.db.demo import recreate_database

    server = await asyncio.to_thread(resolve_url, settings.database_url, settings.data_dir)
    if urlsplit(server).path.strip("/") == name:
        server = on(server, "postgres")
    await recreate_database(server, name)
    return on(server, name)


def run_demo(
    customers: int,
    seed: int,
    out: Path,
    progress: bool = True,
    *,
    data_dir: Path | None = None,
    console: Console | None = None,
    serve: tuple[str, int] | None = None,
) -> DemoSummary:
    """`geo-engine demo`: a fresh `geo_demo` database on the configured server (the embedded
    one in the data dir unless DATABASE_URL is set), a simulated day through the API, the
    summary printed, the report written to `out`. `serve` (host, port): then the engine's API
    and console on that database until Ctrl-C (serve.py)."""
    console = console or Console()
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)

    async def main() -> DemoSummary:
        with console.status("Starting PostgreSQL, creating a fresh demo database…"):
            url = await fresh_database(settings)
        # the legal default: pings of customers without location consent are dropped, counted
        demo = settings.model_copy(update={"database_url": url})
        summary = await run_demo_async(customers, seed, out, demo, progress, console)
        if serve is not None:
            from adapters.demo.serve import serve_demo

            await serve_demo(demo, *serve, console)
        return summary

    return asyncio.run(main())


async def run_demo_async(
    customers: int,
    seed: int,
    out: Path,
    settings: Settings,
    progress: bool = True,
    console: Console | None = None,
) -> DemoSummary:
    """The demo on the (empty) database `settings` names; prints the summary, writes `out`."""
    from adapters.api.app import create_app
    from adapters.composition import build_services

    console = console or Console()
    started = time.perf_counter()
    day = demo_day()
    origin = datetime.combine(day, dtime(0), ZoneInfo(TIMEZONE)).timestamp()
    with console.status(f"Building Paris and simulating {customers:,} customers…"):
        city = build_city(seed)
        fleet = sim.simulate_day(city, customers, seed)
        radio = install(city, seed)
        signals = simulate_signals(city, fleet, radio, seed)
        fleet = flushed(fleet, signals)  # the phones' uploads, signals among them
    sim_s = time.perf_counter() - started
    admin = "demo-admin-" + secrets.token_urlsafe(16)
    stops = StopReplies("demo-twilio-" + secrets.token_urlsafe(16), seed)
    settings = settings.model_copy(
        update={
            "admin_key": SecretStr(admin),
            # inbound SMS (STOP replies) come signed with this token, to this URL
            "twilio_auth_token": SecretStr(stops.auth_token),
            "twilio_inbound_url": INBOUND_URL,
        }
    )
    svc = await build_services(settings, background=False)  # the sweep runs on simulated time
    try:
        transport = httpx.ASGITransport(app=create_app(services=svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            auth = {"Authorization": f"Bearer {admin}"}
            fences = {"type": "FeatureCollection", "features": city.features()}
            r = await client.post("/v1/geofences/import", json=fences, headers=auth)
            key = {"name": "demo phone fleet", "role": "ingest"}
            r.raise_for_status()
            with console.status("Beacons and NFC tags in the stores through the API…"):
                await register(client, auth, radio)
            r = await client.post("/v1/api-keys", json=key, headers=auth)
            phones = {"Authorization": f"Bearer {r.raise_for_status().json()['key']}"}
            with console.status("Profiles, consents, offers and campaigns through the API…"):
                audience = await mkt.setup(client, auth, phones, city, customers, seed, origin)
            delivery = Delivery(svc.pool)  # the outbox relay, to the log sink, on sim time
            feed = app_events(city, fleet, customers, seed, origin)
            if svc.decisions is not None:  # event triggers read presence as of the sim clock
                svc.decisions.clock = lambda: delivery.now
            # velocity windows slide on the simulated clock too; the app's past weeks come in
            # at the start of the day (decliners cross into falling: win-back decisions)
            svc.profiles.clock = lambda: delivery.now
            delivery.now = origin + sim.DAY_START
            with console.status("The app's past weeks through POST /v1/events…"):
                past = history(customers, seed, origin)
                await post_history(client, phones, past)
                audience.app_users, audience.declining = past.users, past.declining

            async def on_time(now: float, last: bool = False) -> None:
                delivery.now = max(delivery.now, now)
                await feed.until(client, phones, math.inf if last else now)
                await delivery.tick(now, last)
                await stops.reply(client, phones, delivery.sink.inbox, delivery.now)

            sent = await send_day(
                client, phones, svc, city, fleet, signals, radio, origin, BATCH, progress,
                console, on_time,
            )  # fmt: skip
            listed = await _list_events(client, auth)
            with console.status("Reading the decisions back through the API…"):
                who = {e.customer_id for e in sent.events}
                who |= {row["customer_id"] for _, row in feed.rows}  # event-triggered ones
                who |= {mkt.cid(c) for c in past.users}  # velocity-triggered ones
                sources = {e.id: e.source for e in sent.events}
                marketing = await readback.read_back(client, auth, audience, who, sources)
            with console.status("Opens, clicks, redemptions, purchases; campaign results…"):
                stores = {o["id"]: o.get("store_ids", []) for o in mkt.offers(city, origin)}
                loop = await close_loop(
                    client, auth, phones, delivery, city, fleet, stores,
                    marketing.decided, audience.campaigns, seed, origin,
                )  # fmt: skip
                kept = await honoured(client, auth, stops)
    finally:
        await svc.close()
    summary = score(city, fleet, sent, listed, day, audience.located)
    summary.signals.beacons, summary.signals.tags = len(radio.beacons), len(radio.tags)
    summary.signals.ranging = len(signals.ranging)
    summary.marketing, summary.loop = marketing, loop
    loop.app_events = feed.posted
    loop.stop_replies, loop.stop_refused, loop.stops_honoured = (
        len(stops.replied),
        stops.refused,
        kept,
    )
    loop.sms_after_stop = sms_after_stop(stops, delivery.sink.inbox)
    summary.sim_s, summary.total_s = sim_s, time.perf_counter() - started
    summary.report = write_report(out, city, fleet, sent, summary, summary_tables(summary))
    print_summary(summary, console)
    return summary


async def _list_events(client: httpx.AsyncClient, headers: dict[str, str]) -> Counter[str]:
    """Every stored presence event, read back through GET /v1/presence-events (by type)."""
    found: Counter[str] = Counter()
    cursor: str | None = ""
    while cursor is not None:
        params: dict[str, str | int] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/presence-events", params=params, headers=headers)
        page = r.raise_for_status().json()
        found.update(e["type"] for e in page["events"])
        cursor = page["next_cursor"]
    return found
