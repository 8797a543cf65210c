"""The rows of the memory campaign store (adapters/memory/campaigns.py): its decisions, outbox
and call-center tasks, with the columns the PostgreSQL tables give the same reads; and the
tables its reads outside the decision path (adapters/memory/campaign_reads.py) look at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from adapters.memory.profiles import MemoryProfileStore
from adapters.memory.stores import MemoryPresenceStore
from geo_engine.decision.ports import NewTask, Stored


@dataclass(frozen=True, slots=True)
class DecisionRow:
    id: int
    customer_id: str
    trigger_kind: str
    trigger_instance: str
    outcome: str
    campaign_id: str | None
    offer_id: str | None
    channel: str | None
    fence_id: str | None
    traces: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class OutboxRow:
    id: int
    decision_id: int
    customer_id: str
    campaign_id: str
    trigger_instance: str
    offer_id: str
    channel: str
    payload: dict[str, Any]
    send_after: float
    status: str = "pending"
    sent_at: float | None = None


@dataclass(slots=True)
class TaskRow:
    id: int
    task: NewTask
    status: str = "open"


class Tables(Protocol):
    """What of MemoryCampaignStore the reads look at."""

    presence: MemoryPresenceStore | None
    profiles: MemoryProfileStore | None
    campaign_docs: dict[str, Stored]
    decisions: dict[int, DecisionRow]
    outbox: dict[int, OutboxRow]
    redeemed: dict[int, float]  # outbox id -> when its code was redeemed
    interactions: set[tuple[int, str]]  # (outbox id, opened | clicked)
