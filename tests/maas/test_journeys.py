"""Riders plan and book Rufbus + train as one journey, over HTTP, on the Herrenberg network whose
timetables run this week (the fleet on shift on the next weekday morning)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.demo import demo_region
from maas.settings import Settings
from tests.helpers import BERLIN, HERRENBERG_BAHNHOF, KUPPINGEN, vehicle_on_shift
from tests.maas.conftest import Users, own_database

NEBRINGEN = "48.5627,8.8481"
STUTTGART = "stop:vvs-s1-only:de:08111:6118:1:102"
REGION = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())
ROHRAU = {"lat": 48.6237, "lon": 8.9101}
CHANGE_S = 180


def _weekday_morning(nth: int, hour: int, minute: int = 0) -> dt.datetime:
    """The `nth` weekday after today (local), at hour:minute in Herrenberg.

    Counted in weekdays, so different `nth` are always different days, whatever today is: tests
    that need a fleet of their own take a day no other test books on.
    """
    day = dt.datetime.now(BERLIN).date()
    while nth > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            nth -= 1
    return dt.datetime.combine(day, dt.time(hour, minute), BERLIN)


@pytest.fixture(scope="module")
def journey_settings(
    settings: Settings, today_network_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    with own_database(settings, "maas_journeys", today_network_dir, tmp_path_factory.mktemp("journeys-data")) as own:
        yield own


@pytest.fixture(scope="module")
def app(journey_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(journey_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def people(app: TestClient, journey_settings: Settings) -> dict[str, dict[str, str]]:
    users = Users(journey_settings)
    people = {role: users.make(role)[1] for role in ("operator", "rider", "driver")}
    defined = app.put(
        "/service", headers=people["operator"], json={"name": "Rufbus Gäu", "area": REGION, "rules": {"change_s": 180}}
    )
    assert defined.status_code == 200, defined.text
    return people


def _plan(app: TestClient, rider: dict[str, str], depart: dt.datetime, **extra: Any) -> list[dict[str, Any]]:
    answer = app.get(
        "/plan", headers=rider, params={"from": NEBRINGEN, "to": STUTTGART, "depart": depart.isoformat(), **extra}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["itineraries"])


def _feeders(itineraries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Itineraries that start with a Rufbus to a train."""
    return [
        it
        for it in itineraries
        if it["legs"][0]["mode"] == "on_demand" and any(leg["mode"] == "transit" for leg in it["legs"])
    ]


def _first_train(it: dict[str, Any]) -> dict[str, Any]:
    return next(leg for leg in it["legs"] if leg["mode"] == "transit")


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


async def _stored(url: str) -> tuple[dict[str, list[list[str]]], dict[str, asyncpg.Record], dict[str, int]]:
    """Every shift's stored plan, every booking, and every shift's seats, as committed."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT shift_id, stops FROM shift_plans")
        plans = {str(r["shift_id"]): json.loads(r["stops"]) for r in rows}
        bookings = {str(r["id"]): r for r in await conn.fetch("SELECT * FROM bookings")}
        seats = {
            str(r["id"]): r["seats"]
            for r in await conn.fetch("SELECT s.id, v.seats FROM shifts s JOIN vehicles v ON v.id = s.vehicle_id")
        }
        return plans, bookings, seats
    finally:
        await conn.close()


def test_nebringen_to_stuttgart_by_rufbus_and_s1_is_planned_and_booked_as_one(
    app: TestClient, people: dict[str, dict[str, str]], journey_settings: Settings
) -> None:
    depart = _weekday_morning(1, 7, 30)
    vehicle_on_shift(app, people["operator"], seats=8, starts=depart - dt.timedelta(hours=1), hours=6)
    rider = people["rider"]
    itineraries = _plan(app, rider, depart)
    assert itineraries and all(it["id"] for it in itineraries), "every itinerary has an id"
    feeders = _feeders(itineraries)
    assert feeders, [[leg["mode"] for leg in it["legs"]] for it in itineraries]
    it = min(feeders, key=lambda x: x["arrival"])
    ride, train = it["legs"][0], _first_train(it)
    assert ride["to"]["name"].startswith("Herrenberg") and train["route_name"] == "S1"
    offer = ride["offer"]
    assert offer["id"] and _t(offer["expires"]) > dt.datetime.now(dt.UTC)
    assert set(offer) >= {"pickup_window", "dropoff_latest", "pickup_estimate", "dropoff_estimate"}
    assert _t(offer["pickup_window"]["earliest"]) >= depart
    assert _t(offer["dropoff_latest"]) <= _t(train["departure"]) - dt.timedelta(seconds=CHANGE_S)
    # Brought to the train as late as it allows: at most one pickup window (10 min) before the change.
    latest_drop = _t(train["departure"]) - dt.timedelta(seconds=CHANGE_S)
    assert _t(offer["dropoff_estimate"]) >= latest_drop - dt.timedelta(minutes=11)
    assert not ride["estimated"]

    key = {"Idempotency-Key": f"journey-{uuid.uuid4()}"}
    booked = app.post("/journeys", headers={**rider, **key}, json={"itinerary": it["id"]})
    assert booked.status_code == 201, booked.text
    journey = booked.json()
    assert journey["status"] == "confirmed" and journey["itinerary_id"] == it["id"]
    leg = journey["legs"][0]["ride"]
    assert leg["status"] == "confirmed" and leg["booking_id"] == offer["id"]
    assert leg["connection"]["kind"] == "first_mile" and leg["connection"]["trip"] == train["trip"]
    assert _t(leg["dropoff_latest"]) <= _t(train["departure"]) - dt.timedelta(seconds=CHANGE_S)
    assert journey["events"][0]["kind"] == "confirmed"
    again = app.post("/journeys", headers={**rider, **key}, json={"itinerary": it["id"]})
    assert again.status_code == 200 and again.json()["id"] == journey["id"]
    twice = app.post("/journeys", headers=rider, json={"itinerary": it["id"]})
    assert twice.status_code == 409 and "booked already" in twice.json()["detail"]
    other = _plan(app, rider, depart + dt.timedelta(minutes=30))[0]
    reused = app.post("/journeys", headers={**rider, **key}, json={"itinerary": other["id"]})
    assert reused.status_code == 422 and "Idempotency-Key" in reused.json()["detail"]
    # The drop-off at Herrenberg is in a vehicle's stored plan, promised by the S1's departure less the change.
    plans, bookings, _ = asyncio.run(_stored(journey_settings.database_url or ""))
    assert any([leg["booking_id"], "dropoff"] in stops for stops in plans.values())
    stored = bookings[leg["booking_id"]]
    assert stored["dropoff_latest"] <= _t(train["departure"]) - dt.timedelta(seconds=CHANGE_S)
    assert stored["destination_lat"] == pytest.approx(ride["to"]["lat"])
    # Seen by the rider with live status; cancelled as one.
    seen = app.get(f"/journeys/{journey['id']}", headers=rider).json()
    assert seen["legs"][0]["ride"]["eta_stop"] == "pickup"
    assert any(j["id"] == journey["id"] for j in app.get("/journeys", headers=rider).json())
    _, other = Users(journey_settings).make("rider")
    assert app.get(f"/journeys/{journey['id']}", headers=other).status_code == 404
    assert app.post("/journeys", headers=other, json={"itinerary": it["id"]}).status_code == 404
    cancelled = app.post(f"/journeys/{journey['id']}/cancel", headers=rider, json={"reason": "plans changed"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["legs"][0]["ride"]["status"] == "cancelled"
    plans, _, _ = asyncio.run(_stored(journey_settings.database_url or ""))
    assert not any(leg["booking_id"] in (rid for rid, _ in stops) for stops in plans.values()), "the seat is free"
    assert [e["kind"] for e in cancelled.json()["events"]] == ["confirmed", "cancelled"]


def test_operators_find_rides_by_their_train_and_journeys_by_rider(
    app: TestClient, people: dict[str, dict[str, str]], journey_settings: Settings
) -> None:
    depart = _weekday_morning(1, 9, 30)
    vehicle_on_shift(app, people["operator"], seats=8, starts=depart - dt.timedelta(hours=1), hours=6)
    name = f"Jana Pendlerin {uuid.uuid4().hex[:6]}"
    _, rider = Users(journey_settings).make("rider", name=name)
    it = min(_feeders(_plan(app, rider, depart)), key=lambda x: x["arrival"])
    booked = app.post("/journeys", headers=rider, json={"itinerary": it["id"]})
    assert booked.status_code == 201, booked.text
    journey, train = booked.json(), _first_train(it)
    operator = people["operator"]

    def bookings(**params: str) -> list[dict[str, Any]]:
        answer = app.get("/bookings", headers=operator, params={"q": name, **params})
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    (ride,) = bookings(connection="first_mile")
    assert ride["journey_id"] == journey["id"] and ride["rider_name"] == name
    connection = ride["connection"]
    assert connection["kind"] == "first_mile" and connection["trip"] == train["trip"]
    assert connection["stop"] == train["from"]["stop"] and connection["stop_name"] == train["from"]["name"]
    assert connection["route_name"] == "S1" and _t(connection["at"]) == _t(train["departure"])
    assert [b["id"] for b in bookings(connection="any")] == [ride["id"]]
    assert bookings(connection="none") == [] and bookings(connection="last_mile") == []
    # The journey's own view names the train the same way.
    seen = app.get(f"/journeys/{journey['id']}", headers=rider).json()["legs"][0]["ride"]["connection"]
    assert seen["stop_name"] == connection["stop_name"] and seen["route_name"] == "S1"
    # Journeys by the rider's name, status, the start of the id; sorted by departure both ways; paged.
    found = app.get("/journeys", headers=operator, params={"q": name.upper()})
    assert [j["id"] for j in found.json()] == [journey["id"]] and found.headers["x-total-count"] == "1"
    assert app.get("/journeys", headers=operator, params={"q": journey["id"][:8]}).json()[0]["id"] == journey["id"]
    assert app.get("/journeys", headers=operator, params={"q": name, "status": "cancelled,completed"}).json() == []
    everyone = app.get("/journeys", headers=operator, params={"sort": "departure", "limit": 500})
    departures = [_t(j["departure"]) for j in everyone.json()]
    assert departures == sorted(departures) and int(everyone.headers["x-total-count"]) == len(departures) >= 2
    backwards = app.get("/journeys", headers=operator, params={"sort": "-departure", "limit": 500}).json()
    assert [_t(j["departure"]) for j in backwards] == sorted(departures, reverse=True)
    page = app.get("/journeys", headers=operator, params={"sort": "departure", "limit": 1, "offset": 1})
    assert [j["id"] for j in page.json()] == [everyone.json()[1]["id"]] and page.headers["x-total-count"] == str(
        len(departures)
    )
    # A rider sees only their own.
    own = app.get("/journeys", headers=rider)
    assert [j["id"] for j in own.json()] == [journey["id"]] and own.headers["x-total-count"] == "1"
    assert app.get("/journeys", headers=people["rider"], params={"q": name}).json() == []


async def _expire(url: str, itinerary_id: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE itineraries SET expires_at = now() - interval '1 second' WHERE id = $1", uuid.UUID(itinerary_id)
        )
    finally:
        await conn.close()


def test_a_full_fleet_offers_a_later_train_or_nothing_and_a_stale_itinerary_is_refused(
    app: TestClient, people: dict[str, dict[str, str]], journey_settings: Settings
) -> None:
    # Another morning, one bus with one seat.
    depart = _weekday_morning(2, 7, 30)
    vehicle_on_shift(app, people["operator"], seats=1, starts=depart - dt.timedelta(hours=1), hours=6)
    rider = people["rider"]
    before = _feeders(_plan(app, rider, depart))
    assert before, "an empty bus takes the rider to the train"
    first = min(_t(_first_train(it)["departure"]) for it in before)
    earliest_ride = min(before, key=lambda it: _t(_first_train(it)["departure"]))
    # The one seat is taken from Kuppingen to Rohrau from 07:25: the bus cannot also fetch the rider.
    busy = app.post(
        "/bookings",
        headers=people["rider"],
        json={
            "origin": KUPPINGEN,
            "destination": ROHRAU,
            "earliest_pickup": (depart - dt.timedelta(minutes=5)).isoformat(),
        },
    )
    assert busy.status_code == 201, busy.text
    after = _feeders(_plan(app, rider, depart))
    assert all(_t(_first_train(it)["departure"]) > first for it in after), "a full bus is not offered for that train"
    # The itinerary planned while the bus was empty no longer fits: refused, with what fits now.
    refused = app.post("/journeys", headers=rider, json={"itinerary": earliest_ride["id"]})
    assert refused.status_code == 409, refused.text
    assert "no longer fits" in refused.json()["detail"]
    assert "itineraries" in refused.json()
    assert all(it["id"] for it in refused.json()["itineraries"])
    # Offers expire: booking after that is refused with what fits now.
    late = _feeders(_plan(app, rider, depart))
    assert late
    asyncio.run(_expire(journey_settings.database_url or "", late[0]["id"]))
    expired = app.post("/journeys", headers=rider, json={"itinerary": late[0]["id"]})
    assert expired.status_code == 409 and "expired" in expired.json()["detail"], expired.text
    assert "itineraries" in expired.json()
    assert app.post("/journeys", headers=rider, json={"itinerary": str(uuid.uuid4())}).status_code == 404
    assert app.post("/journeys", headers=rider, json={"itinerary": "not-an-id"}).status_code == 400
    assert (
        app.get(
            "/plan",
            headers=rider,
            params={"from": NEBRINGEN, "to": STUTTGART, "depart": depart.isoformat(), "seated": 0},
        ).status_code
        == 422
    )


def test_200_riders_plan_and_book_journeys_at_once_without_overbooking(
    people: dict[str, dict[str, str]], journey_settings: Settings, app: TestClient
) -> None:
    from maas.bench.server import running_server

    depart = _weekday_morning(4, 8, 0)
    for _ in range(3):
        vehicle_on_shift(app, people["operator"], seats=4, starts=depart - dt.timedelta(hours=1), hours=4)
    users = Users(journey_settings)
    riders = [users.make("rider")[1] for _ in range(40)]
    env = {
        **os.environ,
        "MAAS_DATABASE_URL": journey_settings.database_url or "",
        "MAAS_JWT_SECRET": journey_settings.jwt_secret,
        "MAAS_NETWORK_DIR": str(journey_settings.network_dir),
        "MAAS_DATA_DIR": str(journey_settings.data_dir),
        "MAAS_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    origins = ["48.5627,8.8481", "48.6113,8.8430", "48.6237,8.9101", "48.59981,8.88535"]

    async def one(http: httpx.AsyncClient, k: int) -> tuple[int, dict[str, Any]]:
        rider = riders[k % len(riders)]
        when = depart + dt.timedelta(minutes=(k % 12) * 5)
        plan = await http.get(
            "/plan", headers=rider, params={"from": origins[k % 4], "to": STUTTGART, "depart": when.isoformat()}
        )
        assert plan.status_code == 200, plan.text
        feeders = _feeders(plan.json()["itineraries"])
        if not feeders:
            return 0, {}
        booked = await http.post(
            "/journeys", headers={**rider, "Idempotency-Key": f"crowd-{k}"}, json={"itinerary": feeders[0]["id"]}
        )
        return booked.status_code, booked.json()

    async def crowd(url: str) -> list[tuple[int, dict[str, Any]]]:
        async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=50)) as http:
            return await asyncio.gather(*(one(http, k) for k in range(200)))

    with running_server(env, workers=2, timeout_s=120) as url:
        answers = asyncio.run(crowd(url))
    statuses = [s for s, _ in answers]
    assert set(statuses) <= {0, 201, 409}, sorted(set(statuses))
    assert statuses.count(201) > 0
    for status, body in answers:
        if status == 409:
            assert body["detail"] and "itineraries" in body
    confirmed = [body for status, body in answers if status == 201]
    plans, bookings, seats = asyncio.run(_stored(journey_settings.database_url or ""))
    # No bus ever carries more riders than it has seats, along its stored plan.
    for shift, stops in plans.items():
        load = 0
        for rid, kind in stops:
            load += bookings[rid]["seated"] * (1 if kind == "pickup" else -1)
            assert 0 <= load <= seats[shift]
    for journey in confirmed:
        for leg in journey["legs"]:
            ride = leg["ride"]
            if ride is None:
                continue
            stored = bookings[ride["booking_id"]]
            assert any([ride["booking_id"], "dropoff"] in stops for stops in plans.values())
            connection = ride["connection"]
            if connection["kind"] == "first_mile":
                assert stored["dropoff_latest"] <= _t(connection["at"]) - dt.timedelta(seconds=connection["change_s"])
            if connection["kind"] == "last_mile":
                assert stored["pickup_earliest"] >= _t(connection["at"]) + dt.timedelta(seconds=connection["change_s"])


def test_plans_offer_rides_only_inside_the_service_area_in_force(
    app: TestClient, people: dict[str, dict[str, str]]
) -> None:
    depart = _weekday_morning(1, 9, 0)
    vehicle_on_shift(app, people["operator"], seats=4, starts=depart - dt.timedelta(hours=1), hours=6)
    rider, operator = people["rider"], people["operator"]
    assert _feeders(_plan(app, rider, depart)), "Nebringen is served"
    town = {
        "type": "Polygon",
        "coordinates": [[[8.845, 48.585], [8.885, 48.585], [8.885, 48.615], [8.845, 48.615], [8.845, 48.585]]],
    }
    assert app.put("/service", headers=operator, json={"name": "town", "area": town}).status_code == 200
    try:
        rides = [leg for it in _plan(app, rider, depart) for leg in it["legs"] if leg["mode"] == "on_demand"]
        assert not rides, "Nebringen lies outside the town: no Rufbus is offered"
    finally:
        assert app.put("/service", headers=operator, json={"name": "Rufbus Gäu", "area": REGION}).status_code == 200


def test_home_from_the_train_by_rufbus_waits_for_the_s1_and_arrive_by_plans_too(
    app: TestClient, people: dict[str, dict[str, str]]
) -> None:
    evening = _weekday_morning(1, 17, 0)
    vehicle_on_shift(app, people["operator"], seats=4, starts=evening - dt.timedelta(hours=1), hours=6)
    rider = people["rider"]
    answer = app.get("/plan", headers=rider, params={"from": STUTTGART, "to": NEBRINGEN, "depart": evening.isoformat()})
    assert answer.status_code == 200, answer.text
    home = [it for it in answer.json()["itineraries"] if it["legs"][-1]["mode"] == "on_demand"]
    assert home, [[leg["mode"] for leg in it["legs"]] for it in answer.json()["itineraries"]]
    it = home[0]
    train = next(leg for leg in reversed(it["legs"]) if leg["mode"] == "transit")
    offer = it["legs"][-1]["offer"]
    assert _t(offer["pickup_window"]["earliest"]) >= _t(train["arrival"]) + dt.timedelta(seconds=CHANGE_S)
    booked = app.post("/journeys", headers=rider, json={"itinerary": it["id"]})
    assert booked.status_code == 201, booked.text
    ride = booked.json()["legs"][-1]["ride"]
    assert ride["connection"]["kind"] == "last_mile" and ride["connection"]["trip"] == train["trip"]
    assert _t(ride["pickup_window"]["earliest"]) >= _t(train["arrival"]) + dt.timedelta(seconds=CHANGE_S)
    # Arriving by a time: the Rufbus still brings the rider to a train that gets there in time.
    deadline = _weekday_morning(1, 9, 30)
    vehicle_on_shift(app, people["operator"], seats=4, starts=deadline - dt.timedelta(hours=3), hours=6)
    by = app.get("/plan", headers=rider, params={"from": NEBRINGEN, "to": STUTTGART, "arrive_by": deadline.isoformat()})
    assert by.status_code == 200, by.text
    assert by.json()["itineraries"] and all(_t(x["arrival"]) <= deadline for x in by.json()["itineraries"])
    assert _feeders(by.json()["itineraries"]), "a Rufbus to the S1 arrives in time"


def test_a_stop_based_service_walks_the_rider_to_the_nearest_stop(
    app: TestClient, people: dict[str, dict[str, str]]
) -> None:
    depart = _weekday_morning(1, 10, 0)
    vehicle_on_shift(app, people["operator"], seats=4, starts=depart - dt.timedelta(hours=1), hours=6)
    operator, rider = people["operator"], people["rider"]
    rules = {"change_s": 180, "stops": "virtual_stops", "virtual_stop_walk_m": 600}
    assert (
        app.put("/service", headers=operator, json={"name": "Gäu", "area": REGION, "rules": rules}).status_code == 200
    )
    try:
        kuppingen = f"{KUPPINGEN['lat']},{KUPPINGEN['lon']}"
        answer = app.get(
            "/plan", headers=rider, params={"from": kuppingen, "to": STUTTGART, "depart": depart.isoformat()}
        )
        assert answer.status_code == 200, answer.text
        rides = [it for it in answer.json()["itineraries"] if any(leg["mode"] == "on_demand" for leg in it["legs"])]
        assert rides, [[leg["mode"] for leg in it["legs"]] for it in answer.json()["itineraries"]]
        for it in rides:
            k = next(n for n, leg in enumerate(it["legs"]) if leg["mode"] == "on_demand")
            ride = it["legs"][k]
            assert ride["from"]["stop"], "the Rufbus starts at a stop"
            walk = it["legs"][k - 1]
            assert k > 0 and walk["mode"] == "walk" and walk["to"] == ride["from"]
            assert walk["arrival"] <= ride["departure"] and walk["distance_m"] <= 600 * 1.3 + 1
            assert it["walk_m"] >= walk["distance_m"] - 0.1
    finally:
        assert (
            app.put("/service", headers=operator, json={"name": "Rufbus Gäu", "rules": {"change_s": 180}}).status_code
            == 200
        )


def _late(trip: str, day: dt.date, delay_s: int) -> bytes:
    """A fresh TripUpdates message (made with the reference bindings): the S1 run `trip` (namespaced)
    of service day `day`, `delay_s` late from its first stop on."""
    from google.transit import gtfs_realtime_pb2 as pb

    message = pb.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.timestamp = int(dt.datetime.now(dt.UTC).timestamp())
    update = message.entity.add(id=f"late-{delay_s}").trip_update
    update.trip.trip_id = trip.removeprefix("vvs-s1-only:")
    update.trip.start_date = day.strftime("%Y%m%d")
    update.stop_time_update.add(stop_sequence=1).departure.delay = delay_s
    return bytes(message.SerializeToString())


def _events_until(app: TestClient, rider: dict[str, str], journey_id: str, kind: str) -> dict[str, Any]:
    """The journey once an event of `kind` is on it (connection protection runs in the background)."""
    import time

    # Protection reviews at once after a stored update and every gtfs_rt_interval_s (30 s): an update
    # whose overlay was not yet swapped in at the first review is acted on at the next one.
    deadline = time.monotonic() + 75
    while True:
        seen = app.get(f"/journeys/{journey_id}", headers=rider).json()
        if any(e["kind"] == kind for e in seen["events"]):
            return dict(seen)
        assert time.monotonic() < deadline, seen["events"]
        time.sleep(0.3)


def test_a_late_s1_makes_the_rufbus_wait_or_warns_rider_and_operator(
    app: TestClient, people: dict[str, dict[str, str]], journey_settings: Settings
) -> None:
    # Tomorrow evening (the S1 runs every day): within the two days ahead that protection looks at.
    tomorrow = dt.datetime.now(BERLIN).date() + dt.timedelta(days=1)
    evening = dt.datetime.combine(tomorrow, dt.time(18, 0), BERLIN)
    vehicle_on_shift(app, people["operator"], seats=4, starts=evening - dt.timedelta(hours=1), hours=6)
    operator, rider = people["operator"], people["rider"]
    answer = app.get("/plan", headers=rider, params={"from": STUTTGART, "to": NEBRINGEN, "depart": evening.isoformat()})
    assert answer.status_code == 200, answer.text
    home = next(it for it in answer.json()["itineraries"] if it["legs"][-1]["mode"] == "on_demand")
    journey = app.post("/journeys", headers=rider, json={"itinerary": home["id"]}).json()
    ride = journey["legs"][-1]["ride"]
    connection = ride["connection"]
    # Another rider on the same bus an hour later: that promise must hold whatever happens.
    other = app.post(
        "/bookings",
        headers=rider,
        json={
            "origin": KUPPINGEN,
            "destination": HERRENBERG_BAHNHOF,
            "earliest_pickup": (_t(connection["at"]) + dt.timedelta(minutes=60)).isoformat(),
        },
    ).json()
    day = _t(connection["at"]).astimezone(BERLIN).date()
    protobuf = {**operator, "Content-Type": "application/x-protobuf"}

    posted = app.post("/realtime/gtfs-rt/vvs-s1-only", headers=protobuf, content=_late(connection["trip"], day, 360))
    assert posted.status_code == 201, posted.text
    waited = _events_until(app, rider, journey["id"], "waiting_for_train")
    moved = waited["legs"][-1]["ride"]
    assert waited["status"] == "confirmed"
    expected = _t(connection["at"]) + dt.timedelta(seconds=360 + connection["change_s"])
    assert _t(moved["pickup_window"]["earliest"]) >= expected, "the Rufbus waits for the late S1"
    assert _t(moved["pickup_window"]["earliest"]) > _t(ride["pickup_window"]["earliest"])
    kept = app.get(f"/bookings/{other['id']}", headers=rider).json()
    assert kept["pickup_window"] == other["pickup_window"] and kept["status"] == "confirmed"
    assert "6 min late" in next(e["detail"] for e in waited["events"] if e["kind"] == "waiting_for_train")

    with app.websocket_connect(f"/ws/fleet?token={operator['Authorization'].split()[1]}") as fleet:
        posted = app.post(
            "/realtime/gtfs-rt/vvs-s1-only", headers=protobuf, content=_late(connection["trip"], day, 25 * 60)
        )
        assert posted.status_code == 201, posted.text
        warned = _events_until(app, rider, journey["id"], "connection_at_risk")
        told, pushed = None, None
        for _ in range(50):
            message = fleet.receive_json(timeout=10)
            if message.get("type") == "alert" and message["alert"]["booking_id"] == ride["booking_id"]:
                pushed = message["alert"]
            if message.get("type") == "journey":
                told = message
                break
    assert warned["status"] == "at_risk"
    # The operators' inbox holds it after a reload too: one open alert, the one pushed.
    listed = app.get("/alerts", headers=operator, params={"booking_id": ride["booking_id"]})
    assert listed.status_code == 200, listed.text
    (alert,) = listed.json()
    assert pushed == alert and alert["kind"] == "connection_missed" and alert["severity"] == "critical"
    assert told is not None and alert["journey_id"] == journey["id"] and alert["vehicle_id"] == told["vehicle_id"]
    assert "25 min late" in alert["detail"] and alert["resolved_at"] is None
    assert alert["actions"] == ["reassign", "book_next", "cancel", "call_rider"]
    assert app.get("/alerts", headers=rider).status_code == 403
    alert = next(e["detail"] for e in warned["events"] if e["kind"] == "connection_at_risk")
    assert "25 min late" in alert and "cannot wait" in alert and ("Next option" in alert or "No vehicle" in alert)
    assert told is not None and told["journey_id"] == journey["id"] and told["state"] == "missed"
    assert app.get(f"/bookings/{other['id']}", headers=rider).json()["pickup_window"] == other["pickup_window"]


def test_a_first_mile_rider_is_told_before_pickup_when_the_train_is_cancelled(
    app: TestClient, people: dict[str, dict[str, str]]
) -> None:
    from google.transit import gtfs_realtime_pb2 as pb

    tomorrow = dt.datetime.now(BERLIN).date() + dt.timedelta(days=1)
    morning = dt.datetime.combine(tomorrow, dt.time(11, 0), BERLIN)
    vehicle_on_shift(app, people["operator"], seats=4, starts=morning - dt.timedelta(hours=1), hours=6)
    operator, rider = people["operator"], people["rider"]
    it = min(_feeders(_plan(app, rider, morning)), key=lambda x: x["arrival"])
    journey = app.post("/journeys", headers=rider, json={"itinerary": it["id"]}).json()
    connection = journey["legs"][0]["ride"]["connection"]
    assert connection["kind"] == "first_mile"
    message = pb.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.timestamp = int(dt.datetime.now(dt.UTC).timestamp())
    update = message.entity.add(id="cancelled").trip_update
    update.trip.trip_id = connection["trip"].removeprefix("vvs-s1-only:")
    update.trip.start_date = _t(connection["at"]).astimezone(BERLIN).strftime("%Y%m%d")
    update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
    posted = app.post(
        "/realtime/gtfs-rt/vvs-s1-only",
        headers={**operator, "Content-Type": "application/x-protobuf"},
        content=message.SerializeToString(),
    )
    assert posted.status_code == 201, posted.text
    told = _events_until(app, rider, journey["id"], "connection_at_risk")
    assert told["status"] == "at_risk" and told["legs"][0]["ride"]["status"] == "confirmed"
    assert "cancelled" in next(e["detail"] for e in told["events"] if e["kind"] == "connection_at_risk")
    booking_id = journey["legs"][0]["ride"]["booking_id"]
    (alert,) = app.get("/alerts", headers=operator, params={"booking_id": booking_id, "kind": "train_cancelled"}).json()
    assert alert["severity"] == "warning" and alert["journey_id"] == journey["id"]  # told before pickup
    # The rider cancels the ride: nothing is left to act on.
    assert app.post(f"/bookings/{booking_id}/cancel", headers=rider).status_code == 200
    (over,) = app.get("/alerts", headers=operator, params={"booking_id": booking_id, "state": "resolved"}).json()
    assert over["id"] == alert["id"] and over["resolution"] == "the booking was cancelled by its rider"
    assert over["actions"] == [] and not app.get("/alerts", headers=operator, params={"booking_id": booking_id}).json()
    # Clear the cancellation for the other tests of the module.
    empty = pb.FeedMessage()
    empty.header.gtfs_realtime_version = "2.0"
    empty.header.timestamp = int(dt.datetime.now(dt.UTC).timestamp())
    cleared = app.post(
        "/realtime/gtfs-rt/vvs-s1-only",
        headers={**operator, "Content-Type": "application/x-protobuf"},
        content=empty.SerializeToString(),
    )
    assert cleared.status_code == 201
