"""The demo: a deterministic city and day (pure), and a small day end to end through the real
HTTP API on PostgreSQL, whose summary must add up and whose report must hold the map and charts."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections import Counter
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from rich.console import Console
from shapely import Point

from adapters.demo import stream
from adapters.demo.city import CLEAR_M, build_city, to_xy
from adapters.demo.phones import PATH_LOSS_N, SENSITIVITY_DBM, simulate_signals
from adapters.demo.radio import POWER_1M, install
from adapters.demo.simulate import (
    APPROACH,
    DAY_END,
    DAY_START,
    MOVE,
    SPOOF_JUMP,
    SPOOF_MOCK,
    WALKPAST,
    simulate_day,
)
from geofences.validation import fence_from_feature
from tests.integration.test_backtest_cli import cli


def test_city_is_deterministic_and_every_fence_is_valid() -> None:
    a, b = build_city(7), build_city(7)
    assert a.features() == b.features()
    assert a.features() != build_city(8).features()
    assert 30 <= len(a.stores) <= 60
    kinds = {f.kind for f in a.fences}
    assert kinds == {"store", "zone", "competitor"}
    for feature in a.features():
        fence_from_feature(feature)  # raises on anything the API would refuse
    for s, walk in zip(a.stores, a.sidewalks, strict=True):
        for z in s.zones:
            assert s.shape.contains(z.shape), z.id
        assert walk is not None, s.id


def test_day_is_deterministic_and_street_fixes_keep_clear_of_fences() -> None:
    city = build_city(3)
    f1, f2 = simulate_day(city, 60, 3), simulate_day(city, 60, 3)
    for name in ("customer", "ts", "upload", "lat", "lon", "acc", "mock", "bad", "resent"):
        assert np.array_equal(getattr(f1, name), getattr(f2, name)), name
    assert f1.visits == f2.visits and f1.walkpasts == f2.walkpasts
    assert ((f1.ts >= DAY_START) & (f1.ts <= DAY_END)).all()
    assert (f1.upload >= f1.ts).all()
    assert (np.diff(f1.upload) >= 0).all()  # sent in upload order
    # the true path of a walk or commute stays CLEAR_M from every fence (but the visited store)
    street = np.isin(f1.phase, (MOVE, WALKPAST))
    near, _ = city.nearest_fence(f1.true_x[street], f1.true_y[street], CLEAR_M - 0.5)
    assert (near < 0).all()
    # and the noise stays within twice the reported accuracy
    x, y = to_xy(f1.lat, f1.lon)
    err = np.hypot(x - f1.true_x, y - f1.true_y)
    spoof = np.isin(f1.phase, (SPOOF_MOCK, SPOOF_JUMP))
    assert (err[~spoof] <= 2 * f1.acc[~spoof] + 0.5).all()
    assert (f1.phase == APPROACH).any() and len(f1.visits) > 10 and len(f1.walkpasts) > 10


def test_beacons_and_tags_sit_in_their_stores_and_walk_pasts_are_out_of_range() -> None:
    city = build_city(3)
    radio = install(city, 3)
    assert radio.beacons == install(city, 3).beacons
    fences = {f.id: f for f in city.fences}
    ours = {i for i, s in enumerate(city.stores) if s.brand.kind == "store"}
    assert {b.store for b in radio.beacons} == ours == {t.store for t in radio.tags}
    for b in radio.beacons:
        assert fences[b.zone].department and fences[b.zone].shape.contains(Point(b.x, b.y))
    for t in radio.tags:
        assert fences[t.fence].shape.contains(Point(t.x, t.y)), t.id
    assert sum(t.placement == "till" for t in radio.tags) == len(ours)
    assert len({(b.uuid, b.major, b.minor) for b in radio.beacons}) == len(radio.beacons)
    # from the far sidewalk, even the strongest beacon is on average below what a phone hears
    fleet = simulate_day(city, 60, 3)
    walk = fleet.phase == WALKPAST
    bxy = np.array([(b.x, b.y) for b in radio.beacons])
    d = np.hypot(
        fleet.true_x[walk, None] - bxy[None, :, 0], fleet.true_y[walk, None] - bxy[None, :, 1]
    )
    assert walk.any() and d.min() >= CLEAR_M
    assert POWER_1M[1] - 10 * PATH_LOSS_N * np.log10(d.min()) < SENSITIVITY_DBM


def test_signals_are_heard_in_visits_and_sent_in_time_order_with_the_pings() -> None:
    city = build_city(3)
    radio = install(city, 3)
    fleet = simulate_day(city, 150, 3)
    sig = simulate_signals(city, fleet, radio, 3)
    again = simulate_signals(city, fleet, radio, 3)
    for name in ("sight_customer", "sight_ts", "sight_beacon", "sight_rssi", "tap_ts", "tap_tag"):
        assert np.array_equal(getattr(sig, name), getattr(again, name)), name
    assert 0.5 < len(sig.ranging) / 150 < 0.8  # not every phone ranges
    assert len(sig.sight_ts) > 100 and len(sig.tap_ts) > 5
    assert set(sig.sight_customer.tolist()) <= sig.ranging
    # every sighting and tap during a visit to one of our stores, at that store
    visits = {}
    for v in fleet.visits:
        visits.setdefault(v.customer, []).append(v)
    heard = [radio.beacons[i].store for i in sig.sight_beacon]
    tapped = [radio.tags[i].store for i in sig.tap_tag]
    for c, t, s in [
        *zip(sig.sight_customer, sig.sight_ts, heard, strict=True),
        *zip(sig.tap_customer, sig.tap_ts, tapped, strict=True),
    ]:
        assert any(v.store == s and v.t_in <= t <= v.t_out + 1 for v in visits[int(c)])
        assert city.stores[s].brand.kind == "store"
    # the phones' queue: a signal goes up 1 s after it is taken, with every fix taken before
    sent = stream.flushed(fleet, sig)
    assert (np.diff(sent.upload) >= 0).all() and (sent.upload >= sent.ts).all()
    assert sorted(zip(sent.customer.tolist(), sent.ts.tolist(), strict=True)) == sorted(
        zip(fleet.customer.tolist(), fleet.ts.tolist(), strict=True)
    )
    assert sent.upload.sum() < fleet.upload.sum()  # brought forward, never held back
    fresh = ~sent.resent
    for c, t in zip(sig.sight_customer.tolist(), sig.sight_ts.tolist(), strict=True):
        before = fresh & (sent.customer == c) & (sent.ts <= t)
        assert (sent.upload[before] <= t + stream.SIGNAL_DELAY_S).all()
    # per customer, the stream posts pings, sightings and taps in time order (resent copies
    # aside: the engine calls them duplicate or late); with short slices, a customer's pings
    # after their signals may wait for the next slice
    for size in (500, 40):
        order: dict[int, list[tuple[float, int]]] = {}
        posted = 0
        for _start, stop, steps in stream.upload_slices(sent, sig, size, 60.0):
            posted = stop
            for step in steps:
                who, when = {
                    stream.PINGS: (sent.customer, sent.ts),
                    stream.SIGHTINGS: (sig.sight_customer, sig.sight_ts),
                    stream.TAPS: (sig.tap_customer, sig.tap_ts),
                }[step.kind]
                assert step.kind != stream.PINGS or all(i < stop for i in step.rows)
                for i in sorted(step.rows, key=lambda i: when[i]):
                    if step.kind != stream.PINGS or not sent.resent[i]:
                        order.setdefault(int(who[i]), []).append((float(when[i]), step.kind))
        assert posted == len(sent.ts)
        kinds = Counter(kind for seq in order.values() for _, kind in seq)
        assert kinds == {
            stream.PINGS: int((~sent.resent).sum()),
            stream.SIGHTINGS: len(sig.sight_ts),
            stream.TAPS: len(sig.tap_ts),
        }
        for seq in order.values():
            signals = [k for k, (_, kind) in enumerate(seq) if kind != stream.PINGS]
            for k in signals:
                assert all(t <= seq[k][0] for t, _ in seq[:k]), seq[k]
                assert all(t >= seq[k][0] for t, _ in seq[k + 1 :]), seq[k]


@pytest.mark.slow
async def test_a_small_demo_day_end_to_end(
    clean_pool: asyncpg.Pool,
    settings_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from adapters.demo.run import run_demo_async

    out = tmp_path / "report.html"
    printed = io.StringIO()
    settings = settings_factory(require_location_consent=True)  # the legal default
    console = Console(file=printed, width=400)
    s = await run_demo_async(200, 11, out, settings, progress=False, console=console)
    m = s.marketing
    assert m is not None
    a = m.audience
    # every row is accounted for: the pings of customers without location consent are dropped
    dropped = s.ignored["no_location_consent"] + s.ignored["location_consent_refused"]
    assert s.customers == 200 and s.rows > 10_000
    assert a.missing and dropped > 0
    assert s.accepted + s.rejected + dropped == s.rows
    assert s.rejected == s.malformed > 0
    assert s.ignored["mock"] == s.mock_rows
    assert s.ignored["duplicate"] > 0 and s.ignored["late"] > 0
    assert sum(s.ignored.values()) < s.accepted
    # what the API returned is what it stored
    stored = {t: sum(n for (tt, _k), n in s.events.items() if tt == t) for t in s.listed}
    assert stored == dict(s.listed)
    assert s.sequence_errors == 0
    # walk-pasts and spoofs never enter; every enter belongs to a planned visit
    assert s.walkpasts > 100 and s.walkpast_triggers == 0
    assert s.spoof_triggers == 0 and s.unplanned == 0
    # store visits read enter -> dwell -> exit; the day ends with everyone out
    for kind in ("store", "zone", "competitor"):
        assert s.events[("enter", kind)] == s.events[("exit", kind)]
    planned, detected = s.total("planned"), s.total("detected")
    assert planned > 50 and detected >= 0.75 * planned
    # beacons in the departments and NFC tags at the tills were heard and tapped, in time
    # order with the pings (nothing late), and took part in presence
    radio = s.signals
    sig = radio.outcomes
    assert radio.beacons > 100 and radio.tags > 30
    assert 0.5 * s.customers < radio.ranging < 0.8 * s.customers
    assert sig[("beacon", "used")] > 0 and sig[("beacon", "too_far")] > 0
    assert sig[("nfc", "used")] > 0
    assert sig[("beacon", "late")] == 0 and sig[("nfc", "late")] == 0
    assert not {o for _, o in sig} & {"rejected", "unknown_beacon"}
    assert all(radio.sources[("enter", src)] > 0 for src in ("gps", "beacon", "nfc"))
    # visits detected per signal, per brand: each signal saw some, together the most
    for brand in ("Maison Lumière", "Hexa Sport"):
        per = {src: s.visits[(brand, src)] for src in ("gps", "beacon", "nfc")}
        combined = s.visits[(brand, "detected")]
        assert all(per.values()) and combined >= max(per.values()), (brand, per)
        assert combined <= s.visits[(brand, "planned")]
    assert s.visits[("PrixBas", "beacon")] == s.visits[("PrixBas", "nfc")] == 0
    assert s.visits[("PrixBas", "detected")] == s.visits[("PrixBas", "gps")]
    assert s.total("detected") >= s.total("gps") and s.total("detected") >= 0.9 * planned
    assert s.total("exit") == detected
    assert 0.5 * detected <= s.total("dwell") <= detected
    assert s.total("pairs") >= detected
    assert sum(n for (_, w), n in s.by_store.items() if w == "detected") == detected
    # marketing: offers decided, and only to whom the rules allow
    o = m.outcomes
    assert m.decisions == sum(o.values()) > 0 and o["send"] > 0
    # no decision on where a customer is without location consent (velocity needs none)
    assert m.decided_on["presence"] <= a.located
    assert m.deciders <= a.located | m.decided_on["velocity"]
    assert not (m.offered_on["presence"] | m.offered_on["event"]) & (a.missing | a.denied)
    assert not m.offered & a.objecting
    assert all(c in a.push | a.sms for c in m.offered)
    assert m.outbox == o["send"] + o["held"]  # holdout and control: decided, logged, not sent
    assert m.held_out_with_outbox == 0
    assert o["holdout"] + o["control"] > 0
    assert m.stopped["no_consent"] > 0 and sum(m.by_campaign.values()) > 0
    assert set(c for c, _ in m.by_campaign) <= set(a.campaigns)
    # offers per trigger source: every presence decision references an event the demo saw
    assert m.by_source[("gps", "decisions")] > 0 and m.by_source[("gps", "offers")] > 0
    assert not any(src not in ("gps", "beacon", "nfc") for src, _ in m.by_source)
    assert all(src == "nfc" for (src, k), n in m.by_source.items() if k == "nfc-thanks" and n)
    # the loop closed: the relay sent the offers to the log sink on the simulated clock (held
    # SMS go out when the window opens, or stay pending), the app reported opens and clicks, the
    # tills redeemed codes, purchases were posted; the results endpoint counts the same
    lp = s.loop
    assert lp is not None and set(lp.results) == set(a.campaigns)
    sent = sum(lp.delivered.values())
    assert o["send"] <= sent <= o["send"] + o["held"] and lp.relay.sent == sent
    totals = [r["totals"] for r in lp.results.values()]
    assert sum(t["sent"] for t in totals) == sent
    assert sum(t["opened"] for t in totals) == lp.opened > 0 and 0 < lp.clicked < lp.opened
    assert sum(t["clicked"] for t in totals) == lp.clicked
    assert sum(t["redeemed"] for t in totals) == lp.redeemed > 0 and not lp.refused
    assert abs(sum(t["revenue"] for t in totals) - lp.revenue) < 0.01
    assert lp.purchases > lp.redeemed  # till baskets, and orders from every group
    # STOP replies through the signed inbound callback: consent revoked, no SMS after it
    assert lp.stop_replies > 0 and lp.stops_honoured == lp.stop_replies
    assert lp.stop_refused == 0 and lp.sms_after_stop == 0
    # the app's events during the day fired the event-triggered campaigns: showrooming (a
    # product view in a store), a cart abandoned near a store, a churn call-center task
    assert lp.app_events["product_view"] > 0 and lp.app_events["cart_abandon"] > 0
    fired = Counter(c for (c, _k), n in m.by_campaign.items() for _ in range(n))
    assert fired["showroom"] > 0 and fired["cart"] > 0
    assert o["call"] == m.by_campaign[("churn-call", "call task")]
    # re-engagement on falling velocity: the app's past weeks, posted at the start of the day,
    # turned the decliners' page views "falling" live at ingest; the crossing decided the
    # win-back campaign for every decliner (holdout, control, consent as usual) and for no one
    # whose browsing held steady
    assert a.declining and len(a.declining) < 0.2 * len(a.app_users)
    assert m.decided_on["velocity"] == a.declining
    assert fired["win-back"] >= len(a.declining) and m.offered_on["velocity"]
    async with clean_pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT customer_id, trigger_name, campaign_id, outcome FROM decisions"
            " WHERE trigger_kind = 'velocity'"
        )
        falling = await conn.fetch(
            "SELECT DISTINCT customer_id FROM velocity_signals"
            " WHERE figure = 'page_view' AND trend = 'falling'"
        )
    assert {int(r["customer_id"][1:]) for r in rows} == a.declining
    assert all(r["trigger_name"] == "falling" for r in rows)
    assert {r["campaign_id"] for r in rows if r["outcome"] != "none"} == {"win-back"}
    assert {int(r["customer_id"][1:]) for r in falling} == a.declining
    groups = [r["groups"] for r in lp.results.values()]
    assert sum(g["treated"]["converters"] for g in groups) > 0
    assert sum(g["control"]["customers"] + g["holdout"]["customers"] for g in groups) > 0
    # the report: offline, with the map, the close-up and the charts
    assert s.report == out.resolve()
    page = out.read_text(encoding="utf-8")
    assert '<svg id="map"' in page and '<svg id="zoom"' in page
    assert page.count('<svg class="chart"') == 4
    assert "Offers by campaign and channel" in page and "Conversions and uplift" in page
    assert "Visits detected per signal" in page and "Offers fired per trigger source" in page
    assert page.count("<polygon") > 200  # fences and H3 heat cells
    assert not re.search(r"(src|href)=\"https?:", page) and "<script" not in page
    assert "Checks" in printed.getvalue() and str(out.resolve()) in printed.getvalue()
    # how it looks in a browser: test_report_screenshot.py
    # what the README suggests next: a backtest of a campaign on the database the demo left
    # (`--demo` names the CLI demo's database; this test's demo ran on the test database)
    span = ("--since", "2000-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00Z")
    done = await asyncio.to_thread(cli, settings.database_url, "welcome", "--json", *span)
    assert done.returncode == 0, done.stderr[-2000:]
    bt = json.loads(done.stdout)
    assert bt["events_read"] > 0 and bt["offers"] > 0
