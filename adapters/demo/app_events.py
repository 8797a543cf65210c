"""The shoppers' app during the demo day: behavioural events posted through `POST /v1/events`
(the phones' ingest key) as the simulated clock reaches them, for the event-triggered campaigns:
- showrooming (seed 004: ~10 % check prices online while in a store): a product view during a
  planned store visit;
- a cart abandoned in the app while walking past a store (the cart-abandon campaign looks for a
  store within 500 m of the customer's latest fix);
- a look at the contract's terms (`info_request`), which the churn campaign answers with a
  call-center task.
Deterministic from the seed."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from adapters.demo.city import CLOSE_S, OPEN_S, City
from adapters.demo.simulate import Fleet

P_SHOWROOM = 0.1  # of planned visits to our stores
P_CART = 0.15  # of walks past a store
P_INFO = 0.01  # of customers, once in the day
UPLOAD_EVERY_S = 120.0  # the app uploads its events every 2 simulated minutes
CATEGORIES = ("shoes", "bags", "beauty", "kids", "sport", "home")


@dataclass
class AppFeed:
    """The day's app events in time order, posted as the clock passes them."""

    rows: list[tuple[float, dict[str, Any]]]  # (unix ts, event row)
    next: int = 0
    posted: Counter[str] = field(default_factory=Counter)  # accepted, by type
    last: float = -math.inf

    async def until(self, client: httpx.AsyncClient, headers: dict[str, str], now: float) -> None:
        """Post every event due by `now` in one request, at most every UPLOAD_EVERY_S of the
        simulated clock (as an app batches its uploads; one request per event would cost the
        demo more than the events' worth)."""
        if now - self.last < UPLOAD_EVERY_S:
            return
        self.last = now
        stop = self.next
        while stop < len(self.rows) and self.rows[stop][0] <= now:
            stop += 1
        if stop == self.next:
            return
        batch = [row for _, row in self.rows[self.next : stop]]
        self.next = stop
        r = await client.post("/v1/events?wait=true", json={"events": batch}, headers=headers)
        answer = r.raise_for_status().json()
        bad = {e["index"] for e in answer.get("rejected", [])}
        self.posted.update(row["type"] for i, row in enumerate(batch) if i not in bad)


def app_events(city: City, fleet: Fleet, customers: int, seed: int, origin: float) -> AppFeed:
    rng = np.random.default_rng([seed, 0x617070])
    rows: list[tuple[float, dict[str, Any]]] = []

    def add(c: int, kind: str, t: float, props: dict[str, Any]) -> None:
        row = {"customer_id": f"c{c:06d}", "type": kind, "ts": origin + t, "channel": "app",
               "event_id": f"app-{kind}-{len(rows)}", "properties": props}  # fmt: skip
        rows.append((origin + t, row))

    for v in fleet.visits:
        if city.stores[v.store].brand.kind != "store" or rng.random() >= P_SHOWROOM:
            continue
        t = v.t_in + float(rng.uniform(0.4, 0.8)) * (v.t_out - v.t_in)
        cat = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        add(v.customer, "product_view", t, {"product_id": f"p{int(rng.integers(10**5))}",
                                            "category": cat})  # fmt: skip
    for w in fleet.walkpasts:
        if rng.random() < P_CART:
            amount = round(float(rng.uniform(20, 180)), 2)
            add(w.customer, "cart_abandon", (w.t_in + w.t_out) / 2, {"amount": amount})
    for c in np.flatnonzero(rng.random(customers) < P_INFO).tolist():
        add(c, "info_request", float(rng.uniform(OPEN_S, CLOSE_S)), {"topic": "contract terms"})
    rows.sort(key=lambda r: r[0])
    return AppFeed(rows)
