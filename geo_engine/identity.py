"""Merging the presence of two identities of one customer (a device that was its own customer,
linked to its owner). Pure: the runtime applies the result to memory and PostgreSQL together.

Rules:
- cursor: the one with the later fix wins (late/duplicate checks compare to the newest fix);
  `last_event_ts` is the later of both, so no event is ever dated before one already emitted.
- fences only one side is inside: kept as they are.
- a fence both are inside (two phones of one shopper): one visit, the one that began first; the
  later one is *superseded*: its open events (enter, dwell) are removed so the customer's history
  never shows two enters in a row. The kept visit takes the latest inside evidence of both.
- closed visits of the past are re-attributed as they are (documented limit: two devices' past
  visits to one fence may overlap in the history).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from msgspec.structs import replace

from geo_engine.models import CustomerCursor, FenceState


@dataclass(frozen=True, slots=True)
class MergedPresence:
    cursor: CustomerCursor | None
    states: dict[str, FenceState]
    # fence id -> (owner whose open visit is dropped, that visit's entered_at)
    superseded: dict[str, tuple[str, float]]


def merge_presence(
    into_id: str,
    into: tuple[CustomerCursor | None, Mapping[str, FenceState]],
    other_id: str,
    other: tuple[CustomerCursor | None, Mapping[str, FenceState]],
) -> MergedPresence:
    cur_a, states_a = into
    cur_b, states_b = other
    cursor = _merge_cursors(cur_a, cur_b)
    states = dict(states_a)
    superseded: dict[str, tuple[str, float]] = {}
    for fid, sb in states_b.items():
        sa = states.get(fid)
        if sa is None:
            states[fid] = sb
            continue
        first, later, later_owner = (
            (sa, sb, other_id)
            if sa.entered_at <= sb.entered_at
            else (
                sb,
                sa,
                into_id,
            )
        )
        superseded[fid] = (later_owner, later.entered_at)
        states[fid] = _merge_visit(first, later)
    return MergedPresence(cursor, states, superseded)


def _merge_cursors(a: CustomerCursor | None, b: CustomerCursor | None) -> CustomerCursor | None:
    if a is None or b is None:
        return a if b is None else b
    newest = a if a.last_ts >= b.last_ts else b
    events = [t for t in (a.last_event_ts, b.last_event_ts) if t is not None]
    return replace(newest, last_event_ts=max(events) if events else None)


def _merge_visit(first: FenceState, later: FenceState) -> FenceState:
    """The earlier visit, with the newest inside evidence of both. Its own dwell flag stands:
    the later visit's dwell event is removed with it, and the kept visit's dwell (due earlier,
    since it began earlier) fires by the usual rule if it has not yet. GPS confirmation and the
    longest proximity hold of either phone carry over: each is evidence about the same person."""
    outside = first.outside_since
    if outside is not None and later.last_inside_at >= outside:
        outside = None  # the other phone saw the customer inside since
    held_until, held_by = first.held_until, first.held_by
    if later.held_until is not None and (held_until is None or later.held_until > held_until):
        held_until, held_by = later.held_until, later.held_by
    return replace(
        first,
        last_inside_at=max(first.last_inside_at, later.last_inside_at),
        outside_since=outside,
        gps_confirmed=first.gps_confirmed or later.gps_confirmed,
        held_until=held_until,
        held_by=held_by,
    )
