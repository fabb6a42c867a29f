"""Arrival times from the vehicle's GPS and delay alerts, over HTTP and WebSockets, on the Herrenberg
network with real bus pings (AVL) and real places; each test on a fleet and database of its own."""

from __future__ import annotations

import datetime as dt
import json
import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient
from litestar.testing.websocket_test_session import WebSocketTestSession

from maas.app import create_app
from maas.demo import demo_region
from maas.eta import DriveToStops
from maas.settings import Settings
from routing.dispatch.drive_times import DriveTimes
from routing.network import load_network
from tests.maas.conftest import fresh_database
from tests.maas.live_world import AVL, HERRENBERG_BAHNHOF, NEBRINGEN, ROHRAU, World, soon

REGION = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())
BATCH = 3  # pings per POST /driver/positions in the replay


@pytest.fixture
def world(settings: Settings, database_url: str) -> Iterator[World]:
    with fresh_database(database_url, "maas_eta") as url:
        own = msgspec.structs.replace(settings, database_url=url)
        with TestClient(create_app(own)) as client:
            yield World(client, own)


@pytest.fixture(scope="module")
def drive_times(network_dir: Path) -> DriveTimes:
    """The dispatcher's driving times on the served network, for checking the service's answers."""
    return DriveTimes(load_network(network_dir).streets["drive"])


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _define(world: World, **rules: Any) -> None:
    answer = world.client.put(
        "/service", headers=world.operator, json={"name": "Rufbus Gäu", "area": REGION, "rules": rules}
    )
    assert answer.status_code == 200, answer.text


def _post(world: World, headers: dict[str, str], fixes: list[dict[str, Any]]) -> None:
    answer = world.client.post("/driver/positions", headers=headers, json={"positions": fixes})
    assert answer.status_code == 202, answer.text


def _fix(place: dict[str, float], at: dt.datetime) -> dict[str, Any]:
    return {**place, "at": at.isoformat()}


def _messages_until(socket: WebSocketTestSession, kind: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every message up to and including the first of type `kind`."""
    deadline, seen = time.monotonic() + timeout_s, []
    while not seen or seen[-1]["type"] != kind:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind} message in {timeout_s} s; got {seen}"
        try:
            seen.append(socket.receive_json(timeout=left))
        except queue.Empty:
            continue
    return seen


def test_drive_to_stops_agrees_with_the_dispatchers_drive_times(drive_times: DriveTimes) -> None:
    """The one backward search per stop gives the driving seconds DriveTimes' matrix gives, from any
    node of the real drive graph."""
    to_stops = DriveToStops(drive_times, keep=4)
    rng = np.random.default_rng(13)
    nodes = np.flatnonzero(drive_times.routable)
    for stop in rng.choice(nodes, 6, replace=False).tolist():
        for origin in rng.choice(nodes, 20, replace=False).tolist():
            assert to_stops.seconds(origin, stop) == pytest.approx(drive_times.seconds(origin, stop), abs=0.01)


def test_replayed_bus_pings_move_the_pickup_eta(world: World, drive_times: DriveTimes) -> None:
    """The recorded pings of a Herrenberg bus, moved onto today so that the last is now, sent in
    batches by the driver of a bus planned from Rohrau: after each batch the rider's ETA is the drive
    from the newest ping at its time to the pickup, never before the pickup window opens."""
    _define(world, position_max_age_s=1800)  # the 24-minute trace is replayed at once: old pings count
    bus = world.bus(ROHRAU)
    _, rider = world.users.make("rider")
    booking = world.book(rider, ROHRAU, HERRENBERG_BAHNHOF, earliest_pickup=soon(0))
    assert world.bus_of(booking) == bus
    url = f"/bookings/{booking['id']}/vehicle"
    planned = world.client.get(url, headers=rider).json()
    assert planned["eta_source"] == "plan" and planned["position"] is None and planned["eta"] == planned["planned_at"]
    opens = _t(booking["pickup_window"]["earliest"])

    pings = [json.loads(line) for line in AVL.read_text().splitlines() if line.strip()]
    end_ms, now = max(p["t"] for p in pings), dt.datetime.now(dt.UTC)
    fixes = [
        {
            "lat": p["latitude"],
            "lon": p["longitude"],
            "at": (now - dt.timedelta(milliseconds=end_ms - p["t"])).isoformat(),
        }
        for p in pings
    ]
    pickup = drive_times.snap(ROHRAU["lat"], ROHRAU["lon"])
    etas = []
    for k in range(0, len(fixes), BATCH):
        batch = fixes[k : k + BATCH]
        _post(world, bus.headers, batch)
        view = world.client.get(url, headers=rider).json()
        newest = batch[-1]
        assert view["eta_source"] == "gps", view
        assert (view["position"]["lat"], view["position"]["lon"]) == (newest["lat"], newest["lon"])
        drive_s = drive_times.seconds(drive_times.snap(newest["lat"], newest["lon"]), pickup)
        expected = max(_t(newest["at"]) + dt.timedelta(seconds=drive_s), opens)
        assert abs((_t(view["eta"]) - expected).total_seconds()) < 1.0, (k, view, expected)
        assert view["planned_at"] == planned["eta"], "the plan's time stays what it was"
        etas.append(_t(view["eta"]))
    moving = sorted({e for e in etas if e > opens})
    assert len(moving) >= 2, f"the last pings come too late for the window: ETAs move with them, {etas}"
    assert etas[-1] > opens and etas[0] == opens

    # Every view of the same ride answers the same estimate: the operators' fleet and the driver's plan.
    live = {v["vehicle"]["id"]: v for v in world.client.get("/fleet/live", headers=world.operator).json()}
    mine = live[bus.vehicle_id]
    assert mine["eta_source"] == "gps" and mine["next_stop"]["id"] == booking["id"]
    assert _t(mine["next_stop"]["eta"]) == etas[-1]
    plan = world.client.get("/driver/plan", headers=bus.headers).json()
    stop = next(s for s in plan["stops"] if s["booking_id"] == booking["id"] and s["kind"] == "pickup")
    assert stop["eta_source"] == "gps" and _t(stop["eta"]) == etas[-1]


def test_a_bus_standing_still_for_8_minutes_makes_the_pickup_8_minutes_later_and_alerts(world: World) -> None:
    """The bus's plan starts at Rohrau, where its rider waits; its GPS puts it in Nebringen, 10 minutes'
    drive away, where it stands for 8 minutes: the pickup's ETA moves 8 minutes later, the rider and the
    operators are told of the delay once, and that it is on time again once the bus is there."""
    bus = world.bus(ROHRAU)
    _, rider = world.users.make("rider")
    booking = world.book(rider, ROHRAU, HERRENBERG_BAHNHOF, earliest_pickup=soon(0))
    assert world.bus_of(booking) == bus
    url = f"/bookings/{booking['id']}/vehicle"
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=8)

    # Under the default rules (position_max_age_s 120) a ping 8 minutes old says nothing: the plan's time.
    _post(world, bus.headers, [_fix(NEBRINGEN, start)])
    stale = world.client.get(url, headers=rider).json()
    assert stale["eta_source"] == "plan" and stale["eta"] == stale["planned_at"]
    assert 470 < stale["position_age_s"] < 540 and "position_max_age_s" in stale["note"]

    # The standstill is simulated, so its first ping is 8 minutes old when sent: let such pings count.
    _define(world, position_max_age_s=900)
    before = world.client.get(url, headers=rider).json()
    assert before["eta_source"] == "gps" and before["late_s"] < 300, before

    with (
        world.client.websocket_connect(f"/ws/bookings/{booking['id']}", headers=rider) as socket,
        world.client.websocket_connect("/ws/fleet", headers=world.operator) as fleet,
    ):
        assert socket.receive_json(timeout=10)["type"] == "snapshot"
        assert fleet.receive_json(timeout=10)["type"] == "snapshot"
        _post(world, bus.headers, [_fix(NEBRINGEN, start + dt.timedelta(minutes=m)) for m in range(1, 9)])
        after = world.client.get(url, headers=rider).json()
        waited_s = (_t(after["eta"]) - _t(before["eta"])).total_seconds()
        assert abs(waited_s - 480) <= 30, (before, after)
        assert after["planned_at"] == before["planned_at"] and after["late_s"] >= 300

        delay = _messages_until(socket, "delay")[-1]
        assert delay["booking_id"] == booking["id"] and delay["stop"] == "pickup"
        assert delay["eta"] == after["eta"] and delay["minutes_late"] == round(after["late_s"] / 60)
        assert delay["late_s"] == after["late_s"] and delay["promised_latest"] == booking["pickup_window"]["latest"]
        assert delay["promise_broken"] == (_t(delay["eta"]) > _t(booking["pickup_window"]["latest"]))
        heard = _messages_until(fleet, "delay")[-1]
        assert heard == delay

        # Standing on for another 5 s is no new step of delay_alert_s: nothing is pushed again. Then, at
        # the rider's door, the bus is on time again (its plan said now, too).
        _post(world, bus.headers, [_fix(NEBRINGEN, start + dt.timedelta(minutes=8, seconds=5))])
        _post(world, bus.headers, [_fix(ROHRAU, start + dt.timedelta(minutes=8, seconds=10))])
        later = _messages_until(socket, "on_time")
        assert [m["type"] for m in later if m["type"] in ("delay", "on_time")] == ["on_time"]
        assert later[-1]["booking_id"] == booking["id"] and later[-1]["late_s"] < 300
    events = world.sql(
        "SELECT reason FROM booking_events WHERE booking_id = $1 AND reason IS NOT NULL ORDER BY id",
        uuid.UUID(booking["id"]),
    )
    reasons = [r["reason"].partition(":")[0] for r in events]
    assert reasons == ["delay", "on time again"], events
    (state,) = world.sql("SELECT level, stop FROM ride_delays WHERE booking_id = $1", uuid.UUID(booking["id"]))
    assert (state["level"], state["stop"]) == (0, "pickup")


def _alerts(world: World, **params: str) -> list[dict[str, Any]]:
    answer = world.client.get("/alerts", headers=world.operator, params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_a_growing_delay_is_one_alert_updated_then_resolved_on_time_and_raised_anew_later(world: World) -> None:
    """With rules.delay_alert_s at 2 minutes, the bus standing 8 minutes in Nebringen raises the ride's
    delay step by step: the operators' inbox holds one delay alert, updated at each step (and pushed on
    /ws/fleet each time), resolved once the bus is at the rider's door; late again is a new alert."""
    bus = world.bus(ROHRAU)
    _, rider = world.users.make("rider")
    booking = world.book(rider, ROHRAU, HERRENBERG_BAHNHOF, earliest_pickup=soon(0))
    assert world.bus_of(booking) == bus
    _define(world, position_max_age_s=900, delay_alert_s=120)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=8)

    with world.client.websocket_connect("/ws/fleet", headers=world.operator) as fleet:
        assert fleet.receive_json(timeout=10)["type"] == "snapshot"
        for m in range(9):
            _post(world, bus.headers, [_fix(NEBRINGEN, start + dt.timedelta(minutes=m))])
        (alert,) = _alerts(world)
        seen = _messages_until(fleet, "alert")
        while seen[-1]["alert"] != alert:
            seen += _messages_until(fleet, "alert")
        delays = [m for m in seen if m["type"] == "delay"]
        pushed = [m["alert"] for m in seen if m["type"] == "alert"]
        assert len(delays) >= 2, seen  # the delay grew by at least one more step of 2 minutes
        (alert,) = _alerts(world)
        assert {a["id"] for a in pushed} == {alert["id"]}, "one alert, updated: not one per step"
        assert alert["kind"] == "delay" and alert["booking_id"] == booking["id"]
        assert alert["vehicle_id"] == str(bus.vehicle_id) and alert["shift_id"] == str(bus.shift_id)
        assert alert["severity"] == ("critical" if delays[-1]["promise_broken"] else "warning")
        assert f"{delays[-1]['minutes_late']} min late" in alert["detail"], alert
        assert _t(alert["updated_at"]) > _t(alert["raised_at"]) and alert["resolved_at"] is None
        assert alert["actions"] == ["call_rider", "call_driver", "reassign"]
        assert pushed[-1] == alert

        _post(world, bus.headers, [_fix(ROHRAU, start + dt.timedelta(minutes=8, seconds=10))])
        resolved = next(m["alert"] for m in _messages_until(fleet, "alert") if m["type"] == "alert")
    assert resolved["id"] == alert["id"] and resolved["resolution"].startswith("on time again")
    assert resolved["actions"] == [] and resolved["resolved_at"] is not None
    assert not _alerts(world)
    assert _alerts(world, state="resolved") == [resolved]

    # The bus drives off without the rider and is late for them again: a new alert, not the old one.
    _post(world, bus.headers, [_fix(NEBRINGEN, start + dt.timedelta(minutes=8, seconds=20))])
    (again,) = _alerts(world)
    assert again["id"] != alert["id"] and again["kind"] == "delay"
    assert [a["id"] for a in _alerts(world, state="all")] == [again["id"], alert["id"]]
