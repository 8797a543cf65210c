"""A simulated day of a phone fleet in the demo city, with its ground truth.

Each customer lives a day (06:00–23:30 local time): commutes (walk, métro with no fix
underground, bike, bus), lunch and after-work outings that walk past shops on the far side of the
street (>= 42 m from every fence), visit stores and competitors (indoor accuracy degraded), a few
spoofed fixes. Then the phone's side: GPS noise consistent with the reported accuracy (68% radius,
error clipped at twice the accuracy), dropped fixes, batched uploads, resent and delayed uploads,
a few malformed rows. Times are seconds after local midnight of the simulated day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from adapters.demo.city import CLEAR_M, CLOSE_S, OPEN_S, City, to_latlon

Floats = NDArray[np.float64]
Row = dict[str, Any]
Pts = list[tuple[float, float]]
NAN = math.nan
DAY_START, DAY_END = 6 * 3600.0, 23.5 * 3600.0
# phases (ground truth of each fix)
HOME, WORK, MOVE, WALKPAST, APPROACH, STORE, SPOOF_MOCK, SPOOF_JUMP = range(8)
UNDERGROUND = -1  # moving with no fix at all
LATE_CLOSE_S = 22 * 3600.0  # the competitor, a discounter, closes late: evening visits
# accuracy kinds
OUTDOOR, STATIC, INDOOR, ENTRY, SPOOF = range(5)


@dataclass(frozen=True)
class Visit:
    """A planned store visit (in and out the door), or a walk past it (along the sidewalk)."""

    customer: int
    store: int
    t_in: float
    t_out: float


@dataclass(frozen=True)
class Track:
    """Where a visitor stood in the store (true positions, for the beacons they hear): spot k
    from `t[k]` on, until the next one or the visit's end."""

    t: Floats
    xy: Floats  # (n, 2) planar metres


@dataclass
class Fleet:
    """Rows in upload order (what the phones send), and the ground truth."""

    customer: NDArray[np.int64]
    ts: Floats  # fix time
    upload: Floats  # when the phone sends it
    lat: Floats
    lon: Floats
    acc: Floats
    speed: Floats  # NaN: not sent
    heading: Floats  # NaN: not sent
    mock: NDArray[np.bool_]
    phase: NDArray[np.int64]
    bad: NDArray[np.bool_]  # sent with a millisecond timestamp (the API refuses it)
    resent: NDArray[np.bool_]  # a copy of an upload already sent
    true_x: Floats
    true_y: Floats
    visits: list[Visit]
    walkpasts: list[Visit]
    fixes: int  # distinct fixes taken (before drops and copies)
    tracks: list[Track] = field(default_factory=list)  # per visit, same order as `visits`


class _Day:
    """One customer's true movement: fix times, true positions, phases."""

    def __init__(self, rng: np.random.Generator, city: City, cid: int, home: Floats) -> None:
        self.rng, self.city, self.cid = rng, city, cid
        self.x, self.y, self.t = float(home[0]), float(home[1]), DAY_START
        self.home = (self.x, self.y)
        self.seen: set[int] = set()  # stores visited or walked past today
        self.every = rng.uniform(30, 120)  # moving fix interval of this phone
        self.cols: list[tuple[Any, ...]] = []
        self.meta: list[tuple[int, int, int, int]] = []  # (rows, phase, accuracy kind, exempt)
        self.visits: list[Visit] = []
        self.walkpasts: list[Visit] = []
        self.tracks: list[Track] = []

    def _emit(self, cols: tuple[Any, ...], phase: int, acc: int, exempt: int = -1) -> None:
        """Record fixes: cols = (t, x, y, speed, heading), arrays or scalars after t."""
        if len(cols[0]):
            self.cols.append(cols)
            self.meta.append((len(cols[0]), phase, acc, exempt))

    def _times(self, duration: float, lo: float, hi: float) -> Floats:
        steps = np.cumsum(self.rng.uniform(lo, hi, int(duration / lo) + 2))
        return self.t + steps[steps < duration]

    def stay(self, until: float, phase: int, lo: float = 900, hi: float = 1800) -> None:
        if until > self.t:
            t = self._times(until - self.t, lo, hi)
            self._emit(
                (t, np.full(len(t), self.x), np.full(len(t), self.y), NAN, NAN), phase, STATIC
            )
            self.t = until

    def path(
        self, pts: Pts, speed: float, phase: int, exempt: int = -1, acc: int = OUTDOOR
    ) -> None:
        """Move along `pts` at `speed`, a fix every ~`every` seconds (none underground)."""
        p = np.array([(self.x, self.y), *pts])
        dx, dy = p[1:, 0] - p[:-1, 0], p[1:, 1] - p[:-1, 1]
        cum = np.concatenate(([0.0], np.cumsum(np.hypot(dx, dy))))
        duration = float(cum[-1]) / speed
        if phase != UNDERGROUND and duration > 0:
            lo, hi = (40.0, 90.0) if phase == STORE else (0.7 * self.every, 1.3 * self.every)
            t = self._times(duration, lo, hi)
            d = (t - self.t) * speed
            x, y = np.interp(d, cum, p[:, 0]), np.interp(d, cum, p[:, 1])
            k = np.minimum(np.searchsorted(cum, d, side="right") - 1, len(dx) - 1)
            heading = (np.degrees(np.arctan2(dx, dy)) % 360)[k]
            v = speed * self.rng.uniform(0.85, 1.15, len(t))
            if exempt >= 0 and phase == MOVE:  # near the visited store: part of the visit
                s = self.city.stores[exempt]
                near = np.hypot(x - s.x, y - s.y) < 100 + s.half_depth
                if near.any():
                    self._emit(
                        (t[near], x[near], y[near], v[near], heading[near]), APPROACH, acc, exempt
                    )
                    near = ~near
                    t, x, y, v, heading = t[near], x[near], y[near], v[near], heading[near]
                exempt = -1
            self._emit((t, x, y, v, heading), phase, acc, exempt)
        self.t += duration
        self.x, self.y = pts[-1]

    def go(self, dest: tuple[float, float], exempt: int = -1) -> None:
        """Walk when close, else métro (no fix underground), bike or bus along an L-shaped
        route of streets."""
        dx, dy = dest[0] - self.x, dest[1] - self.y
        dist = math.hypot(dx, dy)
        if dist < 1:
            return
        corner = (dest[0], self.y) if self.rng.random() < 0.5 else (self.x, dest[1])
        r = self.rng.random()
        if dist < 1500 or r < 0.15:
            self.path([corner, dest], self.rng.uniform(1.1, 1.5), MOVE, exempt)
        elif r < 0.7:
            ux, uy = dx / dist, dy / dist
            self.path([(self.x + 250 * ux, self.y + 250 * uy)], 1.3, MOVE, exempt)
            self.t += self.rng.uniform(60, 300)  # waiting on the platform
            self.path([(dest[0] - 250 * ux, dest[1] - 250 * uy)], 8.0, UNDERGROUND)
            self.path([dest], 1.3, MOVE, exempt)
        else:
            self.path([corner, dest], self.rng.uniform(4.0, 7.0), MOVE, exempt)

    def walk_past(self, store: int) -> None:
        """Along the far side of the street in front of `store` (City.sidewalks)."""
        walk = self.city.sidewalks[store]
        if walk is None:
            return
        a, b = self.rng.uniform((0.0, 0.6), (0.4, 1.0))
        if self.rng.random() < 0.5:
            a, b = 1 - a, 1 - b
        p0, p1 = walk[0] + a * (walk[1] - walk[0]), walk[0] + b * (walk[1] - walk[0])
        self.go((float(p0[0]), float(p0[1])))
        t0 = self.t
        self.path([(float(p1[0]), float(p1[1]))], self.rng.uniform(1.1, 1.5), WALKPAST)
        self.walkpasts.append(Visit(self.cid, store, t0, self.t))

    def visit(self, store: int, minutes: float) -> None:
        """In through the door, browse a few spots (fixes every 40-90 s, accuracy degraded
        indoors after the first minute), out through the door."""
        s, room = self.city.stores[store], self.city.rooms[store]
        door = s.door
        out = (door[0] + 15 * s.front[0], door[1] + 15 * s.front[1])
        self.go(out, exempt=store)
        self.path([door], 1.2, APPROACH, exempt=store)
        t_in, duration = self.t, minutes * 60
        x0, y0, x1, y1 = room.bounds
        cand = self.rng.uniform((x0, y0), (x1, y1), (64, 2))
        spots = cand[shapely.contains_xy(room, cand[:, 0], cand[:, 1])]
        if not len(spots):
            spots = np.array([[s.x, s.y]])
        starts = np.cumsum(self.rng.uniform(120, 480, int(duration / 120) + 1)) - 120
        t = self._times(duration, 40, 90)
        at = spots[np.searchsorted(starts, t - t_in) % len(spots)]
        moves = starts[starts < duration]  # drawn from nothing: the fixes stay the same
        where = spots[np.arange(len(moves) + 1) % len(spots)]
        self.tracks.append(Track(t_in + np.r_[0.0, moves], where))
        x, y = at.T + self.rng.normal(0, 2.0, (2, len(t)))
        entry = t < t_in + 60
        self._emit((t[entry], x[entry], y[entry], 0.0, NAN), STORE, ENTRY, store)
        self._emit((t[~entry], x[~entry], y[~entry], 0.0, NAN), STORE, INDOOR, store)
        if len(t):
            self.x, self.y = float(x[-1]), float(y[-1])
        self.t = t_in + duration
        self.path([door], 0.9, STORE, exempt=store, acc=INDOOR)
        self.visits.append(Visit(self.cid, store, t_in, self.t))
        self.path([out], 1.2, APPROACH, exempt=store)


def _outing(day: _Day, rng: np.random.Generator, city: City, n: int, p_visit: float) -> None:
    """n activities near where the customer is: walk past, visit a store or a competitor (each
    store at most once a day)."""
    xy = np.array([(s.x, s.y) for s in city.stores])
    for _ in range(n):
        d = np.hypot(xy[:, 0] - day.x, xy[:, 1] - day.y)
        d[list(day.seen)] = np.inf
        near = np.nonzero(d < 2500)[0]
        fresh = np.nonzero(np.isfinite(d))[0]
        store = int(rng.choice(near) if len(near) and rng.random() < 0.85 else rng.choice(fresh))
        day.seen.add(store)
        minutes = 6 + rng.gamma(2.0, 6.0) if rng.random() < 0.9 else rng.uniform(30, 40)
        minutes = min(minutes, 40.0)
        eta = day.t + d[store] / 1.3 + 120
        close = CLOSE_S if city.stores[store].brand.kind == "store" else LATE_CLOSE_S
        open_ = eta > OPEN_S + 300 and eta + minutes * 60 < close - 300
        if open_ and rng.random() < p_visit:
            day.visit(store, minutes)
        else:
            day.walk_past(store)


def _live(day: _Day, rng: np.random.Generator, city: City, work: Floats | None) -> None:
    if work is not None:
        day.stay(float(np.clip(rng.normal(8.3, 0.7), 6.6, 10.5)) * 3600, HOME)
        if rng.random() < 0.2:
            _outing(day, rng, city, 1, 0.0)
        day.go((float(work[0]), float(work[1])))
        day.stay(max(day.t, float(rng.normal(12.5, 0.3)) * 3600), WORK)
        if rng.random() < 0.45:
            _outing(day, rng, city, 1, 0.35)
            day.go((float(work[0]), float(work[1])))
        day.stay(max(day.t + 1800, float(rng.normal(17.8, 0.8)) * 3600), WORK)
        if rng.random() < 0.6:
            _outing(day, rng, city, int(rng.integers(1, 3)), 0.6)
    else:
        day.stay(float(rng.uniform(9.8, 11.0)) * 3600, HOME)
        _outing(day, rng, city, int(rng.integers(1, 4)), 0.55)
        if rng.random() < 0.5:
            day.go(day.home)
            day.stay(day.t + rng.uniform(1800, 3 * 3600), HOME)
            _outing(day, rng, city, int(rng.integers(1, 3)), 0.5)
    day.go(day.home)
    day.stay(DAY_END, HOME)


def _spoof(day: _Day, rng: np.random.Generator, kind: int) -> None:
    """Mock-location fixes inside a store (mock=true), or a GPS jump far away (teleport)."""
    t = np.concatenate([c[0] for c in day.cols])
    ph = np.repeat([m[1] for m in day.meta], [m[0] for m in day.meta])
    gap = np.r_[np.diff(t), 0.0]
    ok = np.nonzero(((ph == HOME) | (ph == WORK)) & (gap > 400) & (t > 9 * 3600))[0]
    if not len(ok):
        return
    i = int(rng.choice(ok))
    xs = np.concatenate([c[1] for c in day.cols])
    ys = np.concatenate([c[2] for c in day.cols])
    stores = day.city.stores
    far = [k for k, s in enumerate(stores) if math.hypot(s.x - xs[i], s.y - ys[i]) > 4000]
    s = stores[int(rng.choice(far))] if far else stores[0]
    n = int(rng.integers(3, 7)) if kind == SPOOF_MOCK else int(rng.integers(1, 3))
    step = 30.0 if kind == SPOOF_MOCK else rng.uniform(15, 30)
    ts = t[i] + step * np.arange(1, n + 1)
    day._emit((ts, np.full(n, s.x), np.full(n, s.y), 0.0, NAN), kind, SPOOF)


def _accuracy(rng: np.random.Generator, kind: NDArray[np.int64]) -> Floats:
    n = len(kind)
    acc = np.select(
        [kind == OUTDOOR, kind == STATIC, kind == INDOOR, kind == ENTRY],
        [
            4 + 21 * rng.beta(2, 4, n),
            12 + 38 * rng.beta(2, 3, n),
            20 + 40 * rng.beta(1.5, 4, n),
            rng.uniform(8, 20, n),
        ],
        rng.uniform(3, 6, n),
    )
    coarse = (kind == STATIC) & (rng.random(n) < 0.01)  # network location, no GPS
    acc[coarse] = rng.uniform(150, 600, int(coarse.sum()))
    return np.round(acc, 1)


def simulate_day(city: City, customers: int, seed: int) -> Fleet:
    rng = np.random.default_rng([seed, 2])
    homes = city.places(rng, customers, 120.0, work=False)
    works = city.places(rng, customers, 120.0, work=True)
    has_work = rng.random(customers) < 0.75
    cols: list[tuple[Floats, ...]] = []
    meta: list[tuple[int, int, int, int, int]] = []
    visits: list[Visit] = []
    walkpasts: list[Visit] = []
    tracks: list[Track] = []
    for c in range(customers):
        day = _Day(rng, city, c, homes[c])
        _live(day, rng, city, works[c] if has_work[c] else None)
        r = rng.random()
        if r < 0.006:
            _spoof(day, rng, SPOOF_MOCK)
        elif r < 0.011:
            _spoof(day, rng, SPOOF_JUMP)
        for (t, x, y, v, h), (n, ph, k, ex) in zip(day.cols, day.meta, strict=True):
            cols.append((t, x, y, np.broadcast_to(v, n), np.broadcast_to(h, n)))
            meta.append((n, c, ph, k, ex))
        visits += day.visits
        walkpasts += day.walkpasts
        tracks += day.tracks
    t, x, y, speed, heading = (np.concatenate(k) for k in zip(*cols, strict=True))
    n_rows = [m[0] for m in meta]
    cust, phase, kind, exempt = (np.repeat([m[i] for m in meta], n_rows) for i in range(1, 5))
    by_time = np.lexsort((t, cust))  # spoofed fixes were appended last
    t, x, y, speed, heading = t[by_time], x[by_time], y[by_time], speed[by_time], heading[by_time]
    cust, phase, kind, exempt = cust[by_time], phase[by_time], kind[by_time], exempt[by_time]
    fixes = len(t)
    street = (phase == MOVE) | (phase == WALKPAST) | (phase == APPROACH)
    x[street], y[street] = city.push_clear(x[street], y[street], CLEAR_M, exempt[street])
    # the phone: accuracy, noise consistent with it, drops
    acc = _accuracy(rng, kind)
    sigma = acc / 1.515  # 68% of 2-D gaussian errors fall within 1.515 sigma
    r = np.minimum(sigma * np.sqrt(-2 * np.log(1 - rng.random(fixes))), 2 * acc)
    r[kind == SPOOF] = 0.0
    a = rng.random(fixes) * 2 * math.pi
    # a spoofed jump is told apart by speed from the fix before it: that one is always sent,
    # on time (one fake fix after a long silence is as plausible as a taxi ride)
    spoof = kind == SPOOF
    anchor = np.r_[spoof[1:] & ~spoof[:-1], False] if fixes else spoof
    keep = (rng.random(fixes) >= 0.04) | spoof | anchor
    # uploads: live (60%), or batched every 1, 2 or 5 minutes; some resent, some delayed
    mode = rng.choice(4, customers, p=[0.6, 0.15, 0.15, 0.1])
    period = np.array([0.0, 60.0, 120.0, 300.0])[mode][cust]
    shift = rng.uniform(0, 300, customers)[cust]
    batched = period > 0
    group = np.where(
        batched, np.floor((t + shift) / np.where(batched, period, 1)), np.arange(fixes)
    )
    _, g = np.unique(np.c_[cust, group], axis=0, return_inverse=True)
    g = g.ravel()
    ng = int(g.max()) + 1 if fixes else 0
    late = rng.random(ng) < 0.008
    late[g[spoof | anchor]] = False
    delay = rng.uniform(1, 8, ng) + np.where(late, rng.uniform(240, 900, ng), 0)
    upload = np.where(batched, (group + 1) * period - shift, t) + delay[g]
    resend = (rng.random(ng) < 0.015)[g] & keep
    again = upload + rng.uniform(20, 120, ng)[g]
    idx = np.r_[np.nonzero(keep)[0], np.nonzero(resend)[0]]
    up = np.r_[upload[keep], again[resend]]
    resent = np.r_[np.zeros(int(keep.sum()), bool), np.ones(int(resend.sum()), bool)]
    order = np.lexsort((t[idx], cust[idx], up))
    idx, up, resent = idx[order], up[order], resent[order]
    lat, lon = to_latlon(x + r * np.sin(a), y + r * np.cos(a))
    bad = (rng.random(len(idx)) < 0.0003) & (kind[idx] != SPOOF)
    return Fleet(
        customer=cust[idx], ts=np.round(t[idx]), upload=up, lat=np.round(lat[idx], 7),
        lon=np.round(lon[idx], 7), acc=acc[idx], speed=np.round(speed[idx], 2),
        heading=np.round(heading[idx], 1), mock=phase[idx] == SPOOF_MOCK, phase=phase[idx],
        bad=bad, resent=resent, true_x=x[idx], true_y=y[idx], visits=visits,
        walkpasts=walkpasts, fixes=fixes, tracks=tracks,
    )  # fmt: skip
