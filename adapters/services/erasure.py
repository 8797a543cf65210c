"""Right to erasure (GDPR art. 17): every trace of a customer, in every table that names them
(discovered, so tables added later are covered: decisions, outbox rows, redemption codes, ...),
their identities, and the in-memory state of presence and profiles. Only anonymous counts
remain (erasure_counts: rows per table per day).

One presence unit of work that also holds the profile writers' lock: the rows are deleted, the
presence state forgotten, and the profiles reloaded before either lock is released, so a ping or
an event arriving meanwhile cannot re-create what is being erased, and memory equals storage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from adapters.db.erasure import delete_subject, subject_of
from adapters.privacy.metrics import ERASURES
from adapters.services.presence import PresenceRuntime
from adapters.services.profiles import ProfileService
from adapters.services.unit_of_work import NO_CHANGE, Change
from geo_engine.ports import Tx
from geo_engine.presence import PresenceEngine
from geo_engine.profile.state import ProfileState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Erased:
    rows: dict[str, int]  # table -> rows deleted

    @property
    def found(self) -> bool:
        return any(self.rows.values())


async def erase_customer(
    runtime: PresenceRuntime, profiles: ProfileService, customer_id: str
) -> Erased:
    customers: list[str] = []
    devices: list[str] = []
    rows: dict[str, int] = {}

    async def delete(tx: Tx) -> None:
        nonlocal rows
        found, owned = await subject_of(tx, customer_id)
        customers.extend(found)
        devices.extend(owned)
        rows = await delete_subject(tx, customers, devices)

    def forget(engine: PresenceEngine) -> Change:
        for cid in customers:
            engine.replace_customer(cid, None, {})
        return NO_CHANGE  # the rows are gone already: the write only deletes what remains

    async def reload_profiles() -> None:
        # the profile state is columnar (slots in arrays): rebuilding it from the database,
        # which no longer holds the customer, is the one way that surely forgets them
        profiles.state = ProfileState(profiles.cfg, ref=profiles.clock())
        await profiles.start()

    await runtime.uow.transact(forget, before=delete, hold=profiles.lock, settled=reload_profiles)
    for device in devices:
        if runtime.device_links.get(device) in customers:
            runtime.device_links.pop(device, None)
    erased = Erased(rows)
    if erased.found:
        ERASURES.inc()
    log.info("customer erased: %d rows", sum(rows.values()))  # never the id: it is personal
    return erased
