"""Fixtures of the contract suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.contract.campaign_world import H, World, memory_world, postgres_world


@pytest.fixture(params=["memory", "postgres"])
async def world(request: pytest.FixtureRequest, clean_pool: asyncpg.Pool) -> AsyncIterator[World]:
    w = memory_world() if request.param == "memory" else postgres_world(clean_pool)
    for oid in ("o1", "o2"):
        await w.store.put_offer(oid, {"id": oid, "value": 5.0}, create=True)
    for cid, esc in (("c1", {"after_s": H}), ("c2", None)):
        doc = {"id": cid, "status": "live", "offer_ids": ["o1", "o2"], "escalation": esc}
        await w.store.put_campaign(cid, doc, create=True)
    yield w
