"""The campaign store (geo_engine/decision/ports.py) in memory, same contract as PostgreSQL
(tests/contract/test_campaign_store.py). A write in a transaction is applied at once and
journalled (adapters/memory/tx.py): a transaction or savepoint left by an exception undoes it.

The backtest's replay reads the presence events of a MemoryPresenceStore and the behavioural
events and crossings of a MemoryProfileStore (`presence`, `profiles`), as PostgreSQL reads their
tables. What the relay and the outcome routes record (sent, redeemed, clicked) has no port yet:
`mark_sent`, `redeem` and `interact` stand in for them.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from adapters.memory import campaign_reads as reads
from adapters.memory.campaign_rows import DecisionRow, OutboxRow, TaskRow
from adapters.memory.profiles import MemoryProfileStore
from adapters.memory.stores import MemoryPresenceStore
from adapters.memory.tx import journal_of
from geo_engine.decision import codes
from geo_engine.decision.bandit import ArmKey, ArmStats
from geo_engine.decision.decide import Decision, Usage
from geo_engine.decision.escalation import KIND as FOLLOW_UP
from geo_engine.decision.models import CALL_CENTER
from geo_engine.decision.ports import (
    DecisionExists,
    DueOffer,
    NewTask,
    Recorded,
    ReplayQuery,
    ReplayRow,
    Stored,
)
from geo_engine.decision.rules import Sent
from geo_engine.decision.trace import explained
from geo_engine.ports import Tx


class MemoryCampaignStore:
    def __init__(
        self,
        presence: MemoryPresenceStore | None = None,
        profiles: MemoryProfileStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.presence = presence
        self.profiles = profiles
        self.clock = clock
        self.offer_docs: dict[str, Stored] = {}
        self.campaign_docs: dict[str, Stored] = {}
        self.suppressed: set[tuple[str, str]] = set()  # (list name, customer id)
        self.decisions: dict[int, DecisionRow] = {}
        self.outbox: dict[int, OutboxRow] = {}
        self.outbox_keys: dict[tuple[str, str, str], int] = {}  # (customer, campaign, instance)
        self.codes: dict[str, int] = {}  # code -> outbox id
        self.redeemed: dict[int, float] = {}  # outbox id -> when its code was redeemed
        self.interactions: set[tuple[int, str]] = set()  # (outbox id, opened | clicked)
        self.tasks: dict[int, TaskRow] = {}
        self.task_keys: dict[tuple[str, str, str], int] = {}
        self._ids = {"decision": 0, "outbox": 0, "task": 0}  # sequences: never rolled back

    def _next(self, seq: str) -> int:
        self._ids[seq] += 1
        return self._ids[seq]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- catalogue --------------------------------------------------------------------------
    async def offers(self) -> list[Stored]:
        return [s for _, s in sorted(self.offer_docs.items())]

    async def campaigns(self, status: str | None = None) -> list[Stored]:
        found = sorted(self.campaign_docs.items())
        return [s for _, s in found if status is None or s.status == status]

    async def put_offer(self, oid: str, doc: dict[str, Any], *, create: bool) -> Stored | None:
        return _put(self.offer_docs, oid, doc, create, self._now(), None)

    async def put_campaign(self, cid: str, doc: dict[str, Any], *, create: bool) -> Stored | None:
        return _put(self.campaign_docs, cid, doc, create, self._now(), doc["status"])

    async def add_suppressed(self, name: str, customer_ids: Sequence[str]) -> int:
        new = {(name, c) for c in customer_ids} - self.suppressed
        self.suppressed |= new
        return len(new)

    async def all_suppressions(self) -> dict[str, frozenset[str]]:
        lists: dict[str, set[str]] = {}
        for name, cid in self.suppressed:
            lists.setdefault(cid, set()).add(name)
        return {cid: frozenset(names) for cid, names in lists.items()}

    async def disable(self, tx: Tx, cid: str, reason: str) -> None:
        journal = journal_of(tx)
        old = self.campaign_docs.get(cid)
        if old is None:
            return
        doc = {**old.doc, "status": "disabled"}
        new = replace(old, doc=doc, status="disabled", disabled_reason=reason)
        self.campaign_docs[cid] = replace(new, updated_at=self._now())
        if journal is not None:
            journal.on_rollback(lambda: self.campaign_docs.__setitem__(cid, old))

    # --- the decision log -------------------------------------------------------------------
    async def suppression_of(self, tx: Tx, customer_id: str) -> frozenset[str]:
        journal_of(tx)  # a PostgreSQL transaction here is a wiring bug, as the other way round
        return frozenset(name for name, cid in self.suppressed if cid == customer_id)

    async def history(self, tx: Tx, customer_id: str, since: float) -> list[Sent]:
        journal_of(tx)
        return [
            Sent(o.send_after, o.channel, o.campaign_id)
            for o in self.outbox.values()
            if o.customer_id == customer_id and o.send_after >= since and o.status != "expired"
        ]

    async def call_history(self, tx: Tx, customer_id: str, since: float) -> list[Sent]:
        journal_of(tx)
        return [
            Sent(t.task.created_at, CALL_CENTER, t.task.campaign_id)
            for t in self.tasks.values()
            if t.task.customer_id == customer_id
            and t.task.created_at >= since
            and t.status != "cancelled"
        ]

    async def usage(self, tx: Tx, offer_ids: Sequence[str]) -> dict[str, Usage]:
        journal_of(tx)
        wanted = set(offer_ids)
        out: dict[str, Usage] = {}
        for o in self.outbox.values():
            if o.offer_id in wanted:
                u = out.get(o.offer_id, Usage())
                out[o.offer_id] = Usage(u.issued + 1, u.value + float(o.payload.get("value") or 0))
        return out

    async def record(
        self,
        tx: Tx,
        d: Decision,
        presence_event_id: int | None,
        payload: dict[str, Any] | None,
    ) -> int:
        journal = journal_of(tx)
        ev = d.trigger
        if ev.kind == FOLLOW_UP and any(
            r.trigger_kind == FOLLOW_UP
            and (r.customer_id, r.trigger_instance) == (d.customer_id, ev.instance)
            for r in self.decisions.values()
        ):
            raise DecisionExists(ev.instance)
        did = self._next("decision")
        self.decisions[did] = DecisionRow(
            did,
            d.customer_id,
            ev.kind,
            ev.instance,
            d.outcome,
            d.campaign_id,
            d.offer_id,
            d.channel,
            ev.fence_id,
            tuple(explained(d.traces, d.not_evaluated)),
        )
        undo: list[Callable[[], object]] = [lambda: self.decisions.pop(did)]
        if d.sends and payload is not None:
            assert d.campaign_id and d.offer_id and d.channel and d.send_after is not None
            key = (d.customer_id, d.campaign_id, ev.instance)
            if key not in self.outbox_keys:  # the same trigger replayed: one offer
                row = self._outbox_row(did, d, copy.deepcopy(payload), d.send_after)
                undo.append(lambda: self.outbox.pop(row.id))
                undo.append(lambda: self.outbox_keys.pop(key))
                code = row.payload.get("code")
                if code:
                    code = self._free_code(row, str(code))
                    undo.append(lambda: self.codes.pop(code))
        if journal is not None:
            journal.on_rollback(lambda: _run_all(reversed(undo)))
        return did

    def _outbox_row(self, did: int, d: Decision, payload: dict[str, Any], at: float) -> OutboxRow:
        assert d.campaign_id and d.offer_id and d.channel
        ev = d.trigger
        row = OutboxRow(
            self._next("outbox"),
            did,
            d.customer_id,
            d.campaign_id,
            ev.instance,
            d.offer_id,
            d.channel,
            payload,
            at,
        )
        self.outbox[row.id] = row
        self.outbox_keys[(d.customer_id, d.campaign_id, ev.instance)] = row.id
        return row

    def _free_code(self, row: OutboxRow, code: str) -> str:
        """Issue `code` for `row`, or a new one (in its payload too) when another has it."""
        while code in self.codes:
            old, code = code, codes.new_code()
            recoded = codes.recoded(row.payload, old, code)
            assert isinstance(recoded, dict)
            row.payload = recoded
        self.codes[code] = row.id
        return code

    async def create_task(self, tx: Tx, task: NewTask) -> int | None:
        journal = journal_of(tx)
        key = (task.customer_id, task.campaign_id, task.trigger_instance)
        if key in self.task_keys:
            return None
        tid = self._next("task")
        self.tasks[tid] = TaskRow(tid, task)
        self.task_keys[key] = tid
        if journal is not None:
            undo = [lambda: self.tasks.pop(tid), lambda: self.task_keys.pop(key)]
            journal.on_rollback(lambda: _run_all(undo))
        return tid

    async def recorded(self, customer_id: str) -> list[Recorded]:
        by_decision = {o.decision_id: o for o in self.outbox.values()}
        code_of = {oid: code for code, oid in self.codes.items()}
        out = []
        for did, r in sorted(self.decisions.items()):
            if r.customer_id != customer_id:
                continue
            o = by_decision.get(did)
            out.append(
                Recorded(
                    did,
                    r.trigger_instance,
                    r.outcome,
                    r.campaign_id,
                    r.offer_id,
                    r.channel,
                    None if o is None else o.id,
                    None if o is None else copy.deepcopy(o.payload),
                    None if o is None else code_of.get(o.id),
                    copy.deepcopy(r.traces),
                )
            )
        return out

    # --- what the relay and the outcome routes record (no port yet) -------------------------
    def mark_sent(self, outbox_id: int, at: float) -> None:
        row = self.outbox[outbox_id]
        row.status, row.sent_at = "sent", at

    def redeem(self, code: str, at: float) -> None:
        self.redeemed[self.codes[code]] = at

    def interact(self, outbox_id: int, kind: str) -> None:
        self.interactions.add((outbox_id, kind))

    # --- backtest, bandit, escalation: read only --------------------------------------------
    async def replay_count(self, query: ReplayQuery) -> int:
        return len(reads.replay_rows(self, query))

    async def replay(
        self, query: ReplayQuery, *, limit: int, chunk: int
    ) -> AsyncGenerator[Sequence[ReplayRow], None]:
        rows = reads.replay_rows(self, query)[:limit]
        for i in range(0, len(rows), chunk):
            yield rows[i : i + chunk]

    async def arms(self, since: float) -> dict[ArmKey, ArmStats]:
        return reads.arms(self, since)

    async def due_follow_ups(self, now: float, limit: int) -> list[DueOffer]:
        return reads.due_follow_ups(self, now)[:limit]


def _run_all(steps: Iterable[Callable[[], object]]) -> None:
    for step in steps:
        step()


def _put(
    docs: dict[str, Stored],
    key: str,
    doc: dict[str, Any],
    create: bool,
    now: datetime,
    status: str | None,
) -> Stored | None:
    old = docs.get(key)
    if (old is not None) == create:  # create over an existing one, or update of none
        return None
    created = now if old is None else old.created_at
    docs[key] = Stored(key, copy.deepcopy(doc), created, now, status)
    return docs[key]
