"""The day through the API: pings, beacon sightings and NFC taps in one time-ordered upload
stream (stream.py), one request at a time (so the run is deterministic), the sweep and the rest
of the day (`on_time`) on the simulated clock between slices."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.composition import Services
from adapters.demo import stream
from adapters.demo.city import TIMEZONE, City
from adapters.demo.detection import Heard
from adapters.demo.phones import Signals
from adapters.demo.radio import Radio
from adapters.demo.simulate import DAY_END, Fleet
from adapters.demo.summary import Event, Sent

Row = dict[str, Any]
SIGHTINGS_PER_REQUEST = 1000


class _Wire:
    """The rows as the phones send them (JSON-ready dicts), built on demand."""

    def __init__(self, fleet: Fleet, signals: Signals, radio: Radio, origin: float) -> None:
        n = len(fleet.ts)
        self.ids = [f"c{c:06d}" for c in range(int(fleet.customer.max()) + 1 if n else 0)]
        self.cust = fleet.customer.tolist()
        ts = (fleet.ts + origin).astype("int64")
        self.ts = [
            t * 1000 if bad else t for t, bad in zip(ts.tolist(), fleet.bad.tolist(), strict=True)
        ]  # ms: a buggy client
        self.lat, self.lon, self.acc = fleet.lat.tolist(), fleet.lon.tolist(), fleet.acc.tolist()
        self.speed, self.heading = fleet.speed.tolist(), fleet.heading.tolist()
        self.mock = fleet.mock.tolist()
        self.signals, self.radio, self.origin = signals, radio, origin

    def ping(self, i: int) -> Row:
        row: Row = {"customer_id": self.ids[self.cust[i]], "lat": self.lat[i],
                    "lon": self.lon[i], "accuracy_m": self.acc[i], "ts": self.ts[i]}  # fmt: skip
        if self.speed[i] == self.speed[i]:  # NaN: the phone does not send it
            row["speed_mps"] = self.speed[i]
        if self.heading[i] == self.heading[i]:
            row["heading"] = self.heading[i]
        if self.mock[i]:
            row["mock"] = True
        return row

    def sighting(self, i: int) -> Row:
        s, b = self.signals, self.radio.beacons[int(self.signals.sight_beacon[i])]
        ts = float(s.sight_ts[i]) + self.origin
        return {"customer_id": self.ids[int(s.sight_customer[i])], "uuid": b.uuid,
                "major": b.major, "minor": b.minor, "tx_power": b.power,
                "rssi": float(s.sight_rssi[i]), "ts": ts}  # fmt: skip

    def tap(self, i: int) -> Row:
        s = self.signals
        return {"customer_id": self.ids[int(s.tap_customer[i])],
                "tag_id": self.radio.tags[int(s.tap_tag[i])].id,
                "ts": float(s.tap_ts[i]) + self.origin}  # fmt: skip


def _event(e: dict[str, Any], origin: float) -> Event:
    ts = datetime.fromisoformat(e["ts"]).timestamp() - origin
    return Event(e["id"], e["type"], e["customer_id"], e["geofence_id"], ts, e["source"])


async def send_day(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    svc: Services,
    city: City,
    fleet: Fleet,
    signals: Signals,
    radio: Radio,
    origin: float,
    batch: int,
    progress: bool,
    console: Console,
    on_time: Callable[[float, bool], Awaitable[None]],
) -> Sent:
    """Send the day; before each slice, sweep at the simulated time of its first upload, then
    `on_time`: the app's events due by then are posted, the outbox relay runs."""
    n, tz = len(fleet.ts), ZoneInfo(TIMEZONE)
    grace = svc.settings.sweep_grace_s
    upload = (fleet.upload + origin).tolist()
    wire = _Wire(fleet, signals, radio, origin)
    sent = Sent(ignored=[""] * n)
    stats = sent.signals  # what came of the sightings and taps
    headers = {**headers, "content-type": "application/json"}
    store_of_beacon = [city.stores[b.store].id for b in radio.beacons]
    store_of_tag = [city.stores[t.store].id for t in radio.tags]

    async def sweep(now: float) -> None:
        sent.sweeps += 1
        for eid, e in await svc.runtime.sweep(now=now):
            sent.events.append(
                Event(eid, str(e.type), e.customer_id, e.geofence_id, e.ts - origin, e.source)
            )
        await on_time(now, False)

    async def pings(rows: list[int]) -> None:
        body = msgspec.json.encode({"pings": [wire.ping(i) for i in rows]})
        r = await client.post("/v1/pings?wait=true", content=body, headers=headers)
        stats.requests["pings"] += 1
        answer = msgspec.json.decode(r.raise_for_status().content)
        sent.accepted += answer["accepted"]
        sent.rejected += len(answer["rejected"])
        for e in answer["ignored"]:
            sent.ignored[rows[e["index"]]] = e["reason"]
        sent.events.extend(_event(e, origin) for e in answer["events"])

    async def sightings(rows: list[int]) -> None:
        for k in range(0, len(rows), SIGHTINGS_PER_REQUEST):
            part = rows[k : k + SIGHTINGS_PER_REQUEST]
            body = msgspec.json.encode({"sightings": [wire.sighting(i) for i in part]})
            r = await client.post("/v1/beacon-sightings?wait=true", content=body, headers=headers)
            stats.requests["sightings"] += 1
            answer = msgspec.json.decode(r.raise_for_status().content)
            why = {e["index"]: e["reason"] for e in answer["ignored"]}
            why |= {e["index"]: "rejected" for e in answer["rejected"]}
            for j, i in enumerate(part):
                stats.outcomes[("beacon", why.get(j, "used"))] += 1
                if j not in why:
                    store = store_of_beacon[int(signals.sight_beacon[i])]
                    cid = wire.ids[int(signals.sight_customer[i])]
                    stats.heard.append(Heard(cid, store, float(signals.sight_ts[i]), "beacon"))
            sent.events.extend(_event(e, origin) for e in answer["events"])

    async def taps(rows: list[int]) -> None:
        for i in rows:
            r = await client.post("/v1/nfc-taps", json=wire.tap(i), headers=headers)
            stats.requests["taps"] += 1
            if r.status_code != 201:
                stats.outcomes[("nfc", f"refused {r.status_code}")] += 1
                continue
            answer = r.json()
            stats.outcomes[("nfc", answer["flag"] or "used")] += 1
            if answer["flag"] is None:
                store = store_of_tag[int(signals.tap_tag[i])]
                cid = wire.ids[int(signals.tap_customer[i])]
                stats.heard.append(Heard(cid, store, float(signals.tap_ts[i]), "nfc"))
            sent.events.extend(_event(e, origin) for e in answer["events"])

    post = {stream.PINGS: pings, stream.SIGHTINGS: sightings, stream.TAPS: taps}
    cols = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7,.0f} pings/s"),
        TimeElapsedColumn(),
    )
    t0 = time.perf_counter()
    with Progress(*cols, console=console, disable=not progress) as bar:
        task = bar.add_task("simulated 06:00", total=n, rate=0.0)
        for start, stop, steps in stream.upload_slices(fleet, signals, batch, grace):
            await sweep(upload[start])
            for step in steps:
                t = time.perf_counter()
                await post[step.kind](step.rows)
                stats.seconds[stream.NAMES[step.kind]] += time.perf_counter() - t
            clock = f"simulated {datetime.fromtimestamp(upload[stop - 1], tz):%H:%M}"
            rate = stop / (time.perf_counter() - t0)
            bar.update(task, completed=stop, description=clock, rate=rate)
        await sweep(origin + DAY_END + 3600)
        await on_time(origin + DAY_END + 3600, True)
    sent.wall_s = time.perf_counter() - t0
    return sent
