"""The presence state machine: a stream of noisy fixes -> ENTER / DWELL / EXIT events.

State: one `CustomerCursor` per customer (the latest fix applied), one `FenceState` per
(customer, fence) the customer is inside. Events have source "gps". Times are unix seconds.
`accuracy` below is the fix's accuracy, or `unknown_accuracy_m` when it is None or <= 0.

Per fix, in this order (the first that matches decides; a flagged fix changes nothing unless
said):
1. `mock` -> MOCK.
2. ts equal to the cursor's `last_ts` or to the pending speed suspect's ts -> DUPLICATE.
3. ts before `last_ts`, before the pending suspect, or before an event sweep() already dated
   (`last_event_ts`) -> LATE. Hence replaying any fix a second time never changes anything.
   The caller must refuse fixes dated in the future (ts > now + skew): a fix accepted with a
   future ts makes every real fix LATE until then.
4. Speed: (haversine(cursor, fix) - acc_cursor - acc_fix) / (ts - last_ts) > max_speed_mps ->
   IMPOSSIBLE_SPEED; the cursor stays, but the fix becomes the suspect: the run's count grows by
   one if the fix is plausible (same rule) from the previous suspect, else the run restarts at 1.
   The fix that brings the count to `reanchor_after` re-anchors the cursor on itself and is
   processed as an accepted fix (no flag): a real train ride or a long gap never locks anyone
   out. A plausible fix clears the run.
5. Accepted: the cursor moves to the fix; then each observation (below). The first fix of a
   customer is always accepted.

Observations: the caller passes every fence containing the fix and every fence the customer is
inside. A fence the customer is inside but which is missing from `observations` gets no
information from the fix: nothing happens to it (sweep() still times it out). Observations of
fences the customer is not inside with depth < 0 are ignored.

Per observed fence, at fix time t:
- Time first: if the customer is inside, the due dwell and/or exit below happen first, dated at
  their deadline (never before the customer's previous fix or event); an exit there makes the
  fence "not inside" for the rest of this fix.
- Enter (not inside): accuracy <= max_enter_accuracy_m and depth >= enter_accuracy_fraction *
  accuracy -> ENTER at t (and DWELL at t too if dwell_after_s <= 0). A fix whose accuracy is
  above max_enter_accuracy_m never enters; it is flagged LOW_ACCURACY when its centre lies in a
  fence the customer is not in (depth >= 0).
- Inside, and the fix is not clearly outside (depth > -enter_accuracy_fraction * accuracy, the
  mirror of the enter rule): `last_inside_at` = t, `outside_since` cleared. Indoors, accuracy
  degrades to 20-60 m and many fixes of a shopper standing inside land a little outside; such a
  fix is consistent with being inside, and counting it as "outside" split visits in the demo.
- Inside, clearly outside: `outside_since` = t unless set. Exit at t with reason "buffer" when
  -depth >= max(exit_buffer_m, enter_accuracy_fraction * accuracy) (a vague fix must be far out).
  Edge jitter within the buffer thus never exits by itself: only the timeout below can.

Time rules (the same for apply at t and sweep at now: events never depend on when sweep runs):
- Exit "timeout": outside_since set (every observation since was outside) and
  outside_since + exit_after_s is due; dated then.
- Exit "stale": outside_since unset and last_inside_at + stale_exit_after_s is due (when
  stale_exit_after_s > 0): no news from that fence for that long; dated then.
- DWELL once per visit, dated entered_at + dwell_after_s when due, if the customer was not
  tentatively outside (outside_since unset) and the exit is not due earlier. A dwell then an exit
  can come from one fix or sweep (dwell first). If the customer was tentatively outside at that
  time, the dwell waits: the next inside fix of the same visit fires it, dated at that fix;
  sweep never fires such a late dwell, and a visit that times out meanwhile has no dwell.

So for each (customer, fence) the events read (ENTER DWELL? EXIT)* (ENTER DWELL?)?, and the
events of one customer (from apply and sweep) come in non-decreasing ts: within one call they
are sorted (equal times by fence id; in sweep by customer id, fence id), and sweep records the
latest date it used in the cursor (`last_event_ts`) so that an older fix arriving later is LATE
rather than dated before it.

Transactions: see presence_tx.py. apply/sweep/drop_fence also work with no transaction open
(changes apply and are reported nowhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import attrgetter

from geo_engine.models import (
    CustomerCursor,
    EventType,
    FenceObservation,
    FenceState,
    Fix,
    FixFlag,
    PresenceEvent,
)
from geo_engine.presence_time import (
    NEG_INF,
    REASON_BUFFER,
    REASON_TIMEOUT,
    dwell_deadline,
    exit_deadline,
)
from geo_engine.presence_tx import Changes, PresenceStore
from geofences.geodesy import EARTH_RADIUS_M, haversine_m

__all__ = ["Changes", "FixResult", "PresenceEngine"]

_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
# stable sorts: a fence's own events keep the order they were made in (dwell before exit, exit
# before a re-enter at the same ts); equal times across fences/customers get a canonical order,
# so replays, rollbacks and restarts yield the very same list
_fix_order = attrgetter("ts", "geofence_id")
_sweep_order = attrgetter("ts", "customer_id", "geofence_id")

ENTER, DWELL, EXIT = EventType.ENTER, EventType.DWELL, EventType.EXIT


@dataclass(frozen=True, slots=True)
class FixResult:
    events: list[PresenceEvent]
    flag: FixFlag | None


class _NoEvents(list[PresenceEvent]):
    """The empty event list shared by all results without events: a fresh FixResult per fix
    would double the cost of the no-fence path (~0.45 of ~0.9 µs). Refuses mutation rather than
    leak events between results."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("FixResult.events of an event-less result is shared and read-only")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse  # type: ignore[assignment]
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]


_NOTHING = FixResult(_NoEvents(), None)
_MOCK = FixResult(_NoEvents(), FixFlag.MOCK)
_DUPLICATE = FixResult(_NoEvents(), FixFlag.DUPLICATE)
_LATE = FixResult(_NoEvents(), FixFlag.LATE)
_SPEED = FixResult(_NoEvents(), FixFlag.IMPOSSIBLE_SPEED)
_LOW_ACCURACY = FixResult(_NoEvents(), FixFlag.LOW_ACCURACY)


def _within(lat1: float, lon1: float, lat2: float, lon2: float, budget_m: float) -> bool:
    """haversine(p1, p2) <= budget_m, mostly without trigonometry."""
    dlon = abs(lon2 - lon1)
    if dlon > 180.0:
        dlon = 360.0 - dlon
    # along the meridian then along a parallel: a path, so never shorter than the great circle
    if (abs(lat2 - lat1) + dlon) * _M_PER_DEG <= budget_m:
        return True
    return haversine_m(lat1, lon1, lat2, lon2) <= budget_m


def _with_event_ts(c: CustomerCursor, at: float) -> CustomerCursor:
    # dataclasses.replace costs 7 µs, a third of sweep's time per event
    return CustomerCursor(
        c.last_ts,
        c.last_lat,
        c.last_lon,
        c.last_accuracy_m,
        suspect_ts=c.suspect_ts,
        suspect_lat=c.suspect_lat,
        suspect_lon=c.suspect_lon,
        suspect_count=c.suspect_count,
        suspect_accuracy_m=c.suspect_accuracy_m,
        last_event_ts=at,
    )


class PresenceEngine(PresenceStore):
    """Presence state machine over `PresenceStore`. Not thread-safe: one owner per partition."""

    __slots__ = ()

    def apply(self, fix: Fix, observations: Sequence[FenceObservation]) -> FixResult:
        if fix.mock:
            return _MOCK
        cfg = self._cfg
        cid, ts = fix.customer_id, fix.ts
        acc = fix.accuracy_m
        if acc is None or acc <= 0.0:
            acc = cfg.unknown_accuracy_m
        cur = self._cursors.get(cid)
        if cur is None:
            floor = NEG_INF
            new = CustomerCursor(ts, fix.lat, fix.lon, fix.accuracy_m)
        else:
            sus_ts = cur.suspect_ts
            if ts == cur.last_ts or ts == sus_ts:
                return _DUPLICATE
            lev = cur.last_event_ts
            floor = cur.last_ts if lev is None or lev < cur.last_ts else lev
            if ts < floor or (sus_ts is not None and ts < sus_ts):
                return _LATE
            prev_acc = cur.last_accuracy_m
            if prev_acc is None or prev_acc <= 0.0:
                prev_acc = cfg.unknown_accuracy_m
            budget = cfg.max_speed_mps * (ts - cur.last_ts) + prev_acc + acc
            if lev is not None and lev <= ts:
                lev = None  # the fix itself now bounds what is late
            if _within(cur.last_lat, cur.last_lon, fix.lat, fix.lon, budget):
                new = CustomerCursor(ts, fix.lat, fix.lon, fix.accuracy_m)
                if lev is not None:
                    new.last_event_ts = lev  # not stored yet: still ours to fill in
            else:
                new = self._suspect(cur, fix, acc, lev)
                if new.last_ts != ts:  # still only a suspect: nothing moves
                    self._touch(cid)
                    self._cursors[cid] = new
                    return _SPEED
        states = self._inside.get(cid)
        log = self._log
        # _touch inlined: this is the path nearly every fix takes
        if log is None:
            self._last = None
        elif cid not in log:
            log[cid] = (cur, None if states is None else dict(states))
        self._cursors[cid] = new
        if states is None and not observations:
            return _NOTHING
        return self._observe(cid, ts, acc, observations, states, floor)

    def _suspect(
        self, cur: CustomerCursor, fix: Fix, acc: float, lev: float | None
    ) -> CustomerCursor:
        """The cursor after a speed-flagged fix: a longer or new suspect run, or re-anchored."""
        cfg = self._cfg
        count = 1
        if cur.suspect_ts is not None and cur.suspect_lat is not None:
            assert cur.suspect_lon is not None
            sus_acc = cur.suspect_accuracy_m
            if sus_acc is None or sus_acc <= 0.0:
                sus_acc = cfg.unknown_accuracy_m
            budget = cfg.max_speed_mps * (fix.ts - cur.suspect_ts) + sus_acc + acc
            if _within(cur.suspect_lat, cur.suspect_lon, fix.lat, fix.lon, budget):
                count = cur.suspect_count + 1
        if count >= cfg.reanchor_after:
            return CustomerCursor(fix.ts, fix.lat, fix.lon, fix.accuracy_m, last_event_ts=lev)
        return replace(
            cur,
            suspect_ts=fix.ts,
            suspect_lat=fix.lat,
            suspect_lon=fix.lon,
            suspect_count=count,
            suspect_accuracy_m=fix.accuracy_m,
        )

    def _observe(
        self,
        cid: str,
        ts: float,
        acc: float,
        observations: Sequence[FenceObservation],
        states: dict[str, FenceState] | None,
        floor: float,
    ) -> FixResult:
        """Transitions of an accepted fix (the cursor has moved already)."""
        cfg = self._cfg
        events: list[PresenceEvent] = []
        enter_depth = cfg.enter_accuracy_fraction * acc
        exit_depth = max(cfg.exit_buffer_m, enter_depth)
        can_enter = acc <= cfg.max_enter_accuracy_m
        low_accuracy = False
        for ob in observations:
            fid, depth = ob.fence_id, ob.depth_m
            st = None if states is None else states.get(fid)
            if st is not None and states is not None:
                st = self._elapse(cid, fid, st, ts, floor, events, states)
            if st is None:
                if not can_enter:
                    low_accuracy = low_accuracy or depth >= 0.0
                elif depth >= enter_depth:
                    events.append(PresenceEvent(ENTER, cid, fid, ts))
                    dwelt = cfg.dwell_after_s <= 0.0
                    if dwelt:
                        events.append(PresenceEvent(DWELL, cid, fid, ts))
                    if states is None:
                        states = self._inside[cid] = {}
                    states[fid] = st = FenceState(ts, ts, None, dwelt)
                    self._schedule(cid, fid, st)
                continue
            assert states is not None
            if depth > -enter_depth or depth >= 0.0:
                dwelt = st.dwell_fired
                if not dwelt and st.entered_at + cfg.dwell_after_s <= ts:
                    # its time passed while the customer was tentatively outside: back inside now
                    events.append(PresenceEvent(DWELL, cid, fid, ts))
                    dwelt = True
                st = FenceState(st.entered_at, ts, None, dwelt)
            else:
                since = ts if st.outside_since is None else st.outside_since
                if -depth >= exit_depth:
                    events.append(PresenceEvent(EXIT, cid, fid, ts, reason=REASON_BUFFER))
                    del states[fid]
                    continue
                if ts - since >= cfg.exit_after_s:  # only when exit_after_s <= 0
                    at = max(since + cfg.exit_after_s, floor)
                    events.append(PresenceEvent(EXIT, cid, fid, at, reason=REASON_TIMEOUT))
                    del states[fid]
                    continue
                st = FenceState(st.entered_at, st.last_inside_at, since, st.dwell_fired)
            states[fid] = st
            self._schedule(cid, fid, st)
        if states is not None and not states:
            del self._inside[cid]
        if len(events) > 1:
            events.sort(key=_fix_order)
        elif not events:
            return _LOW_ACCURACY if low_accuracy else _NOTHING
        return FixResult(events, FixFlag.LOW_ACCURACY if low_accuracy else None)

    def _elapse(
        self,
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
        cfg = self._cfg
        exit_at, reason = exit_deadline(st, cfg)
        dwell_at = dwell_deadline(st, cfg, exit_at)
        if dwell_at > now and exit_at > now:
            return st
        if dwell_at <= now:
            events.append(PresenceEvent(DWELL, cid, fid, max(dwell_at, floor)))
            st = FenceState(st.entered_at, st.last_inside_at, st.outside_since, True)
        if exit_at <= now:
            events.append(PresenceEvent(EXIT, cid, fid, max(exit_at, floor), reason=reason))
            del states[fid]
            return None
        states[fid] = st
        return st

    def sweep(self, now: float) -> list[PresenceEvent]:
        """Dwells, timeout exits and stale exits due by the wall clock `now`, sorted by ts."""
        due = self._pop_due(now)
        if not due:
            return []
        events: list[PresenceEvent] = []
        floors: dict[str, float] = {}
        for cid, fid in due:
            states = self._inside.get(cid)
            st = None if states is None else states.get(fid)
            if st is None or states is None:
                continue  # exited or dropped since it was scheduled
            floor = floors.get(cid)
            if floor is None:
                floor = floors[cid] = self._floor(cid)
                self._touch(cid)
            left = self._elapse(cid, fid, st, now, floor, events, states)
            if left is not None:
                self._schedule(cid, fid, left)
            elif not states:
                del self._inside[cid]
        latest: dict[str, float] = {}
        for ev in events:
            if ev.ts > latest.get(ev.customer_id, floors[ev.customer_id]):
                latest[ev.customer_id] = ev.ts
        for cid, at in latest.items():
            cur = self._cursors.get(cid)
            if cur is not None:
                self._cursors[cid] = _with_event_ts(cur, at)
        events.sort(key=_sweep_order)
        return events
