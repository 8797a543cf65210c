"""The live campaigns and their offers, indexed for the decision: by trigger, in rank-bound
order, with the campaigns a trigger shape fires cached."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.models import Campaign, Offer, Trigger

CACHE_MAX = 100_000  # trigger shapes remembered by a Book


class Book:
    """The live campaigns and their offers, indexed by trigger key so a trigger looks only at
    the campaigns it can fire (cost follows the matches, not the catalogue)."""

    def __init__(self, campaigns: Iterable[Campaign], offers: Mapping[str, Offer]) -> None:
        self.offers = dict(offers)
        self.campaigns: dict[str, Campaign] = {}
        self._by_key: dict[tuple[str, str], list[tuple[Campaign, Trigger]]] = {}
        self._bound: dict[str, tuple[int, float, str]] = {}
        self._cache: dict[tuple[object, ...], tuple[Campaign, ...]] = {}
        self._ids: dict[tuple[object, ...], tuple[str, ...]] = {}
        for c in campaigns:
            self.campaigns[c.id] = c
            top = max((self.offers[o].value for o in c.offer_ids if o in self.offers), default=0)
            self._bound[c.id] = (-c.priority, -top, c.id)
            for t in c.triggers:
                self._by_key.setdefault((t.kind, t.name), []).append((c, t))
        for lst in self._by_key.values():
            lst.sort(key=lambda ct: self._bound[ct[0].id])

    def bound(self, c: Campaign) -> tuple[int, float, str]:
        """A rank key no worse than any the campaign can reach (propensity <= 1)."""
        return self._bound[c.id]

    def candidates(self, ev: TriggerEvent) -> tuple[Campaign, ...]:
        """The campaigns `ev` fires, best rank bound first. Cached per trigger shape (fences x
        kinds x sources are few): the book is rebuilt, so the cache reset, on every change."""
        key = (ev.kind, ev.name, ev.fence_id, ev.fence_kind, ev.source, ev.kpi, ev.in_store)
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
            self._ids.clear()
        found = self._cache[key] = tuple(out)
        self._ids[key] = tuple(c.id for c in out)
        return found

    def candidate_ids(self, ev: TriggerEvent) -> tuple[str, ...]:
        """The ids of `candidates(ev)`, same order (call it after candidates)."""
        key = (ev.kind, ev.name, ev.fence_id, ev.fence_kind, ev.source, ev.kpi, ev.in_store)
        return self._ids[key]


def matches(t: Trigger, ev: TriggerEvent) -> bool:
    if t.kind == "presence":
        return (
            (not t.fence_ids or ev.fence_id in t.fence_ids)
            and (not t.fence_kinds or ev.fence_kind in t.fence_kinds)
            and (not t.sources or ev.source in t.sources)
        )
    if t.kind == "velocity":
        return t.kpi == ev.kpi
    return not t.in_store or ev.in_store
