"""The gateway interface: a message in, an outcome out. A gateway never raises for what the
provider answered (garbage included): it says `retry` or `dead`; the relay still treats an
exception as a failed attempt."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from geo_engine.delivery.retry import Outcome


@dataclass(frozen=True, slots=True)
class Message:
    id: int  # the outbox row
    idempotency_key: str  # per (customer, campaign, trigger instance): stable across retries
    customer_id: str
    campaign_id: str
    channel: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first
    expires_at: float  # unix s: never delivered after


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    provider_id: str | None = None
    error: str | None = None
    http_status: int | None = None
    retry_after_s: float | None = None  # the provider's Retry-After, honoured by the relay
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def sent(cls, provider_id: str | None, http_status: int | None = None) -> Result:
        return cls("sent", provider_id=provider_id, http_status=http_status)

    @classmethod
    def retry(
        cls, error: str, http_status: int | None = None, retry_after_s: float | None = None
    ) -> Result:
        return cls("retry", error=error, http_status=http_status, retry_after_s=retry_after_s)

    @classmethod
    def dead(cls, error: str, http_status: int | None = None) -> Result:
        return cls("dead", error=error, http_status=http_status)


class Gateway(Protocol):
    name: str

    async def send(self, msg: Message) -> Result: ...

    async def aclose(self) -> None: ...


def pseudonym(customer_id: str) -> str:
    """A stable pseudonym for logs: never the customer id (which may be a phone or e-mail)."""
    return "c_" + hashlib.sha256(("geo-engine:" + customer_id).encode()).hexdigest()[:12]


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
