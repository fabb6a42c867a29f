"""Live views over HTTP and WebSockets, and the LISTEN/NOTIFY fan-out between app instances."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import queue
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from maas.app import create_app
from maas.realtime import CHANNEL
from tests.maas.live_world import (
    HERRENBERG_BAHNHOF,
    HERRENBERG_VERENAWEG,
    KUPPINGEN,
    NEBRINGEN,
    ROHRAU,
    World,
    avl_fixes,
    own_settings,
    soon,
    world,
)

__all__ = ["own_settings", "world"]  # fixtures


def token(headers: dict[str, str]) -> str:
    return headers["Authorization"].partition(" ")[2]


def wait_for(
    socket: WebSocketTestSession, wanted: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0
) -> dict[str, Any]:
    """The first message that `wanted` accepts, skipping others; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no wanted message in {timeout_s} s; got {seen}")
        try:
            message = socket.receive_json(timeout=left)
        except queue.Empty:
            continue
        if wanted(message):
            return message
        seen.append(message)


def test_a_rider_polls_the_vehicle_and_its_arrival(world: World) -> None:
    bus = world.bus(NEBRINGEN, seats=4)  # the only bus that takes four
    _, rider = world.users.make("rider")
    # From the bus's depot in two minutes, so that the driver may report the pickup in this test.
    booking = world.book(rider, NEBRINGEN, HERRENBERG_BAHNHOF, seated=4, earliest_pickup=soon(0.03))
    assert world.bus_of(booking) == bus
    client = world.client
    url = f"/bookings/{booking['id']}/vehicle"
    before = client.get(url, headers=rider)
    assert before.status_code == 200, before.text
    view = before.json()
    assert view["vehicle_id"] == bus.vehicle_id and view["position"] is None and view["eta_stop"] == "pickup"
    window = booking["pickup_window"]
    assert window["earliest"] <= view["eta"] <= window["latest"]
    fixes = avl_fixes()
    assert client.post("/driver/positions", headers=bus.headers, json={"positions": fixes}).status_code == 202
    moving = client.get(url, headers=rider).json()
    assert moving["position"]["lat"] == fixes[-1]["lat"] and moving["position"]["lon"] == fixes[-1]["lon"]
    assert dt.datetime.fromisoformat(moving["position"]["at"]) == dt.datetime.fromisoformat(fixes[-1]["at"])
    _, stranger = world.users.make("rider")
    assert client.get(url, headers=stranger).status_code == 404
    assert client.get(url, headers=world.operator).status_code == 200
    at_pickup = {**NEBRINGEN, "at": dt.datetime.now(dt.UTC).isoformat()}  # stop events are checked against it
    assert client.post("/driver/positions", headers=bus.headers, json=at_pickup).status_code == 202
    for event in ("arrived", "picked_up"):
        assert (
            client.post(
                "/driver/events", headers=bus.headers, json={"booking_id": booking["id"], "event": event}
            ).status_code
            == 200
        )
    aboard = client.get(url, headers=rider).json()
    assert aboard["status"] == "picked_up" and aboard["eta_stop"] == "dropoff"
    assert aboard["eta"] <= booking["dropoff_latest"]
    at_dropoff = {**HERRENBERG_BAHNHOF, "at": dt.datetime.now(dt.UTC).isoformat()}
    assert client.post("/driver/positions", headers=bus.headers, json=at_dropoff).status_code == 202
    assert (
        client.post(
            "/driver/events", headers=bus.headers, json={"booking_id": booking["id"], "event": "dropped_off"}
        ).status_code
        == 200
    )
    done = client.get(url, headers=rider).json()
    assert done["status"] == "completed" and done["position"] is None and done["vehicle_id"] is None


def test_a_rider_socket_follows_the_vehicle(world: World) -> None:
    bus = world.bus(KUPPINGEN, seats=5)  # the only bus that takes five
    _rider_user, rider = world.users.make("rider")
    booking = world.book(rider, KUPPINGEN, HERRENBERG_VERENAWEG, seated=5, earliest_pickup=soon(0.03))
    assert world.bus_of(booking) == bus
    client = world.client
    # Browsers pass the token as a query parameter.
    with client.websocket_connect(f"/ws/bookings/{booking['id']}?token={token(rider)}") as socket:
        first = socket.receive_json(timeout=10)
        assert first["type"] == "snapshot" and first["booking_id"] == booking["id"] and first["eta"]
        fixes = avl_fixes()
        assert client.post("/driver/positions", headers=bus.headers, json={"positions": fixes}).status_code == 202
        update = wait_for(socket, lambda m: m["type"] == "positions")
        assert (update["position"]["lat"], update["position"]["lon"]) == (fixes[-1]["lat"], fixes[-1]["lon"])
        # The ETA now comes from where the bus is (or says it is the plan's); the plan's time stays.
        assert update["planned_at"] == first["planned_at"] and update["vehicle_id"] == bus.vehicle_id
        assert update["eta_source"] in ("gps", "plan") and update["eta"]
        at_pickup = {**KUPPINGEN, "at": dt.datetime.now(dt.UTC).isoformat()}
        assert client.post("/driver/positions", headers=bus.headers, json=at_pickup).status_code == 202
        for event in ("arrived", "picked_up"):
            reported = client.post(
                "/driver/events", headers=bus.headers, json={"booking_id": booking["id"], "event": event}
            )
            assert reported.status_code == 200, reported.text
        aboard = wait_for(socket, lambda m: m["status"] == "picked_up")
        assert aboard["eta_stop"] == "dropoff"
    _, stranger = world.users.make("rider")
    for url, code in [
        (f"/ws/bookings/{booking['id']}?token={token(stranger)}", 4404),
        (f"/ws/bookings/{booking['id']}?token=nonsense", 4401),
        (f"/ws/bookings/{booking['id']}", 4401),
        (f"/ws/bookings/{booking['id']}?token={token(bus.headers)}", 4403),
    ]:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url) as socket:
            socket.receive_json(timeout=10)
        assert refused.value.code == code, url


def test_operators_watch_positions_and_status_changes(world: World) -> None:
    world.bus(ROHRAU)
    client = world.client
    with client.websocket_connect("/ws/fleet", headers=world.operator) as socket:
        snapshot = socket.receive_json(timeout=10)
        assert snapshot["type"] == "snapshot"
        assert {v["vehicle"]["id"] for v in snapshot["vehicles"]} >= set(world.buses)
        _, rider = world.users.make("rider")
        booking = world.book(rider, ROHRAU, HERRENBERG_BAHNHOF)
        bus = world.bus_of(booking)
        confirmed = wait_for(socket, lambda m: m["type"] == "booking" and m["booking_id"] == booking["id"])
        assert confirmed["status"] == "confirmed" and confirmed["vehicle_id"] == bus.vehicle_id
        plan = wait_for(socket, lambda m: m["type"] == "plan" and m["shift_id"] == bus.shift_id)
        assert plan["stops"] >= 2
        client.post(
            "/driver/positions", headers=bus.headers, json={**ROHRAU, "at": dt.datetime.now(dt.UTC).isoformat()}
        )
        moved = wait_for(socket, lambda m: m["type"] == "positions" and m["vehicle_id"] == bus.vehicle_id)
        assert moved["count"] == 1 and moved["position"]["lat"] == ROHRAU["lat"]
        assert client.post(f"/bookings/{booking['id']}/cancel", headers=rider).status_code == 200
        cancelled = wait_for(socket, lambda m: m["type"] == "booking" and m["booking_id"] == booking["id"])
        assert cancelled["status"] == "cancelled"
    live = {v["vehicle"]["id"]: v for v in client.get("/fleet/live", headers=world.operator).json()}
    assert live[bus.vehicle_id]["position"]["lat"] == ROHRAU["lat"]
    assert live[bus.vehicle_id]["shift"]["id"] == bus.shift_id and live[bus.vehicle_id]["planned_stops"] >= 0
    _, rider = world.users.make("rider")
    assert client.get("/fleet/live", headers=rider).status_code == 403
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(f"/ws/fleet?token={token(rider)}") as socket,
    ):
        socket.receive_json(timeout=10)
    assert refused.value.code == 4403


def test_a_driver_socket_gets_the_plan_after_a_new_booking(world: World) -> None:
    # The only bus with more than three seats in this fleet: a party of five must ride it.
    bus = world.bus(HERRENBERG_BAHNHOF, seats=8)
    with world.client.websocket_connect("/ws/driver", headers=bus.headers) as socket:
        first = socket.receive_json(timeout=10)
        assert first["type"] == "plan" and first["shift"]["id"] == bus.shift_id
        _, rider = world.users.make("rider")
        booking = world.book(rider, HERRENBERG_BAHNHOF, NEBRINGEN, seated=5)
        assert booking["vehicle_id"] == bus.vehicle_id
        changed = wait_for(socket, lambda m: any(s["booking_id"] == booking["id"] for s in m["stops"]))
        mine = [s for s in changed["stops"] if s["booking_id"] == booking["id"]]
        assert [s["kind"] for s in mine] == ["pickup", "dropoff"]
        assert mine[0]["passengers"] == {"seated": 5, "wheelchairs": 0}


def test_listen_notify_reaches_subscribers_of_another_instance(world: World) -> None:
    """Two app instances on one database stand for two worker processes."""
    bus = world.bus(NEBRINGEN)
    with (
        TestClient(create_app(world.settings)) as second,
        world.client.websocket_connect("/ws/fleet", headers=world.operator) as socket,
    ):
        socket.receive_json(timeout=10)
        fixes = avl_fixes()
        posted = second.post("/driver/positions", headers=bus.headers, json={"positions": fixes})
        assert posted.status_code == 202, posted.text
        heard = wait_for(socket, lambda m: m["type"] == "positions" and m["vehicle_id"] == bus.vehicle_id)
        assert heard["count"] == len(fixes) and heard["position"]["lat"] == fixes[-1]["lat"]
        # The first instance's in-memory latest position moved too.
        live = {v["vehicle"]["id"]: v for v in world.client.get("/fleet/live", headers=world.operator).json()}
        assert live[bus.vehicle_id]["position"]["lon"] == fixes[-1]["lon"]

        # Any writer on the database reaches the subscribers: a raw NOTIFY.
        async def notify() -> None:
            conn = await asyncpg.connect(world.settings.database_url)
            try:
                message = {"type": "booking", "booking_id": str(uuid.uuid4()), "status": "no_show"}
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(message))
            finally:
                await conn.close()

        asyncio.run(notify())
        raw = wait_for(socket, lambda m: m["type"] == "booking" and m["status"] == "no_show")
        assert raw["booking_id"]


def test_a_batch_of_a_thousand_positions_is_ingested(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    bus = world.bus(KUPPINGEN)
    now = dt.datetime.now(dt.UTC)
    batch = [
        {
            "lat": 48.6113 + i * 1e-5,
            "lon": 8.8430,
            "at": (now - dt.timedelta(seconds=1000 - i)).isoformat(),
            "speed_mps": 10.0,
        }
        for i in range(1000)
    ]
    started = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        assert world.client.post("/driver/positions", headers=bus.headers, json={"positions": batch}).status_code == 202
    took = time.perf_counter() - started
    stored = world.sql("SELECT count(*) AS n FROM positions WHERE vehicle_id = $1", uuid.UUID(bus.vehicle_id))
    assert stored[0]["n"] == rounds * len(batch)
    with capsys.disabled():
        print(
            f"\n  positions: {rounds} batches of {len(batch)} in {took:.2f} s ="
            f" {rounds * len(batch) / took:,.0f} positions/s through HTTP, JSON, COPY and NOTIFY"
        )
