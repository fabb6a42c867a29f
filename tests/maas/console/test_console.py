"""A dispatcher at the console, in a real headless Chromium, against `maas serve` on the Herrenberg network:
signing in, the fleet moving on the map, a phone booking seen in the table and on the vehicle's timeline,
a cancellation with a reason, an alert when a late train breaks a booked connection, German and English,
the whole flow with the keyboard alone, and axe-core on every page. Each test writes screenshots."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from maas.settings import Settings
from tests.helpers import BERLIN
from tests.maas.console.conftest import PASSWORD, Staff, Watched, make_user, vehicle_with_shift
from tests.maas.live_world import avl_fixes
from tests.maas.test_journeys import NEBRINGEN, STUTTGART, _late

CALLER = {"name": "Hildegard Maier", "phone": "+49 7032 555 0147"}


def _on_shift_now(api: httpx.Client, staff: Staff, name: str) -> tuple[str, str]:
    return vehicle_with_shift(api, staff.operator, f"{name} {uuid.uuid4().hex[:3]}")


def _go(page: Page, view: str) -> None:
    page.click(f"#nav a[data-view={view}]")
    page.wait_for_selector(f"#view-{view}:not([hidden])")


def test_an_operator_signs_in_with_a_password_and_a_wrong_one_is_refused(
    console: Watched, staff: Staff, api: httpx.Client
) -> None:
    page = console.page
    answer = page.goto(f"{console.base_url}/console/")
    assert answer is not None and answer.ok
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy and "connect-src 'self'" in policy
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#signin-title")).to_have_text("Anmelden")
    page.fill("#signin-login", staff.login)
    page.fill("#signin-password", "not the password at all")
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("Benutzername oder Passwort falsch")
    expect(page.locator("#nav")).to_be_hidden()
    console.shot("sign-in-refused")
    page.fill("#signin-password", PASSWORD)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#view-map")).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "on")
    expect(page.locator("#service-name")).to_have_text("Rufbus Gäu")
    sessions = api.get("/admin/users", headers=staff.operator)
    assert sessions.status_code == 403, "the operator's token is not an admin's"
    page.click("#sign-out")
    expect(page.locator("#view-signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0, "signing out forgets the token"


def test_a_vehicle_moves_on_the_map_when_its_driver_posts_positions(
    console: Watched, staff: Staff, api: httpx.Client, console_settings: Settings
) -> None:
    driver_id, driver = make_user(console_settings, "driver", "Max Fahrer")
    vehicle_id, shift_id = vehicle_with_shift(api, staff.operator, "Rufbus Karte", driver_id=driver_id)
    assert api.post(f"/driver/shifts/{shift_id}/sign-in", headers=driver).status_code == 200
    fixes = avl_fixes()
    first, rest = fixes[:6], fixes[6:]
    first_at = dt.datetime.fromisoformat(first[-1]["at"])
    # The first fixes a minute before the rest, so that the last of them is the vehicle's newest position.
    shifted = [{**f, "at": (dt.datetime.fromisoformat(f["at"]) - dt.timedelta(minutes=1)).isoformat()} for f in first]
    assert api.post("/driver/positions", headers=driver, json={"positions": shifted}).status_code == 202
    assert first_at <= dt.datetime.now(dt.UTC)

    console.sign_in(staff.login)
    page = console.page
    marker = page.locator(f".vehicle-marker[data-vehicle-id='{vehicle_id}']")
    expect(marker).to_have_attribute("data-lat", str(first[-1]["lat"]))
    expect(page.locator("#map canvas").first).to_be_visible()  # the network's own streets, drawn
    before = marker.bounding_box()
    row = page.locator(f"#fleet-table tr[data-vehicle-id='{vehicle_id}']")
    expect(row).to_contain_text("Rufbus Karte")
    expect(row.locator("td.occupancy")).to_contain_text("0 von 8 Plätzen")

    assert api.post("/driver/positions", headers=driver, json={"positions": rest}).status_code == 202
    expect(marker).to_have_attribute("data-lat", str(rest[-1]["lat"]))  # pushed, no reload
    expect(row.locator("td.position")).to_have_attribute("data-lon", str(rest[-1]["lon"]))
    after = marker.bounding_box()
    assert before is not None and after is not None
    assert (before["x"], before["y"]) != (after["x"], after["y"]), "the marker moved on the screen"
    console.shot("map-moving-vehicles")


def _find_place(page: Page, which: str, query: str) -> str:
    page.fill(f"#pf-{which}-q", query)
    page.click(f"fieldset[data-place={which}] button.find")
    chosen = page.locator(f"#pf-{which}-chosen")
    expect(chosen).not_to_be_empty()
    return chosen.inner_text()


def test_a_phone_booking_shows_in_the_table_and_on_the_vehicles_timeline(
    console: Watched, staff: Staff, api: httpx.Client
) -> None:
    vehicle_id, _ = _on_shift_now(api, staff, "Rufbus Telefon")
    console.sign_in(staff.login)
    page = console.page
    _go(page, "phone")
    page.fill("#pf-name", CALLER["name"])
    page.fill("#pf-phone", CALLER["phone"])
    assert "Nebringen" in _find_place(page, "origin", "Nebringen")
    # Ehningen lies beyond the Rufbus area: the caller is offered the Rufbus that meets the S1 there.
    assert "Ehningen Bahnhof" in _find_place(page, "destination", "Ehningen Bahnhof")
    page.fill("#pf-seated", "2")
    page.click("#phone-form button[type=submit]")
    offers = page.locator("#phone-offers li.offer")
    expect(offers.first).to_be_visible()
    text = offers.first.inner_text()
    assert "Abholung" in text and "Ankunft spätestens" in text
    expect(offers.first.locator(".train")).to_contain_text("Anschluss: S1")
    console.shot("phone-booking", full_page=True)

    offers.first.locator("button").click()
    done = page.locator("#phone-done")
    expect(done).to_contain_text(f"Gebucht für {CALLER['name']}")
    booking_id = done.get_attribute("data-booking-id")
    assert booking_id is not None
    stored = api.get(f"/bookings/{booking_id}", headers=staff.operator).json()
    assert stored["caller"] == CALLER and stored["passengers"] == {"seated": 2, "wheelchairs": 0}
    assert stored["connection"]["kind"] == "first_mile" and stored["connection"]["route_name"] == "S1"

    _go(page, "bookings")
    page.fill("#bf-q", "Hildegard")
    page.click("#bookings-filter button[type=submit]")
    row = page.locator(f"#bookings-table tr[data-booking-id='{booking_id}']")
    expect(row).to_contain_text(CALLER["name"])
    expect(row).to_contain_text(CALLER["phone"])
    expect(row).to_contain_text("bestätigt")
    expect(row).to_contain_text("zum Zug S1")
    console.shot("bookings", full_page=True)

    _go(page, "timeline")
    shift = page.locator(f"section.shift[data-vehicle-id='{stored['vehicle_id']}']")
    expect(shift.locator(f"li[data-booking-id='{booking_id}'][data-kind=pickup]")).to_be_visible()
    expect(shift.locator(f"li[data-booking-id='{booking_id}'][data-kind=dropoff]")).to_be_visible()
    console.shot("timeline", full_page=True)
    assert vehicle_id


def test_an_operator_cancels_a_booking_with_a_reason_that_is_audited(
    console: Watched, staff: Staff, api: httpx.Client
) -> None:
    _on_shift_now(api, staff, "Rufbus Storno")
    pickup = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)).isoformat()
    ride = {"origin": {"lat": 48.6113, "lon": 8.8430}, "destination": {"lat": 48.5935, "lon": 8.8630}}
    booked = api.post(
        "/operator/bookings",
        headers=staff.operator,
        json={"caller": {"name": "Otto Storno", "phone": "07032 1234"}, "ride": {**ride, "earliest_pickup": pickup}},
    )
    assert booked.status_code == 201, booked.text
    booking_id = booked.json()["id"]
    console.sign_in(staff.login)
    page = console.page
    _go(page, "bookings")
    page.fill("#bf-q", "Otto Storno")
    page.click("#bookings-filter button[type=submit]")
    row = page.locator(f"#bookings-table tr[data-booking-id='{booking_id}']")
    row.locator("button.danger").click()
    dialog = page.locator("#cancel-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".error")).to_have_text("Bitte einen Grund angeben.")
    assert api.get(f"/bookings/{booking_id}", headers=staff.operator).json()["status"] == "confirmed"
    dialog.locator("textarea").fill("Fahrgast hat angerufen: Arzttermin verschoben")
    console.shot("cancel-dialog")
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_hidden()
    expect(row).to_have_attribute("data-status", "cancelled")
    assert api.get(f"/bookings/{booking_id}", headers=staff.operator).json()["status"] == "cancelled"
    audit = api.get("/audit", headers=staff.operator).json()
    entry = next(e for e in audit if e["subject"] == booking_id and "cancel" in e["action"])
    assert entry["details"].get("reason") == "Fahrgast hat angerufen: Arzttermin verschoben"


def test_an_operator_moves_a_booking_to_another_vehicle_with_a_reason(
    console: Watched, staff: Staff, api: httpx.Client
) -> None:
    first, _ = _on_shift_now(api, staff, "Rufbus Alt")
    pickup = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=45)).isoformat()
    ride = {"origin": {"lat": 48.5627, "lon": 8.8481}, "destination": {"lat": 48.5935, "lon": 8.8630}}
    booked = api.post(
        "/operator/bookings",
        headers=staff.operator,
        json={"caller": {"name": "Paula Umbuch", "phone": "07032 4321"}, "ride": {**ride, "earliest_pickup": pickup}},
    )
    assert booked.status_code == 201, booked.text
    booking = booked.json()
    target, _ = _on_shift_now(api, staff, "Rufbus Neu")
    target_name = next(v["name"] for v in api.get("/vehicles", headers=staff.operator).json() if v["id"] == target)
    console.sign_in(staff.login)
    page = console.page
    _go(page, "bookings")
    page.fill("#bf-q", "Paula Umbuch")
    page.click("#bookings-filter button[type=submit]")
    row = page.locator(f"#bookings-table tr[data-booking-id='{booking['id']}']")
    row.get_by_role("button", name="Umdisponieren").click()
    dialog = page.locator("#reassign-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("select").select_option(target)
    dialog.locator("textarea").fill("Rufbus Alt hat eine Panne")
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text(target_name)
    expect(row).to_contain_text(target_name)
    moved = api.get(f"/bookings/{booking['id']}", headers=staff.operator).json()
    assert moved["vehicle_id"] == target and moved["pickup_window"] == booking["pickup_window"]
    audit = api.get("/audit", headers=staff.operator).json()
    entry = next(e for e in audit if e["subject"] == booking["id"] and "reassign" in e["action"])
    assert entry["details"].get("reason") == "Rufbus Alt hat eine Panne"
    assert first != target


def test_the_console_switches_between_german_and_english_and_keeps_the_choice(console: Watched, staff: Staff) -> None:
    console.sign_in(staff.login)
    page = console.page
    expect(page.locator("#nav a[data-view=bookings]")).to_have_text("Buchungen")
    page.click("#language")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#nav a[data-view=bookings]")).to_have_text("Bookings")
    expect(page.locator("#map-title")).to_have_text("Vehicles live")
    untranslated = page.evaluate(
        "[...document.querySelectorAll('[data-i18n]')].filter(e => e.textContent === e.dataset.i18n)"
        ".map(e => e.dataset.i18n)"
    )
    assert untranslated == []
    console.shot("map-english")
    page.reload()
    expect(page.locator("#view-map")).to_be_visible()  # still signed in, in this tab
    expect(page.locator("#nav a[data-view=phone]")).to_have_text("Phone booking")
    page.click("#language")
    expect(page.locator("#nav a[data-view=phone]")).to_have_text("Telefonbuchung")


def test_the_text_can_be_enlarged_to_twice_its_size(console: Watched, staff: Staff) -> None:
    console.sign_in(staff.login)
    page = console.page
    size = float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))
    for _ in range(5):
        page.click("#text-larger")
    expect(page.locator("#text-larger")).to_be_disabled()
    larger = float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))
    assert larger == pytest.approx(2 * size)
    page.reload()
    expect(page.locator("#view-map")).to_be_visible()
    assert float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")) == pytest.approx(2 * size)
    console.shot("map-text-200")


def _tab_to(page: Page, selector: str, limit: int = 80, back: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the element matching `selector` has the focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            assert page.evaluate("document.activeElement.matches(':focus-visible')"), f"{selector} shows no focus"
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(
        f"Tab never reached {selector}; the focus is on {page.evaluate('document.activeElement.outerHTML')}"
    )


def test_the_whole_flow_works_with_the_keyboard_alone(console: Watched, staff: Staff, api: httpx.Client) -> None:
    _on_shift_now(api, staff, "Rufbus Tastatur")
    page = console.page
    page.goto(f"{console.base_url}/console/")
    keys = page.keyboard
    expect(page.locator("#signin-login")).to_be_focused()
    keys.type(staff.login)
    keys.press("Tab")
    keys.type(PASSWORD)
    keys.press("Enter")
    expect(page.locator("#view-map")).to_be_visible()
    _tab_to(page, "#nav a[data-view=phone]", back=True)
    keys.press("Enter")
    expect(page.locator("#phone-title")).to_be_focused()
    _tab_to(page, "#pf-name")
    keys.type("Karl Tastatur")
    keys.press("Tab")
    keys.type("07032 99 88 77")
    _tab_to(page, "#pf-origin-q")
    keys.type("Kuppingen")
    keys.press("Enter")
    expect(page.locator("#pf-origin-chosen")).to_contain_text("Kuppingen")
    _tab_to(page, "#pf-destination-q")
    keys.type("Herrenberg Bahnhof")
    keys.press("Enter")
    expect(page.locator("#pf-destination-chosen")).to_contain_text("Herrenberg")
    _tab_to(page, "#pf-wheelchairs")
    keys.press("ArrowUp")  # one wheelchair user
    expect(page.locator("#pf-wheelchairs")).to_have_value("1")
    _tab_to(page, "#phone-form button[type=submit]")
    keys.press("Enter")
    expect(page.locator("#phone-offers li.offer").first).to_be_visible()
    _tab_to(page, "#phone-offers li.offer button")
    keys.press("Enter")
    expect(page.locator("#phone-done")).to_contain_text("Gebucht für Karl Tastatur")
    booking_id = page.locator("#phone-done").get_attribute("data-booking-id")

    _tab_to(page, "#nav a[data-view=bookings]", back=True)
    keys.press("Enter")
    _tab_to(page, "#bf-q")
    keys.type("Karl Tastatur")
    keys.press("Enter")
    row = page.locator(f"#bookings-table tr[data-booking-id='{booking_id}']")
    expect(row).to_be_visible()
    _tab_to(page, f"#bookings-table tr[data-booking-id='{booking_id}'] button.danger")
    keys.press("Enter")
    expect(page.locator("#cancel-reason")).to_be_focused()
    keys.type("Anrufer sagt ab")
    _tab_to(page, "#cancel-dialog button[type=submit]")
    keys.press("Enter")
    expect(row).to_have_attribute("data-status", "cancelled")
    expect(page.locator(f"#bookings-table tr[data-booking-id='{booking_id}'] button.danger")).to_have_count(0)
    keys.press("Escape")  # nothing open: no harm
    _tab_to(page, "#sign-out")
    keys.press("Enter")
    expect(page.locator("#view-signin")).to_be_visible()
    console.shot("keyboard-signed-out")


def test_an_alert_appears_when_a_late_train_breaks_a_booked_connection(
    console: Watched, staff: Staff, api: httpx.Client
) -> None:
    # Tomorrow evening (the S1 runs every day): within the two days connection protection looks at.
    tomorrow = dt.datetime.now(BERLIN).date() + dt.timedelta(days=1)
    evening = dt.datetime.combine(tomorrow, dt.time(18, 0), BERLIN)
    vehicle_with_shift(
        api, staff.operator, "Rufbus Anschluss", seats=4, starts=evening - dt.timedelta(hours=1), hours=6
    )
    planned = api.get(
        "/plan", headers=staff.rider, params={"from": STUTTGART, "to": NEBRINGEN, "depart": evening.isoformat()}
    )
    assert planned.status_code == 200, planned.text
    home = next(it for it in planned.json()["itineraries"] if it["legs"][-1]["mode"] == "on_demand")
    journey = api.post("/journeys", headers=staff.rider, json={"itinerary": home["id"]})
    assert journey.status_code == 201, journey.text
    ride: dict[str, Any] = journey.json()["legs"][-1]["ride"]
    connection = ride["connection"]

    console.sign_in(staff.login)
    page = console.page
    _go(page, "alerts")
    expect(page.locator("#alerts-list")).to_contain_text("Keine Meldungen")
    day = dt.datetime.fromisoformat(connection["at"]).astimezone(BERLIN).date()
    station_time = f"{dt.datetime.fromisoformat(connection['at']).astimezone(BERLIN):%H:%M}"
    protobuf = {**staff.operator, "Content-Type": "application/x-protobuf"}
    posted = api.post(
        "/realtime/gtfs-rt/vvs-s1-only", headers=protobuf, content=_late(connection["trip"], day, 25 * 60)
    )
    assert posted.status_code == 201, posted.text
    # Protection reviews at once after a stored update and every 30 s after: the alert is pushed, not polled.
    alert = page.locator("#alerts-list li.alert[data-kind^=connection]")
    expect(alert.first).to_be_visible(timeout=90_000)
    expect(alert.first).to_contain_text("25 min")
    expect(alert.first).to_contain_text(f"the train S1 of {station_time}")  # named as people name it, not by ids
    expect(page.locator("#toasts")).to_contain_text("Neue Meldung")
    expect(page.locator("#alert-count")).to_have_text("1")
    console.shot("alert")
    alert.first.locator("button.primary").click()
    expect(alert.first).to_have_attribute("data-state", "acknowledged")
    expect(page.locator("#alert-count")).to_be_hidden()
    # Acting on it: the booking opens from the alert.
    alert.first.locator("a.button").click()
    expect(page.locator(f"#bookings-table tr[data-booking-id='{ride['booking_id']}']")).to_be_visible()


def test_no_console_page_has_a_serious_accessibility_violation(
    console: Watched, staff: Staff, api: httpx.Client
) -> None:
    _on_shift_now(api, staff, "Rufbus Barrierefrei")
    pickup = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=55)).isoformat()
    ride = {"origin": {"lat": 48.6113, "lon": 8.8430}, "destination": {"lat": 48.5627, "lon": 8.8481}}
    booked = api.post(
        "/operator/bookings",
        headers=staff.operator,
        json={"caller": {"name": "Ada Prüfer", "phone": "07032 2"}, "ride": {**ride, "earliest_pickup": pickup}},
    )
    assert booked.status_code == 201, booked.text
    page = console.page
    page.goto(f"{console.base_url}/console/")
    found = console.axe("sign-in")
    console.sign_in(staff.login)
    expect(page.locator("#fleet-table tbody tr").first).to_be_visible()
    found += console.axe("map")
    for view in ("bookings", "journeys", "timeline", "alerts", "phone"):
        _go(page, view)
        page.wait_for_load_state("networkidle")
        found += console.axe(view)
    _find_place(page, "origin", "Nebringen")
    _find_place(page, "destination", "Herrenberg Bahnhof")
    page.fill("#pf-name", "Axe Prüfer")
    page.fill("#pf-phone", "07032 1")
    page.click("#phone-form button[type=submit]")
    expect(page.locator("#phone-offers li.offer").first).to_be_visible()
    found += console.axe("phone offers")
    _go(page, "bookings")
    page.locator(f"#bookings-table tr[data-booking-id='{booked.json()['id']}'] button.danger").click()
    expect(page.locator("#cancel-dialog")).to_be_visible()
    found += console.axe("cancel dialog")
    page.keyboard.press("Escape")
    for _ in range(5):
        page.click("#text-larger")
    found += console.axe("bookings at 200 % text")
    page.click("#language")
    found += console.axe("bookings in English")
    assert found == [], found
