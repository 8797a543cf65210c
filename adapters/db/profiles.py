"""Profiles on PostgreSQL: behavioural events, orders, attributes and consents, trends and
velocity signals, and loading it all (place evidence included: adapters/db/places.py writes
it). Set-based writes through unnest; every function takes the caller's connection so one
batch is one transaction. `PgProfileStore` (adapters/db/profile_store.py) is the profile store
port (geo_engine/profile/ports.py) on these functions: what the services use."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import asyncpg

from geo_engine.profile.affinity import CHANNEL_PURCHASE_WEIGHT
from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose, ConsentStatus, Sex
from geo_engine.profile.events import CHANNELS
from geo_engine.profile.places import CellEvidence
from geo_engine.profile.ports import EventRecord as EventRecord
from geo_engine.profile.ports import Loaded as Loaded
from geo_engine.profile.ports import OrderRecord as OrderRecord
from geo_engine.profile.rfm import RfmFigures
from geo_engine.profile.state import Crossing


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


_INSERT_EVENTS = """
INSERT INTO behaviour_events (event_id, presence_event_id, customer_id, type, channel, ts,
    properties, kpis, categories)
SELECT u.eid, u.pid, u.cid, u.typ, u.ch, to_timestamp(u.ts), u.props::jsonb,
    COALESCE(string_to_array(u.kpis, ',')::int2[], '{}'), u.cats::jsonb
FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::float8[],
            $7::text[], $8::text[], $9::text[]) AS u(eid, pid, cid, typ, ch, ts, props, kpis, cats)
ON CONFLICT DO NOTHING
RETURNING id, event_id, presence_event_id
"""


async def insert_events(
    conn: asyncpg.Connection, rows: Sequence[EventRecord]
) -> list[tuple[int, str | None, int | None]]:
    """Insert; a row whose event_id (or presence_event_id) is already stored is skipped.
    Returns (id, event_id, presence_event_id) of the rows inserted."""
    if not rows:
        return []
    got = await conn.fetch(
        _INSERT_EVENTS,
        [r.event_id for r in rows],
        [r.presence_event_id for r in rows],
        [r.customer_id for r in rows],
        [r.type for r in rows],
        [r.channel for r in rows],
        [r.ts for r in rows],
        [r.properties for r in rows],
        [",".join(map(str, r.kpis)) or None for r in rows],
        [None if r.categories is None else json.dumps(r.categories) for r in rows],
    )
    return [(g["id"], g["event_id"], g["presence_event_id"]) for g in got]


async def insert_orders(
    conn: asyncpg.Connection, rows: Sequence[OrderRecord]
) -> set[tuple[str, str]]:
    """(customer, order) pairs newly recorded; the others were already there."""
    if not rows:
        return set()
    got = await conn.fetch(
        "INSERT INTO orders (customer_id, order_id, ts, amount, currency, amount_base)"
        " SELECT u.c, u.o, to_timestamp(u.t), u.a, u.cur, u.b FROM unnest($1::text[],"
        " $2::text[], $3::float8[], $4::float8[], $5::text[], $6::float8[])"
        " AS u(c, o, t, a, cur, b) ON CONFLICT DO NOTHING RETURNING customer_id, order_id",
        [r.customer_id for r in rows],
        [r.order_id for r in rows],
        [r.ts for r in rows],
        [r.amount for r in rows],
        [r.currency for r in rows],
        [r.amount_base for r in rows],
    )
    return {(g["customer_id"], g["order_id"]) for g in got}


async def delete_orders(conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    await conn.execute(
        "DELETE FROM orders o USING unnest($1::text[], $2::text[]) AS u(c, o)"
        " WHERE o.customer_id = u.c AND o.order_id = u.o",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )


async def cancel_orders(
    conn: asyncpg.Connection, cancels: Sequence[tuple[str, str, float]]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Cancel (customer, order, at). Returns (cancelled now, already cancelled); pairs in
    neither are unknown orders."""
    if not cancels:
        return set(), set()
    done = await conn.fetch(
        "UPDATE orders o SET cancelled_at = to_timestamp(u.t) FROM unnest($1::text[],"
        " $2::text[], $3::float8[]) AS u(c, o, t) WHERE o.customer_id = u.c AND o.order_id = u.o"
        " AND o.cancelled_at IS NULL RETURNING o.customer_id, o.order_id",
        [c[0] for c in cancels],
        [c[1] for c in cancels],
        [c[2] for c in cancels],
    )
    now = {(r["customer_id"], r["order_id"]) for r in done}
    rest = [c for c in cancels if (c[0], c[1]) not in now]
    before: set[tuple[str, str]] = set()
    if rest:
        rows = await conn.fetch(
            "SELECT o.customer_id, o.order_id FROM orders o JOIN unnest($1::text[], $2::text[])"
            " AS u(c, o) ON o.customer_id = u.c AND o.order_id = u.o",
            [c[0] for c in rest],
            [c[1] for c in rest],
        )
        before = {(r["customer_id"], r["order_id"]) for r in rows}
    return now, before


async def uncancel_orders(conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    await conn.execute(
        "UPDATE orders o SET cancelled_at = NULL FROM unnest($1::text[], $2::text[]) AS u(c, o)"
        " WHERE o.customer_id = u.c AND o.order_id = u.o",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )


_RFM = """
SELECT customer_id, count(*) AS orders, count(amount_base) AS converted,
    COALESCE(sum(amount_base), 0) AS total, extract(epoch FROM min(ts))::float8 AS first_ts,
    extract(epoch FROM max(ts))::float8 AS last_ts
FROM orders WHERE cancelled_at IS NULL {where} GROUP BY customer_id
"""


def _rfm(r: asyncpg.Record) -> RfmFigures:
    return RfmFigures(r["orders"], r["converted"], r["total"], r["first_ts"], r["last_ts"])


async def rfm_of(
    conn: asyncpg.Connection, customers: Sequence[str]
) -> dict[str, RfmFigures | None]:
    """Figures from the orders not cancelled (None: no order left)."""
    rows = await conn.fetch(_RFM.format(where="AND customer_id = ANY($1)"), list(customers))
    out: dict[str, RfmFigures | None] = dict.fromkeys(customers)
    out.update({r["customer_id"]: _rfm(r) for r in rows})
    return out


async def insert_signals(conn: asyncpg.Connection, crossings: Sequence[Crossing]) -> None:
    if not crossings:
        return
    await conn.copy_records_to_table(
        "velocity_signals",
        records=[
            (
                c.customer_id,
                c.figure,
                c.previous_trend,
                c.trend,
                c.latest,
                c.previous,
                c.pct_change,
                c.window_days,
                _dt(c.as_of),
            )
            for c in crossings
        ],
        columns=(
            "customer_id",
            "figure",
            "previous_trend",
            "trend",
            "latest",
            "previous",
            "pct_change",
            "window_days",
            "as_of",
        ),
    )


async def upsert_trends(conn: asyncpg.Connection, rows: Sequence[tuple[str, list[int]]]) -> None:
    if not rows:
        return
    await conn.execute(
        "INSERT INTO customer_trends (customer_id, trends) SELECT u.c,"
        " string_to_array(u.t, ',')::int2[] FROM unnest($1::text[], $2::text[]) AS u(c, t)"
        " ON CONFLICT (customer_id) DO UPDATE SET trends = excluded.trends, updated_at = now()",
        [r[0] for r in rows],
        [",".join(map(str, r[1])) for r in rows],
    )


async def put_attributes(conn: asyncpg.Connection, customer_id: str, a: Attributes) -> float:
    row = await conn.fetchrow(
        "INSERT INTO customer_profiles (customer_id, first_name, age_band, sex, csp,"
        " household_size, home_postcode) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (customer_id) DO UPDATE SET first_name = excluded.first_name,"
        " age_band = excluded.age_band, sex = excluded.sex, csp = excluded.csp,"
        " household_size = excluded.household_size, home_postcode = excluded.home_postcode,"
        " updated_at = now() RETURNING extract(epoch FROM updated_at)::float8 AS at",
        customer_id,
        a.first_name,
        a.age_band,
        None if a.sex is None else str(a.sex),
        a.csp,
        a.household_size,
        a.home_postcode,
    )
    assert row is not None
    return float(row["at"])


async def put_consents(
    conn: asyncpg.Connection, customer_id: str, consents: Mapping[ConsentPurpose, Consent]
) -> None:
    """Log every statement; the current one per purpose is replaced only by a newer `at`."""
    for purpose, c in consents.items():
        args = (customer_id, str(purpose), str(c.status), _dt(c.at), c.source)
        await conn.execute(
            "INSERT INTO consent_log (customer_id, purpose, status, at, source)"
            " VALUES ($1, $2, $3, $4, $5)",
            *args,
        )
        await conn.execute(
            "INSERT INTO customer_consents (customer_id, purpose, status, at, source)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, purpose) DO UPDATE"
            " SET status = excluded.status, at = excluded.at, source = excluded.source,"
            " recorded_at = now() WHERE customer_consents.at <= excluded.at",
            *args,
        )


# --- loading the state at start ------------------------------------------------------------
async def load(
    conn: asyncpg.Connection,
    *,
    counts_since: float,
    affinity_since: float,
    ref: float,
    channel_half_life_s: float,
    category_half_life_s: float,
) -> Loaded:
    counts = await conn.fetch(
        "SELECT customer_id, k, floor(extract(epoch FROM ts) / 86400)::int8 AS day, count(*) AS n"
        " FROM behaviour_events, unnest(kpis) AS k WHERE ts >= to_timestamp($1)"
        " GROUP BY 1, 2, 3",
        counts_since,
    )
    trends = await conn.fetch("SELECT customer_id, trends FROM customer_trends")
    channel_index = {str(c): i for i, c in enumerate(CHANNELS)}
    channels = await conn.fetch(
        "SELECT customer_id, channel, sum(CASE WHEN type = 'purchase' THEN $4 ELSE 1 END"
        " * power(2::float8, (extract(epoch FROM ts) - $2) / $3)) AS v FROM behaviour_events"
        " WHERE ts >= to_timestamp($1) GROUP BY 1, 2",
        affinity_since,
        ref,
        channel_half_life_s,
        CHANNEL_PURCHASE_WEIGHT,
    )
    cats = await conn.fetch(
        "SELECT e.customer_id, c.key, sum(c.value::float8 * power(2::float8,"
        " (extract(epoch FROM e.ts) - $2) / $3)) AS v FROM behaviour_events e,"
        " jsonb_each_text(e.categories) AS c WHERE e.categories IS NOT NULL"
        " AND e.ts >= to_timestamp($1) GROUP BY 1, 2",
        affinity_since,
        ref,
        category_half_life_s,
    )
    rfm = await conn.fetch(_RFM.format(where=""))
    attrs = await conn.fetch(
        "SELECT *, extract(epoch FROM updated_at)::float8 AS at FROM customer_profiles"
    )
    consents = await conn.fetch(
        "SELECT customer_id, purpose, status, extract(epoch FROM at)::float8 AS at, source"
        " FROM customer_consents"
    )
    cells = await conn.fetch("SELECT * FROM customer_place_cells")
    out_consents: dict[str, dict[ConsentPurpose, Consent]] = {}
    for r in consents:
        out_consents.setdefault(r["customer_id"], {})[ConsentPurpose(r["purpose"])] = Consent(
            ConsentStatus(r["status"]), r["at"], r["source"]
        )
    return Loaded(
        counts=[(r["customer_id"], r["k"], r["day"], r["n"]) for r in counts],
        trends=[(r["customer_id"], list(r["trends"])) for r in trends],
        channels=[(r["customer_id"], channel_index[r["channel"]], r["v"]) for r in channels],
        categories=[(r["customer_id"], r["key"], r["v"]) for r in cats],
        rfm={r["customer_id"]: _rfm(r) for r in rfm},
        attributes={r["customer_id"]: attributes_of(r) for r in attrs},
        consents=out_consents,
        place_cells={(r["customer_id"], r["kind"], r["cell"]): cell_evidence(r) for r in cells},
    )


def attributes_of(r: asyncpg.Record) -> Attributes:
    return Attributes(
        first_name=r["first_name"],
        age_band=r["age_band"],
        sex=None if r["sex"] is None else Sex(r["sex"]),
        csp=r["csp"],
        household_size=r["household_size"],
        home_postcode=r["home_postcode"],
        updated_at=r["at"],
    )


def cell_evidence(r: asyncpg.Record) -> CellEvidence:
    return CellEvidence(r["score"], r["hours"], r["days"], r["last_hour"], r["last_day"])
