"""The live campaigns and their offers, indexed for the decision: by trigger, in rank-bound
order, with the campaigns a trigger shape fires cached."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from geo_engine.decision.bandit import BanditConfig, Snapshot, arm_bound
from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.models import Campaign, Offer, Trigger
from geo_engine.decision.trace import Trace

CACHE_MAX = 100_000  # trigger shapes remembered by a Book


@dataclass(slots=True)
class Shape:
    """What one trigger shape fires: its campaigns in rank-bound order with their bounds, when
    they are all live, and the traces of customer-wide stops and the lists of campaigns not
    evaluated (the same objects every time: no allocation on the paths that list campaigns)."""

    campaigns: tuple[Campaign, ...]
    ids: tuple[str, ...]
    index: dict[str, int]  # campaign id -> position
    live_from: float  # every campaign is live on [live_from, live_until) (empty: none live)
    live_until: float
    bounds: tuple[tuple[int, float, str], ...] = ()  # Book.bound of each campaign, same order
    # each campaign's offers in the book, its order (an id with no offer left out), same order
    offers: tuple[tuple[Offer, ...], ...] = ()
    stops: dict[tuple[str, str], tuple[Trace, ...]] = field(default_factory=dict)
    rests: dict[int, tuple[str, ...]] = field(default_factory=dict)
    calls: bool = False  # some campaign makes a call-center task (needs no message consent)

    def all_live(self, t: float) -> bool:
        return self.live_from <= t < self.live_until

    def stopped(self, reason: str, step: str) -> tuple[Trace, ...]:
        """One `Trace(id, None, 0.0, reason, (step,))` per campaign, in order."""
        key = (reason, step)
        hit = self.stops.get(key)
        if hit is None:
            hit = self.stops[key] = tuple(
                Trace(c.id, None, 0.0, reason, (step,)) for c in self.campaigns
            )
        return hit

    def rest(self, i: int) -> tuple[str, ...]:
        """`ids[i:]`: the campaigns a decision did not reach (the winner outranks them)."""
        hit = self.rests.get(i)
        if hit is None:
            hit = self.rests[i] = self.ids[i:]
        return hit


class Book:
    """The live campaigns and their offers, indexed by trigger key so a trigger looks only at
    the campaigns it can fire (cost follows the matches, not the catalogue)."""

    def __init__(
        self,
        campaigns: Iterable[Campaign],
        offers: Mapping[str, Offer],
        arms: Snapshot | None = None,
        bandit: BanditConfig | None = None,
    ) -> None:
        """`arms` (ranking "bandit"): the learned outcomes the decisions on this book draw
        from; each offer's value is then bounded at its arm's largest propensity, not 1."""
        self.offers = dict(offers)
        self.arms = arms
        cfg = bandit or BanditConfig()
        self.campaigns: dict[str, Campaign] = {}
        self._by_key: dict[tuple[str, str], list[tuple[Campaign, Trigger]]] = {}
        self._bound: dict[str, tuple[int, float, str]] = {}
        self._cache: dict[tuple[object, ...], Shape] = {}
        self._fixed: dict[tuple[str, str], Trace] = {}
        for c in campaigns:
            self.campaigns[c.id] = c
            # >= 0: with a negative value (the core accepts one), value x propensity is largest
            # at the smallest propensity, so only 0 bounds it
            top = max(
                (
                    self.offers[o].value
                    * (1.0 if arms is None else arm_bound(arms.arms.get((c.id, o)), cfg))
                    for o in c.offer_ids
                    if o in self.offers
                ),
                default=0,
            )
            top = max(top, 0.0)
            self._bound[c.id] = (-c.priority, -top, c.id)
            for t in c.triggers:
                self._by_key.setdefault((t.kind, t.name), []).append((c, t))
        for lst in self._by_key.values():
            lst.sort(key=lambda ct: self._bound[ct[0].id])

    def fixed(self, campaign_id: str, result: str, step: str) -> Trace:
        """The trace of a campaign stopped before ranking (conditions, no offer): the same
        object each time, so the hot path allocates nothing for it."""
        key = (campaign_id, result)
        hit = self._fixed.get(key)
        if hit is None:
            hit = self._fixed[key] = Trace(campaign_id, None, 0.0, result, (step,))
        return hit

    def bound(self, c: Campaign) -> tuple[int, float, str]:
        """A rank key no worse than any the campaign can reach (propensity <= 1, or <= its
        arms' bound with learned propensities)."""
        return self._bound[c.id]

    def candidates(self, ev: TriggerEvent) -> tuple[Campaign, ...]:
        """The campaigns `ev` fires, best rank bound first."""
        return self.shape(ev).campaigns

    def shape(self, ev: TriggerEvent) -> Shape:
        """What `ev` fires. Cached per trigger shape (fences x kinds x sources are few): the
        book is rebuilt, so the cache reset, on every change."""
        near = ev.distance_m if ev.kind == "event" else None  # near_store_m triggers read it
        key = (ev.kind, ev.name, ev.fence_id, ev.fence_kind, ev.source, ev.kpi, ev.in_store, near)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        out: list[Campaign] = []
        seen: set[str] = set()  # by id: dataclass equality would compare every field
        for c, t in self._by_key.get((ev.kind, ev.name), ()):
            if c.id not in seen and matches(t, ev):
                seen.add(c.id)
                out.append(c)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        if all(c.status == "live" for c in out):
            lo = max((c.start for c in out), default=-math.inf)
            hi = min((c.end for c in out), default=math.inf)
        else:
            lo, hi = math.inf, -math.inf
        found = self._cache[key] = Shape(
            tuple(out),
            tuple(c.id for c in out),
            {c.id: i for i, c in enumerate(out)},
            lo,
            hi,
            tuple(self._bound[c.id] for c in out),
            tuple(tuple(self.offers[o] for o in c.offer_ids if o in self.offers) for c in out),
            calls=any(c.action != "message" for c in out),
        )
        return found

    def candidate_ids(self, ev: TriggerEvent) -> tuple[str, ...]:
        """The ids of `candidates(ev)`, same order."""
        return self.shape(ev).ids

    def triggers(self, kind: str, name: str) -> tuple[Trigger, ...]:
        """The live triggers of this kind and name (what an event's context is built for)."""
        return tuple(t for _, t in self._by_key.get((kind, name), ()))


def matches(t: Trigger, ev: TriggerEvent) -> bool:
    if t.kind == "presence":
        return (
            (not t.fence_ids or ev.fence_id in t.fence_ids)
            and (not t.fence_kinds or ev.fence_kind in t.fence_kinds)
            and (not t.sources or ev.source in t.sources)
        )
    if t.kind == "velocity":
        return t.kpi == ev.kpi
    # event: the caller rounds distance_m and leaves it out past the widest near_store_m, so
    # the shapes cached stay few
    return (not t.in_store or ev.in_store) and (
        t.near_store_m is None or (ev.distance_m is not None and ev.distance_m <= t.near_store_m)
    )
