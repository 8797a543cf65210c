"""The campaign store: the port the decision services (live decisions, follow-ups, backtest,
bandit refresh) speak to storage through. PostgreSQL: adapters/db/campaigns.py
(`PgCampaignRepository`); memory: adapters/memory/campaigns.py (`MemoryCampaignStore`); one
contract suite (tests/contract/test_campaign_store.py) runs on both.

Methods taking a `Tx` read or write inside the caller's transaction: a decision, its outbox
row, its redemption code and its call-center task commit with the change that caused them, and
a decision reads the pressure its own transaction already wrote. The others stand alone.

The store is split by who needs what (a service can ask for only its part); `CampaignStore`
is the whole.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from geo_engine.decision.bandit import ArmKey, ArmStats
from geo_engine.decision.decide import Decision, Usage
from geo_engine.decision.rules import Sent
from geo_engine.ports import Tx


@dataclass(frozen=True, slots=True)
class Stored:
    """An offer or campaign document as saved through the API."""

    id: str
    doc: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: str | None = None  # campaigns only
    disabled_reason: str | None = None  # why the engine disabled it (campaigns only)


@dataclass(frozen=True, slots=True)
class NewTask:
    """A call-center task, written by the decision of a `call_center_task` campaign."""

    customer_id: str
    campaign_id: str
    offer_id: str | None
    decision_id: int
    trigger_instance: str
    reason: str
    priority: int
    created_at: float
    due_at: float


@dataclass(frozen=True, slots=True)
class Recorded:
    """A decision as stored, with the outbox row and redemption code it wrote, if any."""

    decision_id: int
    trigger_instance: str
    outcome: str
    campaign_id: str | None
    offer_id: str | None
    channel: str | None
    outbox_id: int | None = None
    payload: Mapping[str, Any] | None = None  # as the relay will send it (code included)
    code: str | None = None
    # why each campaign considered did or did not win (geo_engine/decision/trace.py `explained`)
    traces: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class DueOffer:
    """An offer sent that got no reaction and whose campaign escalates, due a follow-up."""

    outbox_id: int
    customer_id: str
    campaign_id: str
    offer_id: str
    channel: str
    sent_at: float
    fence_id: str | None  # the fence of the first offer's trigger (where it was entered)


class DecisionExists(Exception):
    """A follow-up of this offer was already decided (by another runner): roll back, skip."""


# --- the backtest's replay ------------------------------------------------------------------
# what a replayed row is: (kind, id, customer_id, ref, type, ts, extra) with, per kind,
#   PRESENCE: ref = fence id, type = enter|dwell|exit, extra = source (gps|beacon|nfc)
#   EVENT:    ref = None, type = the behavioural event type, extra = its event id
#   VELOCITY: ref = the KPI (figure), type = rising|falling, extra = None
# A plain tuple, unpacked in one step: the replay reads millions of them.
PRESENCE, EVENT, VELOCITY = 0, 1, 2
ReplayRow = tuple[int, int, str, str | None, str, float, str | None]


@dataclass(frozen=True, slots=True)
class ReplayQuery:
    """The stored triggers of [since, until) one campaign listens to."""

    since: datetime
    until: datetime
    presence: bool  # presence events (presence triggers, or to locate behavioural ones)
    event_types: Sequence[str] = ()  # behavioural event types
    velocity: Sequence[str] = ()  # velocity crossings, as "kpi:direction"


# --- the port, by part ----------------------------------------------------------------------
class Catalogue(Protocol):
    """Offers, campaigns and suppression lists as the admin API saved them."""

    async def offers(self) -> list[Stored]:
        """Every offer, by id."""
        ...

    async def campaigns(self, status: str | None = None) -> list[Stored]:
        """The campaigns (of `status`), by id."""
        ...

    async def put_offer(self, oid: str, doc: dict[str, Any], *, create: bool) -> Stored | None:
        """create: None if the id is taken; update: None if unknown."""
        ...

    async def put_campaign(self, cid: str, doc: dict[str, Any], *, create: bool) -> Stored | None:
        """As `put_offer`; an update clears the reason the engine disabled it for."""
        ...

    async def add_suppressed(self, name: str, customer_ids: Sequence[str]) -> int:
        """Add to list `name`; returns how many were not on it yet."""
        ...

    async def all_suppressions(self) -> dict[str, frozenset[str]]:
        """customer id -> the lists naming them."""
        ...

    async def disable(self, tx: Tx, cid: str, reason: str) -> None:
        """The engine disables a campaign whose conditions raise, with the decision it broke."""
        ...


class DecisionLog(Protocol):
    """What a live decision reads and writes, inside the transaction of its trigger."""

    async def suppression_of(self, tx: Tx, customer_id: str) -> frozenset[str]: ...

    async def history(self, tx: Tx, customer_id: str, since: float) -> list[Sent]:
        """Offers given to the customer since `since` (by send time), expired ones excepted:
        what marketing pressure counts."""
        ...

    async def call_history(self, tx: Tx, customer_id: str, since: float) -> list[Sent]:
        """Call-center tasks made for the customer since `since`, cancelled ones excepted."""
        ...

    async def usage(self, tx: Tx, offer_ids: Sequence[str]) -> dict[str, Usage]:
        """Offers issued so far and their total value, per offer (absent: none issued)."""
        ...

    async def record(
        self,
        tx: Tx,
        d: Decision,
        presence_event_id: int | None,
        payload: dict[str, Any] | None,
    ) -> int:
        """Store decision `d` and return its id. When it sends with a `payload`, also its outbox
        row (one per customer, campaign and trigger instance: a replayed trigger gets none) and
        the payload's redemption code (a taken code is replaced, in the payload too). A second
        follow-up of one offer raises DecisionExists."""
        ...

    async def create_task(self, tx: Tx, task: NewTask) -> int | None:
        """The task's id; None when this trigger already made one (replayed)."""
        ...

    async def recorded(self, customer_id: str) -> list[Recorded]:
        """The customer's decisions, oldest first."""
        ...


class Replays(Protocol):
    """The stored triggers a backtest replays, oldest first."""

    async def replay_count(self, query: ReplayQuery) -> int:
        """How many rows `replay` gives (for a progress bar)."""
        ...

    def replay(
        self, query: ReplayQuery, *, limit: int, chunk: int
    ) -> AsyncGenerator[Sequence[ReplayRow], None]:
        """At most `limit` rows in chunks of `chunk`, ordered by (ts, kind, id). Close it
        (contextlib.aclosing) when leaving early: it may hold a connection."""
        ...


class Outcomes(Protocol):
    """What happened after offers were sent, as the bandit and the escalation job read it."""

    async def arms(self, since: float) -> dict[ArmKey, ArmStats]:
        """Per (campaign, offer), the offers delivered since `since` (sent, or redeemed: proof
        enough), how many were redeemed, and how many clicked without a redemption."""
        ...

    async def due_follow_ups(self, now: float, limit: int) -> list[DueOffer]:
        """Offers sent at least their campaign's `escalation.after_s` ago (and at most 8 days),
        of a live escalating campaign, not themselves follow-ups, with no interaction, no
        redemption and no follow-up decided yet; oldest sent first."""
        ...


class CampaignStore(Catalogue, DecisionLog, Replays, Outcomes, Protocol):
    """The whole campaign store."""
