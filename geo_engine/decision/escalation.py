"""Escalation (seed 003: "if the first message did not work, reinforce it on another channel"):
an offer sent, neither opened, clicked nor redeemed within the campaign's `escalation.after_s`,
gets one follow-up on the next channel of `escalation.channels`.

The follow-up is a decision like any other, run by `decide` on a one-campaign book restricted
to what a follow-up may do: the same offer (still valid now; its store scope was checked when it
was first given), the escalation channels minus the one the offer went out on, in the
escalation's order (the customer's preferred channel does not reorder them: the marketer chose
the sequence). Every other rule applies as of now: consent on that channel, objection,
suppression lists, pressure caps (the first offer counts toward them), quiet hours and the SMS
window (a follow-up may be held until allowed), holdout and control. Not re-applied: the
campaign's conditions (they were true for the trigger that started this) and its cooldown (the
first offer itself would trip it). The trigger is `followup:escalation`, instance
`esc:<outbox id>`, so at most one follow-up per offer sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from geo_engine.decision.book import Book
from geo_engine.decision.decide import Decision, decide
from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.models import Campaign, Offer, Trigger
from geo_engine.decision.rules import DecisionConfig, Pressure
from geo_engine.decision.trace import Trace

KIND, NAME = "followup", "escalation"


@dataclass(frozen=True, slots=True)
class FirstOffer:
    """The offer sent that got no reaction, and where it was given."""

    outbox_id: int
    customer_id: str
    campaign_id: str
    offer_id: str
    channel: str
    sent_at: float
    fence_id: str | None = None
    fence_name: str | None = None
    store_id: str | None = None
    timezone: str | None = None


def instance_of(outbox_id: int) -> str:
    return f"esc:{outbox_id}"


def due_at(first: FirstOffer, campaign: Campaign) -> float | None:
    """When the follow-up may be decided (None: the campaign does not escalate)."""
    esc = campaign.escalation
    return None if esc is None else first.sent_at + esc.after_s


def follow_up(
    first: FirstOffer,
    campaign: Campaign,
    offer: Offer | None,
    customer: Customer,
    pressure: Pressure,
    suppressed_in: frozenset[str],
    cfg: DecisionConfig,
    now: float,
) -> tuple[Decision, str]:
    """The follow-up decision as of `now`, and its reason (chosen, or the rule that stopped
    it). Always a decision, sent or not: it is recorded, so the offer is not looked at again."""
    ev = TriggerEvent(
        KIND,
        NAME,
        first.customer_id,
        now,
        instance_of(first.outbox_id),
        fence_id=first.fence_id,
        fence_kind=None if first.fence_id is None else "store",
        fence_name=first.fence_name,
        store_id=first.store_id,
        timezone=first.timezone,
    )
    esc = campaign.escalation
    if esc is None:
        return _stopped(ev, campaign, "no_escalation"), "no_escalation"
    if offer is None or not offer.valid_at(now) or not campaign.live_at(now):
        return _stopped(ev, campaign, "no_valid_offer"), "no_valid_offer"
    chans = tuple(ch for ch in esc.channels if ch != first.channel and ch in offer.channels)
    if not chans:
        return _stopped(ev, campaign, "no_other_channel"), "no_other_channel"
    one = replace(
        campaign,
        triggers=(Trigger(KIND, NAME),),
        condition=None,
        offer_ids=(offer.id,),
        channels=chans,
        cooldown_s=0.0,
        escalation=None,
    )
    book = Book([one], {offer.id: replace(offer, store_ids=frozenset())})
    d = decide(
        ev,
        customer._replace(preferred_channel=None),
        {},
        book,
        pressure,
        suppressed_in,
        replace(cfg, fallback_order=chans),
    )
    if d.sends:
        return d, "chosen"
    return d, d.traces[0].result if d.traces else "none"


def _stopped(ev: TriggerEvent, c: Campaign, reason: str) -> Decision:
    trace = Trace(c.id, None, 0.0, reason, (f"escalation:{reason}",))
    return Decision(ev.customer_id, ev, "none", None, None, None, None, None, (trace,))
