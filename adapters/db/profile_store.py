"""The profile store (geo_engine/profile/ports.py) on PostgreSQL: the functions of
adapters/db/profiles.py and adapters/db/places.py behind the port, on the connection of the
caller's transaction (adapters/db/tx.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import asyncpg

from adapters.db import places, profiles
from adapters.db.tx import conn_of
from geo_engine.ports import Tx
from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose
from geo_engine.profile.places import CellEvidence
from geo_engine.profile.ports import CellKey, EventRecord, Loaded, OrderRecord, PlaceFix
from geo_engine.profile.rfm import RfmFigures
from geo_engine.profile.velocity import Crossing

_EPOCH = datetime.fromtimestamp(0, UTC)


class PgProfileStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(
        self,
        *,
        counts_since: float,
        affinity_since: float,
        ref: float,
        channel_half_life_s: float,
        category_half_life_s: float,
    ) -> Loaded:
        async with self._pool.acquire() as conn:
            return await profiles.load(
                conn,
                counts_since=counts_since,
                affinity_since=affinity_since,
                ref=ref,
                channel_half_life_s=channel_half_life_s,
                category_half_life_s=category_half_life_s,
            )

    # --- behavioural events and orders ------------------------------------------------------
    async def insert_events(
        self, tx: Tx, rows: Sequence[EventRecord]
    ) -> list[tuple[int, str | None, int | None]]:
        return await profiles.insert_events(conn_of(tx), rows)

    async def insert_orders(self, tx: Tx, rows: Sequence[OrderRecord]) -> set[tuple[str, str]]:
        return await profiles.insert_orders(conn_of(tx), rows)

    async def delete_orders(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None:
        await profiles.delete_orders(conn_of(tx), pairs)

    async def cancel_orders(
        self, tx: Tx, cancels: Sequence[tuple[str, str, float]]
    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        return await profiles.cancel_orders(conn_of(tx), cancels)

    async def uncancel_orders(self, tx: Tx, pairs: Sequence[tuple[str, str]]) -> None:
        await profiles.uncancel_orders(conn_of(tx), pairs)

    async def rfm_of(self, tx: Tx, customers: Sequence[str]) -> dict[str, RfmFigures | None]:
        return await profiles.rfm_of(conn_of(tx), customers)

    # --- velocity ---------------------------------------------------------------------------
    async def upsert_trends(self, tx: Tx, rows: Sequence[tuple[str, list[int]]]) -> None:
        await profiles.upsert_trends(conn_of(tx), rows)

    async def insert_signals(self, tx: Tx, crossings: Sequence[Crossing]) -> None:
        await profiles.insert_signals(conn_of(tx), crossings)

    # --- declared attributes and consents ---------------------------------------------------
    async def put_attributes(self, tx: Tx, customer_id: str, attrs: Attributes) -> float:
        return await profiles.put_attributes(conn_of(tx), customer_id, attrs)

    async def put_consents(
        self, tx: Tx, customer_id: str, consents: Mapping[ConsentPurpose, Consent]
    ) -> None:
        await profiles.put_consents(conn_of(tx), customer_id, consents)

    # --- home and work ----------------------------------------------------------------------
    async def fixes_since(self, tx: Tx, mark: str, until: datetime) -> list[PlaceFix]:
        conn = conn_of(tx)
        after = await places.get_cursor(conn, mark) or _EPOCH
        rows = await places.fixes_between(conn, after, until)
        await places.set_cursor(conn, mark, until)
        return [
            PlaceFix(r["customer_id"], r["ts"], r["lat"], r["lon"], r["accuracy_m"]) for r in rows
        ]

    async def fixes_from(self, tx: Tx, mark: str) -> datetime | None:
        conn = conn_of(tx)
        return await places.get_cursor(conn, mark) or await places.before_oldest(conn)

    async def place_cells(self, tx: Tx, customers: Sequence[str]) -> dict[CellKey, CellEvidence]:
        return await places.place_cells(conn_of(tx), customers)

    async def upsert_place_cells(self, tx: Tx, cells: Mapping[CellKey, CellEvidence]) -> None:
        await places.upsert_place_cells(conn_of(tx), dict(cells))
