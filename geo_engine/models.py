"""Value types of the presence core. Times are unix seconds (float, UTC) inside the core."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import msgspec

# Where presence evidence comes from: GPS fixes, or proximity signals (a BLE beacon heard near,
# an NFC tag tapped). Events and fence states carry one of these.
SOURCE_GPS = "gps"
SOURCE_BEACON = "beacon"
SOURCE_NFC = "nfc"
PROXIMITY_SOURCES = frozenset({SOURCE_BEACON, SOURCE_NFC})


class PresenceEventType(StrEnum):
    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"


class FixFlag(StrEnum):
    """Why a fix was accepted but not used for transitions."""

    DUPLICATE = "duplicate"  # same customer and timestamp as one already applied
    LATE = "late"  # older than the latest fix, proximity signal or event of that customer
    IMPOSSIBLE_SPEED = "impossible_speed"
    MOCK = "mock"  # the client says the location is mocked
    LOW_ACCURACY = "low_accuracy"  # too uncertain to enter anything (still may keep/exit)


@dataclass(frozen=True, slots=True)
class Fix:
    customer_id: str
    ts: float
    lat: float
    lon: float
    accuracy_m: float | None  # None = unknown (clients send 0 or nothing)
    mock: bool = False
    speed_mps: float | None = None


@dataclass(frozen=True, slots=True)
class FenceObservation:
    """Where a fix lies relative to one fence: `depth_m` > 0 inside (distance to the boundary),
    < 0 outside (minus the distance to the fence)."""

    fence_id: str
    depth_m: float


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    type: PresenceEventType
    customer_id: str
    geofence_id: str
    ts: float
    source: str = SOURCE_GPS  # gps | beacon | nfc
    reason: str | None = None  # exit by "buffer", "timeout", "stale" (gps) or "not_heard"


class FenceState(msgspec.Struct, gc=False):
    """One customer inside one fence (one visit). See presence.py for the rules.

    Not tracked by the cyclic garbage collector (`gc=False`, numbers and strings only: it can
    be in no cycle), like CustomerCursor."""

    entered_at: float
    last_inside_at: float  # latest inside evidence, GPS or proximity
    outside_since: float | None = None  # GPS says tentatively outside since then
    dwell_fired: bool = False
    source: str = SOURCE_GPS  # what entered this visit; its dwell carries the same source
    # GPS put the customer inside during this visit (a fix good enough to enter): when a
    # proximity hold runs out, such a visit goes on under the GPS rules; any other one exits
    gps_confirmed: bool = True
    # proximity hold: before this time no GPS rule may exit the fence. None: never held.
    held_until: float | None = None
    held_by: str | None = None  # the source whose signal set `held_until` (beacon | nfc)


class CustomerCursor(msgspec.Struct, gc=False):
    """The latest fix applied to a customer: what late, duplicate and speed checks compare to.

    A customer known only from proximity signals has no fix yet: `last_ts` is -inf (the
    position fields then mean nothing) and its latest signal's time is in `last_event_ts`.

    Not tracked by the cyclic garbage collector (`gc=False`: numbers only, it can be in no
    cycle). An owner replaces one per customer on every fix; as tracked objects they filled
    the oldest generation, and each full collection walked them all (a soak with 200 k
    customers: 49 full collections of up to 1.8 s in 4 minutes on a loaded machine).
    """

    last_ts: float
    last_lat: float
    last_lon: float
    last_accuracy_m: float | None = None
    # a run of consecutive fixes rejected for speed: after enough mutually consistent ones the
    # customer really moved (train, plane, long gap) and the cursor re-anchors there.
    suspect_ts: float | None = None
    suspect_lat: float | None = None
    suspect_lon: float | None = None
    suspect_count: int = 0
    suspect_accuracy_m: float | None = None  # the newest suspect's accuracy (for the speed rule)
    # the latest time decided after last_ts: an event sweep() dated (a dwell/exit at its
    # deadline) or a proximity signal applied. A fix or signal dated before it is late, so a
    # customer's events stay in time order. None when <= last_ts.
    last_event_ts: float | None = None


@dataclass(frozen=True, slots=True)
class PresenceConfig:
    # enter: the accuracy circle must lie inside: depth_m >= enter_accuracy_fraction * accuracy
    enter_accuracy_fraction: float = 0.5
    max_enter_accuracy_m: float = 100.0  # a fix less certain than this never enters
    # exit by buffer: one fix outside by max(exit_buffer_m, exit_accuracy_fraction * accuracy).
    # 1.5: at 0.5 (the enter mirror) one indoor fix thrown 2x its accuracy out ended the visit;
    # in the demo day that split 37% of visits, at 1.5 4% (2.0 gains little more, exits later)
    exit_accuracy_fraction: float = 1.5
    unknown_accuracy_m: float = 30.0  # accuracy assumed when the client sends 0 or nothing
    # exit: outside by at least this buffer, or outside (any distance) for exit_after_s
    exit_buffer_m: float = 25.0
    exit_after_s: float = 180.0
    dwell_after_s: float = 300.0
    # no fix at all for this long while inside -> exit at sweep (0 disables)
    stale_exit_after_s: float = 4 * 3600.0
    max_speed_mps: float = 70.0  # ~250 km/h; faster implied motion is flagged
    reanchor_after: int = 3  # consistent fast fixes after which the cursor re-anchors
