"""Delivery statuses the SMS provider reports (Twilio status callbacks) on outbox rows it sent.

A status only moves forward (the order: geo_engine/delivery/status.py): a late `sent` after
`delivered` is logged and not applied. Every callback lands in `delivery_status_log`, applied or
not (adapters/db/delivery_status.py).

Error codes: 21610 (the recipient replied STOP) revokes the customer's SMS consent as the send
path does; 30006 (landline or unreachable carrier) marks the number invalid, so it is not tried
again; any other code (30003 unreachable, 30005 unknown number...) is recorded only."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from adapters.db import delivery_contacts, delivery_status
from adapters.db.types import Pool
from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.base import pseudonym
from adapters.delivery.gateways.twilio import OPTED_OUT, e164
from geo_engine.delivery.status import RANK, moves_forward

# RANK: the statuses a callback may carry (adapters/api/routes/callbacks.py checks against it)
__all__ = ["LANDLINE", "RANK", "DeliveryStatuses", "StatusResult"]

log = logging.getLogger(__name__)

LANDLINE = 30006


@dataclass(frozen=True, slots=True)
class StatusResult:
    outbox_id: int
    status: str  # the row's delivery status after this callback
    applied: bool  # False: a regression or a repeat, logged only


class DeliveryStatuses:
    def __init__(self, pool: Pool, directory: DeliveryDirectory) -> None:
        self.pool = pool
        self.directory = directory

    async def record(
        self, sid: str, status: str, error_code: int | None, to: str | None = None
    ) -> StatusResult | None:
        """None when no outbox row carries this provider id. `to`: the number the message went
        to (the callback's `To`), the one a 30006 marks invalid."""
        w = await delivery_status.record_status(
            self.pool, sid, status, error_code, lambda current: moves_forward(current, status)
        )
        if w is None:
            return None
        customer = w.customer_id
        # an error code acts once per message (a replayed or repeated 21610 must not undo a
        # START the customer sent since), and even when the status itself arrived late
        if w.first_error and error_code == OPTED_OUT:
            await self.directory.revoke_sms(customer, "sms_status_21610")
        elif w.first_error and error_code == LANDLINE:
            phone = await self._identity_of(customer, to)
            if phone is not None:
                await self.directory.mark_phone_invalid(customer, phone, f"twilio_{LANDLINE}")
        log.info(
            "outbox %s of %s: %s%s%s",
            w.outbox_id,
            pseudonym(customer),
            status,
            f" (error {error_code})" if error_code else "",
            "" if w.applied else ", not applied (not newer)",
        )
        current = status if w.applied else str(w.previous)
        return StatusResult(w.outbox_id, current, w.applied)

    async def _identity_of(self, customer_id: str, to: str | None) -> str | None:
        """The customer's phone identity (as stored) that is the number `to` in E.164; without
        `to`, the one the gateway would use."""
        if to is None:
            return await self.directory.phone_of(customer_id)
        target = e164(to)
        phones = await delivery_contacts.phones_of(self.pool, customer_id)
        return next((p for p in phones if target and e164(p) == target), None)
