"""A campaign's results (issue 6): what its messages became, and the measured uplift.

- Messages: the campaign's outbox rows whose decision falls in [since, until), by relay status,
  `delivered` from the provider's delivery receipts when the outbox has a `delivery_status`
  column (else null), opens and clicks the app reported, codes redeemed and their revenue.
- Uplift: the campaign's decisions in [since, until) split in groups by outcome: treated
  (send, held), control (the campaign's control group) and holdout (the global holdout: its
  decisions carry the campaign that would have been chosen). A customer converts when they
  have a non-cancelled order within `attribution_days` after one of their decisions of the
  group. Orders, not redemptions nor store visits: the control and holdout never get a code,
  and a visit is what triggers most campaigns, so neither is measurable in every group alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

Z95 = 1.959963984540054
GROUPS = ("treated", "control", "holdout")

_MESSAGES = """
SELECT o.channel, grouping(o.channel) AS total_row,
    count(*) AS messages,
    count(*) FILTER (WHERE o.status = 'sent') AS sent,
    {delivered} AS delivered,
    count(*) FILTER (WHERE o.status IN ('dead', 'failed')) AS failed,
    count(*) FILTER (WHERE o.status = 'expired') AS expired,
    count(*) FILTER (WHERE o.status IN ('pending', 'sending')) AS pending,
    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM interactions i WHERE i.outbox_id = o.id
                                   AND i.kind = 'opened')) AS opened,
    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM interactions i WHERE i.outbox_id = o.id
                                   AND i.kind = 'clicked')) AS clicked,
    count(rc.code) AS codes_issued,
    count(rc.redeemed_at) AS redeemed,
    coalesce(sum(rc.amount), 0)::float8 AS revenue
FROM outbox o
JOIN decisions d ON d.id = o.decision_id
LEFT JOIN redemption_codes rc ON rc.outbox_id = o.id
WHERE o.campaign_id = $1
  AND ($2::timestamptz IS NULL OR d.ts >= $2) AND ($3::timestamptz IS NULL OR d.ts < $3)
GROUP BY GROUPING SETS ((o.channel), ())
"""

_GROUPS = """
WITH d AS (
    SELECT customer_id, ts,
           CASE WHEN outcome IN ('send', 'held') THEN 'treated' ELSE outcome END AS grp
    FROM decisions
    WHERE campaign_id = $1 AND outcome IN ('send', 'held', 'control', 'holdout')
      AND ($2::timestamptz IS NULL OR ts >= $2) AND ($3::timestamptz IS NULL OR ts < $3)
), per_customer AS (
    SELECT d.grp, d.customer_id, count(*) AS decisions,
           bool_or(EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = d.customer_id
                           AND o.cancelled_at IS NULL AND o.ts >= d.ts
                           AND o.ts < d.ts + make_interval(days => $4))) AS converted
    FROM d GROUP BY d.grp, d.customer_id
)
SELECT grp, sum(decisions)::bigint AS decisions, count(*) AS customers,
       count(*) FILTER (WHERE converted) AS converters
FROM per_customer GROUP BY grp
"""

_COUNTS = (
    "messages",
    "sent",
    "delivered",
    "failed",
    "expired",
    "pending",
    "opened",
    "clicked",
    "codes_issued",
    "redeemed",
)


@dataclass(frozen=True, slots=True)
class Group:
    decisions: int
    customers: int
    converters: int

    @property
    def rate(self) -> float | None:
        return self.converters / self.customers if self.customers else None


async def has_delivery_status(conn: asyncpg.Connection) -> bool:
    """Provider delivery receipts are another migration's column: read it when it is there."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = 'outbox' AND column_name = 'delivery_status')"
    )
    return found


async def message_counts(
    pool: asyncpg.Pool, campaign_id: str, since: datetime | None, until: datetime | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(all channels, per channel) counts of the campaign's messages."""
    async with pool.acquire() as conn:
        receipts = await has_delivery_status(conn)
        delivered = (
            "count(*) FILTER (WHERE o.delivery_status IN ('delivered', 'read'))"
            if receipts
            else "NULL::bigint"
        )
        rows = await conn.fetch(_MESSAGES.format(delivered=delivered), campaign_id, since, until)
    empty: dict[str, Any] = {k: 0 for k in _COUNTS} | {"revenue": 0.0}
    if not receipts:
        empty["delivered"] = None
    total = dict(empty)
    by_channel: dict[str, dict[str, Any]] = {}
    for r in rows:
        counts = {k: r[k] for k in _COUNTS} | {"revenue": round(r["revenue"], 2)}
        if r["total_row"]:
            total = counts
        else:
            by_channel[r["channel"]] = counts
    return total, by_channel


async def group_counts(
    pool: asyncpg.Pool,
    campaign_id: str,
    since: datetime | None,
    until: datetime | None,
    attribution_days: int,
) -> dict[str, Group]:
    rows = await pool.fetch(_GROUPS, campaign_id, since, until, attribution_days)
    got = {r["grp"]: Group(r["decisions"], r["customers"], r["converters"]) for r in rows}
    return {g: got.get(g, Group(0, 0, 0)) for g in GROUPS}


def uplift(treated: Group, base: Group) -> dict[str, float | None]:
    """Treated minus `base` conversion rates: absolute, relative, a 95 % interval of the
    absolute difference (two-proportion normal approximation, unpooled) and the two-sided
    p-value of the pooled z-test. All null when a group is empty."""
    nulls: dict[str, float | None] = {
        "absolute": None,
        "relative": None,
        "ci95_low": None,
        "ci95_high": None,
        "p_value": None,
    }
    rt, rb = treated.rate, base.rate
    if rt is None or rb is None:
        return nulls
    nt, nb = treated.customers, base.customers
    diff = rt - rb
    se = math.sqrt(rt * (1 - rt) / nt + rb * (1 - rb) / nb)
    pooled = (treated.converters + base.converters) / (nt + nb)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / nt + 1 / nb))
    p_value = math.erfc(abs(diff) / se0 / math.sqrt(2)) if se0 > 0 else 1.0
    return {
        "absolute": diff,
        "relative": diff / rb if rb > 0 else None,
        "ci95_low": diff - Z95 * se,
        "ci95_high": diff + Z95 * se,
        "p_value": p_value,
    }


async def campaign_exists(pool: asyncpg.Pool, campaign_id: str) -> bool:
    found = await pool.fetchval("SELECT 1 FROM campaigns WHERE id = $1", campaign_id)
    return found is not None
