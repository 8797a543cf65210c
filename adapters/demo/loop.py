"""The demo closes the loop: offers leave through the real outbox relay to the `log` sink, on
the simulated clock; the phones that got a push report opens and clicks (`POST
/v1/interactions`); some customers redeem their code at a till (`POST /v1/redemptions`), more
often those who come back to a store; purchases are posted as behavioural events (`POST
/v1/events`) for treated, control and holdout customers alike, with a small true lift for the
treated; then each campaign's results are read back (`GET /v1/campaigns/{id}/results`).

Deterministic from the seed, like the city and the day."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from adapters.db.demo import Pool
from adapters.delivery.gateways.base import Message, Result
from adapters.delivery.gateways.log_sink import LogSink
from adapters.delivery.relay import Relay, RelayConfig, RelayStats
from adapters.demo.city import City
from adapters.demo.simulate import Fleet

Headers = dict[str, str]
Tables = list[tuple[str, list[str], list[list[str]]]]
P_OPEN, P_CLICK = 0.45, 0.35  # a push is opened; an opened push is clicked
P_REDEEM, P_REDEEM_BACK = 0.02, 0.12  # a code redeemed; by a customer in or back in a store
P_PURCHASE = 0.1  # anyone with a decision (treated or not) orders within the next hours
BASKET = (3.7, 0.45)  # lognormal (mu, sigma) of a basket: ~45 €
ATTRIBUTION_DAYS = 7
DRAIN_EVERY_S = 300.0  # the relay runs every 5 simulated minutes


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message as the phone got it: the outbox id is the push's `message_id`."""

    id: int
    customer: str
    campaign: str
    channel: str
    code: str | None
    ts: float  # simulated unix time it was sent


class PhoneSink(LogSink):
    """The `log` sink, also keeping what it 'sent' (the phones' inboxes, for the simulation)."""

    def __init__(self, delivery: Delivery) -> None:
        super().__init__()
        self.delivery = delivery
        self.inbox: list[Delivered] = []

    async def send(self, msg: Message) -> Result:
        res = await super().send(msg)
        code = msg.payload.get("code")
        got = Delivered(msg.id, msg.customer_id, msg.campaign_id, msg.channel,
                        code if isinstance(code, str) else None, self.delivery.now)  # fmt: skip
        self.inbox.append(got)
        return res


class Delivery:
    """The outbox relay on the simulated clock, run every DRAIN_EVERY_S of it."""

    def __init__(self, pool: Pool) -> None:
        self.now = 0.0
        self.last = -math.inf
        self.sink = PhoneSink(self)
        gateways = {"push": self.sink, "sms": self.sink}
        cfg = RelayConfig(batch_size=500)
        self.relay = Relay(pool, gateways, cfg, clock=lambda: self.now)
        self.stats = RelayStats()

    async def tick(self, now: float, force: bool = False) -> None:
        self.now = max(self.now, now)
        if force or self.now - self.last >= DRAIN_EVERY_S:
            self.last = self.now
            self.stats.add(await self.relay.drain())


@dataclass
class Loop:
    relay: RelayStats
    delivered: Counter[str] = field(default_factory=Counter)  # by channel
    opened: int = 0
    clicked: int = 0
    redeemed: int = 0
    refused: Counter[int] = field(default_factory=Counter)  # redemption answers other than 201
    revenue: float = 0.0
    purchases: int = 0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # campaign -> results
    app_events: Counter[str] = field(default_factory=Counter)  # posted during the day, by type
    wall_s: float = 0.0
    # STOP replies to offer SMS through the signed inbound callback (adapters/demo/stop_replies)
    stop_replies: int = 0
    stop_refused: int = 0  # callbacks not answered 200
    stops_honoured: int = 0  # senders now SMS-revoked
    sms_after_stop: int = 0  # offer SMS that left after their customer's STOP (must be 0)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


async def _outbox_offers(client: httpx.AsyncClient, admin: Headers) -> dict[int, str]:
    """Outbox id -> offer id, via GET /v1/outbox."""
    out: dict[int, str] = {}
    after: int | None = 0
    while after is not None:
        params: dict[str, str | int] = {"status": "sent", "limit": 1000, "after_id": after}
        page = (await client.get("/v1/outbox", params=params, headers=admin)).raise_for_status()
        doc = page.json()
        out.update({r["id"]: r["offer_id"] for r in doc["messages"]})
        after = doc.get("next_after_id")
    return out


async def _post_chunks(
    client: httpx.AsyncClient, url: str, key: str, rows: list[dict[str, Any]], n: int, h: Headers
) -> list[dict[str, Any]]:
    answers = []
    for i in range(0, len(rows), n):
        r = await client.post(url, json={key: rows[i : i + n]}, headers=h)
        answers.append(r.raise_for_status().json())
    return answers


def _purchase(cid: str, order: str, ts: float, amount: float, channel: str) -> dict[str, Any]:
    return {
        "customer_id": cid, "type": "purchase", "ts": ts, "channel": channel,
        "event_id": f"demo-{order}",
        "properties": {"order_id": order, "amount": amount, "currency": "EUR",
                       "items": [{"category": "retail", "quantity": 1, "price": amount}]},
    }  # fmt: skip


async def close_loop(
    client: httpx.AsyncClient,
    admin: Headers,
    ingest: Headers,
    delivery: Delivery,
    city: City,
    fleet: Fleet,
    offer_stores: dict[str, list[str]],
    decided: Iterable[tuple[str, str, str, float]],
    campaigns: Iterable[str],
    seed: int,
    origin: float,
) -> Loop:
    """After the day: opens, clicks, redemptions and purchases through the API, then results.
    `offer_stores`: offer id -> the stores it may be redeemed in (empty: any of ours);
    `decided`: (customer, campaign, outcome, unix ts) of every decision."""
    started = time.perf_counter()
    rng = np.random.default_rng([seed, 0x6C6F6F70])
    loop = Loop(delivery.stats)
    latest = time.time() - 120  # nothing reported from the future
    ours = [s.id for s in city.stores if s.brand.kind == "store"]
    # customer -> their store visits (in, out, store), in time order
    visits: dict[int, list[tuple[float, float, str]]] = defaultdict(list)
    for v in sorted(fleet.visits, key=lambda v: v.t_in):
        visits[v.customer].append((origin + v.t_in, origin + v.t_out, city.stores[v.store].id))
    offer_of = await _outbox_offers(client, admin)
    taps: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for m in sorted(delivery.sink.inbox, key=lambda m: m.id):
        loop.delivered[m.channel] += 1
        if m.channel == "push" and rng.random() < P_OPEN:
            ts = min(m.ts + float(rng.uniform(60, 2400)), latest)
            kind = "clicked" if rng.random() < P_CLICK else "opened"
            taps.append({"message_id": m.id, "customer_id": m.customer, "kind": kind,
                         "ts": _iso(ts)})  # fmt: skip
        allowed = offer_stores.get(offer_of.get(m.id, ""), []) or ours
        # in one of the offer's stores when it comes, or later that day: likelier to redeem
        there = [(a, b, s) for a, b, s in visits.get(int(m.customer[1:]), ()) if b > m.ts]
        there = [v for v in there if v[2] in allowed]
        if m.code is None or rng.random() >= (P_REDEEM_BACK if there else P_REDEEM):
            continue
        if there:
            t_in, t_out, store = there[0]
            ts = min(max(t_in, m.ts) + float(rng.uniform(120, 900)), t_out)
        else:
            ts = m.ts + float(rng.uniform(1200, 3 * 3600))
            store = allowed[int(rng.integers(len(allowed)))]
        ts, amount = min(ts, latest), round(float(rng.lognormal(*BASKET)), 2)
        body = {"code": m.code, "store_id": store, "amount": amount, "ts": _iso(ts)}
        r = await client.post("/v1/redemptions", json=body, headers=admin)
        if r.status_code != 201:
            loop.refused[r.status_code] += 1
            continue
        loop.redeemed += 1
        loop.revenue += amount
        events.append(_purchase(m.customer, f"till-{m.code}", ts, amount, "store"))
    # every customer with a decision may order anyway: the baseline the uplift is measured on
    first: dict[str, float] = {}
    for cid, _c, outcome, ts in decided:
        if outcome in ("send", "held", "control", "holdout"):
            first[cid] = min(ts, first.get(cid, math.inf))
    for cid in sorted(first):
        if rng.random() < P_PURCHASE:
            ts = min(first[cid] + float(rng.uniform(600, 8 * 3600)), latest)
            amount = round(float(rng.lognormal(*BASKET)), 2)
            events.append(_purchase(cid, f"web-{cid}", ts, amount, "web"))
    for a in await _post_chunks(client, "/v1/interactions", "items", taps, 1000, ingest):
        loop.opened += a["accepted"]
    loop.clicked = sum(t["kind"] == "clicked" for t in taps)
    for a in await _post_chunks(client, "/v1/events?wait=true", "events", events, 500, ingest):
        loop.purchases += a["accepted"]

    async def results(campaign: str) -> None:
        params = {"attribution_days": ATTRIBUTION_DAYS}
        r = await client.get(f"/v1/campaigns/{campaign}/results", params=params, headers=admin)
        loop.results[campaign] = r.raise_for_status().json()

    await asyncio.gather(*(results(c) for c in campaigns))
    loop.wall_s = time.perf_counter() - started
    return loop


def _rate(g: dict[str, Any] | None) -> str:
    if not g or not g["customers"]:
        return "–"
    return f"{100 * g['rate']:.1f}% of {g['customers']:,}"


def _pp(u: dict[str, Any]) -> str:
    if u["absolute"] is None:
        return "–"
    p = "" if u["p_value"] is None else f" (p {u['p_value']:.2f})"
    return f"{100 * u['absolute']:+.1f} pp{p}"


def tables(loop: Loop, campaigns: Iterable[str]) -> Tables:
    refused = ", ".join(f"{n} × {s}" for s, n in sorted(loop.refused.items())) or "none"
    app = loop.app_events
    flow = [
        ["app events in the day: product views in store / carts abandoned / contract terms",
         f"{app['product_view']:,} / {app['cart_abandon']:,} / {app['info_request']:,}"],
        ["offers sent by the outbox relay to the log sink: push / SMS",
         f"{loop.delivered['push']:,} / {loop.delivered['sms']:,}"],
        ["push opens reported (POST /v1/interactions), of which clicks",
         f"{loop.opened:,} ({loop.clicked:,})"],
        ["codes redeemed at the till (POST /v1/redemptions)",
         f"{loop.redeemed:,} (refused: {refused})"],
        ["revenue of the redeemed baskets", f"{loop.revenue:,.2f} €"],
        ["STOP / ARRÊT replies (signed inbound SMS callback): consent revoked, refused,"
         " SMS sent after",
         f"{loop.stop_replies:,}: {loop.stops_honoured:,} / {loop.stop_refused:,}"
         f" / {loop.sms_after_stop:,}"],
        ["purchases posted (POST /v1/events): treated, control, holdout",
         f"{loop.purchases:,}"],
        ["wall time of this part (s)", f"{loop.wall_s:,.1f}"],
    ]  # fmt: skip
    rows = []
    for c in campaigns:
        if (r := loop.results.get(c)) is None:
            continue
        t, g = r["totals"], r["groups"]
        rows.append([c, f"{t['sent']:,}", f"{t['opened']:,} / {t['clicked']:,}",
                     f"{t['redeemed']:,}", f"{t['revenue']:,.0f} €", _rate(g.get("treated")),
                     _rate(g.get("control")), _rate(g.get("holdout")),
                     _pp(r["uplift_vs_control"]), _pp(r["uplift_vs_holdout"])])  # fmt: skip
    head = ["campaign", "sent", "opened / clicked", "redeemed", "revenue", "treated conv.",
            "control conv.", "holdout conv.", "uplift vs control", "uplift vs holdout"]  # fmt: skip
    title = (f"Conversions and uplift by campaign (GET /v1/campaigns/{{id}}/results; "
             f"a conversion: an order within {ATTRIBUTION_DAYS} days of a decision)")  # fmt: skip
    return [("Closing the loop", ["", ""], flow), (title, head, rows)]
