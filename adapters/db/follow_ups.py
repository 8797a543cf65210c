"""The escalation job's query: offers sent that got no reaction and are due a follow-up
(adapters/delivery/escalation.py says when a row is due)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

# a follow-up decision is unique per (customer, `esc:<outbox id>`) (migration 011): the error
# a runner that lost the race to decide it gets
ALREADY_DECIDED: tuple[type[Exception], ...] = (asyncpg.UniqueViolationError,)

_DUE = """
SELECT o.id, o.customer_id, o.campaign_id, o.offer_id, o.channel,
       extract(epoch FROM o.sent_at) AS sent_at, d.fence_id
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


async def due_first_offers(pool: asyncpg.Pool, now: float, limit: int) -> list[asyncpg.Record]:
    """The oldest `limit` offers due a follow-up at `now`: id, customer_id, campaign_id,
    offer_id, channel, sent_at (unix s), fence_id (of the first offer's trigger, or None)."""
    rows: list[asyncpg.Record] = await pool.fetch(_DUE, datetime.fromtimestamp(now, UTC), limit)
    return rows
