"""The decision: for one trigger and one customer, at most one offer on one channel at an
allowed moment, with the reason for every campaign considered.

Order (each step recorded per campaign): eligibility (live, trigger, conditions, a valid offer
for this store within its cap) → ranking (priority, then expected value) → consent per channel →
objection to direct marketing → suppression lists → pressure (cooldown, overall caps, channel
caps) → sending hours (held until the next allowed moment, or dropped past the offer's end) →
holdout and control groups (decided, logged, not sent) → channel choice (preferred, then the
fallback order). The first campaign in rank order that passes wins; the rest are `outranked`
(those that could not beat the winner even at their best are not evaluated at all).
Eligibility and ranking are here; the rules from consent on are message_rules.py's (calls.py's
for a call-center task).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from geo_engine.decision.bandit import Propensity
from geo_engine.decision.book import Book
from geo_engine.decision.conditions import Facts
from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.message_rules import message_rules
from geo_engine.decision.models import Campaign, Offer
from geo_engine.decision.rules import DecisionConfig, Pressure, overall_capped
from geo_engine.decision.trace import Trace

BASE_PROPENSITY = 0.1  # a customer with no affinity for the category still might redeem
_STOP_STEP = {r: f"customer:{r}" for r in ("no_consent", "objection", "pressure_cap")}


class Decision(NamedTuple):
    """Immutable; a NamedTuple rather than a frozen dataclass: built once per decision on the
    ping path, in a third of the time (a frozen dataclass sets each field through
    object.__setattr__)."""

    customer_id: str
    trigger: TriggerEvent
    outcome: str  # send | held | holdout | control | none
    campaign_id: str | None
    offer_id: str | None
    channel: str | None
    send_after: float | None
    expires_at: float | None
    traces: tuple[Trace, ...]
    broken: tuple[tuple[str, str], ...] = ()  # (campaign id, error): to disable and report
    # campaigns that could not outrank the winner even at their best: outranked, not evaluated
    not_evaluated: tuple[str, ...] = ()

    @property
    def sends(self) -> bool:
        return self.outcome in ("send", "held")


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of an offer was issued: its redemption cap and budget are checked against it."""

    issued: int = 0
    value: float = 0.0


def decide(
    ev: TriggerEvent,
    customer: Customer,
    facts: Facts,
    book: Book,
    pressure: Pressure,
    suppressed_in: frozenset[str],
    cfg: DecisionConfig,
    usage: Mapping[str, Usage] | None = None,
    propensity: Propensity | None = None,
) -> Decision:
    """`propensity`: the learned one (bandit.py), instead of the static one, when given."""
    usage = usage or {}
    traces: list[Trace] = []
    broken: list[tuple[str, str]] = []
    shape = book.shape(ev)
    order = shape.campaigns
    blocked = _customer_block(customer, pressure, cfg)
    if blocked == "no_consent" and shape.calls:
        blocked = None  # a call needs no message consent (calls.py): rules per campaign
    if blocked is not None:
        # nothing can go out to this customer: every campaign stops at a customer-wide rule,
        # so conditions are not evaluated; the explanation names the first rule (in the rules'
        # order) that stops each campaign
        step = _STOP_STEP[blocked]
        if shape.all_live(ev.ts) and not (blocked == "pressure_cap" and suppressed_in):
            # the common case: the prebuilt traces, patched for the few campaigns cooling
            stops = shape.stopped(blocked, step)
            if blocked == "pressure_cap" and pressure.last_by_campaign:
                patched = list(stops)
                for cid, last in pressure.last_by_campaign.items():
                    pos = shape.index.get(cid)
                    if pos is not None and ev.ts - last < order[pos].cooldown_s:
                        patched[pos] = Trace(cid, None, 0.0, "cooldown", (step,))
                return _none(customer, ev, patched, broken)
            return _none(customer, ev, stops, broken)
        for c in order:
            if not c.live_at(ev.ts):
                continue
            reason = blocked
            if blocked == "pressure_cap":
                reason = _suppressed_or_cooling(c, ev, pressure, suppressed_in, cfg) or reason
            traces.append(Trace(c.id, None, 0.0, reason, (step,)))
        return _none(customer, ev, traces, broken)
    # Threshold walk: `order` is sorted by an upper bound of each campaign's rank key
    # (priority, then its best offer's value at propensity 1). A campaign is evaluated only
    # while it could still outrank the best eligible one; the best eligible one is checked
    # against the rules; the first that passes wins. The rest are `outranked`, most of them
    # without evaluating their conditions: the cost follows the winner's rank, not the catalogue.
    heap: list[tuple[tuple[int, float, str], Campaign, Offer, float]] = []
    # the bound at this customer's best affinity: the same factor for every campaign, so the
    # precomputed order holds and the bound is tight
    aff = customer.affinity
    k = BASE_PROPENSITY + (1.0 - BASE_PROPENSITY) * (max(aff.values()) if aff else 0.0)
    if propensity is not None:
        k = 1.0  # a learned propensity (a Beta draw or mean) is in (0, 1): bounded by 1 only
    ts = ev.ts
    bounds, offers = shape.bounds, shape.offers
    live = shape.all_live(ts)  # the usual case: no campaign to check for liveness
    n = len(order)
    i = 0
    chosen: tuple[Campaign, Offer, str, float, str] | None = None
    while True:
        while i < n:
            if heap:
                b = bounds[i]
                if not (b[0], b[1] * k, b[2]) <= heap[0][0]:
                    break  # it cannot outrank the best eligible one, nor can those after it
            c = order[i]
            os_ = offers[i]
            i += 1
            if not live and not c.live_at(ts):
                continue
            elig = _eligible(c, os_, ev, customer, facts, book, usage, broken, traces, propensity)
            if elig is not None:
                offer, score = elig
                heapq.heappush(heap, ((-c.priority, -score, c.id), c, offer, score))
        if not heap:
            break
        _, c, offer, score = heapq.heappop(heap)
        result, steps, pick = message_rules(ev, customer, c, offer, pressure, suppressed_in, cfg)
        traces.append(Trace(c.id, offer.id, score, result, steps))
        if pick is not None:
            chosen = (c, offer, pick[0], pick[1], result)
            break
    if heap:
        for _, c, offer, score in sorted(heap, key=_rank):
            traces.append(Trace(c.id, offer.id, score, "outranked", ()))
    # below the winner's rank even at their best: not evaluated (not even liveness), listed
    skipped = shape.rest(i) if i < n else ()
    if chosen is None:
        return _none(customer, ev, traces, broken)
    c, offer, channel, send_after, result = chosen
    outcome = result if result in ("holdout", "control") else "send"
    if outcome == "send" and send_after > ts:
        outcome = "held"
    expires = min(offer.valid_until, c.end, send_after + cfg.offer_ttl_s)
    return Decision(
        customer.customer_id,
        ev,
        outcome,
        c.id,
        offer.id,
        channel,
        send_after,
        expires,
        tuple(traces),
        tuple(broken),
        skipped,
    )


_rank = itemgetter(0)  # a heap entry's rank key (unique: it ends with the campaign id)


def _none(
    customer: Customer,
    ev: TriggerEvent,
    traces: Sequence[Trace],
    broken: list[tuple[str, str]],
) -> Decision:
    return Decision(
        customer.customer_id,
        ev,
        "none",
        None,
        None,
        None,
        None,
        None,
        tuple(traces),
        tuple(broken),
    )


def _customer_block(customer: Customer, pressure: Pressure, cfg: DecisionConfig) -> str | None:
    """A rule that stops every campaign for this customer, in the rules' order."""
    if not customer.consented:
        return "no_consent"
    if customer.objects_to_direct_marketing:
        return "objection"
    if overall_capped(pressure, cfg):
        return "pressure_cap"
    return None


def _suppressed_or_cooling(
    c: Campaign, ev: TriggerEvent, p: Pressure, suppressed_in: frozenset[str], cfg: DecisionConfig
) -> str | None:
    if (c.suppression_lists | cfg.suppression_lists) & suppressed_in:
        return "suppressed"
    last = p.last_by_campaign.get(c.id)
    if last is not None and ev.ts - last < c.cooldown_s:
        return "cooldown"
    return None


def _eligible(
    c: Campaign,
    offers: tuple[Offer, ...],
    ev: TriggerEvent,
    customer: Customer,
    facts: Facts,
    book: Book,
    usage: Mapping[str, Usage],
    broken: list[tuple[str, str]],
    traces: list[Trace],
    propensity: Propensity | None,
) -> tuple[Offer, float] | None:
    if c.condition is not None:
        try:
            ok = c.condition(facts)
        except Exception as exc:  # a campaign must never break the ping path
            broken.append((c.id, f"{type(exc).__name__}: {exc}"))
            traces.append(Trace(c.id, None, 0.0, "error", ("conditions:error",)))
            return None
        if not ok:
            traces.append(book.fixed(c.id, "conditions", "conditions:false"))
            return None
    best = _best_offer(c, offers, ev, customer, usage, propensity)
    if best is None:
        traces.append(book.fixed(c.id, "no_valid_offer", "offer:none"))
    return best


def _best_offer(
    c: Campaign,
    offers: tuple[Offer, ...],
    ev: TriggerEvent,
    customer: Customer,
    usage: Mapping[str, Usage],
    propensity: Propensity | None,
) -> tuple[Offer, float] | None:
    best: tuple[Offer, float] | None = None
    ts, store, aff = ev.ts, ev.store_id, customer.affinity
    for o in offers:
        if not o.valid_from <= ts < o.valid_until:
            continue
        if o.store_ids and (store is None or store not in o.store_ids):
            continue  # not served here (no store list: served everywhere)
        u = usage.get(o.id) if usage else None
        if u is not None and (
            (o.redemption_cap is not None and u.issued >= o.redemption_cap)
            or (o.budget is not None and u.value + o.value > o.budget)
        ):
            continue
        prop = BASE_PROPENSITY + (1.0 - BASE_PROPENSITY) * (
            aff.get(o.category, 0.0) if o.category else 0.0
        )
        if propensity is not None:
            prop = propensity(c.id, o.id, prop)
        score = o.value * prop
        if best is None or score > best[1]:
            best = (o, score)
    return best
