"""The subject of a replay (customer and condition facts at each event), built for speed with
the live result (`DecisionService.subject`: the whole profile assembled for every event).

A replay decides hundreds of thousands of events: `ProfileSubject` reads what of a customer
does not move with time once per customer, recomputes only the time-dependent figures the rules
always read (affinity order, preferred channel, RFM segment) and only when they can move, and
leaves the condition facts to `LazyFacts`, which builds the profile's only when a condition
reads one (most campaigns read the context alone)."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from geo_engine.decision.conditions import Facts
from geo_engine.decision.facts import (
    Customer,
    TriggerEvent,
    context_facts,
    customer_of,
    profile_facts,
)
from geo_engine.profile.affinity import Decay, ranked
from geo_engine.profile.events import CHANNELS
from geo_engine.profile.profile import build_profile
from geo_engine.profile.rfm import NO_PURCHASE_SEGMENT, RfmFigures
from geo_engine.profile.state import ProfileState


class LazyFacts(Mapping[str, object]):
    """The facts of one decision, `profile_facts` + `context_facts` as live, each half built
    on the first read of one of its keys (conditions read with `get`)."""

    __slots__ = ("_ctx", "_ev", "_prof", "_profile", "_tz")

    def __init__(
        self, ev: TriggerEvent, default_tz: str, profile: Callable[[str, float], Facts]
    ) -> None:
        self._ev = ev
        self._tz = default_tz
        self._profile = profile
        self._ctx: dict[str, object] | None = None
        self._prof: Facts | None = None

    def get(self, key: str, default: object = None) -> object:
        if key.startswith("context."):
            ctx = self._ctx
            if ctx is None:
                ctx = self._ctx = context_facts(self._ev, self._tz)
            return ctx.get(key, default)
        prof = self._prof
        if prof is None:
            prof = self._prof = self._profile(self._ev.customer_id, self._ev.ts)
        return prof.get(key, default)

    def _all(self) -> dict[str, object]:
        """The whole dict, as `DecisionService.subject` builds it."""
        ev = self._ev
        merged = dict(
            self._prof if self._prof is not None else self._profile(ev.customer_id, ev.ts)
        )
        merged.update(context_facts(ev, self._tz))
        return merged

    def __getitem__(self, key: str) -> object:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


# Two scores at least this far apart in ratio keep their order once multiplied by one factor
# (each product rounds by at most 2**-53 relative), as long as no product leaves the normal
# range: then `ranked(scores, factor)` lists them in the same order for any such factor.
_APART = 1.0 + 2.0**-40
_TINY = 2.0**-1000
_HUGE = 2.0**1000


@dataclass(frozen=True, slots=True)
class _Ranking:
    """`ranked(scores, f)` for every factor f in [lo, hi]: the first name and the shares, in
    order (the shares are v / total whatever the factor; only the order could move)."""

    top: str | None
    shares: dict[str, float]
    lo: float
    hi: float


def _ranking(scores: Mapping[str, float]) -> _Ranking | None:
    """None when ties after decay cannot be ruled out (then ranked per event)."""
    total = sum(scores.values())
    if len(scores) == 1 and 0.0 < total < math.inf:  # one name: no order to move
        ((top, v),) = scores.items()
        return _Ranking(top, {top: v / total}, 0.0, math.inf)
    if not scores:
        return _Ranking(None, {}, 0.0, math.inf)
    if not math.isfinite(total) or not all(0.0 < v < math.inf for v in scores.values()):
        return None
    order = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    if any(a != b and a < b * _APART for (_, a), (_, b) in itertools.pairwise(order)):
        return None
    shares = {c: v / total for c, v in order}
    return _Ranking(order[0][0], shares, _TINY / order[-1][1], _HUGE / order[0][1])


@dataclass(slots=True)
class _Fixed:
    """What of a customer's profile does not move with time, read once per replay: a
    consistent snapshot (stored-scale scores with the decays they are scaled to)."""

    base: Customer  # consents, objection, first name (and all of it when `whole`)
    whole: bool  # nothing of the customer moves with time (`base` is the customer)
    categories: dict[str, float]
    channels: dict[str, float]
    category_decay: Decay
    channel_decay: Decay
    rfm: RfmFigures | None
    cat_rank: _Ranking | None = None
    chan_rank: _Ranking | None = None
    steady: dict[str, Customer] = field(default_factory=dict)  # by segment, ranks in range


class ProfileSubject:
    """`DecisionService.subject` for a replay: the same customer and facts at `ev.ts`, from the
    in-memory profile as it is now, without assembling the whole profile for every event."""

    def __init__(self, state: ProfileState, default_tz: str) -> None:
        self.state = state
        self.default_tz = default_tz
        self._fixed: dict[str, _Fixed] = {}

    def __call__(self, ev: TriggerEvent) -> tuple[Customer, Facts]:
        return self.customer(ev.customer_id, ev.ts), LazyFacts(
            ev, self.default_tz, self._profile_facts
        )

    def _profile_facts(self, customer_id: str, now: float) -> Facts:
        p = build_profile(self.state, customer_id, now)
        return {} if p is None else profile_facts(p)

    def customer(self, customer_id: str, now: float) -> Customer:
        """`customer_of(build_profile(state, customer_id, now))`, only the parts that move with
        time recomputed: the decayed affinities' order, the preferred channel, the segment."""
        fx = self._fixed.get(customer_id)
        if fx is None:
            fx = self._fixed[customer_id] = self._fix(customer_id, now)
        if fx.whole:
            return fx.base
        rfm = fx.rfm
        segment = NO_PURCHASE_SEGMENT if rfm is None else self.state.scorer.scores(rfm, now).segment
        fc = fx.category_decay.factor(now)
        fh = fx.channel_decay.factor(now)
        cr, hr = fx.cat_rank, fx.chan_rank
        if cr is not None and hr is not None and cr.lo <= fc <= cr.hi and hr.lo <= fh <= hr.hi:
            hit = fx.steady.get(segment)
            if hit is None:
                hit = fx.steady[segment] = self._of(fx.base, hr.top, cr.shares, segment)
            return hit
        cats = ranked(fx.categories, fc)
        chans = ranked(fx.channels, fh)
        top = chans[0][0] if chans else None
        return self._of(fx.base, top, {c: share for c, _, share in cats}, segment)

    @staticmethod
    def _of(base: Customer, top: str | None, affinity: dict[str, float], segment: str) -> Customer:
        return Customer(
            customer_id=base.customer_id,
            consented=base.consented,
            objects_to_direct_marketing=base.objects_to_direct_marketing,
            preferred_channel="push" if top == "app" else top,  # as customer_of
            affinity=affinity,
            first_name=base.first_name,
            segment=segment,
        )

    def _fix(self, customer_id: str, now: float) -> _Fixed:
        st = self.state
        p = build_profile(st, customer_id, now)
        base = Customer(customer_id, frozenset(), False, None) if p is None else customer_of(p)
        slot = st.slots.get(customer_id)
        if slot is None:
            return _Fixed(base, True, {}, {}, st.category_decay, st.channel_decay, None)
        row = st.channel[slot]
        cats = dict(st.categories.get(slot, {}))
        chans = {str(CHANNELS[i]): float(row[i]) for i in np.nonzero(row)[0].tolist()}
        rfm = st.rfm(slot)
        cr, hr = _ranking(cats), _ranking(chans)
        if rfm is None and cr is not None and hr is not None and _always(cr) and _always(hr):
            # at most one category and one channel, no orders: nothing moves with time
            whole = self._of(base, hr.top, cr.shares, NO_PURCHASE_SEGMENT)
            return _Fixed(whole, True, cats, chans, st.category_decay, st.channel_decay, None)
        return _Fixed(
            base,
            False,
            cats,
            chans,
            copy.copy(st.category_decay),
            copy.copy(st.channel_decay),
            rfm,
            cr,
            hr,
        )


def _always(r: _Ranking) -> bool:
    return r.lo == 0.0 and r.hi == math.inf
