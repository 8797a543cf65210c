"""The time-driven presence rules: when a fence state's dwell and exit fall due.

Shared by `PresenceEngine.apply` / `apply_proximity` (due at the fix's or signal's timestamp)
and `sweep` (due at the wall clock), so all date an event identically and the events do not
depend on when sweep runs.
"""

from __future__ import annotations

from geo_engine.models import (
    SOURCE_GPS,
    FenceState,
    PresenceConfig,
    PresenceEvent,
    PresenceEventType,
)

INF = float("inf")
NEG_INF = float("-inf")

REASON_BUFFER = "buffer"
REASON_TIMEOUT = "timeout"
REASON_STALE = "stale"
REASON_NOT_HEARD = "not_heard"  # a proximity hold ran out with nothing else keeping the visit


def exit_deadline(st: FenceState, cfg: PresenceConfig) -> tuple[float, str]:
    """When the state exits by time alone, and why (INF: never).

    A visit GPS never confirmed rests on its proximity hold alone: it exits "not_heard" when the
    hold ends. Otherwise the GPS rules: outside (within the buffer) since `outside_since`:
    timeout; else the last information was "inside" at `last_inside_at`: stale after
    `stale_exit_after_s` with no news. Neither fires while held: it is put off to `held_until`.
    """
    held = st.held_until
    if held is not None and not st.gps_confirmed:
        return held, REASON_NOT_HEARD
    if st.outside_since is not None:
        at, reason = st.outside_since + cfg.exit_after_s, REASON_TIMEOUT
    elif cfg.stale_exit_after_s > 0:
        at, reason = st.last_inside_at + cfg.stale_exit_after_s, REASON_STALE
    else:
        return INF, REASON_STALE
    if held is not None and at < held:
        at = held
    return at, reason


def exit_source(st: FenceState, reason: str) -> str:
    """The source an exit is attributed to: the hold's for "not_heard", else GPS's."""
    if reason == REASON_NOT_HEARD and st.held_by is not None:
        return st.held_by
    return SOURCE_GPS


def dwell_deadline(st: FenceState, cfg: PresenceConfig, exit_at: float) -> float:
    """When the on-time dwell falls due (INF: none pending).

    None is pending once fired, while the customer is tentatively outside (that visit's dwell
    then waits for inside evidence, see presence.py), or if the exit comes first.
    """
    if st.dwell_fired or st.outside_since is not None:
        return INF
    due = st.entered_at + cfg.dwell_after_s
    return due if due <= exit_at else INF


def next_deadline(st: FenceState, cfg: PresenceConfig) -> float:
    """The earliest time anything happens to the state without new evidence (INF: never)."""
    exit_at, _ = exit_deadline(st, cfg)
    return min(dwell_deadline(st, cfg, exit_at), exit_at)


def refreshed(
    st: FenceState, last_inside_at: float, outside_since: float | None, dwelt: bool, gps: bool
) -> FenceState:
    """`st` with new evidence; the visit's source and hold unchanged (no dataclasses.replace:
    this runs for every fix of a customer inside a fence)."""
    return FenceState(
        st.entered_at,
        last_inside_at,
        outside_since,
        dwelt,
        st.source,
        gps,
        st.held_until,
        st.held_by,
    )


def elapse(
    cfg: PresenceConfig,
    cid: str,
    fid: str,
    st: FenceState,
    now: float,
    floor: float,
    events: list[PresenceEvent],
    states: dict[str, FenceState],
) -> FenceState | None:
    """Fire the dwell and exit due by `now` (dated at their deadline, not before `floor`).
    Returns the state left (stored in `states`, not rescheduled), None after an exit."""
    exit_at, reason = exit_deadline(st, cfg)
    dwell_at = dwell_deadline(st, cfg, exit_at)
    if dwell_at > now and exit_at > now:
        return st
    if dwell_at <= now:
        events.append(
            PresenceEvent(PresenceEventType.DWELL, cid, fid, max(dwell_at, floor), st.source)
        )
        st = refreshed(st, st.last_inside_at, st.outside_since, True, st.gps_confirmed)
    if exit_at <= now:
        src = exit_source(st, reason)
        events.append(
            PresenceEvent(PresenceEventType.EXIT, cid, fid, max(exit_at, floor), src, reason)
        )
        del states[fid]
        return None
    states[fid] = st
    return st
