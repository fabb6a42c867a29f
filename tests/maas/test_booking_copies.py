"""Bookings planned on two processes' copies of the fleet (`maas_book`): two apps over one database,
as two API workers are, each with its own FleetService. Whichever copy is stale, no ride is lost,
no bus is overbooked, and a refusal is only given on what the database holds now."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.fleet import FleetService
from maas.settings import Settings
from routing.dispatch.dispatcher import Dispatcher
from routing.model import StreetArrays
from routing.network import load_network
from tests.maas.conftest import fresh_database
from tests.maas.live_world import HERRENBERG_BAHNHOF, HERRENBERG_VERENAWEG, KUPPINGEN, NEBRINGEN, World, soon

# Herrenberg's core only: Nebringen (south-west) lies outside, Verenaweg and the Bahnhof inside.
CORE = {"type": "Polygon", "coordinates": [[[8.85, 48.58], [8.90, 48.58], [8.90, 48.61], [8.85, 48.61], [8.85, 48.58]]]}


@pytest.fixture
def apps(settings: Settings, database_url: str) -> Iterator[tuple[World, TestClient]]:
    """App A (with the World helpers) and app B over one database of their own: two processes' copies."""
    with fresh_database(database_url, "maas_copies") as url:
        own = msgspec.structs.replace(settings, database_url=url)
        with TestClient(create_app(own)) as a, TestClient(create_app(own)) as b:
            yield World(a, own), b


@pytest.fixture(scope="module")
def drive(network_dir: Path) -> StreetArrays:
    return load_network(network_dir).streets["drive"]


def _wish(origin: dict[str, float], destination: dict[str, float], hours: float, **extra: Any) -> dict[str, Any]:
    return {"origin": origin, "destination": destination, "earliest_pickup": soon(hours), **extra}


def _stored_plan(world: World, shift_id: str) -> list[tuple[str, str]]:
    (row,) = world.sql("SELECT stops FROM shift_plans WHERE shift_id = $1", uuid.UUID(shift_id))
    return [(rid, kind) for rid, kind in msgspec.json.decode(row["stops"])]


def _committed(world: World, drive: StreetArrays) -> Dispatcher:
    """The plans as committed, rebuilt from the database the way a fresh worker would."""

    async def rebuild() -> Dispatcher | None:
        conn = await asyncpg.connect(world.settings.database_url)
        try:
            return await FleetService(drive).current(conn)
        finally:
            await conn.close()

    dispatcher = asyncio.run(rebuild())
    assert dispatcher is not None
    return dispatcher


def _check_plan(world: World, drive: StreetArrays, shift_id: str, confirmed: list[str]) -> list[tuple[str, str]]:
    """The shift's stored plan visits every confirmed ride's pickup and then drop-off exactly once and
    nothing else, and can be kept (seats, windows, ride times: DispatchError otherwise)."""
    stops = _stored_plan(world, shift_id)
    assert sorted(stops) == sorted((rid, kind) for rid in confirmed for kind in ("pickup", "dropoff"))
    assert all(stops.index((rid, "pickup")) < stops.index((rid, "dropoff")) for rid in confirmed)
    _committed(world, drive).schedule(shift_id)
    return stops


def _eight_seater(client: TestClient, operator: dict[str, str]) -> tuple[str, str]:
    """A new vehicle with eight seats on shift from now on, created through `client`: (vehicle, shift)."""
    vehicle = client.post(
        "/vehicles", headers=operator, json={"name": "rufbus-8", "seats": 8, "depot": HERRENBERG_BAHNHOF}
    )
    assert vehicle.status_code == 201, vehicle.text
    shift = client.post(
        "/shifts",
        headers=operator,
        json={"vehicle_id": vehicle.json()["id"], "starts_at": soon(-0.5), "ends_at": soon(8)},
    )
    assert shift.status_code == 201, shift.text
    return vehicle.json()["id"], shift.json()["id"]


def _planned_rides(client: TestClient, driver: dict[str, str]) -> list[tuple[str, str]]:
    plan = client.get("/driver/plan", headers=driver)
    assert plan.status_code == 200, plan.text
    return sorted((s["booking_id"], s["kind"]) for s in plan.json()["stops"] if s["kind"] != "break")


def test_rides_booked_alternately_through_two_copies_are_all_planned(
    apps: tuple[World, TestClient], drive: StreetArrays
) -> None:
    world, b = apps
    bus = world.bus(NEBRINGEN, seats=3)
    _, rider = world.users.make("rider")
    trips = [(NEBRINGEN, HERRENBERG_BAHNHOF), (KUPPINGEN, HERRENBERG_VERENAWEG), (HERRENBERG_BAHNHOF, NEBRINGEN)]
    confirmed = []
    for k in range(6):
        # Each booking makes the other copy stale for the one shift there is.
        client = (world.client, b)[k % 2]
        origin, destination = trips[k % len(trips)]
        booked = client.post("/bookings", headers=rider, json=_wish(origin, destination, 0.25 + 0.4 * k))
        assert booked.status_code == 201, (k, booked.text)
        assert booked.json()["vehicle_id"] == bus.vehicle_id
        confirmed.append(booked.json()["id"])
    stops = _check_plan(world, drive, bus.shift_id, confirmed)
    for client in (world.client, b):
        assert _planned_rides(client, bus.headers) == sorted(stops)


def test_a_stale_copy_never_seats_more_riders_than_the_bus_has(
    apps: tuple[World, TestClient], drive: StreetArrays
) -> None:
    world, b = apps
    bus = world.bus(NEBRINGEN, seats=3)
    _, first = world.users.make("rider")
    _, second = world.users.make("rider")
    wish = _wish(NEBRINGEN, HERRENBERG_BAHNHOF, 0.5, seated=2)
    # B's copy is read now, while the bus is empty; A then takes two of its three seats.
    assert b.post("/quotes", headers=second, json=wish).json()["offers"]
    taken = world.client.post("/bookings", headers=first, json=wish)
    assert taken.status_code == 201, taken.text
    # B plans on the copy that still shows an empty bus.
    late = b.post("/bookings", headers=second, json=wish)
    assert late.status_code in (201, 409), late.text
    confirmed = [taken.json()["id"]]
    if late.status_code == 201:
        confirmed.append(late.json()["id"])
    else:
        assert late.headers["content-type"].startswith("application/problem+json")
        assert late.json()["detail"]
        assert len(world.sql("SELECT id FROM bookings")) == 1
    stops = _check_plan(world, drive, bus.shift_id, confirmed)
    on_board = 0
    for _, kind in stops:  # two parties of two: never both on board
        on_board += 2 if kind == "pickup" else -2
        assert on_board <= 3


def test_a_service_area_set_through_the_other_process_refuses_rides_outside(
    apps: tuple[World, TestClient], drive: StreetArrays
) -> None:
    world, b = apps
    bus = world.bus(HERRENBERG_BAHNHOF)
    rider_user, rider = world.users.make("rider")
    before = world.client.post("/bookings", headers=rider, json=_wish(NEBRINGEN, HERRENBERG_BAHNHOF, 0.5))
    assert before.status_code == 201, before.text  # A has now read that no area is set
    assert b.put("/service-area", headers=world.operator, json={"name": "core", "geometry": CORE}).status_code == 200
    outside = world.client.post("/bookings", headers=rider, json=_wish(NEBRINGEN, HERRENBERG_BAHNHOF, 1.5))
    assert outside.status_code == 422, outside.text
    assert outside.headers["content-type"].startswith("application/problem+json")
    assert "outside the service area" in outside.json()["detail"]
    assert [str(r["id"]) for r in world.sql("SELECT id FROM bookings WHERE rider_id = $1", rider_user.id)] == [
        before.json()["id"]
    ]
    _check_plan(world, drive, bus.shift_id, [before.json()["id"]])
    inside = world.client.post("/bookings", headers=rider, json=_wish(HERRENBERG_VERENAWEG, HERRENBERG_BAHNHOF, 1.5))
    assert inside.status_code == 201, inside.text


def test_an_idempotency_key_used_through_one_process_replays_through_the_other(
    apps: tuple[World, TestClient], drive: StreetArrays
) -> None:
    world, b = apps
    bus = world.bus(NEBRINGEN)
    _, rider = world.users.make("rider")
    wish = _wish(NEBRINGEN, HERRENBERG_BAHNHOF, 0.5)
    keyed = {**rider, "Idempotency-Key": "k"}
    first = world.client.post("/bookings", headers=keyed, json=wish)
    assert first.status_code == 201, first.text
    assert b.post("/quotes", headers=rider, json=wish).json()["offers"]  # B's copy now holds A's ride
    # B plans the ride again on its copy before the database answers that the key was used.
    again = b.post("/bookings", headers=keyed, json=wish)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert [str(r["id"]) for r in world.sql("SELECT id FROM bookings")] == [first.json()["id"]]
    stops = _check_plan(world, drive, bus.shift_id, [first.json()["id"]])
    # That second plan did not commit, and B's copy, as current as the database, no longer shows it.
    assert _planned_rides(b, bus.headers) == sorted(stops)


def test_a_shift_created_through_the_other_process_is_used_by_a_stale_copy(
    apps: tuple[World, TestClient], drive: StreetArrays
) -> None:
    world, b = apps
    world.bus(NEBRINGEN, seats=3)
    _, rider = world.users.make("rider")
    party = _wish(NEBRINGEN, HERRENBERG_BAHNHOF, 0.5, seated=5)
    quote = world.client.post("/quotes", headers=rider, json=party)  # A's copy: the small bus only
    assert quote.status_code == 200 and not quote.json()["offers"], quote.text
    vehicle_id, shift_id = _eight_seater(b, world.operator)
    # A's copy has no vehicle for five: it may refuse only after reading the fleet again.
    booked = world.client.post("/bookings", headers=rider, json=party)
    assert booked.status_code == 201, booked.text
    assert booked.json()["vehicle_id"] == vehicle_id
    _check_plan(world, drive, shift_id, [booked.json()["id"]])


def test_a_copy_from_before_a_new_shift_is_not_stored_on(apps: tuple[World, TestClient]) -> None:
    world, b = apps
    world.bus(NEBRINGEN, seats=3)
    _, rider = world.users.make("rider")
    party = _wish(NEBRINGEN, HERRENBERG_BAHNHOF, 1.5, seated=5)
    assert not world.client.post("/quotes", headers=rider, json=party).json()["offers"]  # A's copy
    vehicle_id, _ = _eight_seater(b, world.operator)
    # One rider fits the small bus on A's copy, but the new shift left no note of what changed: maas_book
    # must send A to re-read the fleet. Had it stored the ride, A's copy would count as current and
    # never learn of the new shift, and the party of five would be refused.
    single = world.client.post("/bookings", headers=rider, json=_wish(NEBRINGEN, HERRENBERG_BAHNHOF, 0.5))
    assert single.status_code == 201, single.text
    booked = world.client.post("/bookings", headers=rider, json=party)
    assert booked.status_code == 201, booked.text
    assert booked.json()["vehicle_id"] == vehicle_id
