"""The reaction pipeline: what follows each kind of change, in order, inside the transaction of
the change that caused it (so a decision and its outbox row commit with their presence event,
crossing or behavioural event, or not at all).

This is the one place the order is written. Presence changes come from the unit of work
(adapters/services/unit_of_work.py), behavioural events and velocity sweeps from the profile
service (adapters/services/profiles.py).
"""

from __future__ import annotations

from adapters.services.decisions import DecisionService
from adapters.services.profiles import PostedEvents, ProfileService
from geo_engine.models import PresenceEvent
from geo_engine.ports import Tx
from geo_engine.profile.velocity import Crossing


class Reactions:
    def __init__(self, profiles: ProfileService, decisions: DecisionService) -> None:
        self.profiles = profiles
        self.decisions = decisions

    async def after_presence(self, tx: Tx, stored: list[tuple[int, PresenceEvent]]) -> None:
        """Presence events (GPS, beacon, NFC alike) -> profile -> decisions."""
        # 1. a dwell in a store is a store visit: in the profile before any decision reads it
        crossings = await self.profiles.record_visits(tx, stored)
        # 2. a visit may move visit velocity across a threshold
        await self.after_crossings(tx, crossings)
        # 3. campaigns on enter / dwell / exit
        await self.decisions.on_presence(tx, stored)

    async def after_crossings(self, tx: Tx, crossings: list[Crossing]) -> None:
        """Velocity crossings (from events, visits or the periodic sweep) -> decisions."""
        await self.decisions.on_crossings(tx, crossings)

    async def after_behaviour(
        self, tx: Tx, posted: PostedEvents, crossings: list[Crossing]
    ) -> None:
        """Posted behavioural events -> decisions (velocity first, then event triggers)."""
        await self.after_crossings(tx, crossings)
        await self.decisions.on_events(tx, posted)
