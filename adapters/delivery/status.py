"""Delivery statuses the SMS provider reports (Twilio status callbacks) on outbox rows it sent.

A status only moves forward: accepted/scheduled < queued < sending < sent < delivered,
undelivered, failed, canceled < read. Callbacks may arrive out of order (Twilio posts each from
a different worker), so a late 'sent' after 'delivered' is logged and not applied. Every
callback lands in `delivery_status_log`, applied or not.

Error codes: 21610 (the recipient replied STOP) revokes the customer's SMS consent as the send
path does; 30006 (landline or unreachable carrier) marks the number invalid, so it is not tried
again; any other code (30003 unreachable, 30005 unknown number...) is recorded only."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from adapters.delivery.customers import DeliveryDirectory
from adapters.delivery.gateways.base import pseudonym
from adapters.delivery.gateways.twilio import OPTED_OUT, e164

log = logging.getLogger(__name__)

RANK = {
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
LANDLINE = 30006


@dataclass(frozen=True, slots=True)
class StatusResult:
    outbox_id: int
    status: str  # the row's delivery status after this callback
    applied: bool  # False: a regression or a repeat, logged only


def moves_forward(current: str | None, new: str) -> bool:
    return current is None or RANK[new] > RANK.get(current, -1)


class DeliveryStatuses:
    def __init__(self, pool: asyncpg.Pool, directory: DeliveryDirectory) -> None:
        self.pool = pool
        self.directory = directory

    async def record(
        self, sid: str, status: str, error_code: int | None, to: str | None = None
    ) -> StatusResult | None:
        """None when no outbox row carries this provider id. `to`: the number the message went
        to (the callback's `To`), the one a 30006 marks invalid."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT id, customer_id, delivery_status FROM outbox WHERE provider_id = $1"
                " ORDER BY id DESC LIMIT 1 FOR UPDATE",
                sid,
            )
            if row is None:
                return None
            applied = moves_forward(row["delivery_status"], status)
            # an error code acts once per message: a replayed or repeated 21610 must not undo
            # a START the customer sent since
            first_error = error_code is not None and not await conn.fetchval(
                "SELECT 1 FROM delivery_status_log WHERE outbox_id = $1 AND error_code = $2",
                row["id"],
                error_code,
            )
            if applied:
                await conn.execute(
                    "UPDATE outbox SET delivery_status = $2, delivery_status_at = now(),"
                    " delivered_at = CASE WHEN $2 IN ('delivered', 'read')"
                    "   THEN coalesce(delivered_at, now()) ELSE delivered_at END,"
                    " delivery_error_code = coalesce($3, delivery_error_code) WHERE id = $1",
                    row["id"],
                    status,
                    error_code,
                )
            await conn.execute(
                "INSERT INTO delivery_status_log (outbox_id, customer_id, provider_id, status,"
                " error_code, applied) VALUES ($1, $2, $3, $4, $5, $6)",
                row["id"],
                row["customer_id"],
                sid,
                status,
                error_code,
                applied,
            )
        customer = str(row["customer_id"])
        # consent and number changes hold even when the status itself arrived late
        if first_error and error_code == OPTED_OUT:
            await self.directory.revoke_sms(customer, "sms_status_21610")
        elif first_error and error_code == LANDLINE:
            phone = await self._identity_of(customer, to)
            if phone is not None:
                await self.directory.mark_phone_invalid(customer, phone, f"twilio_{LANDLINE}")
        log.info(
            "outbox %s of %s: %s%s%s",
            row["id"],
            pseudonym(customer),
            status,
            f" (error {error_code})" if error_code else "",
            "" if applied else ", not applied (not newer)",
        )
        current = status if applied else str(row["delivery_status"])
        return StatusResult(int(row["id"]), current, applied)

    async def _identity_of(self, customer_id: str, to: str | None) -> str | None:
        """The customer's phone identity (as stored) that is the number `to` in E.164; without
        `to`, the one the gateway would use."""
        if to is None:
            return await self.directory.phone_of(customer_id)
        target = e164(to)
        rows = await self.pool.fetch(
            "SELECT value FROM identities WHERE customer_id = $1 AND type = 'phone'", customer_id
        )
        return next((r["value"] for r in rows if target and e164(r["value"]) == target), None)
