"""Value types of the presence core. Times are unix seconds (float, UTC) inside the core."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"


class FixFlag(StrEnum):
    """Why a fix was accepted but not used for transitions."""

    DUPLICATE = "duplicate"  # same customer and timestamp as one already applied
    LATE = "late"  # older than the latest fix applied to that customer
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
    type: EventType
    customer_id: str
    geofence_id: str
    ts: float
    source: str = "gps"  # gps | beacon | nfc
    reason: str | None = None  # e.g. exit by "buffer", "timeout", "stale"


@dataclass(slots=True)
class FenceState:
    """One customer inside one fence."""

    entered_at: float
    last_inside_at: float
    outside_since: float | None = None
    dwell_fired: bool = False


@dataclass(slots=True)
class CustomerCursor:
    """The latest fix applied to a customer: what late, duplicate and speed checks compare to."""

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
    # the latest event sweep() dated after last_ts (a dwell/exit at its deadline): a fix dated
    # before it is late, so a customer's events stay in time order. None when <= last_ts.
    last_event_ts: float | None = None


@dataclass(frozen=True, slots=True)
class PresenceConfig:
    # enter: the accuracy circle must lie inside: depth_m >= enter_accuracy_fraction * accuracy
    enter_accuracy_fraction: float = 0.5
    max_enter_accuracy_m: float = 100.0  # a fix less certain than this never enters
    unknown_accuracy_m: float = 30.0  # accuracy assumed when the client sends 0 or nothing
    # exit: outside by at least this buffer, or outside (any distance) for exit_after_s
    exit_buffer_m: float = 25.0
    exit_after_s: float = 180.0
    dwell_after_s: float = 300.0
    # no fix at all for this long while inside -> exit at sweep (0 disables)
    stale_exit_after_s: float = 4 * 3600.0
    max_speed_mps: float = 70.0  # ~250 km/h; faster implied motion is flagged
    reanchor_after: int = 3  # consistent fast fixes after which the cursor re-anchors
