"""PresenceStore on PostgreSQL: set-based writes (unnest) in the unit of work's transaction;
cursors (cursor_log.py) and raw fixes by binary COPY built from their columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from adapters.db import cursor_log
from adapters.db.pgcopy import RAW_FIX_COLUMNS, raw_fixes_copy
from adapters.db.tx import conn_of
from geo_engine.models import CustomerCursor, FenceState, PresenceEvent, PresenceEventType
from geo_engine.ports import EventQuery, PresenceCommit, StoredEvent, Tx
from geo_engine.presence_raw import RawFixColumns

_UPSERT_STATES = """
INSERT INTO presence_state AS s (customer_id, geofence_id, entered_at, last_inside_at,
    outside_since, dwell_fired, source, gps_confirmed, held_until, held_by)
SELECT u.cid, u.fid, to_timestamp(u.ent), to_timestamp(u.lin), to_timestamp(u.outs), u.dw,
    u.src, u.gps, to_timestamp(u.hu), u.hb
FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::bool[],
            $7::text[], $8::bool[], $9::float8[], $10::text[])
    AS u(cid, fid, ent, lin, outs, dw, src, gps, hu, hb)
ON CONFLICT (customer_id, geofence_id) DO UPDATE SET entered_at = excluded.entered_at,
    last_inside_at = excluded.last_inside_at, outside_since = excluded.outside_since,
    dwell_fired = excluded.dwell_fired, source = excluded.source,
    gps_confirmed = excluded.gps_confirmed, held_until = excluded.held_until,
    held_by = excluded.held_by
"""

_DELETE_STATES = """
DELETE FROM presence_state s USING unnest($1::text[], $2::text[]) AS u(cid, fid)
WHERE s.customer_id = u.cid AND s.geofence_id = u.fid
"""

_INSERT_EVENTS = """
INSERT INTO presence_events (customer_id, geofence_id, type, ts, source, reason)
SELECT u.cid, u.fid, u.typ, to_timestamp(u.ts), u.src, u.rsn
FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[])
    WITH ORDINALITY AS u(cid, fid, typ, ts, src, rsn, n)
ORDER BY u.n
RETURNING id
"""

_THEIRS = " WHERE customer_id = ANY($1::text[])"


def _epoch(value: Any) -> float | None:
    return None if value is None else value.timestamp()


class PgPresenceStore:
    def __init__(self, pool: asyncpg.Pool, *, store_raw_fixes: bool = True) -> None:
        self._pool = pool
        self._store_raw = store_raw_fixes

    async def load(
        self, customer_ids: Sequence[str] | None = None
    ) -> tuple[list[tuple[str, CustomerCursor]], list[tuple[str, str, FenceState]]]:
        where, args = ("", []) if customer_ids is None else (_THEIRS, [list(customer_ids)])
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            cur_rows = await conn.fetch(cursor_log.load_sql(customer_ids is not None), *args)
            st_rows = await conn.fetch("SELECT * FROM presence_state" + where, *args)
        cursors = [
            (
                r["customer_id"],
                CustomerCursor(
                    last_ts=r["last_ts"],
                    last_lat=r["last_lat"],
                    last_lon=r["last_lon"],
                    last_accuracy_m=r["last_accuracy_m"],
                    suspect_ts=r["suspect_ts"],
                    suspect_lat=r["suspect_lat"],
                    suspect_lon=r["suspect_lon"],
                    suspect_accuracy_m=r["suspect_accuracy_m"],
                    suspect_count=r["suspect_count"],
                    last_event_ts=r["last_event_ts"],
                ),
            )
            for r in cur_rows
        ]
        states = [(r["customer_id"], r["geofence_id"], _state(r)) for r in st_rows]
        return cursors, states

    async def write(self, tx: Tx, batch: PresenceCommit) -> list[int]:
        """Write `batch` inside `tx` (the unit of work's transaction)."""
        conn = conn_of(tx)
        if batch.cursors:
            await cursor_log.append(conn, batch.cursors)
        upserts = [(k, s) for k, s in batch.states.items() if s is not None]
        deletes = [k for k, s in batch.states.items() if s is None]
        if deletes:
            await conn.execute(_DELETE_STATES, [k[0] for k in deletes], [k[1] for k in deletes])
        if upserts:
            await conn.execute(
                _UPSERT_STATES,
                [k[0] for k, _ in upserts],
                [k[1] for k, _ in upserts],
                [s.entered_at for _, s in upserts],
                [s.last_inside_at for _, s in upserts],
                [s.outside_since for _, s in upserts],
                [s.dwell_fired for _, s in upserts],
                [s.source for _, s in upserts],
                [s.gps_confirmed for _, s in upserts],
                [s.held_until for _, s in upserts],
                [s.held_by for _, s in upserts],
            )
        ids: list[int] = []
        if batch.events:
            ev = batch.events
            rows = await conn.fetch(
                _INSERT_EVENTS,
                [e.customer_id for e in ev],
                [e.geofence_id for e in ev],
                [str(e.type) for e in ev],
                [e.ts for e in ev],
                [e.source for e in ev],
                [e.reason for e in ev],
            )
            ids = [r["id"] for r in rows]
        if self._store_raw and batch.raw_fixes:
            # binary COPY built from the batch's columns (pgcopy.py): no object per fix
            payload = raw_fixes_copy(RawFixColumns.of(batch.raw_fixes))
            await conn.copy_to_table(
                "raw_fixes", source=payload, columns=RAW_FIX_COLUMNS, format="binary"
            )
        return ids

    async def events(self, query: EventQuery) -> list[StoredEvent]:
        clauses = ["id > $1"]
        args: list[Any] = [query.after_id]
        for column, value in (
            ("customer_id", query.customer_id),
            ("geofence_id", query.geofence_id),
            ("type", query.type),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        if query.since is not None:
            args.append(query.since)
            clauses.append(f"ts >= to_timestamp(${len(args)})")
        args.append(query.limit)
        sql = (
            "SELECT id, customer_id, geofence_id, type, ts, source, reason FROM presence_events"
            f" WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ${len(args)}"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        return [
            StoredEvent(
                r["id"],
                PresenceEvent(
                    type=PresenceEventType(r["type"]),
                    customer_id=r["customer_id"],
                    geofence_id=r["geofence_id"],
                    ts=r["ts"].timestamp(),
                    source=r["source"],
                    reason=r["reason"],
                ),
            )
            for r in rows
        ]

    async def presence_of(self, customer_id: str) -> list[tuple[str, FenceState]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM presence_state WHERE customer_id = $1 ORDER BY entered_at",
                customer_id,
            )
        return [(r["geofence_id"], _state(r)) for r in rows]


def _state(r: asyncpg.Record) -> FenceState:
    return FenceState(
        entered_at=r["entered_at"].timestamp(),
        last_inside_at=r["last_inside_at"].timestamp(),
        outside_since=_epoch(r["outside_since"]),
        dwell_fired=r["dwell_fired"],
        source=r["source"],
        gps_confirmed=r["gps_confirmed"],
        held_until=_epoch(r["held_until"]),
        held_by=r["held_by"],
    )
