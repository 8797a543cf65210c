"""The time-driven presence rules: when a fence state's dwell and exit fall due.

Shared by `PresenceEngine.apply` (due at the fix's timestamp) and `sweep` (due at the wall
clock), so both date an event identically and the events do not depend on when sweep runs.
"""

from __future__ import annotations

from geo_engine.models import FenceState, PresenceConfig

INF = float("inf")
NEG_INF = float("-inf")

REASON_BUFFER = "buffer"
REASON_TIMEOUT = "timeout"
REASON_STALE = "stale"


def exit_deadline(st: FenceState, cfg: PresenceConfig) -> tuple[float, str]:
    """When the state exits by time alone, and why (INF: never).

    Outside (within the buffer) since `outside_since`: timeout. Otherwise the last information
    was "inside" at `last_inside_at`: stale after `stale_exit_after_s` with no news.
    """
    if st.outside_since is not None:
        return st.outside_since + cfg.exit_after_s, REASON_TIMEOUT
    if cfg.stale_exit_after_s > 0:
        return st.last_inside_at + cfg.stale_exit_after_s, REASON_STALE
    return INF, REASON_STALE


def dwell_deadline(st: FenceState, cfg: PresenceConfig, exit_at: float) -> float:
    """When the on-time dwell falls due (INF: none pending).

    None is pending once fired, while the customer is tentatively outside (that visit's dwell
    then waits for an inside fix, see presence.py), or if the exit comes first.
    """
    if st.dwell_fired or st.outside_since is not None:
        return INF
    due = st.entered_at + cfg.dwell_after_s
    return due if due <= exit_at else INF


def next_deadline(st: FenceState, cfg: PresenceConfig) -> float:
    """The earliest time anything happens to the state without a new fix (INF: never)."""
    exit_at, _ = exit_deadline(st, cfg)
    return min(dwell_deadline(st, cfg, exit_at), exit_at)
