"""Profiles over HTTP on PostgreSQL: attributes and consents in, the assembled profile out
(RFM scores and segments across a customer base, home/work from night and office fixes)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import httpx
import pytest

from tests.helpers import LAT0, LON0, offset, ping

DAY = 86_400.0


async def test_attributes_and_consents_round_trip(client: httpx.AsyncClient) -> None:
    body = {
        "first_name": "Léa",
        "age_band": "25-34",
        "sex": "female",
        "csp": "3",
        "household_size": 2,
        "home_postcode": "75011",
        "consents": {
            "sms": {"status": "granted", "at": "2026-01-05T09:00:00+01:00", "source": "store"},
            "direct_marketing": {"status": "denied", "at": "2026-01-05T09:00:00Z", "source": "web"},
        },
    }
    r = await client.put("/v1/customers/lea", json=body)
    assert r.status_code == 200, r.text
    p = (await client.get("/v1/customers/lea/profile")).json()
    assert p["attributes"]["csp"] == {
        "code": "3",
        "label": "Cadres et professions intellectuelles supérieures",
    }
    assert p["attributes"]["first_name"] == "Léa" and p["attributes"]["home_postcode"] == "75011"
    # an older statement never undoes a newer one; a newer one replaces it
    older = {"consents": {"sms": {"status": "revoked", "at": "2025-01-01T00:00:00Z",
                                  "source": "app"}}, "age_band": "25-34"}  # fmt: skip
    r = await client.put("/v1/customers/lea", json=older)
    assert r.json()["consents"]["sms"]["status"] == "granted"
    assert r.json()["attributes"]["first_name"] is None  # attributes are replaced as a whole
    newer = {"consents": {"sms": {"status": "revoked", "at": "2026-02-01T00:00:00Z",
                                  "source": "app"}}}  # fmt: skip
    r = await client.put("/v1/customers/lea", json=newer)
    assert r.json()["consents"]["sms"]["status"] == "revoked"
    p = (await client.get("/v1/customers/lea/profile")).json()
    assert p["consents"]["direct_marketing"]["status"] == "denied"
    assert p["objections"] == {"processing": False, "direct_marketing": True}
    assert p["rfm"] is None and p["segment"] == "prospect"


async def test_bad_attributes_name_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ({"home_postcode": "7501"}, "home_postcode"),
        ({"home_postcode": "00100"}, "home_postcode"),
        ({"csp": "9"}, "csp"),
        ({"csp": 9}, "csp"),
        ({"csp": True}, "csp"),
        ({"age_band": "30-40"}, "age_band"),
        ({"household_size": 0}, "household_size"),
        ({"consents": {"fax": {"status": "granted", "at": "2026-01-01T00:00:00Z",
                               "source": "x"}}}, "consents.fax.[key]"),
        ({"consents": {"sms": {"status": "maybe", "at": "2026-01-01T00:00:00Z",
                               "source": "x"}}}, "consents.sms.status"),
        ({"consents": {"sms": {"status": "granted", "at": "2026-01-01T00:00:00",
                               "source": "x"}}}, "consents.sms.at"),
    ]  # fmt: skip
    for body, field in cases:
        r = await client.put("/v1/customers/x", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field, r.json()
    assert (await client.get("/v1/customers/x/profile")).status_code == 404


async def test_rfm_scores_and_segments_over_a_base(
    client: httpx.AsyncClient, services: Any
) -> None:
    now = time.time()
    rows = []
    # ten buyers: b0 bought long ago once, little; b9 bought recently, often, much
    for i in range(10):
        for k in range(i + 1):
            rows.append(
                {
                    "customer_id": f"b{i}",
                    "type": "purchase",
                    "ts": now - (200 - 20 * i) * DAY - k * 60,
                    "channel": "web",
                    "properties": {
                        "order_id": f"o{i}-{k}",
                        "amount": 10.0 * (i + 1),
                        "currency": "EUR",
                        "items": [{"category": "food"}],
                    },
                }
            )
    r = await client.post("/v1/events?wait=true", json={"events": rows})
    assert r.json()["accepted"] == len(rows)
    services.profiles.refresh_scores(force=True)
    seg = {}
    for i in range(10):
        p = (await client.get(f"/v1/customers/b{i}/profile")).json()
        seg[i] = (p["rfm"]["scores"]["r"], p["rfm"]["scores"]["f"], p["segment"])
        assert p["rfm"]["scores"]["base_size"] == 10
    assert seg[9][:2] == (5, 5) and seg[9][2] == "champions"
    assert seg[0][:2] == (1, 1) and seg[0][2] == "lost"
    assert seg[1][2] == "lost" and seg[3][2] == "hibernating"
    assert seg[5][2] == "loyal"


async def test_home_and_work_from_night_and_office_fixes(
    client: httpx.AsyncClient, services: Any
) -> None:
    paris = services.profiles.places_cfg.timezone
    assert paris == "Europe/Paris"
    office = offset(LAT0, LON0, 3000, 2000)
    # the last 4 weekdays before today, local time: nights at home, days at the office
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=d) for d in range(1, 12)]
    days = [d for d in days if d.weekday() < 5][:4]
    pings = []
    for d in days:
        base = datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        for h in (22, 23):  # 23:00/00:00 Paris
            pings.append(ping("max", LAT0, LON0, base + h * 3600))
        for h in (9, 11, 13):  # 10:00-14:00 Paris
            pings.append(ping("max", *office, base + h * 3600))
    pings.sort(key=lambda p: p["ts"])
    r = await client.post("/v1/pings?wait=true", json={"pings": pings})
    assert r.status_code == 200 and r.json()["accepted"] == len(pings), r.text
    n = await services.profiles.refresh_places(time.time() + 60)
    assert n == 1
    p = (await client.get("/v1/customers/max/profile")).json()["places"]
    assert p["home"]["h3"] == h3.latlng_to_cell(LAT0, LON0, 9)
    assert p["work"]["h3"] == h3.latlng_to_cell(*office, 9)
    assert p["home"]["confidence"] == 1.0 and p["home"]["days"] == 4
    assert p["work"]["hours"] == 12
    # a second run sees nothing new and changes nothing
    assert await services.profiles.refresh_places(time.time() + 120) == 0


async def test_places_read_in_windows_of_a_few_fixes_learn_the_same(
    client: httpx.AsyncClient, services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job reads the fixes received since its mark in windows of receipt time of about
    CHUNK_FIXES fixes, one transaction each, so a long backlog never holds the event loop nor
    sits in memory whole: four uploads read one or two at a time give the same home and work."""
    from adapters.services import places

    monkeypatch.setattr(places, "CHUNK_FIXES", 2)
    monkeypatch.setattr(places, "MIN_WINDOW", timedelta(microseconds=1))
    monkeypatch.setattr(places, "FIRST_WINDOW", timedelta(milliseconds=10))
    windows: list[datetime] = []
    fold = places._fold

    async def counted(*args: Any) -> int:
        windows.append(args[4])
        return await fold(*args)

    monkeypatch.setattr(places, "_fold", counted)
    office = offset(LAT0, LON0, 3000, 2000)
    today = datetime.now(UTC).date()
    days = [d for d in (today - timedelta(days=k) for k in range(1, 12)) if d.weekday() < 5][:4]
    for d in reversed(days):  # one upload a day, oldest first, each received at its own time
        base = datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        pings = [ping("max", LAT0, LON0, base + h * 3600) for h in (22, 23)]
        pings += [ping("max", *office, base + h * 3600) for h in (9, 11, 13)]
        pings.sort(key=lambda p: p["ts"])
        r = await client.post("/v1/pings?wait=true", json={"pings": pings})
        assert r.status_code == 200, r.text
        await asyncio.sleep(0.05)
    assert await services.profiles.refresh_places(time.time() + 60) == 1
    assert len(windows) >= 4 and windows == sorted(windows)
    p = (await client.get("/v1/customers/max/profile")).json()["places"]
    assert p["home"]["h3"] == h3.latlng_to_cell(LAT0, LON0, 9)
    assert p["work"]["h3"] == h3.latlng_to_cell(*office, 9)
    assert p["home"]["days"] == 4 and p["work"]["hours"] == 12
    assert await services.profiles.refresh_places(time.time() + 120) == 0


async def test_rfm_through_the_api_matches_lifetimes(
    client: httpx.AsyncClient, services: Any
) -> None:
    """The SQL aggregate behind the API, on the same transactions as lifetimes (mapping in
    tests/unit/test_rfm.py): orders = frequency, average = monetary_value, recency_days =
    (T - recency) / 86400; a cancelled order is left out of both."""
    import pandas as pd  # test extra: the reference must run, never skip
    from lifetimes import utils

    now = float(int(time.time()))
    rows, tx = [], []
    for c in range(5):
        for k in range(c + 2):
            ts, amount = now - (3 + 11 * k + c) * DAY, 10.0 + 7 * k + c
            order = f"o{c}-{k}"
            rows.append({"customer_id": f"r{c}", "type": "purchase", "ts": ts, "channel": "web",
                         "properties": {"order_id": order, "amount": amount, "currency": "EUR",
                                        "items": [{"category": "tea"}]}})  # fmt: skip
            if k != 1:  # order k=1 gets cancelled
                tx.append((f"r{c}", ts, amount))
    rows += [{"customer_id": f"r{c}", "type": "purchase_cancel", "ts": now, "channel": "web",
              "properties": {"order_id": f"o{c}-1"}} for c in range(5)]  # fmt: skip
    r = await client.post("/v1/events?wait=true", json={"events": rows})
    assert r.json()["accepted"] == len(rows), r.text
    df = pd.DataFrame(tx, columns=["customer", "ts", "amount"])
    df["date"] = pd.to_datetime(df["ts"], unit="s")
    ref = utils.summary_data_from_transaction_data(
        df, "customer", "date", monetary_value_col="amount",
        observation_period_end=pd.to_datetime(now, unit="s"), freq="s",
        include_first_transaction=True,
    )  # fmt: skip
    for c in range(5):
        got = services.profiles.profile(f"r{c}", now)
        assert got.rfm.orders == ref.loc[f"r{c}", "frequency"]
        assert got.rfm.average == pytest.approx(ref.loc[f"r{c}", "monetary_value"])
        lt = ref.loc[f"r{c}"]
        assert got.rfm.recency_days(now) == pytest.approx((lt["T"] - lt["recency"]) / DAY)


async def test_csp_accepts_the_code_as_a_number(client: httpx.AsyncClient) -> None:
    assert (await client.put("/v1/customers/n", json={"csp": 3})).status_code == 200
    p = (await client.get("/v1/customers/n/profile")).json()
    assert p["attributes"]["csp"]["code"] == "3"
