"""The shoppers' past weeks in the app, and the campaign that answers a decline: re-engagement
on falling velocity (seed 000: a crossing into `falling` is a campaign trigger).

Some customers use the app: their page views of the WEEKS weeks before the day are posted
through `POST /v1/events` (the phones' ingest key) at the start of the day, each customer's
history whole in one request, so the profile judges it once: no half-posted history crosses.
Most browse steadily (the same few page views every day: velocity stays "stable"); a few
(P_DECLINE) stopped a week or more ago, keeping a trickle since: their page-view velocity falls
past -30 % and the crossing, live at ingest, fires the re-engagement campaign through the
profile's signal hook (adapters/services/decisions.py), holdout, consent and caps included.

Views fall on 07:00-22:00 Paris, inside one UTC day: the profile counts UTC days.
Deterministic from the seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

WEEKS = 3
P_APP = 0.35  # customers with an app history
P_DECLINE = 0.12  # of them: browsing fell off a week or more ago
VIEWS_PER_DAY = (1, 4)  # a steady user's daily page views: low (inclusive), high (exclusive)
QUIET_DAYS = (8, 11)  # a decliner's last full day was this many days ago (low, high exclusive)
MAX_TRICKLE = 2  # page views a decliner still made in the last week
BATCH = 1000  # events per request: the API's default maximum
SITE = "https://app.example.fr"
PAGES = ("home", "catalogue", "offers", "stores", "account", "new-in")
KPI = "page_view"  # posted page and product views count here (geo_engine/profile/events.py)


@dataclass
class History:
    """Per customer (in id order) their page views; who uses the app, who declines."""

    rows: list[list[dict[str, Any]]]
    users: set[int] = field(default_factory=set)
    declining: set[int] = field(default_factory=set)
    posted: int = 0  # accepted by the API


def history(customers: int, seed: int, origin: float) -> History:
    """`origin`: unix time of the simulated day's local midnight."""
    rng = np.random.default_rng([seed, 0x686973])
    users = np.flatnonzero(rng.random(customers) < P_APP).tolist()
    out = History([])
    for c in users:
        daily = int(rng.integers(*VIEWS_PER_DAY))
        declines = bool(rng.random() < P_DECLINE)
        quiet = int(rng.integers(*QUIET_DAYS)) if declines else 0
        k = int(rng.integers(MAX_TRICKLE + 1)) if declines else 0
        trickle = rng.choice(np.arange(1, 8), k, replace=False)
        ago = np.arange(7 * WEEKS, 0, -1)  # days before the day, oldest first
        # the same count every day, not a Poisson draw: a 7-day window of a steady user's
        # random counts would swing past -30 % now and then (a false "falling")
        per_day = np.where(ago >= quiet, daily, np.isin(ago, trickle).astype(int))
        days = np.repeat(ago, per_day)
        ts = origin - days * 86400.0 + 3600.0 * rng.uniform(7.0, 22.0, days.size)
        pages = rng.integers(len(PAGES), size=days.size)
        rows = [
            {"customer_id": f"c{c:06d}", "type": "page_view", "channel": "app", "ts": t,
             "event_id": f"hist-{c}-{i}", "properties": {"url": f"{SITE}/{PAGES[p]}"}}
            for i, (t, p) in enumerate(zip(ts.tolist(), pages.tolist(), strict=True))
        ]  # fmt: skip
        out.rows.append(rows)
        out.users.add(c)
        if declines:
            out.declining.add(c)
    return out


async def post_history(client: httpx.AsyncClient, headers: dict[str, str], h: History) -> int:
    """Post every history, whole customers per request (at most BATCH events); returns how
    many the API accepted (a customer who objected to profiling has his dropped)."""
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        if batch:
            r = await client.post("/v1/events?wait=true", json={"events": batch}, headers=headers)
            h.posted += r.raise_for_status().json()["accepted"]
            batch.clear()

    for rows in h.rows:
        if len(batch) + len(rows) > BATCH:
            await flush()
        batch.extend(rows)
    await flush()
    return h.posted


def offer(span: dict[str, float]) -> dict[str, Any]:
    """We miss you: -15 % on the next purchase, in any of our stores."""
    return {
        "id": "we-miss-you", "name": "We miss you -15%", "value": 15.0, "category": "winback",
        "content": {"sms": {"text": "{first_name}, vous nous manquez : -15% sur votre prochain"
                                    " achat avec le code {code}. STOP 36180"},
                    "push": {"title": "Vous nous manquez, {first_name} !",
                             "body": "-15% sur votre prochain achat avec le code {code}.",
                             "deep_link": "app://offers/we-miss-you"}},
        **span,
    }  # fmt: skip


def campaign(span: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "win-back", "name": "Re-engagement on falling velocity (page views)",
        "priority": 6, **span,
        "triggers": [{"type": "velocity", "kpi": KPI, "direction": "falling"}],
        "offer_ids": ["we-miss-you"], "channels": ["push", "sms"], "control_pct": 10.0,
        "suppression_lists": ["bad_payers"],
    }  # fmt: skip
