"""After the demo day: every decision of the customers who did something, read back through
`GET /v1/decisions` and summed up (outcomes, offers by campaign and channel, the rules that
stopped campaigns) into the summary's tables."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from adapters.demo.marketing import CONCURRENCY, Audience, Headers

Tables = list[tuple[str, list[str], list[list[str]]]]
SOURCES = ("gps", "beacon", "nfc")


@dataclass
class Marketing:
    """Decisions read back through the API, summed up."""

    audience: Audience
    decisions: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_campaign: Counter[tuple[str, str]] = field(default_factory=Counter)  # (campaign, column)
    stopped: Counter[str] = field(default_factory=Counter)  # per campaign considered: the rule
    outbox: int = 0  # decisions with an outbox row
    deciders: set[int] = field(default_factory=set)  # customers with a decision
    offered: set[int] = field(default_factory=set)  # customers with an offer (send or held)
    held_out_with_outbox: int = 0  # holdout/control decisions with an outbox row: must be 0
    # (customer, campaign, outcome, unix ts) of every decision with a campaign
    decided: list[tuple[str, str, str, float]] = field(default_factory=list)
    # trigger kind (presence, velocity, event) -> customers with a decision / an offer on it
    decided_on: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    offered_on: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    # presence-triggered: (source of the presence event, decisions | offers | campaign id)
    by_source: Counter[tuple[str, str]] = field(default_factory=Counter)

    def held(self, channel: str) -> int:
        return sum(n for (_, k), n in self.by_campaign.items() if k == f"held {channel}")


async def read_back(
    client: httpx.AsyncClient,
    admin: Headers,
    audience: Audience,
    customers: Iterable[str],
    sources: Mapping[int, str],
) -> Marketing:
    """Every decision of `customers` (those with presence or app events, or an app history),
    via GET /v1/decisions. `sources`: presence event id -> its source (gps, beacon, nfc), for
    the decision a presence event triggered (its `presence_event_id`)."""
    m = Marketing(audience)
    rows: list[dict[str, Any]] = []

    async def one(customer: str) -> None:
        r = await client.get(
            "/v1/decisions", params={"customer_id": customer, "limit": 1000}, headers=admin
        )
        rows.extend(r.raise_for_status().json()["decisions"])

    sem = asyncio.Semaphore(CONCURRENCY)

    async def bounded(customer: str) -> None:
        async with sem:
            await one(customer)

    await asyncio.gather(*(bounded(c) for c in sorted(set(customers))))
    for d in sorted(rows, key=lambda d: int(d["id"])):
        m.decisions += 1
        c, out = int(d["customer_id"][1:]), d["outcome"]
        if out == "send" and d["channel"] == "call_center":
            out = "call"  # a task for the call center: no message, no outbox row
        m.deciders.add(c)
        m.decided_on[d["trigger_kind"]].add(c)
        m.outcomes[out] += 1
        has_outbox = d["idempotency_key"] is not None
        m.outbox += has_outbox
        if d["campaign_id"]:
            ts = datetime.fromisoformat(d["ts"]).timestamp()
            m.decided.append((d["customer_id"], d["campaign_id"], out, ts))
        src = None
        if d["trigger_kind"] == "presence":  # "unknown": an event the demo never saw (a bug)
            src = sources.get(d["presence_event_id"] or 0, "unknown")
            m.by_source[(src, "decisions")] += 1
        if out in ("send", "held"):
            if src is not None:
                m.by_source[(src, "offers")] += 1
                m.by_source[(src, d["campaign_id"])] += 1
            m.offered.add(c)
            m.offered_on[d["trigger_kind"]].add(c)
            m.by_campaign[(d["campaign_id"], f"{out} {d['channel']}")] += 1
        elif out == "call":
            m.by_campaign[(d["campaign_id"], "call task")] += 1
        elif out in ("holdout", "control"):
            m.by_campaign[(d["campaign_id"], out)] += 1
            m.held_out_with_outbox += has_outbox
        for t in d["traces"]:
            if t["result"] not in ("chosen", "holdout", "control"):
                m.stopped[t["result"]] += 1
                m.by_campaign[(t["campaign_id"], "stopped")] += 1
    return m


def tables(m: Marketing, dropped: Counter[str]) -> Tables:
    a = m.audience
    n = len(a.located) + len(a.missing) + len(a.denied)
    pct = 100 / max(n, 1)
    people = [
        ["profiles set (PUT /v1/customers/{id})", f"{n:,}"],
        ["location consent granted", f"{len(a.located):,} ({pct * len(a.located):.0f}%)"],
        ["no location statement: pings dropped", f"{len(a.missing):,} customers, "
         f"{dropped['no_location_consent']:,} pings"],
        ["location refused: pings dropped", f"{len(a.denied):,} customers, "
         f"{dropped['location_consent_refused']:,} pings"],
        ["push / SMS consent granted", f"{len(a.push):,} / {len(a.sms):,}"],
        ["objections to direct marketing", f"{len(a.objecting):,}"],
        ["suppression list bad_payers", f"{len(a.bad_payers):,}"],
        ["app users with past weeks posted / browsing falling off",
         f"{len(a.app_users):,} / {len(a.declining):,}"],
    ]  # fmt: skip
    o = m.outcomes
    totals = [
        ["decisions (read back via GET /v1/decisions)", f"{m.decisions:,}"],
        ["offers: sent now / held for the sending window", f"{o['send']:,} / {o['held']:,}"],
        ["held SMS (French window, Mon-Sat 08-20)", f"{m.held('sms'):,}"],
        ["global holdout / campaign control (not sent)", f"{o['holdout']:,} / {o['control']:,}"],
        ["call-center tasks (churn risk)", f"{o['call']:,}"],
        ["customers decided on a velocity crossing", f"{len(m.decided_on['velocity']):,}"],
        ["no offer", f"{o['none']:,}"],
        ["outbox rows", f"{m.outbox:,}"],
        ["customers with an offer", f"{len(m.offered):,}"],
    ]
    cols = ("send push", "send sms", "held push", "held sms", "call task", "holdout", "control",
            "stopped")  # fmt: skip
    camp = [
        [f"{name} ({c})", *(f"{m.by_campaign[(c, k)]:,}" for k in cols)]
        for c, name in a.campaigns.items()
    ]
    stopped = [[r, f"{k:,}"] for r, k in m.stopped.most_common()]
    by_source = [
        [s, f"{m.by_source[(s, 'decisions')]:,}", f"{m.by_source[(s, 'offers')]:,}",
         ", ".join(f"{c} {n:,}" for (ss, c), n in sorted(m.by_source.items())
                   if ss == s and c in a.campaigns) or "–"]
        for s in [*SOURCES, *sorted({s for s, _ in m.by_source} - set(SOURCES))]
    ]  # fmt: skip
    return [
        ("Customers, consents and profiles", ["", ""], people),
        ("Decisions", ["", ""], totals),
        ("Offers by campaign and channel", ["campaign", *cols], camp),
        ("Offers fired per trigger source (the presence event each decision references)",
         ["source", "decisions", "offers", "offers by campaign"], by_source),
        ("Campaigns stopped, by rule (per campaign considered)", ["rule", "count"], stopped),
    ]  # fmt: skip
