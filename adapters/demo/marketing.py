"""The demo's marketing, all through the real API: customer profiles and consents before the day
(some without location consent: their pings are dropped), a suppression list, offers and live
campaigns (after the day, readback.py reads every decision back and sums it up).

Deterministic from the seed, like the city and the day."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from adapters.demo import history
from adapters.demo.city import City

Headers = dict[str, str]
FIRST_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Jade", "Louise", "Emma", "Sarah", "Zoé", "Lucas",
    "Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Nathan", "Adam", "Raphaël", "Léo", "Mathis",
    "Thomas", "Yanis", "Noah", "Nina", "Anaïs", "Élise", "Théo", "Paul", "Rose",
)  # fmt: skip
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_P = (0.12, 0.22, 0.2, 0.18, 0.15, 0.13)
CSP_P = (0.01, 0.06, 0.2, 0.26, 0.26, 0.11, 0.06, 0.04)  # INSEE groups 1-8 (Paris-like)
P_LOCATION = (0.93, 0.05)  # granted, no statement at all; the rest denied
P_PUSH, P_SMS = 0.75, 0.6
P_OBJECTION = 0.03  # later objects to direct marketing (via the consents API)
P_BAD_PAYER = 0.01  # on the `bad_payers` suppression list
CONCURRENCY = 32


@dataclass
class Audience:
    """What the demo told the API about its customers."""

    located: set[int] = field(default_factory=set)  # location consent granted
    missing: set[int] = field(default_factory=set)  # no location statement: pings dropped
    denied: set[int] = field(default_factory=set)  # location refused: pings dropped
    push: set[int] = field(default_factory=set)
    sms: set[int] = field(default_factory=set)
    objecting: set[int] = field(default_factory=set)
    bad_payers: set[int] = field(default_factory=set)
    campaigns: dict[str, str] = field(default_factory=dict)  # id -> name
    app_users: set[int] = field(default_factory=set)  # with past weeks in the app (history.py)
    declining: set[int] = field(default_factory=set)  # of them, browsing less and less


def cid(i: int) -> str:
    return f"c{i:06d}"


async def send_all(jobs: Iterable[Any]) -> None:
    """Await the requests, CONCURRENCY at a time; the first that fails raises."""
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(job: Any) -> None:
        async with sem:
            (await job).raise_for_status()

    await asyncio.gather(*(one(j) for j in jobs))


async def setup(
    client: httpx.AsyncClient,
    admin: Headers,
    ingest: Headers,
    city: City,
    customers: int,
    seed: int,
    origin: float,
) -> Audience:
    """Profiles and consents (`PUT /v1/customers/{id}`), objections (`PUT .../consents`), a
    suppression list, offers and live campaigns, before the first ping of the day."""
    rng = np.random.default_rng([seed, 0x6D6B74])
    a = Audience()
    loc = rng.random(customers)
    push, sms = rng.random(customers) < P_PUSH, rng.random(customers) < P_SMS
    obj, bad = rng.random(customers) < P_OBJECTION, rng.random(customers) < P_BAD_PAYER
    names = rng.integers(0, len(FIRST_NAMES), customers)
    ages = rng.choice(len(AGE_BANDS), customers, p=AGE_P)
    csp = rng.choice(8, customers, p=CSP_P) + 1
    sizes = rng.integers(1, 5, customers)
    arr = rng.integers(1, 21, customers)
    signed = datetime.fromtimestamp(origin - 30 * 86400, UTC).isoformat()

    def said(status: str, source: str = "app") -> dict[str, str]:
        return {"status": status, "at": signed, "source": source}

    def profile(i: int) -> dict[str, Any]:
        consents: dict[str, Any] = {}
        if loc[i] < P_LOCATION[0]:
            consents["location"] = said("granted")
            a.located.add(i)
        elif loc[i] < sum(P_LOCATION):
            a.missing.add(i)  # never asked: no statement on record
        else:
            consents["location"] = said("denied")
            a.denied.add(i)
        for purpose, yes, got in (("push", push, a.push), ("sms", sms, a.sms)):
            consents[purpose] = said("granted" if yes[i] else "denied")
            if yes[i]:
                got.add(i)
        return {
            "first_name": FIRST_NAMES[names[i]],
            "age_band": AGE_BANDS[ages[i]],
            "csp": str(csp[i]),
            "household_size": int(sizes[i]),
            "home_postcode": f"750{arr[i]:02d}",
            "consents": consents,
        }

    await send_all(
        client.put(f"/v1/customers/{cid(i)}", json=profile(i), headers=ingest)
        for i in range(customers)
    )
    a.objecting = {int(i) for i in np.flatnonzero(obj)}
    stop = {"direct_marketing": said("denied", "web")}
    await send_all(
        client.put(f"/v1/customers/{cid(i)}/consents", json=stop, headers=ingest)
        for i in sorted(a.objecting)
    )
    a.bad_payers = {int(i) for i in np.flatnonzero(bad)}
    entries = {"customer_ids": [cid(i) for i in sorted(a.bad_payers)]}
    if a.bad_payers:
        r = await client.post(
            "/v1/suppression-lists/bad_payers/entries", json=entries, headers=admin
        )
        r.raise_for_status()
    for doc in offers(city, origin):
        (await client.post("/v1/offers", json=doc, headers=admin)).raise_for_status()
    for doc in campaigns(origin):
        (await client.post("/v1/campaigns", json=doc, headers=admin)).raise_for_status()
        a.campaigns[doc["id"]] = doc["name"]
    return a


def offers(city: City, origin: float) -> list[dict[str, Any]]:
    """Per-brand welcome, department and loyalty offers (scoped to the brand's stores), a
    price-match for competitor visitors, a lunch-time flash sale: SMS text and push content."""
    span = {"valid_from": origin - 7 * 86400, "valid_until": origin + 30 * 86400}
    stores: dict[str, list[str]] = {}
    for s in city.stores:
        if s.brand.kind == "store":
            stores.setdefault(s.brand.code, []).append(s.id)
    out: list[dict[str, Any]] = []
    for code, ids in sorted(stores.items()):
        out.append({
            "id": f"welcome-{code.lower()}", "name": f"Welcome {code}", "store_ids": ids,
            "content": {"push": {"title": "Bienvenue {first_name} !",
                                 "body": "Votre cadeau de bienvenue vous attend à {store_name}.",
                                 "deep_link": f"app://welcome/{code.lower()}"}},
            "value": 5.0, "category": "welcome", "redemption_cap": 100_000, **span,
        })  # fmt: skip
        out.append({
            "id": f"dept-{code.lower()}", "name": f"Department -15% {code}", "store_ids": ids,
            "content": {"sms": {"text": "{first_name}, -15% dans ce rayon à {store_name} avec"
                                        " le code {code}. STOP 36180"},
                        "push": {"title": "-15% dans ce rayon",
                                 "body": "{store_name} : code {code}, valable aujourd'hui.",
                                 "deep_link": f"app://dept/{code.lower()}"}},
            "value": 12.0, "category": "department", "budget": 1_000_000.0, **span,
        })  # fmt: skip
        out.append({
            "id": f"merci-{code.lower()}", "name": f"Loyalty thank-you {code}", "store_ids": ids,
            "content": {"push": {"title": "Merci {first_name} !",
                                 "body": "Votre carte est bien enregistrée : -10% sur votre"
                                         " prochain passage avec {code}.",
                                 "deep_link": f"app://loyalty/{code.lower()}"}},
            "value": 8.0, "category": "loyalty", **span,
        })  # fmt: skip
    out.append({
        "id": "price-match", "name": "Price match", "value": 15.0, "category": "comeback",
        "content": {"sms": {"text": "{first_name}, on s'aligne sur les prix concurrents :"
                                    " -10% chez nous avec {code}. STOP 36180"},
                    "push": {"title": "On s'aligne !", "body": "-10% avec le code {code}."}},
        **span,
    })  # fmt: skip
    out.append({
        "id": "cart-rescue", "name": "Cart rescue -10%", "value": 10.0, "category": "cart",
        "content": {"sms": {"text": "{first_name}, votre panier vous attend à {store_name}, à"
                                    " {distance_m} m : -10% avec {code}. STOP 36180"},
                    "push": {"title": "Votre panier vous attend",
                             "body": "À {distance_m} m, chez {store_name} : -10% avec {code}."}},
        **span,
    })  # fmt: skip
    out.append({
        "id": "retention", "name": "Retention call", "value": 25.0, "category": "retention",
        "content": {"sms": {"text": "{first_name}, un conseiller vous rappelle. STOP 36180"}},
        **span,
    })  # fmt: skip
    out.append({
        "id": "lunch-flash", "name": "Lunch flash -20%", "value": 20.0, "category": "flash",
        "content": {"sms": {"text": "Pause déj' ? -20% jusqu'à 14h à {store_name} : {code}."
                                    " STOP 36180"},
                    "push": {"title": "Flash midi -20%", "body": "Jusqu'à 14h à {store_name}."}},
        **span,
    })  # fmt: skip
    out.append(history.offer(span))
    return out


def campaigns(origin: float) -> list[dict[str, Any]]:
    span = {"start": origin - 7 * 86400, "end": origin + 30 * 86400, "status": "live"}
    dwell = {"type": "presence", "event": "dwell"}
    return [
        {"id": "welcome", "name": "Welcome on store enter", "priority": 1, **span,
         "triggers": [{"type": "presence", "event": "enter", "fence_kinds": ["store"]}],
         "offer_ids": ["welcome-hs", "welcome-ml"], "channels": ["push"], "control_pct": 10.0,
         "suppression_lists": ["bad_payers"]},
        {"id": "department", "name": "Department offer on zone dwell", "priority": 2, **span,
         "triggers": [{**dwell, "fence_kinds": ["zone"], "sources": ["gps", "beacon"]}],
         "offer_ids": ["dept-hs", "dept-ml"], "channels": ["push", "sms"],
         "suppression_lists": ["bad_payers"]},
        {"id": "nfc-thanks", "name": "Loyalty thank-you on an NFC tap (till, shelf)",
         "priority": 2, **span,
         "triggers": [{"type": "presence", "event": "enter", "fence_kinds": ["zone"],
                       "sources": ["nfc"]}],
         "offer_ids": ["merci-hs", "merci-ml"], "channels": ["push"], "cooldown_s": 86400.0,
         "suppression_lists": ["bad_payers"]},
        {"id": "re-engage", "name": "Re-engagement on competitor dwell", "priority": 3, **span,
         "triggers": [{**dwell, "fence_kinds": ["competitor"]}],
         "offer_ids": ["price-match"], "channels": ["sms"], "control_pct": 10.0},
        {"id": "lunch", "name": "Lunch flash (12:00-14:00, prospects/new)", "priority": 4,
         **span, "triggers": [{**dwell, "fence_kinds": ["store"]}],
         "conditions": {"all": [
             {"field": "context.local_hour", "op": "between", "value": [12, 14]},
             {"field": "profile.segment", "op": "in", "value": ["prospect", "new"]}]},
         "offer_ids": ["lunch-flash"], "channels": ["sms"], "cooldown_s": 86400.0},
        {"id": "showroom", "name": "Showrooming: price match on a product view in store",
         "priority": 5, **span,
         "triggers": [{"type": "event", "event": e, "in_store": True}
                      for e in ("product_view", "search")],
         "offer_ids": ["price-match"], "channels": ["push", "sms"], "control_pct": 10.0},
        {"id": "cart", "name": "Cart abandoned near a store (500 m)", "priority": 5, **span,
         "triggers": [{"type": "event", "event": "cart_abandon", "near_store_m": 500}],
         "offer_ids": ["cart-rescue"], "channels": ["push", "sms"], "control_pct": 10.0},
        {"id": "churn-call", "name": "Churn risk: a call-center task", "priority": 10,
         "action": "call_center_task", **span,
         "triggers": [{"type": "event", "event": "info_request"}],
         "offer_ids": ["retention"]},
        history.campaign(span),
    ]  # fmt: skip
