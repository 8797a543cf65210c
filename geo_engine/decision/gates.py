"""The rules every solicitation passes, a message or a call-center task alike, shared by
decide's message rules and calls.py so the two cannot drift apart. Each appends its verdicts to
the caller's `steps` (the decision's explanation) and returns the rule that stopped it, or
None."""

from __future__ import annotations

from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.models import Campaign
from geo_engine.decision.rules import DecisionConfig, Pressure, bucket, overall_capped


def solicitation_stop(
    ev: TriggerEvent,
    customer: Customer,
    c: Campaign,
    pressure: Pressure,
    suppressed_in: frozenset[str],
    cfg: DecisionConfig,
    steps: list[str],
) -> str | None:
    """Objection to direct marketing, suppression lists, the campaign's cooldown, the overall
    day/week caps, in that order."""
    if customer.objects_to_direct_marketing:
        steps.append("objection:yes")
        return "objection"
    steps.append("objection:no")
    if suppressed_in:  # on no list (the usual customer): no set built
        hit = sorted((c.suppression_lists | cfg.suppression_lists) & suppressed_in)
        if hit:
            steps.append("suppressed:" + ",".join(hit))
            return "suppressed"
    steps.append("suppressed:no")
    last = pressure.last_by_campaign.get(c.id)
    if last is not None and ev.ts - last < c.cooldown_s:
        steps.append("cooldown:active")
        return "cooldown"
    if overall_capped(pressure, cfg):
        steps.append(f"pressure:capped({pressure.day}/d,{pressure.week}/w)")
        return "pressure_cap"
    return None


def held_back(customer: Customer, c: Campaign, cfg: DecisionConfig, steps: list[str]) -> str | None:
    """The global holdout, then the campaign's control group: decided and logged, not sent."""
    if bucket(customer.customer_id) < cfg.holdout_pct:
        steps.append("holdout:yes")
        return "holdout"
    if c.control_pct and bucket(f"{c.id}:{customer.customer_id}") < c.control_pct:
        steps.append("control:yes")
        return "control"
    return None
