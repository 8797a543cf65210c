"""Escalation (follow-up on the next channel) and call-center campaigns, pure: the model's
checks, follow_up's rules, call_rules through decide."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from geo_engine.decision.calls import call_reason
from geo_engine.decision.errors import InvalidDefinition
from geo_engine.decision.escalation import FirstOffer, due_at, follow_up
from geo_engine.decision.facts import TriggerEvent
from geo_engine.decision.models import Campaign, Escalation, parse_campaign, parse_offer
from geo_engine.decision.rules import DecisionConfig, Sent, pressure_of
from tests.unit.test_decision import (
    NO_HOLDOUT,
    PARIS,
    TUE_11,
    book,
    campaign_doc,
    customer,
    event,
    offer_doc,
    run,
)

ESC = {"after_s": 3600, "channels": ["sms", "push"]}


def _campaign(**kw: Any) -> Campaign:
    offers = {"o1": parse_offer(offer_doc())}
    return parse_campaign(campaign_doc(escalation=ESC, **kw), offers)


def _first(channel: str = "push", **kw: Any) -> FirstOffer:
    base: dict[str, Any] = {
        "outbox_id": 7,
        "customer_id": "alice",
        "campaign_id": "c1",
        "offer_id": "o1",
        "channel": channel,
        "sent_at": TUE_11 - 7200,
        "fence_id": "opera",
        "fence_name": "Opéra",
        "store_id": "opera",
        "timezone": "Europe/Paris",
    }
    base.update(kw)
    return FirstOffer(**base)


def _follow(
    first: FirstOffer | None = None, c: Campaign | None = None, now: float = TUE_11, **kw: Any
) -> tuple[Any, str]:
    c = c or _campaign()
    return follow_up(
        first or _first(),
        c,
        kw.pop("offer", parse_offer(offer_doc())),
        kw.pop("cust", customer()),
        kw.pop("pressure", pressure_of([Sent(TUE_11 - 7200, "push", "c1")], now)),
        kw.pop("suppressed", frozenset()),
        kw.pop("cfg", NO_HOLDOUT),
        now,
    )


def test_escalation_parsed_and_checked() -> None:
    c = _campaign()
    assert c.escalation == Escalation(3600.0, ("sms", "push"))
    assert c.action == "message"
    offers = {"o1": parse_offer(offer_doc())}
    bad = [
        ({"escalation": {"after_s": 59, "channels": ["sms"]}}, "escalation.after_s"),
        ({"escalation": {"after_s": 8 * 86400, "channels": ["sms"]}}, "escalation.after_s"),
        ({"escalation": {"after_s": "1h", "channels": ["sms"]}}, "escalation.after_s"),
        ({"escalation": {"after_s": 600, "channels": []}}, "escalation.channels"),
        ({"escalation": {"after_s": 600, "channels": ["fax"]}}, "escalation.channels.0"),
        ({"escalation": {"after_s": 600, "channels": ["sms", "sms"]}}, "escalation.channels"),
        # one campaign channel: the follow-up must name another
        ({"channels": ["push"], "escalation": {"after_s": 600, "channels": ["push"]}},
         "escalation.channels"),
        ({"escalation": [600]}, "escalation"),
        ({"action": "carrier_pigeon"}, "action"),
        ({"action": "call_center_task", "escalation": ESC}, "escalation"),
    ]  # fmt: skip
    for kw, field in bad:
        with pytest.raises(InvalidDefinition) as e:
            parse_campaign(campaign_doc(**kw), offers)
        assert e.value.field == field, kw


def test_follow_up_on_the_next_channel() -> None:
    d, reason = _follow()
    assert reason == "chosen"
    assert (d.outcome, d.channel, d.campaign_id, d.offer_id) == ("send", "sms", "c1", "o1")
    assert (d.trigger.kind, d.trigger.name, d.trigger.instance) == (
        "followup",
        "escalation",
        "esc:7",
    )
    assert d.trigger.fence_name == "Opéra"  # the first offer's store fills the templates
    # the first went out by SMS: the follow-up is the push, whatever the customer prefers
    by_sms = pressure_of([Sent(TUE_11 - 7200, "sms", "c1")], TUE_11)
    d, _ = _follow(_first("sms"), cust=customer(preferred="sms"), pressure=by_sms)
    assert d.channel == "push"
    # the channel cap of the other channel still applies (1 a day by default)
    _, reason = _follow(
        _first("sms"), pressure=pressure_of([Sent(TUE_11 - 60, "push", "x")], TUE_11)
    )
    assert reason == "channel_cap"
    assert due_at(_first(), _campaign()) == TUE_11 - 7200 + 3600


def test_follow_up_refused_by_the_rules() -> None:
    c = _campaign()
    # only the channel the offer already went out on
    d, reason = _follow(
        _first("sms"), c, offer=parse_offer(offer_doc(content={"sms": {"text": "x"}}))
    )
    assert (d.outcome, reason) == ("none", "no_other_channel")
    # no consent on the other channel
    d, reason = _follow(cust=customer(("push",)))
    assert (d.outcome, reason, d.channel) == ("none", "no_consent", None)
    d, reason = _follow(cust=customer(objects=True))
    assert reason == "objection"
    d, reason = _follow(suppressed=frozenset({"bad"}), c=_campaign(suppression_lists=["bad"]))
    assert reason == "suppressed"
    # the first offer counts toward the caps: 2 a day at most
    two = pressure_of([Sent(TUE_11 - 7200, "push", "c1"), Sent(TUE_11 - 60, "push", "x")], TUE_11)
    assert _follow(pressure=two)[1] == "pressure_cap"
    # the offer ended meanwhile
    ended = parse_offer(offer_doc(valid_until=TUE_11 - 1))
    assert _follow(offer=ended)[1] == "no_valid_offer"
    assert _follow(offer=None)[1] == "no_valid_offer"
    plain = parse_campaign(campaign_doc(), {"o1": parse_offer(offer_doc())})
    assert _follow(c=plain)[1] == "no_escalation"


def test_follow_up_held_to_the_sms_window() -> None:
    sunday = datetime(2026, 11, 29, 11, 0, tzinfo=PARIS).timestamp()
    d, reason = _follow(now=sunday, pressure=pressure_of([], sunday))
    assert (reason, d.outcome, d.channel) == ("chosen", "held", "sms")
    assert d.send_after is not None and d.send_after > sunday  # Monday 08:00


CALL = {"action": "call_center_task", "channels": ["push", "sms"]}


def _vel() -> TriggerEvent:
    return event(kind="velocity", name="falling", kpi="store_visit", instance="vel:1")


def test_call_center_campaign_needs_no_message_consent() -> None:
    trig = [{"type": "velocity", "kpi": "store_visit", "direction": "falling"}]
    b = book(campaign_doc("churn", triggers=trig, **CALL))
    d = run(b, customer(()), _vel())
    assert (d.outcome, d.channel, d.campaign_id) == ("send", "call_center", "churn")
    assert d.send_after == TUE_11
    assert d.traces[0].steps[0] == "action:call_center_task"
    # objection to direct marketing still blocks
    d = run(b, customer((), objects=True), _vel())
    assert (d.outcome, d.traces[0].result) == ("none", "objection")
    # a call counts toward the call channel's cap (1 a day by default) and the overall caps
    called = pressure_of([Sent(TUE_11 - 600, "call_center", "other")], TUE_11)
    d = run(b, customer(()), _vel(), pressure=called)
    assert d.traces[0].result == "channel_cap"
    capped = pressure_of([Sent(TUE_11 - 60, "push", "a"), Sent(TUE_11 - 50, "sms", "b")], TUE_11)
    d = run(b, customer(), _vel(), pressure=capped)
    assert d.traces[0].result == "pressure_cap"
    # holdout: decided, no task
    d = run(b, customer(()), _vel(), cfg=DecisionConfig(holdout_pct=100.0))
    assert (d.outcome, d.channel) == ("holdout", "call_center")


def test_message_campaigns_still_need_consent_next_to_a_call_campaign() -> None:
    trig = [{"type": "velocity", "kpi": "store_visit", "direction": "falling"}]
    b = book(
        campaign_doc("msg", triggers=trig, priority=5),
        campaign_doc("churn", triggers=trig, **CALL),
    )
    d = run(b, customer(()), _vel())
    assert d.campaign_id == "churn"
    assert (d.traces[0].campaign_id, d.traces[0].result) == ("msg", "no_consent")


def test_call_reason_names_trigger_and_profile() -> None:
    facts = {"profile.segment": "at_risk", "profile.rfm.r": 1, "profile.rfm.f": 4,
             "profile.rfm.m": 5, "profile.churn_risk": "high"}  # fmt: skip
    assert call_reason(_vel(), facts) == (
        "velocity falling on store_visit at None; segment at_risk; RFM 1/4/5; churn risk high"
    ).replace(" at None", "")
    assert call_reason(event(kind="event", name="info_request"), {}) == "event info_request"
