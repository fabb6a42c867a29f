"""Drivers over HTTP against a real PostgreSQL: signing in, the plan, positions, stop events."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
from litestar.testing import TestClient

from maas.app import create_app
from maas.settings import Settings
from tests.maas.conftest import fresh_database
from tests.maas.live_world import (
    HERRENBERG_BAHNHOF,
    HERRENBERG_VERENAWEG,
    KUPPINGEN,
    NEBRINGEN,
    ROHRAU,
    World,
    avl_fixes,
    own_settings,
    world,
)

__all__ = ["own_settings", "world"]  # fixtures


def test_drivers_sign_in_to_their_own_or_a_free_shift(world: World) -> None:
    client = world.client
    free = world.bus(KUPPINGEN, with_driver=False)
    driver, headers = world.users.make("driver", name="Dana Fahrer")
    assert client.get("/driver/plan", headers=headers).status_code == 409  # not signed in yet
    signed = client.post(f"/driver/shifts/{free.shift_id}/sign-in", headers=headers)
    assert signed.status_code == 200, signed.text
    assert signed.json()["driver_id"] == str(driver.id) and signed.json()["signed_in_at"]
    _, other = world.users.make("driver")
    taken = client.post(f"/driver/shifts/{free.shift_id}/sign-in", headers=other)
    assert taken.status_code == 409 and taken.headers["content-type"].startswith("application/problem+json")
    assert client.post(f"/driver/shifts/{uuid.uuid4()}/sign-in", headers=headers).status_code == 404
    _, rider = world.users.make("rider")
    assert client.post(f"/driver/shifts/{free.shift_id}/sign-in", headers=rider).status_code == 403
    plan = client.get("/driver/plan", headers=headers)
    assert plan.status_code == 200 and plan.json()["shift"]["id"] == free.shift_id
    assert client.get("/driver/plan", headers=other).status_code == 409


def test_a_driver_sees_the_plan_with_places_people_and_promises(world: World) -> None:
    world.bus(NEBRINGEN)
    _rider, headers = world.users.make("rider", name="Rita Mitfahrerin")
    booking = world.book(headers, NEBRINGEN, HERRENBERG_BAHNHOF, seated=2)
    bus = world.bus_of(booking)
    plan = world.client.get("/driver/plan", headers=bus.headers)
    assert plan.status_code == 200, plan.text
    stops = [s for s in plan.json()["stops"] if s["booking_id"] == booking["id"]]
    assert [s["kind"] for s in stops] == ["pickup", "dropoff"]
    pickup, dropoff = stops
    assert pickup["place"] == NEBRINGEN and dropoff["place"] == HERRENBERG_BAHNHOF
    assert pickup["passengers"] == {"seated": 2, "wheelchairs": 0} and pickup["name"] == "Rita Mitfahrerin"
    assert pickup["window"] == booking["pickup_window"] and dropoff["window"]["latest"] == booking["dropoff_latest"]
    earliest = dt.datetime.fromisoformat(booking["pickup_window"]["earliest"])
    planned = dt.datetime.fromisoformat(pickup["planned_at"])
    assert earliest <= planned <= dt.datetime.fromisoformat(booking["pickup_window"]["latest"])
    assert planned < dt.datetime.fromisoformat(dropoff["planned_at"])
    # A phone caller is named by the operator's booking.
    phone = world.client.post(
        "/operator/bookings",
        headers=world.operator,
        json={
            "ride": {
                "origin": HERRENBERG_VERENAWEG,
                "destination": NEBRINGEN,
                "seated": 1,
                "earliest_pickup": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
            },
            "caller": {"name": "Erika Muster", "phone": "+49 7032 0000"},
        },
    )
    assert phone.status_code == 201, phone.text
    caller_plan = world.client.get("/driver/plan", headers=world.bus_of(phone.json()).headers).json()
    names = {s["name"] for s in caller_plan["stops"] if s["booking_id"] == phone.json()["id"]}
    assert names == {"Erika Muster"}


def test_positions_one_and_a_batch_are_stored_and_bad_ones_refused(world: World) -> None:
    bus = world.bus(ROHRAU)
    client = world.client
    now = dt.datetime.now(dt.UTC)
    one = client.post(
        "/driver/positions",
        headers=bus.headers,
        json={**ROHRAU, "at": (now - dt.timedelta(hours=1)).isoformat(), "speed_mps": 8.5, "heading_deg": 270},
    )
    assert one.status_code == 202 and one.json() == {"accepted": 1, "vehicle_id": bus.vehicle_id}
    fixes = avl_fixes()
    batch = client.post("/driver/positions", headers=bus.headers, json={"positions": fixes})
    assert batch.status_code == 202 and batch.json()["accepted"] == len(fixes)
    rows = world.sql(
        "SELECT lat, lon, at, speed_mps FROM positions WHERE vehicle_id = $1 ORDER BY at", uuid.UUID(bus.vehicle_id)
    )
    assert len(rows) == 1 + len(fixes)
    assert (rows[0]["lat"], rows[0]["lon"], rows[0]["speed_mps"]) == (ROHRAU["lat"], ROHRAU["lon"], 8.5)
    assert [(r["lat"], r["lon"]) for r in rows[1:]] == [(f["lat"], f["lon"]) for f in fixes]
    latest = world.sql("SELECT lat, lon, at FROM latest_positions WHERE vehicle_id = $1", uuid.UUID(bus.vehicle_id))
    assert [(r["lat"], r["lon"], r["at"]) for r in latest] == [
        (fixes[-1]["lat"], fixes[-1]["lon"], dt.datetime.fromisoformat(fixes[-1]["at"]))
    ]
    # An older fix arriving late goes into the trail but does not move the latest position back.
    late = client.post(
        "/driver/positions", headers=bus.headers, json={**KUPPINGEN, "at": (now - dt.timedelta(minutes=50)).isoformat()}
    )
    assert late.status_code == 202
    live = {v["vehicle"]["id"]: v for v in client.get("/fleet/live", headers=world.operator).json()}
    assert live[bus.vehicle_id]["position"]["lat"] == fixes[-1]["lat"]
    bad = [
        {**ROHRAU, "at": now.isoformat(), "lat": 91},
        {**ROHRAU, "at": (now + dt.timedelta(hours=1)).isoformat()},
        {**ROHRAU, "at": (now - dt.timedelta(days=3)).isoformat()},
        {**ROHRAU, "at": "2026-11-27T09:00:00"},
        {**ROHRAU, "at": now.isoformat(), "speed_mps": -1},
        {"lat": 48.6, "at": now.isoformat()},
        {"positions": [{**ROHRAU, "at": now.isoformat()}], "lat": 48.6},
        {"positions": []},
    ]
    for body in bad:
        response = client.post("/driver/positions", headers=bus.headers, json=body)
        assert response.status_code in (400, 422), (body, response.text)
    infinite = client.post(
        "/driver/positions",
        headers={**bus.headers, "Content-Type": "application/json"},
        content=b'{"lat": 1e999, "lon": 8.9, "at": "%s"}' % now.isoformat().encode(),
    )
    assert infinite.status_code in (400, 422), infinite.text
    too_many = client.post(
        "/driver/positions", headers=bus.headers, json={"positions": [{**ROHRAU, "at": now.isoformat()}] * 1001}
    )
    assert too_many.status_code == 413, too_many.text
    count = world.sql("SELECT count(*) AS n FROM positions WHERE vehicle_id = $1", uuid.UUID(bus.vehicle_id))
    assert count[0]["n"] == 2 + len(fixes)  # nothing of a refused request was stored
    _, rider = world.users.make("rider")
    assert client.post("/driver/positions", headers=rider, json={**ROHRAU, "at": now.isoformat()}).status_code == 403


def test_stop_events_move_the_booking_and_the_plan_along(world: World) -> None:
    # The only bus with more than three seats: the party of four rides it, alone, in the planned order.
    bus = world.bus(HERRENBERG_BAHNHOF, seats=8)
    _, rider = world.users.make("rider")
    booking = world.book(rider, HERRENBERG_BAHNHOF, KUPPINGEN, seated=4)
    assert world.bus_of(booking) == bus
    client = world.client

    def event(name: str) -> dict:
        response = client.post("/driver/events", headers=bus.headers, json={"booking_id": booking["id"], "event": name})
        assert response.status_code == 200, response.text
        return response.json()

    def stops(answer: dict) -> list[str]:
        return [s["kind"] for s in answer["plan"]["stops"] if s["booking_id"] == booking["id"]]

    arrived = event("arrived")
    assert arrived["booking"]["status"] == "confirmed" and stops(arrived) == ["pickup", "dropoff"]
    picked = event("picked_up")
    assert picked["booking"]["status"] == "picked_up" and stops(picked) == ["dropoff"]
    assert all(s["planned_at"] for s in picked["plan"]["stops"])  # the plan still holds after an early pickup
    assert client.get(f"/bookings/{booking['id']}", headers=rider).json()["status"] == "picked_up"
    again = client.post("/driver/events", headers=bus.headers, json={"booking_id": booking["id"], "event": "picked_up"})
    assert again.status_code == 409
    dropped = event("dropped_off")
    assert dropped["booking"]["status"] == "completed" and stops(dropped) == []
    assert client.get(f"/bookings/{booking['id']}", headers=rider).json()["status"] == "completed"
    history = world.sql("SELECT status FROM booking_events WHERE booking_id = $1 ORDER BY id", uuid.UUID(booking["id"]))
    assert [r["status"] for r in history] == ["confirmed", "arrived", "picked_up", "completed"]
    # Another driver's booking is not theirs to report.
    _, other_rider = world.users.make("rider")
    foreign = world.book(other_rider, ROHRAU, HERRENBERG_VERENAWEG)
    someone = next(b for b in world.buses.values() if b.vehicle_id != foreign["vehicle_id"])
    response = client.post(
        "/driver/events", headers=someone.headers, json={"booking_id": foreign["id"], "event": "arrived"}
    )
    assert response.status_code == 404
    unknown = client.post(
        "/driver/events", headers=bus.headers, json={"booking_id": str(uuid.uuid4()), "event": "arrived"}
    )
    assert unknown.status_code == 404
    nonsense = client.post(
        "/driver/events", headers=bus.headers, json={"booking_id": booking["id"], "event": "teleported"}
    )
    assert nonsense.status_code == 400


def test_a_no_show_only_after_waiting(world: World) -> None:
    world.bus(KUPPINGEN)
    _, rider = world.users.make("rider")
    booking = world.book(rider, KUPPINGEN, HERRENBERG_BAHNHOF)
    bus = world.bus_of(booking)
    client = world.client

    def report(name: str, at: dt.datetime | None = None) -> object:
        body = {"booking_id": booking["id"], "event": name, **({"at": at.isoformat()} if at else {})}
        return client.post("/driver/events", headers=bus.headers, json=body)

    before_arrival = report("no_show")
    assert before_arrival.status_code == 409 and "arrived" in before_arrival.json()["detail"]
    assert report("arrived").status_code == 200
    early = report("no_show")
    assert early.status_code == 409, early.text
    allowed_at = dt.datetime.fromisoformat(early.json()["allowed_at"])
    window_start = dt.datetime.fromisoformat(booking["pickup_window"]["earliest"])
    assert allowed_at == window_start + dt.timedelta(minutes=5)  # the driver came before the window
    # The rider's window began ten minutes ago and the driver arrived six minutes ago.
    now = dt.datetime.now(dt.UTC)
    world.sql(
        "UPDATE bookings SET pickup_earliest = $2 WHERE id = $1",
        uuid.UUID(booking["id"]),
        now - dt.timedelta(minutes=10),
    )
    assert report("arrived", now - dt.timedelta(minutes=6)).status_code == 200
    # The later arrival counts: the one just now means waiting on.
    assert report("no_show").status_code == 409
    world.sql(
        "DELETE FROM booking_events WHERE booking_id = $1 AND status = 'arrived' AND at > $2",
        uuid.UUID(booking["id"]),
        now - dt.timedelta(minutes=5),
    )
    gone = report("no_show")
    assert gone.status_code == 200, gone.text
    assert gone.json()["booking"]["status"] == "no_show"
    assert all(s["booking_id"] != booking["id"] for s in gone.json()["plan"]["stops"])
    assert client.get(f"/bookings/{booking['id']}", headers=rider).json()["status"] == "no_show"


def test_a_new_process_plans_from_the_last_drop_off_not_from_the_depot(settings: Settings, database_url: str) -> None:
    """After a drop-off at Rohrau, a process that reads the plans afresh (a restart, another worker)
    knows the bus waits at Rohrau: a ride from there is picked up at once, not after the drive out
    from the depot at Herrenberg station."""
    with fresh_database(database_url, "maas_start") as url:
        own = msgspec.structs.replace(settings, database_url=url)

        def rohrau_pickup(client: TestClient, rider: dict[str, str]) -> float:
            earliest = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=3)
            quote = client.post(
                "/quotes",
                headers=rider,
                json={"origin": ROHRAU, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": earliest.isoformat()},
            )
            assert quote.status_code == 200 and quote.json()["offers"], quote.text
            estimate = dt.datetime.fromisoformat(quote.json()["offers"][0]["pickup_estimate"])
            return (estimate - earliest).total_seconds()

        with TestClient(create_app(own)) as client:
            world = World(client, own)
            bus = world.bus(HERRENBERG_BAHNHOF, seats=4)
            _, rider = world.users.make("rider")
            from_depot = rohrau_pickup(client, rider)
            leave = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
            booking = world.book(rider, HERRENBERG_BAHNHOF, ROHRAU, earliest_pickup=leave.isoformat())
            for event in ("arrived", "picked_up", "dropped_off"):
                answer = client.post(
                    "/driver/events", headers=bus.headers, json={"booking_id": booking["id"], "event": event}
                )
                assert answer.status_code == 200, answer.text
            here = rohrau_pickup(client, rider)
            start = world.sql(
                "SELECT start_lat, start_lon FROM shift_plans WHERE shift_id = $1", uuid.UUID(bus.shift_id)
            )[0]
        with TestClient(create_app(own)) as restarted:
            from_rohrau = rohrau_pickup(restarted, rider)
    assert from_depot > 120, from_depot  # the drive from the station out to Rohrau, beyond the 3 minutes
    assert from_rohrau < 60, (from_depot, from_rohrau)
    assert abs(from_rohrau - here) < 5  # the same as in the process that took the stop events
    assert abs(start["start_lat"] - ROHRAU["lat"]) < 0.005 and abs(start["start_lon"] - ROHRAU["lon"]) < 0.005
