"""Retention: raw location signals are kept briefly, derived data about 13 months (minimisation,
GDPR art. 5(1)(e); the CNIL's store-visit orders). A purge deletes what is older, in batches of
`purge_batch_rows` (adapters/db/retention.py) so no lock is held long and ingest keeps
flowing; it runs on a schedule in `serve` and on demand with `geo-engine purge`.

Which tables: the raw ones are named (they hold where someone was at an instant); every other
table with a `customer_id` column and a timestamptz event-time column is derived and purged at
the derived age, so tables added later (decisions, outbox, ...) are covered without an edit
here. Tables that describe the customer's *current* state or their legal statements are kept
until erasure: profile, consents and the consent log (proof of consent), identities, presence
state and cursors, trends, home/work cells (recomputed from raw fixes), orders (the commercial
relationship, RFM).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.db import retention as retention_db
from adapters.db.types import Connection, Pool
from adapters.privacy.metrics import PURGED
from adapters.settings import Settings

log = logging.getLogger(__name__)

DAY_S = 86_400.0
# table -> its event-time column: location signals, kept raw_fix_retention_s
RAW_TABLES = {
    "raw_fixes": "ts",
    "owntracks_transitions": "ts",
    "owntracks_beacons": "ts",
    "nfc_taps": "ts",
}
# current state and legal records: never purged by age (erasure removes them)
KEPT_TABLES = frozenset(
    {
        "customer_profiles",
        "customer_consents",
        "consent_log",
        "identities",
        "customer_cursors",
        "presence_state",
        "customer_trends",
        "customer_place_cells",
        "orders",
    }
)
# event-time column of a derived table: the first of these it has (timestamptz)
TIME_COLUMNS = ("ts", "decided_at", "as_of", "created_at", "recorded_at")


@dataclass(frozen=True, slots=True)
class Rule:
    table: str
    column: str
    max_age_s: float


@dataclass(frozen=True, slots=True)
class Retention:
    raw_s: float
    derived_s: float
    batch_rows: int
    interval_s: float = 3_600.0

    @classmethod
    def from_settings(cls, s: Settings) -> Retention:
        return cls(
            raw_s=s.raw_fix_retention_s,
            derived_s=s.derived_retention_days * DAY_S,
            batch_rows=s.purge_batch_rows,
            interval_s=s.purge_interval_s,
        )

    async def rules(self, conn: Connection) -> list[Rule]:
        """Discovered from information_schema: what exists now, future tables included."""
        return self.rules_for(await retention_db.column_types(conn))

    def rules_for(self, by_table: dict[str, dict[str, str]]) -> list[Rule]:
        """The rules for these tables (table -> column -> data type)."""
        out: list[Rule] = []
        for table, columns in sorted(by_table.items()):
            if table in RAW_TABLES:
                out.append(Rule(table, RAW_TABLES[table], self.raw_s))
            elif "customer_id" in columns and table not in KEPT_TABLES:
                col = next(
                    (c for c in TIME_COLUMNS if columns.get(c) == "timestamp with time zone"),
                    None,
                )
                if col is not None:
                    out.append(Rule(table, col, self.derived_s))
        return out


ProgressHook = Callable[[str, int], None]  # (table, rows deleted by this batch)


async def purge(
    pool: Pool,
    retention: Retention,
    *,
    now: float | None = None,
    on_batch: ProgressHook | None = None,
) -> dict[str, int]:
    """Deletes everything past its retention; returns rows deleted per table."""
    now = time.time() if now is None else now
    rules = retention.rules_for(await retention_db.column_types(pool))
    done: dict[str, int] = {}
    for rule in rules:
        cutoff = datetime.fromtimestamp(now - rule.max_age_s, UTC)
        total = 0
        while True:
            n = await retention_db.delete_batch(
                pool, rule.table, rule.column, cutoff, retention.batch_rows
            )
            total += n
            if n:
                PURGED.labels(rule.table).inc(n)
                if on_batch is not None:
                    on_batch(rule.table, n)
            if n < retention.batch_rows:
                break
        done[rule.table] = total
    return done


async def purge_forever(pool: Pool, retention: Retention) -> None:
    while True:
        try:
            done = await purge(pool, retention)
            if any(done.values()):
                log.info("retention purge: %s", {t: n for t, n in done.items() if n})
        except Exception:  # retried next tick; never kill the loop
            log.exception("retention purge failed")
        await asyncio.sleep(retention.interval_s)
