"""The customer profile document (`GET /v1/customers/{id}/profile`), built where the profile
lives: on the customer's partition owner, which may be another process than the API's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import h3

from geo_engine.profile.attributes import CSP_LABELS, Attributes, Consent, ConsentPurpose
from geo_engine.profile.profile import CustomerProfile
from geo_engine.profile.rfm import SEGMENT_RULES


def ts_iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def attributes_doc(a: Attributes | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        "first_name": a.first_name,
        "age_band": a.age_band,
        "sex": None if a.sex is None else str(a.sex),
        "csp": None if a.csp is None else {"code": a.csp, "label": CSP_LABELS[a.csp]},
        "household_size": a.household_size,
        "home_postcode": a.home_postcode,
        "updated_at": ts_iso(a.updated_at),
    }


def consents_doc(c: dict[ConsentPurpose, Consent]) -> dict[str, Any]:
    return {
        str(p): {"status": str(x.status), "at": ts_iso(x.at), "source": x.source}
        for p, x in c.items()
    }


RFM_DEFINITIONS = {
    "recency_days": "days since the last purchase not cancelled",
    "frequency": "orders (distinct order ids) not cancelled, whole history",
    "monetary_total": "sum of those orders in the base currency",
    "monetary_average": "monetary_total / orders with a known exchange rate",
    "scores": "quintiles 1-5 by mid-rank among all buyers (recency by last purchase time)",
    "fm": "ceil((f + m) / 2)",
}


def profile_json(p: CustomerProfile, weights: tuple[float, ...], resolution: int) -> dict[str, Any]:
    v = p.velocity
    rfm: dict[str, Any] | None = None
    if p.rfm is not None and p.rfm_scores is not None:
        sc = p.rfm_scores
        rfm = {
            "recency_days": round(p.rfm.recency_days(p.as_of), 3),
            "frequency": p.rfm.orders,
            "monetary_total": round(p.rfm.total, 2),
            "monetary_average": None if p.rfm.average is None else round(p.rfm.average, 2),
            "unconverted_orders": p.rfm.unconverted_orders,
            "first_purchase_at": ts_iso(p.rfm.first_ts),
            "last_purchase_at": ts_iso(p.rfm.last_ts),
            "scores": {
                "r": sc.r,
                "f": sc.f,
                "m": sc.m,
                "fm": sc.fm,
                "base_size": sc.base_size,
                "base_refreshed_at": ts_iso(sc.refreshed_at),
            },
            "definitions": RFM_DEFINITIONS,
        }
    rules = dict(SEGMENT_RULES)
    places: dict[str, Any] = {"h3_resolution": resolution, "home": None, "work": None}
    for pl in p.places:
        places[pl.kind] = {
            "h3": h3.int_to_str(pl.cell),
            "confidence": pl.confidence,
            "share": pl.share,
            "hours": pl.hours,
            "days": pl.days,
        }
    return {
        "customer_id": p.customer_id,
        "as_of": ts_iso(p.as_of),
        "attributes": attributes_doc(p.attributes),
        "consents": consents_doc(p.consents),
        "objections": {
            "processing": p.objects_to_processing,
            "direct_marketing": p.objects_to_direct_marketing,
        },
        "rfm": rfm,
        "segment": p.segment,
        "segment_rule": rules.get(p.segment, "no order yet"),
        "category_affinity": [
            {"category": a.name, "score": round(a.score, 4), "share": round(a.share, 4)}
            for a in p.categories
        ],
        "channel_affinity": {
            "channels": [
                {"channel": a.name, "score": round(a.score, 4), "share": round(a.share, 4)}
                for a in p.channels
            ],
            "preferred": p.preferred_channel,
        },
        "places": places,
        "velocity": {
            "window_days": v.window_days,
            "latest_window": {"from": ts_iso(v.latest_from), "to": ts_iso(v.as_of)},
            "previous_window": {"from": ts_iso(v.previous_from), "to": ts_iso(v.latest_from)},
            "daily_from": ts_iso(v.first_day_start),
            "edge_fraction": round(v.edge_fraction, 6),
            "figures": {
                f.name: {
                    "latest": round(f.latest, 3),
                    "previous": round(f.previous, 3),
                    "pct_change": None if f.pct_change is None else round(f.pct_change, 2),
                    "new_activity": f.new_activity,
                    "trend": f.trend,
                    "daily": v.daily_of(f.name, weights),
                }
                for f in v.figures
            },
        },
        "churn": {
            "risk": p.churn_risk,
            "signals": [
                {"kind": s.kind, "detail": s.detail, "latest": s.latest, "previous": s.previous}
                for s in p.churn
            ],
            "latest_window": {k: round(x[0], 3) for k, x in v.churn_counts.items()},
            "previous_window": {k: round(x[1], 3) for k, x in v.churn_counts.items()},
        },
    }
