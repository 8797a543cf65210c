"""The assembled read model of one customer: everything the decision module reads, each figure
with the windows and counts behind it. Built from memory (ProfileState) in microseconds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from geo_engine.profile.affinity import ranked
from geo_engine.profile.attributes import (
    Attributes,
    Consent,
    ConsentPurpose,
    objects_to_processing,
    refuses,
)
from geo_engine.profile.config import DAY_S
from geo_engine.profile.events import CHANNELS, VELOCITY_KPIS, VELOCITY_NAMES, Kpi
from geo_engine.profile.places import Place
from geo_engine.profile.rfm import NO_PURCHASE_SEGMENT, RfmFigures, RfmScores
from geo_engine.profile.ring import day_of, window_weights
from geo_engine.profile.state import ProfileState
from geo_engine.profile.velocity import FALLING, TREND_NAMES, classify


@dataclass(frozen=True, slots=True)
class Figure:
    """One velocity figure: counts in both windows, % change, trend, and the daily counts."""

    name: str
    latest: float
    previous: float
    pct_change: float | None  # None when previous == 0 (zero baseline)
    new_activity: bool  # previous == 0 and latest > 0
    trend: str


@dataclass(frozen=True, slots=True)
class VelocityView:
    window_days: int
    as_of: float
    latest_from: float
    previous_from: float  # the previous window is [previous_from, latest_from]
    first_day_start: float  # start of the first day of `daily`
    edge_fraction: float  # share of day today-W (and today-2W: 1 - it) in the previous window
    figures: tuple[Figure, ...]
    churn_counts: dict[str, tuple[float, float]]  # competitor_visit, sensitive_page: (L, P)
    # the counts behind every figure: (2W+1 days, oldest first, today last) x Kpi columns
    daily: NDArray[np.int64]

    def daily_of(self, figure: str, weights: tuple[float, ...]) -> list[float]:
        """One figure's per-day counts (interest: weighted), oldest day first."""
        if figure == "interest":
            col = self.daily[:, : len(weights)] @ np.asarray(weights, np.float64)
            return [round(x, 3) for x in col.tolist()]
        return [float(x) for x in self.daily[:, Kpi[figure.upper()]].tolist()]


@dataclass(frozen=True, slots=True)
class ChurnSignal:
    kind: str  # velocity_falling | competitor_visits | sensitive_pages
    detail: str
    latest: float
    previous: float


@dataclass(frozen=True, slots=True)
class Affinity:
    name: str
    score: float  # decayed weighted events, as of now
    share: float


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    customer_id: str
    as_of: float
    attributes: Attributes | None
    consents: dict[ConsentPurpose, Consent]
    objects_to_processing: bool  # profiling denied/revoked
    objects_to_direct_marketing: bool
    rfm: RfmFigures | None
    rfm_scores: RfmScores | None
    segment: str
    categories: tuple[Affinity, ...]
    channels: tuple[Affinity, ...]
    preferred_channel: str | None
    places: tuple[Place, ...]
    velocity: VelocityView
    churn: tuple[ChurnSignal, ...]

    @property
    def churn_risk(self) -> str:
        """none, or medium (one kind of signal), or high (two or more kinds)."""
        kinds = {s.kind for s in self.churn}
        return "none" if not kinds else ("medium" if len(kinds) == 1 else "high")


def build_profile(st: ProfileState, customer_id: str, now: float) -> CustomerProfile | None:
    slot = st.slots.get(customer_id)
    attrs = st.attributes.get(customer_id)
    consents = st.consents.get(customer_id, {})
    if slot is None and attrs is None and not consents and customer_id not in st.places:
        return None
    vel = _velocity(st, slot, now)
    fig = None if slot is None else st.rfm(slot)
    scores = None if fig is None else st.scorer.scores(fig, now)
    cats: tuple[Affinity, ...] = ()
    chans: tuple[Affinity, ...] = ()
    if slot is not None:
        k = st.category_decay.factor(now)
        cats = tuple(Affinity(c, v, sh) for c, v, sh in ranked(st.categories.get(slot, {}), k))
        row = st.channel[slot]
        kc = st.channel_decay.factor(now)
        scores_by = {str(CHANNELS[i]): float(row[i]) for i in np.nonzero(row)[0].tolist()}
        chans = tuple(Affinity(c, v, sh) for c, v, sh in ranked(scores_by, kc))
    return CustomerProfile(
        customer_id=customer_id,
        as_of=now,
        attributes=attrs,
        consents=dict(consents),
        objects_to_processing=objects_to_processing(consents),
        objects_to_direct_marketing=refuses(consents, ConsentPurpose.DIRECT_MARKETING),
        rfm=fig,
        rfm_scores=scores,
        segment=NO_PURCHASE_SEGMENT if scores is None else scores.segment,
        categories=cats,
        channels=chans,
        preferred_channel=chans[0].name if chans else None,
        places=st.places.get(customer_id, ()),
        velocity=vel,
        churn=_churn(vel),
    )


def _velocity(st: ProfileState, slot: int | None, now: float) -> VelocityView:
    cfg = st.cfg
    w = cfg.window_days
    span = 2 * w + 1
    if slot is None:
        daily = np.zeros((span, len(Kpi)), np.float64)
    else:
        daily = st.ring.daily(np.asarray([slot]), now, span)[:, 0, :].astype(np.float64)
    w_l, w_p = window_weights(w, now)
    nv = len(VELOCITY_KPIS)
    weights = np.asarray(cfg.interest_weights, np.float64)
    latest = (w_l @ daily).tolist()
    previous = (w_p @ daily).tolist()
    lat_i = float(np.dot(weights, latest[:nv]))
    prev_i = float(np.dot(weights, previous[:nv]))
    support_i = sum(latest[:nv]) + sum(previous[:nv])
    figures = []
    for i, name in enumerate(VELOCITY_NAMES):
        if i < nv:
            lat, prev, support = latest[i], previous[i], latest[i] + previous[i]
        else:
            lat, prev, support = lat_i, prev_i, support_i
        pct, new, trend = classify(lat, prev, support, cfg)
        figures.append(
            Figure(
                name=name,
                latest=lat,
                previous=prev,
                pct_change=pct,
                new_activity=new,
                trend=TREND_NAMES[trend],
            )
        )
    churn_counts = {
        k.name.lower(): (latest[k], previous[k]) for k in (Kpi.COMPETITOR_VISIT, Kpi.SENSITIVE_PAGE)
    }
    return VelocityView(
        window_days=w,
        as_of=now,
        latest_from=now - w * DAY_S,
        previous_from=now - 2 * w * DAY_S,
        first_day_start=(day_of(now) - 2 * w) * DAY_S,
        edge_fraction=float(w_p[w]),
        figures=tuple(figures),
        churn_counts=churn_counts,
        daily=daily[::-1].astype(np.int64),
    )


def _churn(vel: VelocityView) -> tuple[ChurnSignal, ...]:
    """Seed 000: falling interest = cross-shopping; a competitor's store visited; seed 003: a
    look at the terms or the cancellation page."""
    out = [
        ChurnSignal("velocity_falling", f.name, f.latest, f.previous)
        for f in vel.figures
        if f.trend == TREND_NAMES[FALLING]
    ]
    comp_l, comp_p = vel.churn_counts["competitor_visit"]
    if comp_l > 0:
        out.append(ChurnSignal("competitor_visits", "dwell in a competitor fence", comp_l, comp_p))
    sens_l, sens_p = vel.churn_counts["sensitive_page"]
    if sens_l > 0:
        out.append(
            ChurnSignal("sensitive_pages", "views of pages marked sensitive", sens_l, sens_p)
        )
    return tuple(out)
