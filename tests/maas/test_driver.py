"""Drivers over HTTP against a real PostgreSQL: signing in, the plan, positions, stop events."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.db import fleet as fleet_repo
from maas.demo import demo_region
from maas.model import User
from maas.settings import Settings
from tests.helpers import BERLIN
from tests.maas.conftest import fresh_database
from tests.maas.live_world import (
    HERRENBERG_BAHNHOF,
    HERRENBERG_VERENAWEG,
    KUPPINGEN,
    NEBRINGEN,
    ROHRAU,
    Bus,
    World,
    avl_fixes,
    own_settings,
    soon,
    world,
)

__all__ = ["own_settings", "world"]  # fixtures
REGION = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())


def test_drivers_sign_in_to_their_own_or_a_free_shift(world: World) -> None:
    client = world.client
    free = world.bus(KUPPINGEN, with_driver=False)
    driver, headers = world.users.make("driver", name="Dana Fahrer")
    assert client.get("/driver/plan", headers=headers).status_code == 409  # not signed in yet
    signed = client.post(f"/driver/shifts/{free.shift_id}/sign-in", headers=headers)
    assert signed.status_code == 200, signed.text
    assert signed.json()["signed_in_by"] == str(driver.id) and signed.json()["signed_in_at"]
    assert signed.json()["driver_id"] is None  # still an open shift: taken, not assigned
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
    # Two minutes from now, at the bus's depot: its window opens then, so boarding now is early but allowed.
    booking = world.book(rider, HERRENBERG_BAHNHOF, KUPPINGEN, seated=4, earliest_pickup=soon(0.03))
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
    assert "no GPS position" in arrived["notes"][0]  # the phone sent none: taken, and said so
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


# -- the driver's day: which shifts, one at a time, stop events in order and where the bus is ------------


@pytest.fixture
def lone(settings: Settings, database_url: str) -> Iterator[World]:
    """A fleet of its own for one test: its buses are the only ones, so a booking's bus, and the
    pickup window that bus's plan gives it, are known."""
    with fresh_database(database_url, "maas_lone") as url:
        own = msgspec.structs.replace(settings, database_url=url)
        with TestClient(create_app(own)) as client:
            yield World(client, own)


def _shift(world: World, driver: User | None, starts: dt.datetime, hours: float, seats: int = 3) -> str:
    """A new vehicle (at Kuppingen) on a shift assigned to `driver` (None: open); the shift's id."""
    vehicle = world.client.post(
        "/vehicles",
        headers=world.operator,
        json={"name": f"rufbus-{uuid.uuid4().hex[:6]}", "seats": seats, "wheelchair_places": 1, "depot": KUPPINGEN},
    )
    assert vehicle.status_code == 201, vehicle.text
    shift = world.client.post(
        "/shifts",
        headers=world.operator,
        json={
            "vehicle_id": vehicle.json()["id"],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + dt.timedelta(hours=hours)).isoformat(),
            "driver_id": None if driver is None else str(driver.id),
        },
    )
    assert shift.status_code == 201, shift.text
    return str(shift.json()["id"])


def test_a_driver_lists_the_shifts_of_today_that_are_theirs_or_open(lone: World) -> None:
    client = lone.client
    dana, dana_headers = lone.users.make("driver", name="Dana Fahrer")
    olaf, olaf_headers = lone.users.make("driver", name="Olaf Lenker")
    now = dt.datetime.now(dt.UTC)
    local = now.astimezone(BERLIN)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=BERLIN)
    running = _shift(lone, dana, now - dt.timedelta(minutes=30), 8, seats=5)
    later = _shift(lone, dana, now + (midnight - now) / 2, 4)  # later today, whatever the hour
    open_now = _shift(lone, None, now - dt.timedelta(minutes=10), 6)
    _shift(lone, olaf, now - dt.timedelta(minutes=10), 6)  # Olaf's
    _shift(lone, None, midnight + dt.timedelta(hours=1), 6)  # tomorrow's
    _shift(lone, dana, now - dt.timedelta(hours=3), 2)  # ended an hour ago
    listed = client.get("/driver/shifts", headers=dana_headers)
    assert listed.status_code == 200, listed.text
    shifts = listed.json()
    assert [s["id"] for s in shifts] == [running, open_now, later]  # by start
    first = shifts[0]
    assert first["vehicle"]["seats"] == 5 and first["vehicle"]["wheelchair_places"] == 1
    assert first["vehicle"]["depot"] == KUPPINGEN and first["vehicle"]["name"].startswith("rufbus-")
    assert first["running"] and first["assigned_to_you"] and first["sign_in"] == "available"
    assert first["signed_in"] is None
    assert dt.datetime.fromisoformat(first["starts_at"]) < now < dt.datetime.fromisoformat(first["ends_at"])
    by_id = {s["id"]: s for s in shifts}
    assert not by_id[later]["running"] and by_id[later]["assigned_to_you"]
    assert by_id[open_now]["running"] and not by_id[open_now]["assigned_to_you"]
    # Dana takes the open shift: hers now, taken for Olaf, who sees it with her name.
    assert client.post(f"/driver/shifts/{open_now}/sign-in", headers=dana_headers).status_code == 200
    mine = {s["id"]: s for s in client.get("/driver/shifts", headers=dana_headers).json()}
    assert mine[open_now]["sign_in"] == "yours"
    assert mine[open_now]["signed_in"]["driver_id"] == str(dana.id) and mine[open_now]["signed_in"]["since"]
    olafs = {s["id"]: s for s in client.get("/driver/shifts", headers=olaf_headers).json()}
    assert running not in olafs and later not in olafs  # Dana's are not Olaf's to see
    assert olafs[open_now]["sign_in"] == "taken" and olafs[open_now]["signed_in"]["name"] == "Dana Fahrer"
    assert len(olafs) == 2 and all(s["id"] == open_now or s["assigned_to_you"] for s in olafs.values())
    assert client.get("/driver/shifts", headers=lone.users.make("rider")[1]).status_code == 403


def test_a_driver_is_signed_in_to_one_shift_at_a_time(lone: World) -> None:
    client = lone.client
    dana, dana_headers = lone.users.make("driver")
    _olaf, olaf_headers = lone.users.make("driver")
    now = dt.datetime.now(dt.UTC)
    first = _shift(lone, None, now - dt.timedelta(minutes=30), 8)
    second = _shift(lone, dana, now - dt.timedelta(minutes=5), 8)
    assert client.post(f"/driver/shifts/{first}/sign-in", headers=dana_headers).status_code == 200
    again = client.post(f"/driver/shifts/{first}/sign-in", headers=dana_headers)  # a retry is harmless
    assert again.status_code == 200 and again.json()["signed_in_by"] == str(dana.id)
    refused = client.post(f"/driver/shifts/{second}/sign-in", headers=dana_headers)
    assert refused.status_code == 409 and refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert first in problem["detail"] and f"POST /driver/shifts/{first}/sign-out" in problem["detail"]
    assert problem["signed_in_shift"] == first
    assert client.get("/driver/plan", headers=dana_headers).json()["shift"]["id"] == first
    # Olaf may not take Dana's shift, nor sign out of hers.
    assigned = client.post(f"/driver/shifts/{second}/sign-in", headers=olaf_headers)
    assert assigned.status_code == 409 and "assigned to another driver" in assigned.json()["detail"]
    assert client.post(f"/driver/shifts/{first}/sign-out", headers=olaf_headers).status_code == 409
    out = client.post(f"/driver/shifts/{first}/sign-out", headers=dana_headers)
    assert out.status_code == 200, out.text
    assert out.json()["signed_in_by"] is None and out.json()["signed_in_at"] is None
    assert client.post(f"/driver/shifts/{first}/sign-out", headers=dana_headers).status_code == 409
    assert client.get("/driver/plan", headers=dana_headers).status_code == 409
    assert client.post(f"/driver/shifts/{second}/sign-in", headers=dana_headers).status_code == 200
    # The open shift she left is free again.
    assert client.post(f"/driver/shifts/{first}/sign-in", headers=olaf_headers).status_code == 200
    assert client.post(f"/driver/shifts/{uuid.uuid4()}/sign-out", headers=dana_headers).status_code == 404
    actions = lone.sql("SELECT action FROM audit_log WHERE actor = $1 ORDER BY id", dana.id)
    assert [a["action"] for a in actions] == ["sign_in", "sign_out", "sign_in"]


def test_two_sign_ins_racing_past_the_service_cannot_both_hold(lone: World) -> None:
    """The database itself keeps a driver on one shift and a shift with one driver: two transactions
    signing in at once (neither taking the fleet lock) do not both commit."""
    dana, _ = lone.users.make("driver")
    olaf, _ = lone.users.make("driver")
    now = dt.datetime.now(dt.UTC)
    shifts = [uuid.UUID(_shift(lone, None, now, 4)) for _ in range(3)]

    async def race(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> list[bool | BaseException]:
        conns = [await asyncpg.connect(lone.settings.database_url) for _ in pairs]
        try:

            async def sign_in(conn: asyncpg.Connection, shift_id: uuid.UUID, driver_id: uuid.UUID) -> bool:
                async with conn.transaction():
                    taken = await fleet_repo.sign_in(conn, shift_id, driver_id)
                    await asyncio.sleep(0.2)  # both are inside their transactions now
                return taken

            return await asyncio.gather(
                *(sign_in(c, *pair) for c, pair in zip(conns, pairs, strict=True)), return_exceptions=True
            )
        finally:
            for conn in conns:
                await conn.close()

    # One driver, two shifts: the second sign-in breaks the unique index once the first commits.
    outcomes = asyncio.run(race([(shifts[0], dana.id), (shifts[1], dana.id)]))
    assert sum(o is True for o in outcomes) == 1, outcomes
    assert sum(isinstance(o, asyncpg.UniqueViolationError) for o in outcomes) == 1, outcomes
    assert len(lone.sql("SELECT id FROM shifts WHERE signed_in_by = $1", dana.id)) == 1
    # Two drivers, one open shift: the second finds it taken.
    kim, _ = lone.users.make("driver")
    outcomes = asyncio.run(race([(shifts[2], olaf.id), (shifts[2], kim.id)]))
    assert sorted(outcomes, key=repr) == [False, True], outcomes
    assert len(lone.sql("SELECT signed_in_by FROM shifts WHERE id = $1 AND signed_in_by IS NOT NULL", shifts[2])) == 1


def _report(world: World, bus: Bus, booking: dict, event: str, at: dt.datetime | None = None) -> Any:
    body = {"booking_id": booking["id"], "event": event, **({"at": at.isoformat()} if at else {})}
    return world.client.post("/driver/events", headers=bus.headers, json=body)


def _fix(world: World, bus: Bus, place: dict[str, float], at: dt.datetime | None = None) -> None:
    at = at or dt.datetime.now(dt.UTC)
    posted = world.client.post("/driver/positions", headers=bus.headers, json={**place, "at": at.isoformat()})
    assert posted.status_code == 202, posted.text


def test_stop_events_come_in_their_order(lone: World) -> None:
    bus = lone.bus(NEBRINGEN)
    _, rider = lone.users.make("rider")
    booking = lone.book(rider, NEBRINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(0.02))
    assert lone.bus_of(booking) == bus
    for event, words in [
        ("picked_up", "picked_up before arrived at the pickup"),
        ("no_show", "no_show before arrived at the pickup"),
        ("dropped_off", "dropped_off needs it picked_up"),
    ]:
        refused = _report(lone, bus, booking, event)
        assert refused.status_code == 409 and words in refused.json()["detail"], refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    arrived_at = dt.datetime.now(dt.UTC)
    assert _report(lone, bus, booking, "arrived", arrived_at).status_code == 200
    before = _report(lone, bus, booking, "picked_up", arrived_at - dt.timedelta(minutes=2))
    assert before.status_code == 422 and "before the arrival" in before.json()["detail"], before.text
    picked = _report(lone, bus, booking, "picked_up")
    assert picked.status_code == 200, picked.text
    picked_at = dt.datetime.now(dt.UTC)
    assert _report(lone, bus, booking, "arrived").status_code == 409  # the rider is on board
    # A driver with a rider on board does not sign out.
    leaving = lone.client.post(f"/driver/shifts/{bus.shift_id}/sign-out", headers=bus.headers)
    assert leaving.status_code == 409 and "1 ride is on board" in leaving.json()["detail"]
    early = _report(lone, bus, booking, "dropped_off", picked_at - dt.timedelta(minutes=3))
    assert early.status_code == 422 and "before the pickup" in early.json()["detail"], early.text
    dropped = _report(lone, bus, booking, "dropped_off")
    assert dropped.status_code == 200 and dropped.json()["booking"]["status"] == "completed", dropped.text
    history = lone.sql("SELECT status FROM booking_events WHERE booking_id = $1 ORDER BY id", uuid.UUID(booking["id"]))
    assert [r["status"] for r in history] == ["confirmed", "arrived", "picked_up", "completed"]
    assert lone.client.post(f"/driver/shifts/{bus.shift_id}/sign-out", headers=bus.headers).status_code == 200


def test_a_pickup_long_before_the_window_is_refused(lone: World) -> None:
    bus = lone.bus(NEBRINGEN)
    _, rider = lone.users.make("rider")
    booking = lone.book(rider, NEBRINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(0.5))
    opens = dt.datetime.fromisoformat(booking["pickup_window"]["earliest"])
    assert opens > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=25)
    assert _report(lone, bus, booking, "arrived").status_code == 200  # a driver may come early and wait
    early = _report(lone, bus, booking, "picked_up")
    assert early.status_code == 422, early.text
    detail = early.json()["detail"]
    assert "before the pickup window opens at" in detail and f"{opens.astimezone(BERLIN):%H:%M}" in detail
    assert "at most 5 min early" in detail
    assert lone.sql("SELECT status FROM bookings WHERE id = $1", uuid.UUID(booking["id"]))[0]["status"] == "confirmed"


def test_stop_events_are_checked_against_where_the_vehicle_is(lone: World) -> None:
    bus = lone.bus(NEBRINGEN)
    _, rider = lone.users.make("rider")
    booking = lone.book(rider, NEBRINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(0.02))
    now = dt.datetime.now(dt.UTC)
    # A fix from ten minutes ago is too old to judge by: the arrival is taken, with a note that says so.
    _fix(lone, bus, HERRENBERG_BAHNHOF, now - dt.timedelta(minutes=10))
    arrived = _report(lone, bus, booking, "arrived")
    assert arrived.status_code == 200, arrived.text
    [note] = arrived.json()["notes"]
    assert "no GPS position of the vehicle in the 120 s before" in note and "pickup was not checked" in note
    reasons = lone.sql(
        "SELECT reason FROM booking_events WHERE booking_id = $1 AND status = 'arrived'", uuid.UUID(booking["id"])
    )
    assert [r["reason"] for r in reasons] == [note]
    # The bus is at the station, 3.5 km away: no pickup at Nebringen.
    _fix(lone, bus, HERRENBERG_BAHNHOF)
    far = _report(lone, bus, booking, "picked_up")
    assert far.status_code == 422, far.text
    assert far.json()["detail"].startswith("the vehicle was 3.") and "km from the pickup at" in far.json()["detail"]
    # Sixty metres from the rider's door is at the pickup.
    _fix(lone, bus, {"lat": NEBRINGEN["lat"] + 0.0005, "lon": NEBRINGEN["lon"]})
    picked = _report(lone, bus, booking, "picked_up")
    assert picked.status_code == 200 and picked.json()["notes"] == [], picked.text
    not_there = _report(lone, bus, booking, "dropped_off")
    assert not_there.status_code == 422 and "km from the drop-off" in not_there.json()["detail"], not_there.text
    _fix(lone, bus, HERRENBERG_BAHNHOF)
    dropped = _report(lone, bus, booking, "dropped_off")
    assert dropped.status_code == 200 and dropped.json()["notes"] == [], dropped.text
    assert dropped.json()["booking"]["status"] == "completed"


def test_stop_rules_come_from_the_service_definition(lone: World) -> None:
    """The no-show wait, the stop radius and how early a rider boards are the service's rules."""
    rules = {"no_show_wait_s": 120, "stop_radius_m": 5000, "early_pickup_s": 3600}
    defined = lone.client.put("/service", headers=lone.operator, json={"name": "Gäu", "area": REGION, "rules": rules})
    assert defined.status_code == 200, defined.text
    bus = lone.bus(NEBRINGEN, seats=4)
    _, rider = lone.users.make("rider")
    late = lone.book(rider, NEBRINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(0.5))
    _fix(lone, bus, HERRENBERG_BAHNHOF)  # 3.5 km: within this service's 5 km
    assert _report(lone, bus, late, "arrived").status_code == 200
    early = _report(lone, bus, late, "picked_up")  # half an hour early: within the hour this service allows
    assert early.status_code == 200, early.text
    other = lone.book(rider, NEBRINGEN, HERRENBERG_BAHNHOF, earliest_pickup=soon(0.3))
    assert _report(lone, bus, other, "arrived").status_code == 200
    wait = _report(lone, bus, other, "no_show")
    assert wait.status_code == 409, wait.text
    opens = dt.datetime.fromisoformat(other["pickup_window"]["earliest"])
    assert dt.datetime.fromisoformat(wait.json()["allowed_at"]) == opens + dt.timedelta(minutes=2)
    assert "a no-show counts 2 min after the arrival" in wait.json()["detail"]


def test_a_no_show_is_an_alert_an_operator_acknowledges_and_closes_with_an_audited_note(lone: World) -> None:
    world = lone
    world.bus(KUPPINGEN)
    _, rider = world.users.make("rider")
    booking = world.book(rider, KUPPINGEN, HERRENBERG_BAHNHOF)
    bus = world.bus_of(booking)
    client, operator = world.client, world.operator
    now = dt.datetime.now(dt.UTC)
    # The driver waited past the window's start and rules.no_show_wait_s.
    world.sql(
        "UPDATE bookings SET pickup_earliest = $2 WHERE id = $1",
        uuid.UUID(booking["id"]),
        now - dt.timedelta(minutes=10),
    )
    arrived = {"booking_id": booking["id"], "event": "arrived", "at": (now - dt.timedelta(minutes=6)).isoformat()}
    assert client.post("/driver/events", headers=bus.headers, json=arrived).status_code == 200
    with client.websocket_connect("/ws/fleet", headers=operator) as fleet:
        assert fleet.receive_json(timeout=10)["type"] == "snapshot"
        gone = client.post(
            "/driver/events", headers=bus.headers, json={"booking_id": booking["id"], "event": "no_show"}
        )
        assert gone.status_code == 200, gone.text
        pushed = next(m for m in iter(lambda: fleet.receive_json(timeout=10), None) if m["type"] == "alert")["alert"]
    (alert,) = client.get("/alerts", headers=operator, params={"kind": "no_show", "booking_id": booking["id"]}).json()
    assert alert == pushed and alert["booking_id"] == booking["id"] and alert["vehicle_id"] == bus.vehicle_id
    assert alert["shift_id"] == bus.shift_id and alert["severity"] == "warning" and "no-show" in alert["detail"]
    assert alert["actions"] == ["call_rider", "call_driver"] and alert["acknowledged_at"] is None

    # Riders and drivers see no alerts; bad parameters are refused.
    url = f"/alerts/{alert['id']}"
    for who in (rider, bus.headers):
        assert client.get("/alerts", headers=who).status_code == 403
        assert client.post(f"{url}/acknowledge", headers=who).status_code == 403
    for bad in ({"state": "closed"}, {"kind": "fire"}, {"limit": "0"}, {"limit": "501"}, {"offset": "-1"}):
        answer = client.get("/alerts", headers=operator, params=bad)
        assert answer.status_code == 400, (bad, answer.text)
    assert client.post(f"{url}/acknowledge", headers=operator, json={"note": "x" * 501}).status_code == 400
    assert client.post(f"/alerts/{uuid.uuid4()}/acknowledge", headers=operator).status_code == 404

    # Acknowledged: who and when, and the note in the audit log; again by the same operator: as it is;
    # by another: 409 naming who took it.
    me, other = world.users.make("operator", name="Dispatcher Ute"), world.users.make("operator")
    taken = client.post(f"{url}/acknowledge", headers=me[1], json={"note": "calling the rider"})
    assert taken.status_code == 200, taken.text
    assert taken.json()["acknowledged_by"] == "Dispatcher Ute" and taken.json()["acknowledged_at"] is not None
    assert client.post(f"{url}/acknowledge", headers=me[1]).json() == taken.json()
    second = client.post(f"{url}/acknowledge", headers=other[1])
    assert second.status_code == 409 and second.json()["acknowledged_by"] == "Dispatcher Ute"
    (entry,) = world.sql(
        "SELECT actor, details FROM audit_log WHERE action = 'acknowledge_alert' AND subject = $1", alert["id"]
    )
    assert entry["actor"] == me[0].id
    assert json.loads(entry["details"]) == {"kind": "no_show", "booking": booking["id"], "note": "calling the rider"}
    listed = client.get(
        "/alerts", headers=operator, params={"state": "acknowledged", "booking_id": booking["id"]}
    ).json()
    assert [a["id"] for a in listed] == [alert["id"]]

    # Closed by hand (a no-show ends nowhere else): resolved, audited; then nothing more to acknowledge.
    closed = client.post(f"{url}/resolve", headers=me[1], json={"note": "rider took a taxi"})
    assert closed.status_code == 200, closed.text
    assert (
        closed.json()["resolution"] == "closed by Dispatcher Ute: rider took a taxi" and closed.json()["actions"] == []
    )
    assert client.post(f"{url}/acknowledge", headers=other[1]).status_code == 409
    assert client.post(f"{url}/resolve", headers=me[1]).status_code == 409
    assert not client.get("/alerts", headers=operator, params={"booking_id": booking["id"]}).json()
    assert client.get(url, headers=operator).json() == closed.json()
    assert (
        world.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'resolve_alert' AND subject = $1", alert["id"])[
            0
        ]["n"]
        == 1
    )
