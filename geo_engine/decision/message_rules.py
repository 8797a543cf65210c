"""The rules the best offer of a message campaign passes, in order: consent per channel, the
solicitation rules (gates.py), the channel caps, the sending hours, the holdout and control
groups, the channel choice. Each verdict is a step of the campaign's trace.

Run once per decision on the winner (rarely more: a campaign stopped here hands over to the
next in rank), so every step string that does not carry a time is built once per distinct value
and reused: the path allocates the few strings and tuples it must return, little else."""

from __future__ import annotations

from geo_engine.decision.calls import call_rules
from geo_engine.decision.facts import Customer, TriggerEvent
from geo_engine.decision.gates import held_back, solicitation_stop
from geo_engine.decision.models import Campaign, Offer
from geo_engine.decision.rules import DecisionConfig, Pressure, send_time

Verdict = tuple[str, tuple[str, ...], tuple[str, float] | None]  # result, steps, (channel, when)
_MEMO_MAX = 4096  # distinct channel tuples and consents are few: a bound, never reached


def message_rules(
    ev: TriggerEvent,
    customer: Customer,
    c: Campaign,
    offer: Offer,
    pressure: Pressure,
    suppressed_in: frozenset[str],
    cfg: DecisionConfig,
) -> Verdict:
    """(result, steps, (channel, send time) or None): `chosen`, `holdout`, `control` (with the
    pick), or the rule that stopped the campaign."""
    if c.action != "message":
        return call_rules(ev, customer, c, pressure, suppressed_in, cfg)
    chans, consent = _consent(c.channels, offer.channels, customer.consented)
    if not chans:
        return "no_consent", (consent,), None
    steps = [consent]
    stop = solicitation_stop(ev, customer, c, pressure, suppressed_in, cfg, steps)
    if stop is not None:
        return stop, tuple(steps), None
    day, week = pressure.channel_day, pressure.channel_week
    if day or week or cfg.max_per_channel_day <= 0 or cfg.max_per_channel_week <= 0:
        # else (no offer this week, the usual customer) no channel can be capped
        chans = tuple(
            [
                ch
                for ch in chans
                if day.get(ch, 0) < cfg.max_per_channel_day
                and week.get(ch, 0) < cfg.max_per_channel_week
            ]
        )
    steps.append(_step("channel_caps:", chans))
    if not chans:
        return "channel_cap", tuple(steps), None
    tz = ev.timezone or cfg.default_timezone
    ts, until, end = ev.ts, offer.valid_until, c.end
    timed: dict[str, float] = {}
    for ch in chans:
        t = send_time(ts, ch, tz, cfg)
        if t < until and t < end:
            timed[ch] = t
    if not timed:
        steps.append("hours:none")
        return "outside_hours", tuple(steps), None
    # the one step that carries times: formatted here, the rest are shared strings
    steps.append("hours:" + ",".join([f"{k}@{int(v)}" for k, v in timed.items()]))
    channel = _pick(timed, customer.preferred_channel, cfg.fallback_order, c.channels)
    pick = (channel, timed[channel])
    if (group := held_back(customer, c, cfg, steps)) is not None:
        return group, tuple(steps), pick
    steps.append(_step("channel:", (channel,)))
    return "chosen", tuple(steps), pick


def _pick(
    timed: dict[str, float],
    preferred: str | None,
    fallback: tuple[str, ...],
    campaign: tuple[str, ...],
) -> str:
    """The customer's preferred channel, else the configured fallback order, else the
    campaign's order: the first with a sending time (`timed` holds one at least, and only
    campaign channels)."""
    if preferred is not None and preferred in timed:
        return preferred
    for ch in fallback:
        if ch in timed:
            return ch
    return next(ch for ch in campaign if ch in timed)


def _consent(
    campaign: tuple[str, ...], offer: tuple[str, ...], consented: frozenset[str]
) -> tuple[tuple[str, ...], str]:
    """The campaign's channels (its order) the offer has content for and the customer consents
    to, with their step: the same few answers for every decision, looked up."""
    key = (campaign, offer, consented)
    hit = _CONSENT.get(key)
    if hit is None:
        chans = tuple(ch for ch in campaign if ch in offer and ch in consented)
        if len(_CONSENT) >= _MEMO_MAX:
            _CONSENT.clear()
        hit = _CONSENT[key] = (chans, _step("consent:", chans))
    return hit


_CONSENT: dict[tuple[tuple[str, ...], tuple[str, ...], frozenset[str]], tuple[tuple[str, ...], str]]
_CONSENT = {}


def _step(prefix: str, chans: tuple[str, ...]) -> str:
    """`prefix` + the channels joined (or "none"): the few distinct strings built once."""
    key = (prefix, chans)
    hit = _STEPS.get(key)
    if hit is None:
        if len(_STEPS) >= _MEMO_MAX:
            _STEPS.clear()
        hit = _STEPS[key] = prefix + (",".join(chans) or "none")
    return hit


_STEPS: dict[tuple[str, tuple[str, ...]], str] = {}
