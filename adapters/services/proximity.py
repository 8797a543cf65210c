"""Beacon sightings and NFC taps -> proximity evidence for the presence engine.

Each request is one presence unit of work (adapters/services/unit_of_work.py): the engine's
`apply_proximity`, the presence write, for a tap the SUN counter and the tap record, and the
reactions (store visits, decisions: a campaign on `"sources": ["beacon"]` or `["nfc"]` fires
here) commit in one transaction or not at all; the engine is rolled back with it.

Where the evidence lands: a beacon's zone fence and, since a zone lies inside its store, every
store fence of that store; a tag's fence (a store, or a zone and then its store as well). Holds:
`beacon_exit_after_s` (a beacon no longer heard means exit after that), `nfc_hold_s`.

Tag authenticity: adapters/codecs/nfc_sun.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from adapters.codecs.nfc_sun import SunMessage, TapRefused, verify_sun
from adapters.codecs.sightings import Sighting
from adapters.privacy.metrics import DROPPED
from adapters.services.presence import PresenceRuntime
from adapters.services.unit_of_work import Change, Stored
from geo_engine.models import SOURCE_BEACON, SOURCE_NFC, PresenceEvent
from geo_engine.ports import Tx
from geo_engine.presence import PresenceEngine
from geo_engine.profile.consent import REFUSALS
from geo_engine.proximity import (
    Proximity,
    RangingConfig,
    class_near_enough,
    power_1m_from_eddystone,
    range_beacon,
)
from geo_engine.proximity_ports import (
    EDDYSTONE_UID,
    BeaconRegistry,
    NfcTagRegistry,
    UnknownTag,
    canonical_uuid,
    ibeacon_identity,
)
from geofences.index import FenceIndex
from geofences.model import FenceKind

SIGHTINGS = Counter("geo_beacon_sightings_total", "Beacon sightings, by outcome", ["outcome"])
IGNORED = Counter(
    "geo_proximity_ignored_total",
    "Proximity signals accepted but not used as presence evidence, by kind and reason",
    ["kind", "reason"],
)
TAPS = Counter("geo_nfc_taps_total", "NFC taps, by outcome", ["outcome"])

_stores: tuple[FenceIndex, dict[str, list[str]]] | None = None


def evidence_fences(index: FenceIndex, fence_id: str) -> list[str] | None:
    """The fence and, for a zone, its store's store fences. None: not in the live index."""
    global _stores
    pos = index.position(fence_id)
    if pos is None:
        return None
    fence = index.fences[pos]
    if fence.kind is not FenceKind.ZONE or fence.store_id is None:
        return [fence.id]
    if _stores is None or _stores[0] is not index:  # the index is rebuilt, never mutated
        by_store: dict[str, list[str]] = {}
        for f in index.fences:
            if f.kind is FenceKind.STORE and f.store_id is not None:
                by_store.setdefault(f.store_id, []).append(f.id)
        _stores = (index, by_store)
    return [fence.id, *_stores[1].get(fence.store_id, ())]


# -- beacon sightings -----------------------------------------------------------------------------


CONSENT_REASONS = REFUSALS


@dataclass(frozen=True, slots=True)
class SightingsOutcome:
    accepted: int
    ignored: list[tuple[int, str]]  # (row, reason): unknown_beacon, too_far, no_rssi, late, ...
    events: list[tuple[int, PresenceEvent]]


@dataclass(frozen=True, slots=True)
class ProximityConfig:
    ranging: RangingConfig
    default_measured_power: float  # dBm at 1 m, for a beacon neither calibrated nor advertising
    beacon_exit_after_s: float  # a beacon unheard this long: its hold runs out
    nfc_hold_s: float  # a tap holds its store (and zone) this long


class ProximityService:
    def __init__(
        self,
        runtime: PresenceRuntime,
        beacons: BeaconRegistry,
        tags: NfcTagRegistry,
        cfg: ProximityConfig,
    ) -> None:
        self.runtime = runtime
        self.beacons = beacons
        self.tags = tags
        self.cfg = cfg

    async def sightings(self, rows: Sequence[Sighting]) -> SightingsOutcome:
        ignored: list[tuple[int, str]] = []
        gate = self.runtime.location_gate
        if gate is not None:  # no location consent: neither processed nor stored
            refused = [(r, gate(r.customer_id)) for r in rows]
            for r, why in refused:
                if why is not None:
                    ignored.append((r.index, why))
                    DROPPED.labels("beacon", why).inc()
            rows = [r for r, why in refused if why is None]
        found = await self.beacons.by_identity([r.identity for r in rows])
        cfg = self.cfg.ranging
        index = self.runtime.index
        evidence: list[tuple[Sighting, list[str]]] = []
        # heard, but not near enough to enter: still "heard" for a visit already under way
        weak: list[tuple[Sighting, list[str]]] = []
        for row in rows:
            beacon = found.get(row.identity)
            fences = None if beacon is None else evidence_fences(index, beacon.geofence_id)
            reason = None
            if beacon is None or fences is None:
                reason = "unknown_beacon"
            elif row.rssi is None:
                if row.proximity is None:
                    reason = "no_rssi"
                elif not class_near_enough(row.proximity, cfg):
                    reason = "too_far"
            else:
                # calibrated at placement > advertised by the beacon > a typical beacon's
                power: float = self.cfg.default_measured_power
                if beacon.measured_power is not None:
                    power = beacon.measured_power
                elif row.tx_power is not None:
                    eddy = beacon.kind == EDDYSTONE_UID
                    power = power_1m_from_eddystone(row.tx_power) if eddy else row.tx_power
                if not range_beacon(row.rssi, power, cfg).near_enough:
                    reason = "too_far"
            if reason == "too_far" and fences is not None:
                weak.append((row, fences))
            elif reason is not None:
                ignored.append((row.index, reason))
            else:
                assert fences is not None
                evidence.append((row, fences))
        hold = self.cfg.beacon_exit_after_s
        # stable: request order for equal times
        signals = sorted(
            [*((r, f, True) for r, f in evidence), *((r, f, False) for r, f in weak)],
            key=lambda s: s[0].ts,
        )

        def apply(engine: PresenceEngine) -> Change:
            events: list[PresenceEvent] = []
            for row, fences, near in signals:
                if not near:
                    # hysteresis, as for GPS: a near reading enters, any reading of the beacon
                    # keeps the visit it started (a shopper 6 m from the nearest beacon is often
                    # "far": dropping those split one visit into several)
                    inside = engine.inside(row.customer_id)
                    fences = [f for f in fences if f in inside]
                    if not fences:
                        ignored.append((row.index, "too_far"))
                        continue
                r = engine.apply_proximity(row.customer_id, fences, row.ts, SOURCE_BEACON, hold)
                if r.flag is not None:
                    ignored.append((row.index, str(r.flag)))
                events.extend(r.events)
            return Change(events)

        stored = await self.runtime.uow.transact(apply) if signals else []
        SIGHTINGS.labels("accepted").inc(len(rows))
        for _, reason in ignored:
            if reason not in CONSENT_REASONS:  # those are counted in geo_location_dropped_total
                IGNORED.labels("beacon", reason).inc()
        ignored.sort()
        return SightingsOutcome(len(rows), ignored, stored)

    async def ibeacon_report(
        self,
        customer_id: str,
        *,
        uuid: str,
        major: int,
        minor: int,
        rssi: float | None,
        ios_proximity: int | None,
        ts: float,
    ) -> str:
        """One iBeacon sighting from a client that never sees our reply (OwnTracks `beacon`):
        never raises for bad input, returns an outcome label (accepted | ignored; the reason is
        counted in geo_proximity_ignored_total). iOS's own class (CLProximity 1..3) stands in
        when it could not measure the RSSI."""
        try:
            identity = ibeacon_identity(canonical_uuid(uuid), major, minor)
        except ValueError:
            IGNORED.labels("beacon", "bad_identity").inc()
            return "ignored"
        if not 0 <= major <= 0xFFFF or not 0 <= minor <= 0xFFFF:
            IGNORED.labels("beacon", "bad_identity").inc()
            return "ignored"
        if rssi is not None and not -120 <= rssi < 0:
            rssi = None
        row = Sighting(
            0, customer_id, identity, rssi, ts, proximity=_IOS_PROXIMITY.get(ios_proximity or 0)
        )
        out = await self.sightings([row])
        return "ignored" if out.ignored else "accepted"

    async def tap(self, tap: Tap) -> TapOutcome:
        try:
            return await self._tap(tap)
        except TapRefused as exc:
            TAPS.labels(exc.outcome).inc()
            raise

    async def _tap(self, tap: Tap) -> TapOutcome:
        tag = await self.tags.get(tap.tag_id)
        fences = None if tag is None else evidence_fences(self.runtime.index, tag.geofence_id)
        if tag is None or fences is None:
            raise TapRefused(404, "tag_id", f"no NFC tag {tap.tag_id!r}", "unknown_tag")
        counter: int | None = None
        if tag.sun_file_key is not None:
            if tap.sun is None:
                reason = "this tag is registered with a SUN key: send the tap's SUN parameters"
                raise TapRefused(422, "sun", reason, "bad_sun")
            _, counter = verify_sun(tag.sun_file_key, tag.sun_meta_key, tag.uid, tap.sun)
            if tag.last_counter is not None and counter <= tag.last_counter:
                raise _replay(counter, tag.last_counter)
        # checked once the tap is known to be genuine: a bad tap is still refused as such
        gate = self.runtime.location_gate
        why = None if gate is None else gate(tap.customer_id)
        if why is not None:  # no location consent: not processed, not stored (id 0), flagged
            DROPPED.labels("nfc", why).inc()
            return TapOutcome(0, False, None, why, [])
        flag: str | None = None
        tap_id = 0
        hold = self.cfg.nfc_hold_s

        async def advance(tx: Tx) -> None:
            # the guard that counts: a concurrent tap with the same counter loses here
            if counter is not None and not await self.tags.advance_counter(tx, tag.id, counter):
                raise _replay(counter, None)

        def apply(engine: PresenceEngine) -> Change:
            nonlocal flag
            r = engine.apply_proximity(tap.customer_id, fences, tap.ts, SOURCE_NFC, hold)
            flag = None if r.flag is None else str(r.flag)
            return Change(r.events)

        async def record(tx: Tx, _: Stored) -> None:
            nonlocal tap_id
            try:
                tap_id = await self.tags.record_tap(
                    tx,
                    tag_id=tag.id,
                    customer_id=tap.customer_id,
                    device_id=tap.device_id,
                    ts=tap.ts,
                    counter=counter,
                    verified=counter is not None,
                    flag=flag,
                )
            except UnknownTag:  # deleted since it was read: the whole tap is undone
                raise TapRefused(
                    404, "tag_id", f"no NFC tag {tap.tag_id!r}", "unknown_tag"
                ) from None

        events = await self.runtime.uow.transact(apply, before=advance, after=record)
        TAPS.labels("accepted").inc()
        if flag is not None:
            IGNORED.labels("nfc", flag).inc()
        return TapOutcome(tap_id, counter is not None, counter, flag, events)


_IOS_PROXIMITY = {1: Proximity.IMMEDIATE, 2: Proximity.NEAR, 3: Proximity.FAR}


# -- NFC taps -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tap:
    customer_id: str
    device_id: str | None
    tag_id: str
    ts: float
    sun: SunMessage | None = None


@dataclass(frozen=True, slots=True)
class TapOutcome:
    id: int
    verified: bool
    counter: int | None
    flag: str | None  # late: recorded, but no presence transition
    events: list[tuple[int, PresenceEvent]]


def _replay(counter: int, last: int | None) -> TapRefused:
    seen = "" if last is None else f" (last seen {last})"
    reason = f"read counter {counter} is not greater than the last accepted{seen}: a replay"
    return TapRefused(409, "sun.ctr", reason, "replay")
