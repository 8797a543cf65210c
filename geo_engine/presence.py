"""The presence state machine: GPS fixes and proximity signals -> ENTER / DWELL / EXIT events.

State: one `CustomerCursor` per customer (the latest fix applied), one `FenceState` per
(customer, fence) the customer is inside. Times are unix seconds. `accuracy` below is the fix's
accuracy, or `unknown_accuracy_m` when it is None or <= 0. Two kinds of evidence feed the same
states: GPS fixes (`apply`, source "gps") and proximity signals (`apply_proximity`: a BLE beacon
heard near, source "beacon"; an NFC tap, source "nfc").

Per fix, in this order (the first that matches decides; a flagged fix changes nothing unless
said):
1. `mock` -> MOCK.
2. ts equal to the cursor's `last_ts` or to the pending speed suspect's ts -> DUPLICATE.
3. ts before `last_ts`, before the pending suspect, or before a time already decided
   (`last_event_ts`: an event sweep() dated, a proximity signal applied) -> LATE. Hence
   replaying any fix a second time never changes anything. The caller must refuse fixes dated
   in the future (ts > now + skew): a fix accepted with a future ts makes every real fix LATE
   until then.
4. Speed: (haversine(cursor, fix) - acc_cursor - acc_fix) / (ts - last_ts) > max_speed_mps ->
   IMPOSSIBLE_SPEED; the cursor stays, but the fix becomes the suspect: the run's count grows by
   one if the fix is plausible (same rule) from the previous suspect, else the run restarts at 1.
   The fix that brings the count to `reanchor_after` re-anchors the cursor on itself and is
   processed as an accepted fix (no flag): a real train ride or a long gap never locks anyone
   out. A plausible fix clears the run.
5. Accepted: the cursor moves to the fix; then each observation (below). The first fix of a
   customer (or the first after proximity signals only) is always accepted unless LATE.

Observations: the caller passes every fence containing the fix and every fence the customer is
inside. A fence the customer is inside but which is missing from `observations` gets no
information from the fix: nothing happens to it (sweep() still times it out). Observations of
fences the customer is not inside with depth < 0 are ignored.

Per observed fence, at fix time t:
- Time first: if the customer is inside, the due dwell and/or exit below happen first, dated at
  their deadline (never before the customer's previous fix, signal or event); an exit there
  makes the fence "not inside" for the rest of this fix.
- Enter (not inside): accuracy <= max_enter_accuracy_m and depth >= enter_accuracy_fraction *
  accuracy -> ENTER at t (and DWELL at t too if dwell_after_s <= 0). A fix whose accuracy is
  above max_enter_accuracy_m never enters; it is flagged LOW_ACCURACY when its centre lies in a
  fence the customer is not in (depth >= 0).
- Inside, and the fix is not clearly outside (depth > -enter_accuracy_fraction * accuracy, the
  mirror of the enter rule): `last_inside_at` = t, `outside_since` cleared. Indoors, accuracy
  degrades to 20-60 m and many fixes of a shopper standing inside land a little outside; such a
  fix is consistent with being inside, and counting it as "outside" split visits in the demo.
  A fix good enough to enter also marks the visit `gps_confirmed`.
- Inside, clearly outside, visit not `gps_confirmed` (it rests on a proximity hold, see below):
  nothing. GPS never put the customer in; vague indoor fixes must not take them out either.
- Inside, clearly outside, `gps_confirmed`: `outside_since` = t unless set. Unless held, exit
  at t with reason "buffer" when -depth >= max(exit_buffer_m, exit_accuracy_fraction *
  accuracy) (a vague fix must be far out). Edge jitter within the buffer thus never exits by
  itself: only the timeout below can.

Per proximity signal (customer, fences, t, source, hold_s): LATE if t is before the cursor's
`last_ts` or `last_event_ts` (signals carry no position: they never move `last_ts` nor touch
the speed rule, but an applied signal sets `last_event_ts` = t, so older fixes become LATE).
Otherwise time first for every fence the customer is inside, then for each fence given:
- not inside -> ENTER at t with source = the signal's (DWELL too if dwell_after_s <= 0); the
  visit is not `gps_confirmed`.
- inside -> `last_inside_at` = t, `outside_since` cleared (a dwell waiting for inside evidence
  fires at t).
- either way `held_until` = max(held_until, t + hold_s) (`held_by` = the source that set it).
A visit is held while t < held_until: no GPS rule exits it (buffer, timeout, stale); a due
GPS exit is put off to `held_until`. When the hold runs out: a visit GPS never confirmed exits
at `held_until`, reason "not_heard", source `held_by` (a beacon no longer heard, a tap long
past); a `gps_confirmed` one goes on under the GPS rules. Why "confirmed during the visit" and
not "GPS inside evidence since the last signal": a department beacon also holds its store;
leaving the beacon's range must not exit a store that GPS saw the customer enter, or the walk
to the till would exit and re-enter the store.

Time rules (the same for apply at t and sweep at now: events never depend on when sweep runs):
- Exit "not_heard": not `gps_confirmed` and `held_until` is due; dated then.
- Exit "timeout": outside_since set (every observation since was outside) and
  outside_since + exit_after_s is due (not before `held_until`); dated then.
- Exit "stale": outside_since unset and last_inside_at + stale_exit_after_s is due (when
  stale_exit_after_s > 0; not before `held_until`): no news from that fence for that long.
- DWELL once per visit, dated entered_at + dwell_after_s when due, if the customer was not
  tentatively outside (outside_since unset) and the exit is not due earlier. A dwell then an exit
  can come from one fix or sweep (dwell first). If the customer was tentatively outside at that
  time, the dwell waits: the next inside evidence of the same visit fires it, dated then;
  sweep never fires such a late dwell, and a visit that times out meanwhile has no dwell.
- Sources: ENTER has the source of the evidence that entered; DWELL the visit's (the one that
  entered); EXIT "gps", or `held_by` for "not_heard".

So for each (customer, fence) the events read (ENTER DWELL? EXIT)* (ENTER DWELL?)?, whatever mix
of sources, and the events of one customer (from apply, apply_proximity and sweep) come in
non-decreasing ts: within one call they are sorted (equal times by fence id; in sweep by
customer id, fence id), and sweep records the latest date it used in the cursor
(`last_event_ts`) so that an older fix arriving later is LATE rather than dated before it.

Transactions: see presence_state.py. apply/apply_proximity/sweep/drop_fence also work with no
transaction open (changes apply and are reported nowhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from msgspec.structs import replace

from geo_engine.models import (
    PROXIMITY_SOURCES,
    CustomerCursor,
    FenceObservation,
    FenceState,
    Fix,
    FixFlag,
    PresenceEvent,
    PresenceEventType,
)
from geo_engine.presence_results import (
    DUPLICATE_RESULT,
    LATE_RESULT,
    LOW_ACCURACY_RESULT,
    MOCK_RESULT,
    NOTHING_RESULT,
    SPEED_RESULT,
    FixResult,
)
from geo_engine.presence_state import Changes, PresenceState, with_event_ts
from geo_engine.presence_time import NEG_INF, REASON_BUFFER, REASON_TIMEOUT, elapse, refreshed
from geofences.geodesy import within_m

__all__ = ["Changes", "FixResult", "PresenceEngine"]

# stable sorts: a fence's own events keep the order they were made in (dwell before exit, exit
# before a re-enter at the same ts); equal times across fences/customers get a canonical order,
# so replays, rollbacks and restarts yield the very same list
_fix_order = attrgetter("ts", "geofence_id")
_sweep_order = attrgetter("ts", "customer_id", "geofence_id")

ENTER, DWELL, EXIT = PresenceEventType.ENTER, PresenceEventType.DWELL, PresenceEventType.EXIT


class PresenceEngine(PresenceState):
    """Presence state machine over `PresenceState`. Not thread-safe: one owner per partition."""

    __slots__ = ()

    def apply(self, fix: Fix, observations: Sequence[FenceObservation]) -> FixResult:
        if fix.mock:
            return MOCK_RESULT
        cfg = self._cfg
        cid, ts = fix.customer_id, fix.ts
        acc = fix.accuracy_m
        if acc is None or acc <= 0.0:
            acc = cfg.unknown_accuracy_m
        cur = self._cursors.get(cid)
        if cur is None:
            floor = NEG_INF
            new = CustomerCursor(ts, fix.lat, fix.lon, fix.accuracy_m)
        elif cur.last_ts == NEG_INF:  # known from proximity signals only: no position yet
            floor = NEG_INF if cur.last_event_ts is None else cur.last_event_ts
            if ts < floor:
                return LATE_RESULT
            new = CustomerCursor(ts, fix.lat, fix.lon, fix.accuracy_m)
        else:
            sus_ts = cur.suspect_ts
            if ts == cur.last_ts or ts == sus_ts:
                return DUPLICATE_RESULT
            lev = cur.last_event_ts
            floor = cur.last_ts if lev is None or lev < cur.last_ts else lev
            if ts < floor or (sus_ts is not None and ts < sus_ts):
                return LATE_RESULT
            prev_acc = cur.last_accuracy_m
            if prev_acc is None or prev_acc <= 0.0:
                prev_acc = cfg.unknown_accuracy_m
            budget = cfg.max_speed_mps * (ts - cur.last_ts) + prev_acc + acc
            if lev is not None and lev <= ts:
                lev = None  # the fix itself now bounds what is late
            if within_m(cur.last_lat, cur.last_lon, fix.lat, fix.lon, budget):
                new = CustomerCursor(ts, fix.lat, fix.lon, fix.accuracy_m)
                if lev is not None:
                    new.last_event_ts = lev  # not stored yet: still ours to fill in
            else:
                new = self._suspect(cur, fix, acc, lev)
                if new.last_ts != ts:  # still only a suspect: nothing moves
                    self._touch(cid)
                    self._cursors[cid] = new
                    return SPEED_RESULT
        states = self._inside.get(cid)
        log = self._log
        # _touch inlined: this is the path nearly every fix takes
        if log is None:
            self._last = None
        elif cid not in log:
            log[cid] = (cur, None if states is None else dict(states))
        self._cursors[cid] = new
        if states is None and not observations:
            return NOTHING_RESULT
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
            if within_m(cur.suspect_lat, cur.suspect_lon, fix.lat, fix.lon, budget):
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
        exit_depth = max(cfg.exit_buffer_m, cfg.exit_accuracy_fraction * acc)
        can_enter = acc <= cfg.max_enter_accuracy_m
        low_accuracy = False
        for ob in observations:
            fid, depth = ob.fence_id, ob.depth_m
            st = None if states is None else states.get(fid)
            if st is not None and states is not None:
                st = elapse(self._cfg, cid, fid, st, ts, floor, events, states)
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
                    events.append(PresenceEvent(DWELL, cid, fid, ts, st.source))
                    dwelt = True
                gps = st.gps_confirmed or (can_enter and depth >= enter_depth)
                # refreshed() inlined: the path of every fix of a customer staying inside
                st = FenceState(
                    st.entered_at, ts, None, dwelt, st.source, gps, st.held_until, st.held_by
                )
            elif st.gps_confirmed:
                since = ts if st.outside_since is None else st.outside_since
                held_until = st.held_until
                if held_until is None or ts >= held_until:
                    if -depth >= exit_depth:
                        events.append(PresenceEvent(EXIT, cid, fid, ts, reason=REASON_BUFFER))
                        del states[fid]
                        continue
                    if ts - since >= cfg.exit_after_s:  # only when exit_after_s <= 0
                        at = max(since + cfg.exit_after_s, floor)
                        events.append(PresenceEvent(EXIT, cid, fid, at, reason=REASON_TIMEOUT))
                        del states[fid]
                        continue
                st = refreshed(st, st.last_inside_at, since, st.dwell_fired, True)
            states[fid] = st
            self._schedule(cid, fid, st)
        if states is not None and not states:
            del self._inside[cid]
        if len(events) > 1:
            events.sort(key=_fix_order)
        elif not events:
            return LOW_ACCURACY_RESULT if low_accuracy else NOTHING_RESULT
        return FixResult(events, FixFlag.LOW_ACCURACY if low_accuracy else None)

    def apply_proximity(
        self, customer_id: str, fence_ids: Sequence[str], ts: float, source: str, hold_s: float
    ) -> FixResult:
        """A proximity signal at `ts`: the customer is inside each of `fence_ids` (a beacon's
        zone and its store, a tag's store...), held there for `hold_s`. One call per signal, so
        the due exits of every fence are dated right and its events come sorted, as for a fix
        with several observations. Rules in the module docstring."""
        if source not in PROXIMITY_SOURCES:
            raise ValueError(f"not a proximity source: {source!r}")
        if isinstance(fence_ids, str):  # a str is a Sequence[str] too: one fence per character
            raise TypeError("fence_ids must be a sequence of fence ids, not one str")
        if not hold_s > 0.0:
            raise ValueError(f"hold_s must be > 0, got {hold_s}")
        cid = customer_id
        cur = self._cursors.get(cid)
        floor = self._floor(cid)
        if ts < floor:
            return LATE_RESULT
        self._touch(cid)
        if cur is None:
            self._cursors[cid] = CustomerCursor(NEG_INF, 0.0, 0.0, last_event_ts=ts)
        elif ts > floor:
            self._cursors[cid] = with_event_ts(cur, ts)
        events: list[PresenceEvent] = []
        states = self._inside.get(cid)
        if states is not None:  # time first, for every fence (as a fix observing them all)
            for fid, st in list(states.items()):
                left = elapse(self._cfg, cid, fid, st, ts, floor, events, states)
                if left is not None:
                    self._schedule(cid, fid, left)
        cfg = self._cfg
        until = ts + hold_s
        for fid in dict.fromkeys(fence_ids):
            old = None if states is None else states.get(fid)
            if old is None:
                events.append(PresenceEvent(ENTER, cid, fid, ts, source))
                dwelt = cfg.dwell_after_s <= 0.0
                if dwelt:
                    events.append(PresenceEvent(DWELL, cid, fid, ts, source))
                st = FenceState(ts, ts, None, dwelt, source, False, until, source)
            else:
                dwelt = old.dwell_fired
                if not dwelt and old.entered_at + cfg.dwell_after_s <= ts:
                    events.append(PresenceEvent(DWELL, cid, fid, ts, old.source))
                    dwelt = True
                held, by = old.held_until, old.held_by
                if held is None or until > held:
                    held, by = until, source
                st = FenceState(
                    old.entered_at, ts, None, dwelt, old.source, old.gps_confirmed, held, by
                )
            if states is None:
                states = self._inside[cid] = {}
            states[fid] = st
            self._schedule(cid, fid, st)
        if states is not None and not states:
            del self._inside[cid]
        if not events:
            return NOTHING_RESULT
        events.sort(key=_fix_order)
        return FixResult(events, None)

    def sweep(self, now: float) -> list[PresenceEvent]:
        """Dwells and exits (timeout, stale, not_heard) due by the wall clock `now`, sorted by
        ts."""
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
            left = elapse(self._cfg, cid, fid, st, now, floor, events, states)
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
                self._cursors[cid] = with_event_ts(cur, at)
        events.sort(key=_sweep_order)
        return events
