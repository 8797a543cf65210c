"""What an offer sends: its content rendered for the customer and the trigger, per channel."""

from __future__ import annotations

from typing import Any

from geo_engine.decision import templates
from geo_engine.decision.decide import Decision
from geo_engine.decision.gsm7 import sms_length
from geo_engine.decision.models import Offer
from geo_engine.decision.sms_mentions import SmsMentions
from geo_engine.profile.profile import CustomerProfile


def offer_payload(
    d: Decision,
    offer: Offer,
    profile: CustomerProfile | None,
    mentions: SmsMentions,
    code: str,
) -> dict[str, Any]:
    """The rendered content of the offer `d` sends, carrying its redemption `code`."""
    ev = d.trigger
    values: dict[str, object] = {
        "first_name": profile.attributes.first_name if profile and profile.attributes else None,
        "segment": profile.segment if profile else None,
        "store_name": ev.fence_name,
        "fence_name": ev.fence_name,
        "store_id": ev.store_id,
        "distance_m": None if ev.distance_m is None else round(ev.distance_m),
        "product": offer.product,
        "offer_value": offer.value,
        "code": code,
    }
    out: dict[str, Any] = {"value": offer.value, "code": code}
    if d.channel == "sms" and offer.sms is not None:
        # the sender and STOP in every marketing SMS; they and the placeholders change the
        # length, which is what is billed
        text = mentions.apply(templates.render(offer.sms.text, values))
        m = sms_length(text)
        out["sms"] = {"text": text, "encoding": m.encoding, "segments": m.segments}
    elif d.channel == "push" and offer.push is not None:
        out["push"] = {
            "title": templates.render(offer.push.title, values),
            "body": templates.render(offer.push.body, values),
            "deep_link": offer.push.deep_link,
        }
    return out
