"""`geo-engine relay` runs the follow-up job too (a deployment running relays apart from
`serve` still gets follow-ups): `--once` makes one escalation round then sends what is due, the
follow-up SMS included; the long-running command escalates every `escalation_interval_s`.
And the three former constants are settings wired by the composition root."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from adapters.composition import Services, build_services
from tests.integration.test_escalation import _followups, _setup, _walk_in_and_send

ENV = {
    "GEO_ENGINE_DECISION_HOURS": "[0, 24]",
    "GEO_ENGINE_DECISION_SMS_HOURS": "[0, 24]",
    "GEO_ENGINE_DECISION_SMS_WEEKDAYS": "[0, 1, 2, 3, 4, 5, 6]",
    "GEO_ENGINE_DECISION_SMS_HOLIDAY_COUNTRY": "",
    "GEO_ENGINE_DECISION_HOLDOUT_PCT": "0",
    "GEO_ENGINE_REQUIRE_LOCATION_CONSENT": "false",
    "GEO_ENGINE_RELAY_POLL_INTERVAL_S": "0.2",
}
CMD = [sys.executable, "-m", "adapters.cli", "relay", "--log-level", "warning"]


def _env(url: str, **more: str) -> dict[str, str]:
    return {**os.environ, **ENV, "GEO_ENGINE_DATABASE_URL": url, "COLUMNS": "200", **more}


async def _once(url: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run
    return await asyncio.to_thread(
        run, [*CMD, "--once"], capture_output=True, text=True, env=_env(url), timeout=120
    )


async def _age_offers(svc: Services, seconds: int) -> None:
    """As if the first offers were sent `seconds` ago (the campaign's after_s is 3600)."""
    await svc.pool.execute(
        "UPDATE outbox SET sent_at = sent_at - make_interval(secs => $1) WHERE channel = 'push'",
        float(seconds),
    )


async def _sms_rows(svc: Services) -> list[tuple[str, str]]:
    rows = await svc.pool.fetch("SELECT customer_id, status FROM outbox WHERE channel = 'sms'")
    return sorted((r["customer_id"], r["status"]) for r in rows)


async def test_relay_once_escalates_then_sends_the_follow_up(open_client, settings_factory) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, ("alice", "bob"))
    ids = await _walk_in_and_send(c, svc, "alice", "bob")
    url = settings_factory().database_url
    # not due yet: nothing decided, nothing sent
    r = await _once(url)
    assert r.returncode == 0, r.stderr
    assert "follow-ups 0" in r.stdout, r.stdout
    assert await _followups(svc) == []
    await _age_offers(svc, 3700)
    r = await _once(url)
    assert r.returncode == 0, r.stderr
    assert "follow-ups 2 {'chosen': 2}" in r.stdout and "sent 2" in r.stdout, r.stdout
    got = await _followups(svc)
    assert {(d["customer_id"], d["trigger_instance"]) for d in got} == {
        ("alice", f"esc:{ids['alice']}"),
        ("bob", f"esc:{ids['bob']}"),
    }
    assert await _sms_rows(svc) == [("alice", "sent"), ("bob", "sent")]
    # once more: never a second follow-up
    r = await _once(url)
    assert r.returncode == 0 and "follow-ups 0" in r.stdout, r.stdout
    assert len(await _followups(svc)) == 2


async def test_long_running_relay_escalates_on_its_interval(open_client, settings_factory) -> None:  # type: ignore[no-untyped-def]
    c, svc = open_client
    await _setup(c, ("alice",))
    await _walk_in_and_send(c, svc, "alice")
    url = settings_factory().database_url
    env = _env(url, GEO_ENGINE_ESCALATION_INTERVAL_S="0.3")
    proc = await asyncio.create_subprocess_exec(
        *CMD, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        await asyncio.sleep(1.0)  # started, its first round found nothing due
        await _age_offers(svc, 3700)  # now due: picked up by a later round, no restart
        deadline = time.monotonic() + 30
        while await _sms_rows(svc) != [("alice", "sent")]:
            assert proc.returncode is None, "the relay exited"
            assert time.monotonic() < deadline, await _sms_rows(svc)
            await asyncio.sleep(0.2)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert len(await _followups(svc)) == 1


async def test_constants_are_settings_wired_by_composition(clean_pool, settings_factory) -> None:  # type: ignore[no-untyped-def]
    s = settings_factory(
        escalation_interval_s=5.0, event_fix_max_age_s=600.0, call_task_due_s=3600.0
    )
    svc = await build_services(s, background=False)
    try:
        assert svc.decisions is not None
        assert (svc.decisions.fix_max_age_s, svc.decisions.call_due_s) == (600.0, 3600.0)
    finally:
        await svc.close()
    d = settings_factory()
    assert (d.escalation_interval_s, d.event_fix_max_age_s, d.call_task_due_s) == (
        60.0,
        1800.0,
        86400.0,
    )
