"""The rules for a campaign whose action is a call-center task (seed 003: a churn signal is
better met by a call than by one more message).

A call is not a message: no SMS/push consent is needed (the profile module has no call/phone
consent purpose; a call from the brand's service desk is opt-out, not opt-in), and no sending
window applies (the call center works its own hours; the task has a due date). Everything else
still stops it, in the message rules' order: objection to direct marketing, suppression lists,
the campaign's cooldown, the overall pressure caps, and the `call_center` channel's own caps (a
call counts as one solicitation: toward the daily/weekly caps like a message), then the global
holdout and the campaign's control group (decided and logged, no task).
"""

from __future__ import annotations

from collections.abc import Mapping

from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.gates import held_back, solicitation_stop
from geo_engine.decision.models import CALL_CENTER, Campaign
from geo_engine.decision.rules import (
    DecisionConfig,
    Pressure,
    channel_capped,
)


def call_rules(
    ev: TriggerEvent,
    customer: Customer,
    c: Campaign,
    pressure: Pressure,
    suppressed_in: frozenset[str],
    cfg: DecisionConfig,
) -> tuple[str, tuple[str, ...], tuple[str, float] | None]:
    """(result, steps, (channel, when) or None): the shape of decide's message rules."""
    steps: list[str] = ["action:call_center_task"]
    stop = solicitation_stop(ev, customer, c, pressure, suppressed_in, cfg, steps)
    if stop is not None:
        return stop, tuple(steps), None
    if channel_capped(pressure, CALL_CENTER, cfg):
        steps.append("channel_caps:none")
        return "channel_cap", tuple(steps), None
    steps.append(f"channel_caps:{CALL_CENTER}")
    pick = (CALL_CENTER, ev.ts)
    if (group := held_back(customer, c, cfg, steps)) is not None:
        return group, tuple(steps), pick
    steps.append(f"channel:{CALL_CENTER}")
    return "chosen", tuple(steps), pick


def call_reason(ev: TriggerEvent, facts: Mapping[str, object]) -> str:
    """Why to call, for the agent: the trigger, then what the profile says (segment, RFM
    scores, churn risk) when known."""
    what = {"velocity": f"velocity {ev.name} on {ev.kpi}", "event": f"event {ev.name}"}
    parts = [what.get(ev.kind, f"{ev.kind} {ev.name}")]
    if ev.fence_name:
        parts[0] += f" at {ev.fence_name}"
    if (seg := facts.get("profile.segment")) is not None:
        parts.append(f"segment {seg}")
    rfm = [facts.get(f"profile.rfm.{k}") for k in ("r", "f", "m")]
    if all(v is not None for v in rfm):
        parts.append("RFM " + "/".join(str(v) for v in rfm))
    if (risk := facts.get("profile.churn_risk")) is not None:
        parts.append(f"churn risk {risk}")
    return "; ".join(parts)
