"""The stores' radio: iBeacons on the ceiling of every department, an NFC tag at the tills and
one on a shelf of every department, placed from the city (no randomness but the beacons'
calibration, from the seed) and registered through the API (`POST /v1/beacons`,
`POST /v1/nfc-tags`).

Beacons run at low transmit power, as stores set them so that a department's beacon is not
heard across the shop: calibrated at placement to -72..-66 dBm at 1 m (the `measured_power` the
engine ranges with), on average below a phone's sensitivity (-95 dBm) beyond about 20 m, so
never heard from the far sidewalk (>= 42 m from the shop, phones.py).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import httpx
import numpy as np
import shapely
from numpy.typing import NDArray

from adapters.demo.city import City, Fence, Store
from adapters.demo.marketing import send_all

Floats = NDArray[np.float64]
Headers = dict[str, str]
BEACON_EVERY_M = 10.0  # a beacon per cell of at most 10 x 10 m, on the ceiling
POWER_1M = (-72, -66)  # dBm, measured at placement
NAMESPACE = uuid.UUID("6d5f6b1e-3c1a-4f5e-9a51-2f3b0d6c7e10")  # the demo's, for brand UUIDs


@dataclass(frozen=True, slots=True)
class Beacon:
    id: str
    store: int  # index in City.stores
    zone: str  # its department's fence id
    x: float
    y: float
    uuid: str  # one per brand
    major: int  # the store
    minor: int  # department * 64 + its cell
    power: int  # dBm at 1 m


@dataclass(frozen=True, slots=True)
class Tag:
    id: str
    store: int
    fence: str  # the tills' zone, or a department
    x: float
    y: float
    placement: str  # "till" or "shelf"


@dataclass
class Radio:
    beacons: list[Beacon]
    tags: list[Tag]

    def store_beacons(self) -> dict[int, NDArray[np.int64]]:
        """Store index -> its beacons' indices."""
        out: dict[int, list[int]] = {}
        for i, b in enumerate(self.beacons):
            out.setdefault(b.store, []).append(i)
        return {s: np.array(ix, dtype=np.int64) for s, ix in out.items()}

    def beacon_doc(self, b: Beacon) -> dict[str, object]:
        return {"id": b.id, "uuid": b.uuid, "major": b.major, "minor": b.minor,
                "geofence_id": b.zone, "measured_power": b.power,
                "placement": f"ceiling, cell {b.minor % 64 + 1} of the department"}  # fmt: skip

    def tag_doc(self, t: Tag) -> dict[str, object]:
        where = "the tills: loyalty card" if t.placement == "till" else "a shelf: product info"
        return {"id": t.id, "geofence_id": t.fence, "placement": where}


def _axes(store: Store, zone: Fence) -> tuple[float, float, Floats, Floats]:
    """The zone's centre and its extent along the shop front and along the depth."""
    c = zone.shape.centroid
    xy = shapely.get_coordinates(zone.shape)
    fx, fy = store.front
    depth = (xy[:, 0] - c.x) * fx + (xy[:, 1] - c.y) * fy
    along = (xy[:, 0] - c.x) * fy - (xy[:, 1] - c.y) * fx
    return c.x, c.y, np.array([along.min(), along.max()]), np.array([depth.min(), depth.max()])


def _grid(lo_hi: Floats) -> Floats:
    """Cell centres, BEACON_EVERY_M apart at most, across [lo, hi]."""
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    n = max(1, math.ceil((hi - lo) / BEACON_EVERY_M))
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n


def install(city: City, seed: int) -> Radio:
    """Beacons on a grid of cells at most BEACON_EVERY_M wide over each department, the till
    tag in the tills' zone, a shelf tag in the middle of each department."""
    rng = np.random.default_rng([seed, 0x726164])
    beacons: list[Beacon] = []
    tags: list[Tag] = []
    for s_idx, s in enumerate(city.stores):
        if s.brand.kind != "store":
            continue
        brand_uuid = str(uuid.uuid5(NAMESPACE, s.brand.code))
        major = int(s.id.split("-")[1])
        fx, fy = s.front
        departments = [z for z in s.zones if z.department]
        for d, z in enumerate(departments):
            cx, cy, along, depth = _axes(s, z)
            cells = [(a, b) for b in _grid(depth) for a in _grid(along)]
            for k, (a, b) in enumerate(cells):
                x, y = cx + fy * a + fx * b, cy - fx * a + fy * b
                power = int(rng.integers(POWER_1M[0], POWER_1M[1] + 1))
                beacons.append(Beacon(f"{z.id}-B{k + 1}", s_idx, z.id, x, y, brand_uuid,
                                      major, 64 * d + k, power))  # fmt: skip
            tags.append(Tag(f"{z.id}-shelf", s_idx, z.id, cx, cy, "shelf"))
        till = next(z for z in s.zones if not z.department)
        c = till.shape.centroid
        tags.append(Tag(f"{s.id}-till", s_idx, till.id, c.x, c.y, "till"))
    return Radio(beacons, tags)


async def register(client: httpx.AsyncClient, admin: Headers, radio: Radio) -> None:
    """Every beacon and tag through the API, as the stores' staff would set them up (their
    ids are given: the order they are created in changes nothing)."""
    await send_all(client.post("/v1/beacons", json=radio.beacon_doc(b), headers=admin)
                  for b in radio.beacons)  # fmt: skip
    await send_all(client.post("/v1/nfc-tags", json=radio.tag_doc(t), headers=admin)
                  for t in radio.tags)  # fmt: skip
