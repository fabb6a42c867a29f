"""A rider's data on request, over HTTP: the export, the deletion of their account (rides to come
cancelled and their seats freed, refused while on board, the token answering 401 after), an operator
erasing a phone caller, the audit log without phone numbers, and drivers who see names but numbers
only when the service allows it. A fleet of its own, real Herrenberg places."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from litestar.testing import TestClient

from maas.app import create_app
from maas.db.privacy import ERASED_RIDERS
from maas.demo import demo_region
from tests.maas.live_world import (
    HERRENBERG_BAHNHOF,
    HERRENBERG_VERENAWEG,
    KUPPINGEN,
    NEBRINGEN,
    World,
    own_settings,
    soon,
    world,
)

__all__ = ["own_settings", "world"]  # fixtures

REGION = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())


def _phone_booking(world: World, name: str, phone: str, hours: float = 1) -> dict[str, Any]:
    booked = world.client.post(
        "/operator/bookings",
        headers=world.operator,
        json={
            "ride": {"origin": HERRENBERG_VERENAWEG, "destination": NEBRINGEN, "earliest_pickup": soon(hours)},
            "caller": {"name": name, "phone": phone},
        },
    )
    assert booked.status_code == 201, booked.text
    return dict(booked.json())


def _audit(world: World) -> list[dict[str, Any]]:
    entries = world.client.get("/audit", headers=world.operator)
    assert entries.status_code == 200, entries.text
    return list(entries.json())


def _driver_stops(world: World, booking: dict[str, Any]) -> list[dict[str, Any]]:
    plan = world.client.get("/driver/plan", headers=world.bus_of(booking).headers)
    assert plan.status_code == 200, plan.text
    return [s for s in plan.json()["stops"] if s["booking_id"] == booking["id"]]


def _add_journey(world: World, rider: uuid.UUID) -> uuid.UUID:
    """A journey the rider booked (transit only), with an event: as stored by the journey service."""
    journey = uuid.uuid4()
    world.sql(
        "INSERT INTO journeys (id, rider_id, created_by, itinerary_id, status, departure, arrival, itinerary)"
        " VALUES ($1, $2, $2, $3, 'completed', now() - interval '2 days', now() - interval '2 days' + interval"
        " '40 minutes', $4::jsonb)",
        journey,
        rider,
        uuid.uuid4(),
        json.dumps({"legs": [{"mode": "transit", "from": {"name": "Herrenberg"}, "to": {"name": "Ehningen"}}]}),
    )
    world.sql("INSERT INTO journey_legs (journey_id, leg, mode) VALUES ($1, 0, 'transit')", journey)
    world.sql("INSERT INTO journey_events (journey_id, kind, detail) VALUES ($1, 'booked', 'S1 to Ehningen')", journey)
    return journey


def test_a_rider_exports_their_data_and_deletes_their_account(world: World) -> None:
    world.bus(NEBRINGEN, seats=3)
    rider, headers = world.users.make("rider", name="Petra Privat")
    world.sql("UPDATE users SET phone = '+49 151 5550100' WHERE id = $1", rider.id)
    coming = world.book(headers, NEBRINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(2))
    journey = _add_journey(world, rider.id)
    cancelled_by_me = world.book(headers, KUPPINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(3))
    reason = {"reason": "my neighbour Frau Weber drives me"}
    assert (
        world.client.post(f"/bookings/{cancelled_by_me['id']}/cancel", headers=headers, json=reason).status_code == 200
    )

    exported = world.client.get("/me/export", headers=headers)
    assert exported.status_code == 200, exported.text
    data = exported.json()
    assert data["profile"]["name"] == "Petra Privat" and data["profile"]["phone"] == "+49 151 5550100"
    assert {b["id"] for b in data["bookings"]} == {coming["id"], cancelled_by_me["id"]}
    assert {e["status"] for e in data["booking_events"] if e["booking_id"] == cancelled_by_me["id"]} >= {"cancelled"}
    [stored] = data["journeys"]
    assert stored["id"] == str(journey) and stored["itinerary"]["legs"][0]["to"]["name"] == "Ehningen"
    assert [e["detail"] for e in stored["events"]] == ["S1 to Ehningen"] and len(stored["legs"]) == 1
    assert _driver_stops(world, coming)  # the ride is in its bus's plan
    # An alert of the journey's connection, as connection protection raises it (maas/protection.py).
    alert = uuid.uuid4()
    world.sql(
        "INSERT INTO alerts (id, kind, severity, condition, booking_id, journey_id, detail)"
        " VALUES ($1, 'connection_missed', 'critical', 'connection:0', $2, $3, 'the S1 is 25 min late at Ehningen')",
        alert,
        uuid.UUID(coming["id"]),
        journey,
    )

    erased = world.client.delete("/me", headers=headers)
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"cancelled": [coming["id"]], "rides_kept": 2, "journeys_removed": 1}
    # The ride to come was cancelled through the booking service: its seats are free in the bus's plan.
    assert _driver_stops(world, coming) == []
    ride = world.client.get(f"/bookings/{coming['id']}", headers=world.operator).json()
    assert ride["status"] == "cancelled" and ride["rider_id"] == str(ERASED_RIDERS) and ride["caller"] is None
    assert ride["origin"] == {"lat": round(NEBRINGEN["lat"], 3), "lon": round(NEBRINGEN["lon"], 3)}
    # Nothing of the rider is left: account, journeys, their own words.
    assert world.sql("SELECT 1 FROM users WHERE id = $1", rider.id) == []
    assert world.sql("SELECT 1 FROM journeys WHERE id = $1", journey) == []
    assert world.sql("SELECT 1 FROM alerts WHERE id = $1", alert) == []  # it went with the journey
    assert world.sql("SELECT 1 FROM booking_events WHERE reason LIKE '%Weber%'") == []
    assert world.sql("SELECT 1 FROM bookings WHERE rider_id = $1", rider.id) == []
    assert "Petra" not in json.dumps(_audit(world))
    # Their token no longer works: here at once, in every other process once its user cache forgets them.
    assert world.client.get("/me/export", headers=headers).status_code == 401
    assert world.client.delete("/me", headers=headers).status_code == 401
    with TestClient(create_app(world.settings)) as fresh:
        assert fresh.get("/bookings", headers=headers).status_code == 401


def test_a_rider_on_board_cannot_delete_their_account(world: World) -> None:
    bus = world.bus(NEBRINGEN, seats=3)
    rider, headers = world.users.make("rider")
    booked = world.book(headers, NEBRINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(0.02))
    driver = world.bus_of(booked).headers
    for event in ("arrived", "picked_up"):
        report = {"booking_id": booked["id"], "event": event, "at": dt.datetime.now(dt.UTC).isoformat()}
        assert world.client.post("/driver/events", headers=driver, json=report).status_code == 200
    refused = world.client.delete("/me", headers=headers)
    assert refused.status_code == 409 and "on board" in refused.json()["detail"], refused.text
    assert world.sql("SELECT name FROM users WHERE id = $1", rider.id)
    assert world.client.get(f"/bookings/{booked['id']}", headers=headers).json()["status"] == "picked_up"
    assert bus.vehicle_id in world.buses
    # Staff accounts are not deleted this way.
    assert world.client.delete("/me", headers=world.operator).status_code == 403


def test_an_operator_erases_a_phone_caller_and_the_audit_log_keeps_no_number(world: World) -> None:
    world.bus(HERRENBERG_VERENAWEG, seats=3)
    booking = _phone_booking(world, "Erika Muster", "+49 7032 555 0101")
    # The audit log records the phone booking and the caller, never the number.
    [entry] = [e for e in _audit(world) if e["action"] == "phone_booking" and e["subject"] == booking["id"]]
    assert entry["details"] == {"caller": "Erika Muster"}
    # An alert never keeps the caller's number, whoever writes its detail.
    world.sql(
        "INSERT INTO alerts (id, kind, severity, condition, booking_id, detail)"
        " VALUES ($1, 'no_show', 'warning', 'no_show', $2, 'no-show: call +49 7032 555 0101')",
        uuid.uuid4(),
        uuid.UUID(booking["id"]),
    )
    [kept] = world.sql("SELECT detail FROM alerts WHERE booking_id = $1", uuid.UUID(booking["id"]))
    assert kept["detail"] == "no-show: call [phone]"
    erase = {"phone": "+49 (7032) 555-0101"}
    refused = world.client.post("/operator/callers/erase", headers=world.operator, json=erase)
    assert refused.status_code == 409 and refused.json()["bookings"] == [booking["id"]], refused.text
    cancel = {"reason": "the caller asked to be forgotten"}
    assert (
        world.client.post(f"/bookings/{booking['id']}/cancel", headers=world.operator, json=cancel).status_code == 200
    )
    erased = world.client.post("/operator/callers/erase", headers=world.operator, json=erase)
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"bookings": 1, "audit_entries": 1, "journeys": 0}
    caller = world.client.get(f"/bookings/{booking['id']}", headers=world.operator).json()["caller"]
    assert caller["name"].startswith("caller ") and caller["phone"] is None
    log = json.dumps(_audit(world))
    assert "Erika" not in log and "555 0101" not in log
    assert any(
        e["action"] == "erase_caller" and e["details"] == {"bookings": 1, "audit_entries": 1, "journeys": 0}
        for e in _audit(world)
    )
    again = world.client.post("/operator/callers/erase", headers=world.operator, json=erase)
    assert again.status_code == 404
    for bad in ({"phone": "call me"}, {"phone": ""}, {}):
        assert world.client.post("/operator/callers/erase", headers=world.operator, json=bad).status_code in (400, 422)
    _, rider = world.users.make("rider")
    assert world.client.post("/operator/callers/erase", headers=rider, json=erase).status_code == 403


def test_drivers_see_names_but_phone_numbers_only_when_the_service_allows_it(world: World) -> None:
    world.bus(HERRENBERG_VERENAWEG, seats=3)
    booking = _phone_booking(world, "Hans Hörer", "+49 7032 555 0202", hours=0.5)
    rider, headers = world.users.make("rider", name="Rita Mitfahrerin")
    world.sql("UPDATE users SET phone = '+49 151 5550303' WHERE id = $1", rider.id)
    ride = world.book(headers, HERRENBERG_VERENAWEG, NEBRINGEN, earliest_pickup=soon(0.6))
    stops = _driver_stops(world, booking) + _driver_stops(world, ride)
    assert {s["name"] for s in stops} == {"Hans Hörer", "Rita Mitfahrerin"}
    assert {s.get("phone") for s in stops} == {None}
    driver = world.bus_of(booking).headers
    report = {"booking_id": booking["id"], "event": "arrived", "at": dt.datetime.now(dt.UTC).isoformat()}
    arrived = world.client.post("/driver/events", headers=driver, json=report)
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["booking"]["caller"] == {"name": "Hans Hörer", "phone": None}
    assert "5550202" not in arrived.text and "5550303" not in arrived.text
    # The operator allows it: drivers can call the riders they wait for.
    rules = {"drivers_see_phones": True}
    defined = world.client.put("/service", headers=world.operator, json={"name": "Gäu", "area": REGION, "rules": rules})
    assert defined.status_code == 200, defined.text
    phones = {s["name"]: s["phone"] for s in _driver_stops(world, booking) + _driver_stops(world, ride)}
    assert phones == {"Hans Hörer": "+49 7032 555 0202", "Rita Mitfahrerin": "+49 151 5550303"}
