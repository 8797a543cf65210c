"""A store's pages: live presence moves within 2 s of a ping posted through the API, and
beacons and NFC tags are listed, added (the API's 422 at its field), and drawn on the map."""

from __future__ import annotations

import time
import uuid
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Console, shot, sign_in, tab, unique
from tests.browser.geo import square


def _ping(console: Console, who: str, lon: float, lat: float, ts: float) -> dict[str, Any]:
    body = {"pings": [{"customer_id": who, "lat": lat, "lon": lon, "accuracy_m": 5, "ts": ts}]}
    r = console.admin.post("/v1/pings?wait=true", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_ping_moves_the_live_presence_count_within_two_seconds(
    page: Any, console: Console
) -> None:
    store = unique("live")
    lon, lat = 2.3400, 48.8700
    fence = square(f"{store}-f", lon, lat, 50, "store", store, "Live Opéra")
    zone = square(f"{store}-z", lon, lat, 15, "zone", store, "Caisses")
    for f in (fence, zone):
        assert console.admin.post("/v1/geofences", json=f).status_code == 201
    sign_in(page, console, console.staff_key(store), at="presence")
    expect(page.locator("#presence-state")).to_have_class("live-state live")
    expect(page.locator("#presence-inside")).to_have_text("0")

    now = time.time()
    out = _ping(console, unique("shopper"), lon, lat, now)
    assert [e["type"] for e in out["events"]] == ["enter", "enter"]  # the store and its zone
    # the bounded wait the issue asks for: the count is on screen within 2 s of the answer
    expect(page.locator("#presence-inside")).to_have_text("1", timeout=2_000)
    expect(page.locator("#presence-enter")).to_have_text("1")
    expect(page.locator(f'tr[data-fence="{store}-z"] td.num')).to_have_text("1")
    shot(page, console, "presence")
    # aggregates only: no customer id anywhere on the page
    assert "shopper" not in page.inner_text("#view")


def test_beacons_and_tags_per_zone_listed_added_and_on_the_map(page: Any, console: Console) -> None:
    store = unique("dev")
    lon, lat = 2.3300, 48.8750
    fence = square(f"{store}-f", lon, lat, 40, "store", store, "Saint-Lazare")
    zone = square(f"{store}-z", lon, lat, 12, "zone", store, "Parfums")
    for f in (fence, zone):
        assert console.admin.post("/v1/geofences", json=f).status_code == 201
    sign_in(page, console, console.staff_key(store), at="devices")
    card = page.locator(f'section[data-zone="{store}-z"]')
    card.locator(".add-beacon").click()
    form = card.locator(".beacon-form")
    form.locator('input[name="uuid"]').fill("not-a-uuid")
    form.locator('input[name="major"]').fill("7")
    form.locator('input[name="minor"]').fill("42")
    form.locator('input[name="placement"]').fill("Entrée parfums")
    form.locator('button[type="submit"]').click()
    expect(form.locator('.field[data-field="uuid"] .field-error')).not_to_be_empty()
    form.locator('input[name="uuid"]').fill(str(uuid.uuid4()))
    form.locator('button[type="submit"]').click()
    expect(card.locator("tr[data-beacon]")).to_have_count(1)

    card.locator(".add-tag").click()
    tag_form = card.locator(".tag-form")
    tag_form.locator('input[name="id"]').fill(f"{store}-till")
    tag_form.locator('input[name="placement"]').fill("Caisse 1")
    tag_form.locator('button[type="submit"]').click()
    expect(card.locator("tr[data-tag]")).to_have_count(1)
    (beacon,) = console.admin.get("/v1/beacons", params={"store_id": store}).json()["beacons"]
    assert (beacon["major"], beacon["minor"], beacon["geofence_id"]) == (7, 42, f"{store}-z")
    shot(page, console, "devices", full_page=True)

    page.click("#nav-map")
    expect(page.locator("path.device.beacon")).to_have_count(1)
    expect(page.locator("path.device.tag")).to_have_count(1)

    # and removed
    page.click("#nav-devices")
    page.once("dialog", lambda d: d.accept())
    card.locator("tr[data-beacon] button.danger").click()
    expect(card.locator("tr[data-beacon]")).to_have_count(0)
    assert console.admin.get("/v1/beacons", params={"store_id": store}).json()["beacons"] == []


def test_a_key_revoked_while_the_console_is_open_signs_it_out(
    browser: Any, console: Console
) -> None:
    store = unique("revoked")
    fence = square(f"{store}-f", 2.3600, 48.8500, 30, "store", store, "Nation")
    assert console.admin.post("/v1/geofences", json=fence).status_code == 201
    key = console.staff_key(store)
    with tab(browser, refusals=(401, 403)) as page:
        sign_in(page, console, key, at="presence")
        r = console.admin.delete(f"/v1/api-keys/{console.key_ids[key]}")
        assert r.status_code == 204, r.text
        page.click("#nav-devices")  # its next call is refused (401): back to the sign-in
        expect(page.locator("#signin-error")).to_have_text("Session expirée : reconnectez-vous.")
        assert page.evaluate("sessionStorage.length") == 0  # the key is forgotten
