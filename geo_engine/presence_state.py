"""Presence state in memory, its undo log, and the deadline schedule sweep() reads.

State objects (`CustomerCursor`, `FenceState`) are never mutated once stored: every change
stores a new object. So the undo log only keeps references (plus a shallow copy of the
customer's small fence dict), `Changes` can hand out the live objects safely, and "changed" is
an identity test.

Transactions
------------
`begin()` opens an undo log; the first time a customer is changed in it, its cursor and fence
states are saved. `commit()` returns the changed keys and closes the transaction, but keeps the
log until the next `begin()` (or the next change made outside a transaction): the pipeline takes
`Changes` from `commit()`, writes them, and if the database refuses calls `rollback()`, which
then still restores the state from before `begin()`. `rollback()` with an open transaction
undoes it; with nothing to undo it does nothing. Changes made with no transaction open apply
directly and are reported nowhere (tests, replays, backtests). Transactions do not nest.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from geo_engine.models import CustomerCursor, FenceState, PresenceConfig
from geo_engine.presence_time import INF, NEG_INF, next_deadline

_EMPTY: Mapping[str, FenceState] = MappingProxyType({})
# rebuild the heap when superseded entries outnumber live ones by this much
_HEAP_SLACK = 4096

# a customer as the transaction first found it: cursor, fence states (None = none)
_Saved = tuple[CustomerCursor | None, dict[str, FenceState] | None]


@dataclass(frozen=True, slots=True)
class Changes:
    """What a transaction changed, to persist."""

    cursors: dict[str, CustomerCursor]  # customer_id -> current cursor
    # (customer_id, fence_id) -> current state; None = no longer inside (delete the row)
    states: dict[tuple[str, str], FenceState | None]


class PresenceState:
    """The state half of `PresenceEngine`: storage, transactions, schedule, read accessors."""

    __slots__ = ("_cfg", "_cursors", "_heap", "_inside", "_last", "_log", "_sched")

    def __init__(self, config: PresenceConfig = PresenceConfig()) -> None:
        self._cfg = config
        self._cursors: dict[str, CustomerCursor] = {}
        # only customers inside at least one fence have an entry (never an empty dict)
        self._inside: dict[str, dict[str, FenceState]] = {}
        self._log: dict[str, _Saved] | None = None  # open transaction
        self._last: dict[str, _Saved] | None = None  # committed, still undoable
        # deadlines: a min-heap with lazy deletion. `_sched` holds, per state, the entry that
        # counts; an entry that disagrees with it is stale and skipped when popped. Invariant:
        # every live state with a finite deadline has a counted entry no later than it.
        self._heap: list[tuple[float, str, str]] = []
        self._sched: dict[tuple[str, str], float] = {}

    # -- loading and reading ------------------------------------------------------------

    def load(
        self,
        cursors: Iterable[tuple[str, CustomerCursor]],
        states: Iterable[tuple[str, str, FenceState]],
    ) -> None:
        """Add state read from storage (at start). Loaded objects must not be mutated later."""
        if self._log is not None:
            raise RuntimeError("load() inside a transaction")
        self._last = None
        for cid, cur in cursors:
            self._cursors[cid] = cur
        for cid, fid, st in states:
            self._inside.setdefault(cid, {})[fid] = st
            self._schedule(cid, fid, st)

    def inside(self, customer_id: str) -> Mapping[str, FenceState]:
        """Fences the customer is in: a live read-only view (copy it to keep a snapshot)."""
        return self._inside.get(customer_id, _EMPTY)

    def is_inside_any(self, customer_id: str) -> bool:
        return customer_id in self._inside

    def cursor(self, customer_id: str) -> CustomerCursor | None:
        return self._cursors.get(customer_id)

    def customers_inside(self) -> int:
        return len(self._inside)

    def active_customers(self) -> int:
        return len(self._cursors)

    def customers(self) -> set[str]:
        """Every customer with any state held."""
        return set(self._cursors) | set(self._inside)

    def drop_fence(self, fence_id: str) -> None:
        """Forget every state of a deleted fence, without events. Scans the customers inside
        something (a rare admin action). Inside a transaction the deletions are in `Changes`."""
        for cid, states in list(self._inside.items()):
            if fence_id in states:
                self._touch(cid)
                del states[fence_id]
                if not states:
                    del self._inside[cid]

    def replace_customer(
        self, cid: str, cursor: CustomerCursor | None, states: Mapping[str, FenceState]
    ) -> None:
        """Set a customer's whole state: identity merges and erasure use it. Inside a
        transaction the change is logged (undoable, and reported in `Changes`)."""
        self._touch(cid)
        if cursor is None:
            self._cursors.pop(cid, None)
        else:
            self._cursors[cid] = cursor
        if not states:
            self._inside.pop(cid, None)  # stale heap entries are skipped when popped
            return
        self._inside[cid] = dict(states)
        for fid, st in states.items():
            self._schedule(cid, fid, st)

    # -- transactions -------------------------------------------------------------------

    def begin(self) -> None:
        if self._log is not None:
            raise RuntimeError("begin() while a transaction is open")
        self._log = {}
        self._last = None

    def commit(self) -> Changes:
        log = self._log
        if log is None:
            raise RuntimeError("commit() without begin()")
        cursors: dict[str, CustomerCursor] = {}
        states: dict[tuple[str, str], FenceState | None] = {}
        for cid, (old_cur, old_states) in log.items():
            cur = self._cursors.get(cid)
            if cur is not None and cur is not old_cur:
                cursors[cid] = cur
            old = old_states if old_states is not None else _EMPTY
            new = self._inside.get(cid, _EMPTY)
            for fid, st in new.items():
                if old.get(fid) is not st:
                    states[(cid, fid)] = st
            for fid in old:
                if fid not in new:
                    states[(cid, fid)] = None
        self._log = None
        self._last = log
        return Changes(cursors, states)

    def rollback(self) -> None:
        log = self._log if self._log is not None else self._last
        self._log = self._last = None
        if log is None:
            return
        for cid, (cur, states) in log.items():
            if cur is None:
                self._cursors.pop(cid, None)
            else:
                self._cursors[cid] = cur
            if states:
                self._inside[cid] = states
                # the transaction may have consumed these states' heap entries
                for fid, st in states.items():
                    self._schedule(cid, fid, st)
            else:
                self._inside.pop(cid, None)

    @property
    def config(self) -> PresenceConfig:
        return self._cfg

    @property
    def cursors(self) -> Mapping[str, CustomerCursor]:
        """Every customer's cursor, read-only (bulk readers: no method call per customer)."""
        return self._cursors

    @property
    def inside_any(self) -> Mapping[str, Mapping[str, FenceState]]:
        """The customers inside at least one fence, read-only."""
        return self._inside

    def advance(self, moves: Iterable[tuple[str, CustomerCursor]]) -> None:
        """Move customers inside no fence to new cursors (the bulk path of a batch: fixes
        that change nothing else). Logged like any change, so undoable."""
        cursors, log = self._cursors, self._log
        if log is None:
            self._last = None
            cursors.update(moves)
            return
        for cid, new in moves:
            if cid not in log:
                log[cid] = (cursors.get(cid), None)  # inside none: no fence states to save
            cursors[cid] = new

    def _touch(self, cid: str) -> None:
        """Call before changing a customer's cursor or fence states."""
        log = self._log
        if log is None:
            # memory moves past the last commit: that commit can no longer be undone exactly
            self._last = None
        elif cid not in log:
            states = self._inside.get(cid)
            log[cid] = (self._cursors.get(cid), None if states is None else dict(states))

    def _floor(self, cid: str) -> float:
        """The latest time already decided for a customer: its events may not be dated before."""
        cur = self._cursors.get(cid)
        if cur is None:
            return NEG_INF
        lev = cur.last_event_ts
        return cur.last_ts if lev is None or lev < cur.last_ts else lev

    # -- deadline schedule ----------------------------------------------------------------

    def _schedule(self, cid: str, fid: str, st: FenceState) -> None:
        """Make sure `st`'s next deadline will be popped in time (call after storing `st`)."""
        due = next_deadline(st, self._cfg)
        if due == INF:
            return
        key = (cid, fid)
        counted = self._sched.get(key)
        if counted is None or due < counted:
            self._sched[key] = due
            heapq.heappush(self._heap, (due, cid, fid))

    def _pop_due(self, now: float) -> list[tuple[str, str]]:
        """States whose counted deadline is <= now, in deadline order. Their entries are
        consumed: the caller must `_schedule` any that stay."""
        heap, sched = self._heap, self._sched
        if len(heap) > 2 * len(sched) + _HEAP_SLACK:
            heap[:] = [(due, cid, fid) for (cid, fid), due in sched.items()]
            heapq.heapify(heap)
        out: list[tuple[str, str]] = []
        while heap and heap[0][0] <= now:
            due, cid, fid = heapq.heappop(heap)
            key = (cid, fid)
            if sched.get(key) == due:
                del sched[key]
                out.append(key)
        return out


def with_event_ts(c: CustomerCursor, at: float) -> CustomerCursor:
    """`c` with `last_event_ts` = at."""
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
