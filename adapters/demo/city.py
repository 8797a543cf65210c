"""The demo city: Paris, two fictional brands and a competitor, stores with department zones.

Deterministic from the seed. Geometry is built in planar metres (x east, y north) around the
centre of Paris, where an equirectangular projection is exact to well under 1% over 15 km, and
converted to lon/lat for the API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.polygon import orient

Floats = NDArray[np.float64]

M_PER_DEG = 111_195.08  # metres per degree of latitude on the engine's sphere (R = 6371008.8)
LAT0, LON0 = 48.8566, 2.3522  # Paris, parvis de Notre-Dame
TIMEZONE = "Europe/Paris"
OPENING_HOURS = {d: [["09:30", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
OPEN_S, CLOSE_S = 9.5 * 3600, 20 * 3600
CLEAR_M = 42.0  # street fixes stay this far from any fence: 1.5 x the worst outdoor accuracy
TILL_W, TILL_D = 8.0, 4.0  # the tills' zone by the door: too small for GPS, an NFC tag's place


@dataclass(frozen=True)
class Brand:
    code: str
    name: str
    kind: str  # "store" (ours) or "competitor"
    color: str
    count: int
    size_m: tuple[float, float]  # side range, or radius range for a competitor's circle
    departments: str = ""  # comma separated: the zones of a store

    @property
    def zones(self) -> list[str]:
        return [d.strip() for d in self.departments.split(",")]


BRANDS = (
    Brand("ML", "Maison Lumière", "store", "#c98a00", 18, (36, 70), "Maison, Linge, Luminaires"),
    Brand("HS", "Hexa Sport", "store", "#1f6fb4", 15, (40, 80), "Running, Outdoor, Fitness, Cycle"),
    Brand("PB", "PrixBas", "competitor", "#c0392b", 12, (30, 50)),
)


def _table(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("|")] for line in text.strip().splitlines()]


def _path(text: str) -> tuple[tuple[float, float], ...]:
    pairs = (p.split() for p in text.replace("\n", ",").split(",") if p.strip())
    return tuple((float(a), float(b)) for a, b in pairs)


# Shopping streets: name | lat | lon | street bearing (degrees from north) | weight
AREAS = tuple(
    (n, float(a), float(b), float(c), float(w))
    for n, a, b, c, w in _table("""
Opéra – Haussmann                 | 48.8735 | 2.3320 |  78 | 3
République                        | 48.8674 | 2.3636 | 135 | 2
Bastille – Faubourg Saint-Antoine | 48.8525 | 2.3735 | 100 | 2
Châtelet – Rivoli                 | 48.8590 | 2.3470 | 115 | 3
Le Marais                         | 48.8575 | 2.3585 | 110 | 2
Saint-Germain-des-Prés            | 48.8535 | 2.3335 | 100 | 2
Montparnasse – Rue de Rennes      | 48.8455 | 2.3270 |  35 | 2
Champs-Élysées                    | 48.8700 | 2.3060 | 115 | 2
Gare de Lyon                      | 48.8445 | 2.3740 | 140 | 1
Montmartre – Abbesses             | 48.8842 | 2.3380 |  90 | 1
Nation                            | 48.8480 | 2.3950 |  90 | 1
Gare du Nord – Magenta            | 48.8790 | 2.3560 | 160 | 1
Place d'Italie                    | 48.8310 | 2.3560 | 170 | 1
Bercy Village                     | 48.8330 | 2.3855 |  60 | 1
Beaugrenelle                      | 48.8485 | 2.2830 |  30 | 1
Batignolles                       | 48.8835 | 2.3190 |  60 | 1
Belleville                        | 48.8718 | 2.3785 |  60 | 1
La Défense                        | 48.8915 | 2.2400 | 110 | 2
""")
)
# Where people work: lat | lon | spread (m) | weight; the other 30% anywhere in the city
BUSINESS = tuple(
    tuple(float(c) for c in r[:4])
    for r in _table("""
48.8918 | 2.2385 | 450 | 3   | La Défense
48.8745 | 2.3280 | 600 | 3   | Opéra, Saint-Lazare
48.8610 | 2.3450 | 500 | 1.5 | Châtelet, Louvre
48.8420 | 2.3210 | 450 | 1.5 | Montparnasse
48.8380 | 2.3800 | 500 | 1.5 | Bercy, Gare de Lyon
48.8700 | 2.3080 | 500 | 1.5 | Champs-Élysées
""")
)
# Boulevard Périphérique, the city limit (approximate lat lon, clockwise from Porte Maillot)
PERIPHERIQUE = _path("""
48.8780 2.2826, 48.8860 2.2930, 48.8945 2.3135, 48.8970 2.3290, 48.8990 2.3450, 48.8980 2.3590
48.8990 2.3700, 48.8970 2.3860, 48.8880 2.3930, 48.8770 2.4070, 48.8640 2.4090, 48.8535 2.4105
48.8470 2.4100, 48.8350 2.4060, 48.8310 2.3950, 48.8260 2.3880, 48.8215 2.3700, 48.8190 2.3600
48.8190 2.3430, 48.8230 2.3250, 48.8270 2.3050, 48.8320 2.2880, 48.8320 2.2760, 48.8380 2.2570
48.8480 2.2580, 48.8590 2.2690, 48.8715 2.2740
""")
# The Seine (approximate lat lon), upstream to downstream
SEINE = _path("""
48.8200 2.4100, 48.8296 2.3872, 48.8376 2.3758, 48.8434 2.3650, 48.8500 2.3580, 48.8530 2.3490
48.8572 2.3413, 48.8600 2.3310, 48.8637 2.3198, 48.8638 2.3017, 48.8600 2.2928, 48.8553 2.2874
48.8463 2.2756, 48.8390 2.2700, 48.8300 2.2550, 48.8260 2.2330, 48.8430 2.2200, 48.8700 2.2250
48.8800 2.2450, 48.8850 2.2590, 48.8970 2.2770, 48.9100 2.2950
""")


def to_xy(lat: Any, lon: Any) -> tuple[Floats, Floats]:
    k = M_PER_DEG * math.cos(math.radians(LAT0))
    return (np.asarray(lon, float) - LON0) * k, (np.asarray(lat, float) - LAT0) * M_PER_DEG


def to_latlon(x: Any, y: Any) -> tuple[Floats, Floats]:
    k = M_PER_DEG * math.cos(math.radians(LAT0))
    return LAT0 + np.asarray(y, float) / M_PER_DEG, LON0 + np.asarray(x, float) / k


@dataclass(frozen=True)
class Fence:
    id: str
    kind: str  # store | zone | competitor
    name: str
    store: int  # index in City.stores
    shape: shapely.Geometry  # planar metres
    radius_m: float | None = None  # competitor circles
    department: str | None = None


@dataclass(frozen=True)
class Store:
    id: str  # the store_id, also the store fence's id
    brand: Brand
    name: str
    area: str
    x: float
    y: float
    bearing: float  # street direction, degrees from north
    shape: shapely.Geometry
    front: tuple[float, float]  # unit vector from the centre towards the street
    half_depth: float  # centre to shop front (the radius for a circle)
    radius_m: float | None = None
    zones: tuple[Fence, ...] = ()

    @property
    def door(self) -> tuple[float, float]:
        return self.x + self.front[0] * self.half_depth, self.y + self.front[1] * self.half_depth


@dataclass
class City:
    seed: int
    stores: list[Store]
    fences: list[Fence]
    limit: shapely.Geometry = field(repr=False)  # inside the Périphérique (planar)
    tree: shapely.STRtree = field(init=False, repr=False)
    fence_store: NDArray[np.int64] = field(init=False, repr=False)
    rooms: list[shapely.Geometry] = field(init=False, repr=False)  # where customers browse
    sidewalks: list[Floats | None] = field(init=False, repr=False)  # [[x0, y0], [x1, y1]]

    def __post_init__(self) -> None:
        # street geometry (pushes, sidewalks) deals with stores and departments: the tills'
        # zone lies inside them and would only change which fence a point inside counts for
        outer = [f for f in self.fences if f.kind != "zone" or f.department]
        self.tree = shapely.STRtree([f.shape for f in outer])
        self.fence_store = np.array([f.store for f in outer], dtype=np.int64)
        self.rooms = [s.shape.buffer(-0.4 * s.half_depth) for s in self.stores]
        shapely.prepare(self.rooms)
        self.sidewalks = [self._sidewalk(s) for s in self.stores]

    def _sidewalk(self, s: Store) -> Floats | None:
        """The far side of the street in front of `s`: the longest stretch, centred on the shop,
        whose every point is at least CLEAR_M + 2 m from every fence."""
        b = math.radians(s.bearing)
        along = np.arange(-250.0, 251.0, 5.0)
        mid = len(along) // 2
        for gap in (CLEAR_M + 5, 55.0, 65.0, 80.0):
            off = s.half_depth + gap
            x = s.x + s.front[0] * off + along * math.sin(b)
            y = s.y + s.front[1] * off + along * math.cos(b)
            near, _ = self.nearest_fence(x, y, CLEAR_M + 2)
            blocked = np.nonzero(near >= 0)[0]
            lo = blocked[blocked < mid].max() + 1 if (blocked < mid).any() else 0
            hi = blocked[blocked > mid].min() - 1 if (blocked > mid).any() else len(along) - 1
            if along[hi] - along[mid] >= 60 and along[mid] - along[lo] >= 60:
                return np.array([[x[lo], y[lo]], [x[hi], y[hi]]])
        return None

    def features(self) -> list[dict[str, Any]]:
        """The fences as GeoJSON Features for `POST /v1/geofences/import`."""
        return [_feature(self.stores[f.store], f) for f in self.fences]

    def nearest_fence(
        self, x: Floats, y: Floats, within: float, exempt: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.int64], Floats]:
        """Per point, the nearest fence within `within` metres (-1: none) and its distance
        (0 inside). Fences of store `exempt[i]` are ignored for point i."""
        pts = shapely.points(x, y)
        pi, fi = self.tree.query(pts, predicate="dwithin", distance=within)
        best = np.full(len(x), -1, dtype=np.int64)
        dist = np.full(len(x), np.inf)
        if len(pi):
            if exempt is not None:
                keep = self.fence_store[fi] != exempt[pi]
                pi, fi = pi[keep], fi[keep]
            d = shapely.distance(pts[pi], self.tree.geometries[fi])
            order = np.lexsort((d, pi))  # per point, nearest first
            pi, fi, d = pi[order], fi[order], d[order]
            first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, bool)
            best[pi[first]] = fi[first]
            dist[pi[first]] = d[first]
        return best, dist

    def push_clear(
        self, x: Floats, y: Floats, margin: float, exempt: NDArray[np.int64] | None = None
    ) -> tuple[Floats, Floats]:
        """Move points closer than `margin` to a fence straight away from it (streets go round
        shops). A few rounds, since a push can land near another fence."""
        x, y = x.copy(), y.copy()
        for _ in range(4):
            near, _d = self.nearest_fence(x, y, margin, exempt)
            idx = np.nonzero(near >= 0)[0]
            if len(idx) == 0:
                break
            pts = shapely.points(x[idx], y[idx])
            geoms = self.tree.geometries[near[idx]]
            inside = shapely.contains(geoms, pts)
            line = shapely.shortest_line(pts, shapely.boundary(geoms))
            coords = shapely.get_coordinates(line).reshape(-1, 2, 2)
            p, q = coords[:, 0], coords[:, 1]
            v = np.where(inside[:, None], q - p, p - q)
            n = np.hypot(v[:, 0], v[:, 1])
            n[n == 0] = 1.0
            step = (margin + 1.0) / n
            x[idx] = q[:, 0] + v[:, 0] * step
            y[idx] = q[:, 1] + v[:, 1] * step
        return x, y

    def places(self, rng: np.random.Generator, n: int, clear_m: float, work: bool) -> Floats:
        """Homes (work=False): ~85% inside Paris, the rest in the inner suburbs; workplaces: 70%
        around the business districts. All at least `clear_m` from any fence."""
        out: list[Floats] = []
        got = 0
        w = np.array([b[3] for b in BUSINESS])
        while got < n:
            m = 2 * (n - got) + 16
            r = 9_000 * np.sqrt(rng.random(m))
            a = rng.random(m) * 2 * math.pi
            pts = np.c_[r * np.cos(a), r * np.sin(a) * 0.75]
            inside = shapely.contains_xy(self.limit, pts[:, 0], pts[:, 1])
            keep = inside | (rng.random(m) < 0.18)
            if work:
                hub = rng.choice(len(BUSINESS), m, p=w / w.sum())
                hx, hy = to_xy([BUSINESS[h][0] for h in hub], [BUSINESS[h][1] for h in hub])
                spread = np.array([BUSINESS[h][2] for h in hub])
                at_hub = rng.random(m) < 0.7
                pts[at_hub] = (
                    np.c_[hx, hy][at_hub] + rng.normal(size=(m, 2))[at_hub] * spread[at_hub, None]
                )
                keep |= at_hub
            near, _ = self.nearest_fence(pts[:, 0], pts[:, 1], clear_m)
            pts = pts[keep & (near < 0)]
            out.append(pts)
            got += len(pts)
        return np.concatenate(out)[:n]


def _rect(cx: float, cy: float, w: float, d: float, bearing: float) -> shapely.Geometry:
    """A w (along the street) x d (depth) rectangle centred on (cx, cy)."""
    b = math.radians(bearing)
    ux, uy = math.sin(b), math.cos(b)  # along the street
    vx, vy = -uy, ux  # across
    pts = [
        (cx + sa * w / 2 * ux + sb * d / 2 * vx, cy + sa * w / 2 * uy + sb * d / 2 * vy)
        for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]
    return orient(shapely.Polygon(pts), 1.0)


def _zones(sid: str, idx: int, brand: Brand, rect: tuple[float, ...]) -> tuple[Fence, ...]:
    """k departments side by side along the frontage, 2 m inside the walls, 1 m apart."""
    cx, cy, w, d, bearing = rect
    k = min(len(brand.zones), max(2, int(w // 18)))
    b = math.radians(bearing)
    ux, uy = math.sin(b), math.cos(b)
    inner_w, inner_d = w - 4.0, d - 4.0
    zw = (inner_w - (k - 1) * 1.0) / k
    zones = []
    for i in range(k):
        along = -inner_w / 2 + zw / 2 + i * (zw + 1.0)
        shape = _rect(cx + along * ux, cy + along * uy, zw, inner_d, bearing)
        dept = brand.zones[i]
        zones.append(Fence(f"{sid}-Z{i + 1}", "zone", dept, idx, shape, department=dept))
    return tuple(zones)


def _till(sid: str, idx: int, rect: tuple[float, ...], front: tuple[float, float]) -> Fence:
    """The tills, by the door, 2 m inside the shop front: a zone of their own, so that a tap
    on the till's NFC tag is an event there even when GPS or a beacon already has the store."""
    cx, cy, _w, d, bearing = rect
    depth = d / 2 - 2.0 - TILL_D / 2
    x, y = cx + front[0] * depth, cy + front[1] * depth
    return Fence(f"{sid}-T", "zone", "Caisses", idx, _rect(x, y, TILL_W, TILL_D, bearing))


def build_city(seed: int) -> City:
    """Stores of each brand along the shopping streets, at least 170 m apart."""
    rng = np.random.default_rng([seed, 1])
    weights = np.array([a[4] for a in AREAS])
    stores: list[Store] = []
    fences: list[Fence] = []
    names: set[str] = set()
    for brand in BRANDS:
        for n in range(1, brand.count + 1):
            for _attempt in range(200):
                area, lat, lon, bearing, _w = AREAS[
                    rng.choice(len(AREAS), p=weights / weights.sum())
                ]
                ax, ay = to_xy(lat, lon)
                b = math.radians(bearing + rng.normal(0, 4))
                along, side = rng.uniform(-450, 450), float(rng.choice((-1.0, 1.0)))
                lo, hi = brand.size_m
                w, d = rng.uniform(lo, hi), rng.uniform(lo, hi)
                half = d / 2 if brand.kind == "store" else w
                off = side * (12.0 + half)  # shop front 12 m from the street axis
                cx = float(ax) + along * math.sin(b) - off * math.cos(b)
                cy = float(ay) + along * math.cos(b) + off * math.sin(b)
                if all(math.hypot(cx - s.x, cy - s.y) >= 170 for s in stores):
                    break
            sid, idx, deg = f"{brand.code}-{n:02d}", len(stores), math.degrees(b)
            front = (side * math.cos(b), -side * math.sin(b))
            label = f"{brand.name} {area.split(' – ')[0]}"
            label = next(f"{label} {i}" for i in range(1, 99) if f"{label} {i}" not in names)
            names.add(label)
            if brand.kind == "competitor":
                shape = shapely.Point(cx, cy).buffer(half, quad_segs=32)
                store = Store(sid, brand, label, area, cx, cy, deg, shape, front, half, half)
                fences.append(Fence(sid, "competitor", label, idx, shape, radius_m=half))
            else:
                zones = _zones(sid, idx, brand, (cx, cy, w, d, deg))
                zones = (*zones, _till(sid, idx, (cx, cy, w, d, deg), front))
                shape = _rect(cx, cy, w, d, deg)
                store = Store(sid, brand, label, area, cx, cy, deg, shape, front, half, zones=zones)
                fences.append(Fence(sid, "store", label, idx, shape))
                fences.extend(zones)
            stores.append(store)
    px, py = to_xy([p[0] for p in PERIPHERIQUE], [p[1] for p in PERIPHERIQUE])
    return City(seed, stores, fences, shapely.Polygon(np.c_[px, py]))


def _feature(store: Store, f: Fence) -> dict[str, Any]:
    meta: dict[str, Any] = {"brand": store.brand.name, "area": store.area, "demo": True}
    if f.department:
        meta["department"] = f.department
    props: dict[str, Any] = {
        "name": f.name if f.kind != "zone" else f"{store.name} – {f.name}",
        "kind": f.kind,
        "metadata": meta,
    }
    if f.kind == "competitor":
        lat, lon = to_latlon(store.x, store.y)
        geometry = {"type": "Point", "coordinates": [round(float(lon), 7), round(float(lat), 7)]}
        props["radius_m"] = round(float(f.radius_m or 0), 1)
    else:
        xy = shapely.get_coordinates(shapely.get_exterior_ring(f.shape))
        lat, lon = to_latlon(xy[:, 0], xy[:, 1])
        ring = [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]
        ring[-1] = ring[0]
        geometry = {"type": "Polygon", "coordinates": [ring]}
        props.update(store_id=store.id, timezone=TIMEZONE, opening_hours=OPENING_HOURS)
    return {"type": "Feature", "id": f.id, "geometry": geometry, "properties": props}
