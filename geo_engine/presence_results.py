"""What `PresenceEngine.apply` returns for one fix: its events and its flag, with the shared,
read-only results of the fixes that make no event (the hot path allocates none)."""

from __future__ import annotations

from dataclasses import dataclass

from geo_engine.models import FixFlag, PresenceEvent


@dataclass(frozen=True, slots=True)
class FixResult:
    events: list[PresenceEvent]
    flag: FixFlag | None


class _NoEvents(list[PresenceEvent]):
    """The empty event list shared by all results without events: a fresh FixResult per fix
    would double the cost of the no-fence path (~0.45 of ~0.9 µs). Refuses mutation rather than
    leak events between results."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("FixResult.events of an event-less result is shared and read-only")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse  # type: ignore[assignment]
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]


NOTHING_RESULT = FixResult(_NoEvents(), None)
MOCK_RESULT = FixResult(_NoEvents(), FixFlag.MOCK)
DUPLICATE_RESULT = FixResult(_NoEvents(), FixFlag.DUPLICATE)
LATE_RESULT = FixResult(_NoEvents(), FixFlag.LATE)
SPEED_RESULT = FixResult(_NoEvents(), FixFlag.IMPOSSIBLE_SPEED)
LOW_ACCURACY_RESULT = FixResult(_NoEvents(), FixFlag.LOW_ACCURACY)
