"""Retention: raw location signals are kept briefly, derived data about 13 months (minimisation,
GDPR art. 5(1)(e); the CNIL's store-visit orders). A purge deletes what is older, in batches of
`purge_batch_rows` (adapters/db/retention.py) so no lock is held long and ingest keeps
flowing; it runs on a schedule in `serve` and on demand with `geo-engine purge`.

raw_fixes is partitioned by day of its fix time (migration 016, adapters/db/raw_fixes.py): a
day wholly past the cutoff is dropped, not deleted row by row; only the day the cutoff falls in
and the DEFAULT partition (fixes no day holds) are deleted in batches. The scheduled job also
creates the days ahead, at start and every interval, so fixes do not land in DEFAULT.

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

from adapters.db import raw_fixes as raw_fixes_db
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
# partitioned by day on their rule's column: old days are dropped whole
PARTITIONED = frozenset({raw_fixes_db.PARENT})
# current state and legal records: never purged by age (erasure removes them)
KEPT_TABLES = frozenset(
    {
        "customer_profiles",
        "customer_consents",
        "consent_log",
        "identities",
        "customer_cursors",
        "customer_cursor_log",
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

        def report(n: int, table: str = rule.table) -> None:
            if n:
                PURGED.labels(table).inc(n)
                if on_batch is not None:
                    on_batch(table, n)

        if rule.table in PARTITIONED:
            done[rule.table] = await _purge_days(pool, cutoff, retention.batch_rows, report)
            continue
        total = 0
        while True:
            n = await retention_db.delete_batch(
                pool, rule.table, rule.column, cutoff, retention.batch_rows
            )
            total += n
            report(n)
            if n < retention.batch_rows:
                break
        done[rule.table] = total
    return done


async def _purge_days(
    pool: Pool, cutoff: datetime, batch_rows: int, report: Callable[[int], None]
) -> int:
    """raw_fixes: drops the days that end at or before `cutoff`; deletes in batches from the day
    `cutoff` falls in, from DEFAULT, and from a day whose drop timed out on a lock."""
    total = 0
    partial = []
    for part in await raw_fixes_db.partitions(pool):
        if part.lo is None or part.hi is None:  # DEFAULT: late or skewed fixes, any time
            partial.append(part)
        elif part.hi <= cutoff:
            n = await raw_fixes_db.drop(pool, part)
            if n is None:
                log.warning("retention: %s is busy, its rows are deleted instead", part.name)
                partial.append(part)
            else:
                total += n
                report(n)
        elif part.lo < cutoff:
            partial.append(part)
    for part in partial:
        while True:
            n = await raw_fixes_db.delete_batch(pool, part, cutoff, batch_rows)
            total += n
            report(n)
            if n < batch_rows:
                break
    return total


async def maintain(pool: Pool, now: float | None = None) -> list[str]:
    """raw_fixes' days ahead (today and raw_fixes.DAYS_AHEAD more); the names created."""
    now = time.time() if now is None else now
    return await raw_fixes_db.ensure_days(pool, datetime.fromtimestamp(now, UTC).date())


async def purge_forever(pool: Pool, retention: Retention) -> None:
    while True:
        try:  # at start, then every interval: the days ahead exist before their fixes come
            created = await maintain(pool)
            if created:
                log.info("raw fixes: partitions created %s", created)
        except Exception:
            log.exception("raw fixes: creating the days ahead failed")
        try:
            done = await purge(pool, retention)
            if any(done.values()):
                log.info("retention purge: %s", {t: n for t, n in done.items() if n})
        except Exception:  # retried next tick; never kill the loop
            log.exception("retention purge failed")
        await asyncio.sleep(retention.interval_s)
