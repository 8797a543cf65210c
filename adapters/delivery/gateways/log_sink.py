"""The `log` sink: writes what would be sent, for the demo and local use. The customer appears
only as a pseudonym and no phone number or token is ever looked up, so nothing personal is
logged beyond the rendered content (the idempotency key names the customer: not logged)."""

from __future__ import annotations

import logging

from adapters.delivery.gateways.base import Message, Result, pseudonym

log = logging.getLogger("geo_engine.delivery.log_sink")


class LogSink:
    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log
        self.sent = 0

    async def send(self, msg: Message) -> Result:
        content = msg.payload.get(msg.channel)
        self.log.info(
            "would send %s to %s (campaign %s, outbox %d, attempt %d): %s",
            msg.channel,
            pseudonym(msg.customer_id),
            msg.campaign_id,
            msg.id,
            msg.attempt,
            content,
        )
        self.sent += 1
        return Result.sent(f"log-{msg.id}")

    async def aclose(self) -> None:
        return None
