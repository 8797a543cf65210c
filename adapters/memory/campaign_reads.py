"""The memory campaign store's reads outside the decision path (adapters/memory/campaigns.py):
the backtest's replay, the bandit's arms, the offers due a follow-up. Each is the query of
adapters/db/campaign_reads.py, written over the memory stores' rows."""

from __future__ import annotations

from adapters.memory.campaign_rows import Tables
from geo_engine.decision.bandit import ArmKey, ArmStats
from geo_engine.decision.escalation import KIND as FOLLOW_UP
from geo_engine.decision.escalation import instance_of
from geo_engine.decision.ports import EVENT, PRESENCE, VELOCITY, DueOffer, ReplayQuery, ReplayRow

MAX_FOLLOW_UP_AGE_S = 8 * 86400.0  # older offers are past any allowed delay


def replay_rows(store: Tables, q: ReplayQuery) -> list[ReplayRow]:
    """Every row of the replay, ordered as PostgreSQL orders them: (ts, kind, id)."""
    since, until = q.since.timestamp(), q.until.timestamp()
    rows: list[ReplayRow] = []
    if q.presence and store.presence is not None:
        rows += [
            (PRESENCE, se.id, p.customer_id, p.geofence_id, str(p.type), p.ts, p.source)
            for se in store.presence.stored
            if since <= (p := se.event).ts < until
        ]
    if store.profiles is not None:
        types = set(q.event_types)
        rows += [
            (EVENT, sb.id, b.customer_id, None, b.type, b.ts, b.event_id)
            for sb in store.profiles.events
            if (b := sb.record).type in types and since <= b.ts < until
        ]
        pairs = set(q.velocity)
        rows += [
            (VELOCITY, sid, c.customer_id, c.figure, c.trend, c.as_of, None)
            for sid, c in store.profiles.signals
            if f"{c.figure}:{c.trend}" in pairs and since <= c.as_of < until
        ]
    rows.sort(key=lambda r: (r[5], r[0], r[1]))
    return rows


def arms(store: Tables, since: float) -> dict[ArmKey, ArmStats]:
    """Delivered = sent, or its code redeemed; a click counts only without a redemption."""
    clicked = {oid for oid, kind in store.interactions if kind == "clicked"}
    out: dict[ArmKey, ArmStats] = {}
    for o in store.outbox.values():
        redeemed = o.id in store.redeemed
        at = o.send_after if o.sent_at is None else o.sent_at
        if not (o.status == "sent" or redeemed) or at < since:
            continue
        key = (o.campaign_id, o.offer_id)
        a = out.get(key, ArmStats())
        out[key] = ArmStats(
            a.sent + 1,
            a.redeemed + redeemed,
            a.clicked + (not redeemed and o.id in clicked),
        )
    return out


def due_follow_ups(store: Tables, now: float) -> list[DueOffer]:
    """All the offers due a follow-up at `now`, oldest sent first."""
    reacted = {oid for oid, _ in store.interactions}
    followed = {
        (d.customer_id, d.trigger_instance)
        for d in store.decisions.values()
        if d.trigger_kind == FOLLOW_UP
    }
    due: list[DueOffer] = []
    for o in store.outbox.values():
        camp = store.campaign_docs.get(o.campaign_id)
        esc = None if camp is None else camp.doc.get("escalation")
        first = store.decisions[o.decision_id]
        if (
            o.status != "sent"
            or o.sent_at is None
            or camp is None
            or camp.status != "live"
            or not isinstance(esc, dict)
            or not now - MAX_FOLLOW_UP_AGE_S < o.sent_at <= now - float(esc["after_s"])
            or first.trigger_kind == FOLLOW_UP
            or o.id in reacted
            or o.id in store.redeemed
            or (o.customer_id, instance_of(o.id)) in followed
        ):
            continue
        due.append(
            DueOffer(
                o.id, o.customer_id, o.campaign_id, o.offer_id, o.channel, o.sent_at, first.fence_id
            )
        )
    due.sort(key=lambda d: (d.sent_at, d.outbox_id))
    return due
