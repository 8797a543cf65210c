"""The order of the delivery statuses an SMS provider reports on a message (Twilio's status
callbacks): a status only moves forward.

accepted/scheduled < queued < sending < sent < delivered, undelivered, failed, canceled < read.
Callbacks may arrive out of order (Twilio posts each from a different worker), so a late `sent`
after `delivered` must not undo it; the final statuses share a rank, so none replaces another."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

RANK: Mapping[str, int] = MappingProxyType(
    {
        "accepted": 0,
        "scheduled": 0,
        "queued": 1,
        "sending": 2,
        "sent": 3,
        "delivered": 4,
        "undelivered": 4,
        "failed": 4,
        "canceled": 4,
        "partially_delivered": 4,
        "read": 5,
    }
)


def moves_forward(current: str | None, new: str) -> bool:
    """Whether `new` replaces `current` (None: nothing reported yet; an unknown stored status
    ranks below every known one). `new` must be known."""
    return current is None or RANK[new] > RANK.get(current, -1)
