"""What the visitors' phones hear in our stores: beacon sightings and NFC taps, from the ground
truth of where the visitor stood (simulate.Track).

Not every phone ranges: Bluetooth off, or the app not allowed to scan, leaves about a third
deaf to beacons. A phone that ranges reads the beacons about once a second and, every 15-30 s,
reports the strongest one at its peak over the cycle, if above its sensitivity (as proximity
SDKs report the nearest beacon). Received power follows the log-distance model with log-normal
shadowing: P1m - 10 n log10(d) + gain + N(0, SHADOW_DB) per cycle, plus fast fading per
reading; d in 3-D (the beacon on the ceiling), the gain per phone (antenna, hand or pocket). The
engine ranges with n = 2 and keeps a reading only when it puts the beacon within 3 m (near):
a visitor browsing a few metres from the nearest beacon is often too_far. Ranging is simulated
inside the store only: walk-pasts stay on the far sidewalk, where even the strongest beacon is
on average below what a phone hears (>= 42 m).

Some visitors buy, and of them some tap the till's NFC tag with the app's loyalty card; a few
tap a shelf's tag for product information. Deterministic from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray

from adapters.demo.city import City
from adapters.demo.radio import Radio
from adapters.demo.simulate import Fleet, Track

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
P_RANGING = 0.7  # phones that hear beacons: Bluetooth on, the app allowed to scan
SCAN_S = (15.0, 30.0)  # a report cycle, per phone
READINGS = 15  # per beacon and cycle (ranging at ~1 Hz): the app reports the peak
CANDIDATES = 4  # beacons whose signal may be the strongest a phone hears
PATH_LOSS_N = 2.0  # short range, line of sight under the ceiling (as the engine assumes)
SHADOW_DB = 4.0  # log-normal shadowing (bodies, shelves), per cycle
FADING_DB = 3.0  # fast fading, per reading
GAIN_DB = (-1.0, 3.0)  # per phone: antenna, hand or pocket (mean, sd)
SENSITIVITY_DBM = -95.0  # weaker is not heard at all
CEILING_M = 1.5  # beacon above the phone
STEP_M = 1.0  # a visitor moves around the spot they browse
WALK_MPS = 0.8  # from the door to a spot, from spot to spot
P_BUY, P_LOYALTY_TAP = 0.6, 0.6  # a visit ends at the till; the app's card tapped there
P_SHELF_TAP = 0.15  # a shelf tag tapped for product information


@dataclass
class Signals:
    """Sightings and taps, visit after visit (ts: seconds after local midnight)."""

    sight_customer: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    sight_ts: Floats = field(default_factory=lambda: np.zeros(0))
    sight_beacon: Ints = field(default_factory=lambda: np.zeros(0, np.int64))  # Radio.beacons
    sight_rssi: Floats = field(default_factory=lambda: np.zeros(0))
    tap_customer: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    tap_ts: Floats = field(default_factory=lambda: np.zeros(0))
    tap_tag: Ints = field(default_factory=lambda: np.zeros(0, np.int64))  # Radio.tags
    ranging: set[int] = field(default_factory=set)  # customers whose phone hears beacons


def _readings(
    rng: np.random.Generator, t: Floats, xy: Floats, bxy: Floats, power: Floats, gain: float
) -> tuple[Floats, Ints, Floats]:
    """Per report at times `t` from positions `xy`: the strongest of the CANDIDATES nearest
    beacons (a farther one never wins but by a freak of noise), at its peak over the cycle."""
    d = np.hypot(np.hypot(xy[:, None, 0] - bxy[None, :, 0], xy[:, None, 1] - bxy[None, :, 1]),
                 CEILING_M)  # fmt: skip
    mean = power[None, :] - 10 * PATH_LOSS_N * np.log10(d) + gain
    k = min(CANDIDATES, mean.shape[1])
    near = np.argsort(-mean, axis=1, kind="stable")[:, :k]
    mean = np.take_along_axis(mean, near, axis=1)
    slow = rng.normal(0.0, SHADOW_DB, mean.shape)
    fast = rng.standard_normal((*mean.shape, READINGS)).max(axis=-1) * FADING_DB
    rssi = np.round(mean + slow + fast)
    best = np.argmax(rssi, axis=1)
    peak = rssi[np.arange(len(t)), best]
    heard = peak >= SENSITIVITY_DBM
    return t[heard], near[np.arange(len(t)), best][heard], peak[heard]


def _positions(track: Track, door: tuple[float, float], t: Floats) -> Floats:
    """Where the visitor is at times `t`: walking from the door or the previous spot to the
    next, then standing there."""
    k = np.searchsorted(track.t, t, side="right") - 1
    dest = track.xy[k]
    prev = np.where((k > 0)[:, None], track.xy[np.maximum(k - 1, 0)], np.array(door)[None, :])
    walk = np.hypot(*(dest - prev).T) / WALK_MPS
    frac = np.clip((t - track.t[k]) / np.maximum(walk, 1e-9), 0.0, 1.0)[:, None]
    return np.asarray(prev + frac * (dest - prev))


def simulate_signals(city: City, fleet: Fleet, radio: Radio, seed: int) -> Signals:
    """The sightings and taps of every visit to one of our stores."""
    rng = np.random.default_rng([seed, 0x626C65])
    customers = int(fleet.customer.max()) + 1 if len(fleet.ts) else 0
    ranging = rng.random(customers) < P_RANGING
    gain = rng.normal(*GAIN_DB, customers)
    scan_s = rng.uniform(*SCAN_S, customers)
    per_store = radio.store_beacons()
    bxy = np.array([(b.x, b.y) for b in radio.beacons]).reshape(-1, 2)
    power = np.array([b.power for b in radio.beacons], dtype=float)
    till = {t.store: i for i, t in enumerate(radio.tags) if t.placement == "till"}
    shelves = {t.fence: i for i, t in enumerate(radio.tags) if t.placement == "shelf"}
    sights: list[tuple[Floats, Ints, Floats, int]] = []
    taps: list[tuple[float, int, int]] = []
    for v, track in zip(fleet.visits, fleet.tracks, strict=True):
        store = city.stores[v.store]
        if store.brand.kind != "store":
            continue
        c = v.customer
        first = v.t_in + rng.uniform(0, scan_s[c])
        t = np.arange(first, v.t_out, scan_s[c])
        at = _positions(track, store.door, t)
        xy = at + rng.normal(0.0, STEP_M, at.shape)
        if ranging[c] and len(t):
            mine = per_store[v.store]
            ts, which, rssi = _readings(rng, t, xy, bxy[mine], power[mine], float(gain[c]))
            sights.append((ts, mine[which], rssi, c))
        if rng.random() < P_BUY * P_LOYALTY_TAP:  # paying, a few minutes before leaving
            taps.append((max(v.t_in + 30, v.t_out - rng.uniform(60, 240)), till[v.store], c))
        if rng.random() < P_SHELF_TAP and len(t):
            k = int(rng.integers(len(t)))
            depts = [z for z in store.zones if z.department]
            near = int(np.argmin(shapely.distance([z.shape for z in depts],
                                                  shapely.Point(*xy[k]))))  # fmt: skip
            taps.append((float(np.ceil(t[k])), shelves[depts[near].id], c))
    out = Signals(ranging={int(c) for c in np.flatnonzero(ranging)})
    if sights:
        out.sight_ts = np.ceil(np.concatenate([s[0] for s in sights]))  # whole seconds
        out.sight_beacon = np.concatenate([s[1] for s in sights])
        out.sight_rssi = np.concatenate([s[2] for s in sights])
        out.sight_customer = np.concatenate([np.full(len(s[0]), s[3]) for s in sights])
    if taps:
        out.tap_ts = np.ceil([t[0] for t in taps]).astype(float)
        out.tap_tag = np.array([t[1] for t in taps], dtype=np.int64)
        out.tap_customer = np.array([t[2] for t in taps], dtype=np.int64)
    return out
