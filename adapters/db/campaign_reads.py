"""The campaign store's reads outside the decision path, on PostgreSQL: the backtest's replay,
the bandit's arms and the offers due a follow-up.
`PgCampaignRepository` (adapters/db/campaigns.py) exposes them as the port's methods."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from typing import cast

import asyncpg

from geo_engine.decision.bandit import ArmKey, ArmStats
from geo_engine.decision.ports import DueOffer, ReplayQuery, ReplayRow

# presence events, behavioural events and velocity crossings of the range, merged oldest first;
# `$3`/`$4`/`$5` say which the campaign listens to (a campaign on presence only reads no
# behavioural event and no crossing; `$5`: its velocity "kpi:direction" pairs, the
# `cardinality` test a one-time filter, so no scan of the signals without one). `k` is the
# row's kind (geo_engine.decision.ports: PRESENCE, EVENT, VELOCITY). Only the columns the
# replay reads; epoch seconds as float8 (what float() of the numeric gave, correctly rounded
# both ways, without a Decimal per row); sorted on the stored time.
REPLAY = """
SELECT k, id, customer_id, ref, type, extract(epoch FROM ts)::float8 AS ts, extra FROM (
    SELECT 0 AS k, id, customer_id, geofence_id AS ref, type, ts, source AS extra
      FROM presence_events WHERE $3 AND ts >= $1 AND ts < $2
    UNION ALL
    SELECT 1, id, customer_id, NULL, type, ts, event_id
      FROM behaviour_events WHERE type = ANY($4::text[]) AND ts >= $1 AND ts < $2
    UNION ALL
    SELECT 2, id, customer_id, figure, trend, as_of, NULL
      FROM velocity_signals WHERE cardinality($5::text[]) > 0
       AND figure || ':' || trend = ANY($5::text[]) AND as_of >= $1 AND as_of < $2
) e ORDER BY e.ts, k, id LIMIT $6
"""
_REPLAY_COUNT = """
SELECT (SELECT count(*) FROM presence_events WHERE $3 AND ts >= $1 AND ts < $2)
     + (SELECT count(*) FROM behaviour_events WHERE type = ANY($4::text[])
        AND ts >= $1 AND ts < $2)
     + (SELECT count(*) FROM velocity_signals WHERE cardinality($5::text[]) > 0
        AND figure || ':' || trend = ANY($5::text[]) AND as_of >= $1 AND as_of < $2)
"""


def _replay_args(q: ReplayQuery) -> tuple[object, ...]:
    return (q.since, q.until, q.presence, list(q.event_types), list(q.velocity))


async def replay_count(pool: asyncpg.Pool, query: ReplayQuery) -> int:
    n: int = await pool.fetchval(_REPLAY_COUNT, *_replay_args(query))
    return n


async def replay(
    pool: asyncpg.Pool, query: ReplayQuery, limit: int, chunk: int
) -> AsyncGenerator[Sequence[ReplayRow], None]:
    """Through a server-side cursor: a week of a city never sits in memory at once."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(REPLAY, *_replay_args(query), limit)
        # the next chunk is asked for before this one is replayed
        pending = asyncio.ensure_future(cursor.fetch(chunk))
        try:
            while rows := await pending:
                pending = asyncio.ensure_future(cursor.fetch(chunk))
                # a Record unpacks and indexes as the tuple it holds: no copy per row
                yield cast(Sequence[ReplayRow], rows)
        finally:
            # left early: the fetch in flight ends before the connection goes back
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: no "never retrieved" warning


# Delivered = the relay sent it, or its code was redeemed (proof enough). Pending, expired and
# dead rows never reached the customer: not a miss. A click counts only without a redemption
# (the redemption says more). One row per outbox row: the code and the click are unique per row.
_ARMS = """
SELECT o.campaign_id, o.offer_id,
       count(*) AS sent,
       count(r.redeemed_at) AS redeemed,
       count(*) FILTER (WHERE r.redeemed_at IS NULL AND i.outbox_id IS NOT NULL) AS clicked
  FROM outbox o
  LEFT JOIN redemption_codes r ON r.outbox_id = o.id
  LEFT JOIN interactions i ON i.outbox_id = o.id AND i.kind = 'clicked'
 WHERE (o.status = 'sent' OR r.redeemed_at IS NOT NULL)
   AND coalesce(o.sent_at, o.send_after) >= $1
 GROUP BY o.campaign_id, o.offer_id
"""


async def arms(pool: asyncpg.Pool, since: float) -> dict[ArmKey, ArmStats]:
    rows = await pool.fetch(_ARMS, datetime.fromtimestamp(since, UTC))
    return {
        (r["campaign_id"], r["offer_id"]): ArmStats(r["sent"], r["redeemed"], r["clicked"])
        for r in rows
    }


_DUE = """
SELECT o.id, o.customer_id, o.campaign_id, o.offer_id, o.channel,
       extract(epoch FROM o.sent_at)::float8 AS sent_at, d.fence_id
FROM outbox o
JOIN campaigns c ON c.id = o.campaign_id
JOIN decisions d ON d.id = o.decision_id
WHERE o.status = 'sent' AND c.status = 'live'
  AND jsonb_typeof(c.doc -> 'escalation') = 'object'
  AND o.sent_at <= $1::timestamptz
       - make_interval(secs => (c.doc -> 'escalation' ->> 'after_s')::float8)
  AND o.sent_at > $1::timestamptz - interval '8 days'
  AND d.trigger_kind <> 'followup'
  AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.outbox_id = o.id)
  AND NOT EXISTS (SELECT 1 FROM redemption_codes r
                  WHERE r.outbox_id = o.id AND r.redeemed_at IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM decisions f WHERE f.trigger_kind = 'followup'
                  AND f.customer_id = o.customer_id AND f.trigger_instance = 'esc:' || o.id)
ORDER BY o.sent_at, o.id
LIMIT $2
"""


async def due_follow_ups(pool: asyncpg.Pool, now: float, limit: int) -> list[DueOffer]:
    rows = await pool.fetch(_DUE, datetime.fromtimestamp(now, UTC), limit)
    return [
        DueOffer(
            r["id"],
            r["customer_id"],
            r["campaign_id"],
            r["offer_id"],
            r["channel"],
            r["sent_at"],
            r["fence_id"],
        )
        for r in rows
    ]
