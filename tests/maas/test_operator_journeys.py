"""An operator books a Rufbus + train journey for a phone caller (no app account), over HTTP, on the
Herrenberg network whose timetables run this week: the ride names the caller, its connection is
protected and the operator is told whom to phone; the caller's erasure and the retention job
pseudonymise the journey."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from google.transit import gtfs_realtime_pb2 as pb
from litestar.testing import TestClient

from maas.app import create_app
from maas.demo import demo_region
from maas.model import Retention
from maas.retention import apply_retention
from maas.settings import Settings
from tests.helpers import BERLIN, vehicle_on_shift
from tests.maas.conftest import Users, own_database

NEBRINGEN = "48.5627,8.8481"
STUTTGART = "stop:vvs-s1-only:de:08111:6118:1:102"
REGION = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())
ERIKA = {"name": "Erika Mustermann", "phone": "+49 7032 555-0101"}


@pytest.fixture(scope="module")
def own(settings: Settings, today_network_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with own_database(settings, "maas_callers", today_network_dir, tmp_path_factory.mktemp("callers-data")) as s:
        yield s


@pytest.fixture(scope="module")
def app(own: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(own)) as client:
        yield client


@pytest.fixture(scope="module")
def people(app: TestClient, own: Settings) -> dict[str, dict[str, str]]:
    users = Users(own)
    people = {role: users.make(role)[1] for role in ("operator", "rider")}
    defined = app.put(
        "/service", headers=people["operator"], json={"name": "Rufbus Gäu", "area": REGION, "rules": {"change_s": 180}}
    )
    assert defined.status_code == 200, defined.text
    return people


def _sql(own: Settings, query: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(own.database_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def _feeder(app: TestClient, operator: dict[str, str], depart: dt.datetime) -> dict[str, Any]:
    """The operator's plan from Nebringen to Stuttgart: the earliest itinerary that starts with a Rufbus to a train."""
    answer = app.get(
        "/plan", headers=operator, params={"from": NEBRINGEN, "to": STUTTGART, "depart": depart.isoformat()}
    )
    assert answer.status_code == 200, answer.text
    feeders = [
        it
        for it in answer.json()["itineraries"]
        if it["legs"][0]["mode"] == "on_demand" and any(leg["mode"] == "transit" for leg in it["legs"])
    ]
    assert feeders, [[leg["mode"] for leg in it["legs"]] for it in answer.json()["itineraries"]]
    return dict(min(feeders, key=lambda it: it["arrival"]))


def _tomorrow(hour: int) -> dt.datetime:
    return dt.datetime.combine(dt.datetime.now(BERLIN).date() + dt.timedelta(days=1), dt.time(hour), BERLIN)


def test_an_operator_books_a_journey_for_a_phone_caller_who_is_then_erased(
    app: TestClient, people: dict[str, dict[str, str]], own: Settings
) -> None:
    operator, rider = people["operator"], people["rider"]
    depart = _tomorrow(8)
    vehicle_on_shift(app, operator, seats=4, starts=depart - dt.timedelta(hours=1), hours=6)
    it = _feeder(app, operator, depart)
    train = next(leg for leg in it["legs"] if leg["mode"] == "transit")
    key = {"Idempotency-Key": f"caller-{uuid.uuid4()}"}
    body = {"itinerary": it["id"], "caller": ERIKA}

    assert app.post("/operator/journeys", headers=rider, json=body).status_code == 403
    booked = app.post("/operator/journeys", headers={**operator, **key}, json=body)
    assert booked.status_code == 201, booked.text
    journey = booked.json()
    assert journey["caller"] == ERIKA and journey["status"] == "confirmed" and journey["itinerary_id"] == it["id"]
    ride = journey["legs"][0]["ride"]
    assert ride["booking_id"] == it["legs"][0]["offer"]["id"] and ride["status"] == "confirmed"
    assert ride["connection"]["kind"] == "first_mile" and ride["connection"]["trip"] == train["trip"]

    again = app.post("/operator/journeys", headers={**operator, **key}, json=body)
    assert again.status_code == 200 and again.json()["id"] == journey["id"]
    other_caller = {**body, "caller": {"name": "Max", "phone": "+49 7032 1"}}
    reused = app.post("/operator/journeys", headers={**operator, **key}, json=other_caller)
    assert reused.status_code == 422 and "another caller" in reused.json()["detail"]
    twice = app.post("/operator/journeys", headers=operator, json=other_caller)
    assert twice.status_code == 409 and "booked already" in twice.json()["detail"]

    seen = app.get(f"/journeys/{journey['id']}", headers=operator)
    assert seen.status_code == 200 and seen.json()["caller"] == ERIKA
    assert seen.json()["legs"][0]["ride"]["connection"] == ride["connection"]
    assert any(j["id"] == journey["id"] and j["caller"] == ERIKA for j in app.get("/journeys", headers=operator).json())
    found = app.get("/journeys", headers=operator, params={"q": ERIKA["name"].split()[0]})
    assert [j["id"] for j in found.json()] == [journey["id"]] and found.headers["X-Total-Count"] == "1"
    assert app.get(f"/journeys/{journey['id']}", headers=rider).status_code == 404, "no rider's journey"
    assert all(j["id"] != journey["id"] for j in app.get("/journeys", headers=rider).json())
    booking = next(b for b in app.get("/bookings", headers=operator).json() if b["id"] == ride["booking_id"])
    assert booking["caller"] == ERIKA and booking["rider_id"] is None
    assert _t(booking["dropoff_latest"]) <= _t(train["departure"]) - dt.timedelta(seconds=180)
    audited = [e for e in app.get("/audit", headers=operator).json() if e["subject"] == ride["booking_id"]]
    assert [e["action"] for e in audited] == ["phone_booking"] and "phone" not in audited[0]["details"]

    # The caller's erasure waits for the ride; cancelled by the operator, the journey is pseudonymised.
    refused = app.post("/operator/callers/erase", headers=operator, json={"phone": "+4970325550101"})
    assert refused.status_code == 409, refused.text
    cancelled = app.post(f"/journeys/{journey['id']}/cancel", headers=operator, json={"reason": "caller rang back"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["legs"][0]["ride"]["status"] == "cancelled"
    erased = app.post("/operator/callers/erase", headers=operator, json={"phone": "+49 (7032) 5550101"})
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"bookings": 1, "audit_entries": 1, "journeys": 1}
    after = app.get(f"/journeys/{journey['id']}", headers=operator).json()
    assert after["caller"]["phone"] is None and after["caller"]["name"].startswith("caller ")
    assert ERIKA["name"] not in json.dumps(after)
    [stored] = _sql(
        own, "SELECT itinerary::text, pseudonymised_at FROM journeys WHERE id = $1", uuid.UUID(journey["id"])
    )
    legs = json.loads(stored["itinerary"])["legs"]
    assert stored["pseudonymised_at"] is not None and all(leg["geometry"] == "" for leg in legs)
    assert legs[0]["from"]["lat"] == round(it["legs"][0]["from"]["lat"], 3), "the caller's door kept to ~100 m"
    again_erased = app.post("/operator/callers/erase", headers=operator, json={"phone": ERIKA["phone"]})
    assert again_erased.status_code == 404


def test_bad_bodies_and_unknown_itineraries_are_refused(app: TestClient, people: dict[str, dict[str, str]]) -> None:
    operator = people["operator"]
    unknown = str(uuid.uuid4())
    for body in (
        {"itinerary": unknown},
        {"caller": ERIKA},
        {"itinerary": "not-a-uuid", "caller": ERIKA},
        {"itinerary": unknown, "caller": {"name": "", "phone": "1"}},
        {"itinerary": unknown, "caller": {"name": "Erika", "phone": "call me"}},
        {"itinerary": unknown, "caller": ERIKA, "rider_id": unknown},
    ):
        answer = app.post("/operator/journeys", headers=operator, json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    missing = app.post("/operator/journeys", headers=operator, json={"itinerary": unknown, "caller": ERIKA})
    assert missing.status_code == 404 and "plan again" in missing.json()["detail"]
    long_key = {"Idempotency-Key": "k" * 201}
    assert app.post(
        "/operator/journeys", headers={**operator, **long_key}, json={"itinerary": unknown, "caller": ERIKA}
    ).status_code in (400, 422)


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _journey_message(fleet: Any, journey_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 75  # protection reviews at once, and again every gtfs_rt_interval_s
    while time.monotonic() < deadline:
        message = fleet.receive_json(timeout=80)
        if message.get("type") == "journey" and message["journey_id"] == journey_id:
            return dict(message)
    raise AssertionError("the operator was not told")


def test_a_cancelled_train_tells_the_operator_to_phone_the_caller_and_retention_forgets_them(
    app: TestClient, people: dict[str, dict[str, str]], own: Settings
) -> None:
    operator = people["operator"]
    morning = _tomorrow(11)
    vehicle_on_shift(app, operator, seats=4, starts=morning - dt.timedelta(hours=1), hours=6)
    it = _feeder(app, operator, morning)
    caller = {"name": "Karl Anrufer", "phone": "07032 555 0202"}
    journey = app.post("/operator/journeys", headers=operator, json={"itinerary": it["id"], "caller": caller}).json()
    connection = journey["legs"][0]["ride"]["connection"]
    message = pb.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.timestamp = int(dt.datetime.now(dt.UTC).timestamp())
    update = message.entity.add(id="cancelled").trip_update
    update.trip.trip_id = connection["trip"].removeprefix("vvs-s1-only:")
    update.trip.start_date = _t(connection["at"]).astimezone(BERLIN).strftime("%Y%m%d")
    update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
    protobuf = {**operator, "Content-Type": "application/x-protobuf"}
    with app.websocket_connect(f"/ws/fleet?token={operator['Authorization'].split()[1]}") as fleet:
        posted = app.post("/realtime/gtfs-rt/vvs-s1-only", headers=protobuf, content=message.SerializeToString())
        assert posted.status_code == 201, posted.text
        told = _journey_message(fleet, journey["id"])
    assert told["state"] == "cancelled" and told["caller"] == caller["name"]
    assert "phones the caller" in told["action"] and caller["phone"] not in json.dumps(told), "drivers hear it too"
    seen = app.get(f"/journeys/{journey['id']}", headers=operator).json()
    assert seen["status"] == "at_risk" and any(e["kind"] == "connection_at_risk" for e in seen["events"])
    message.ClearField("entity")
    assert (
        app.post("/realtime/gtfs-rt/vvs-s1-only", headers=protobuf, content=message.SerializeToString()).status_code
        == 201
    )

    # personal_days after the journey, the retention job pseudonymises the caller on journey and ride.
    assert app.post(f"/journeys/{journey['id']}/cancel", headers=operator).status_code == 200
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=Retention().personal_days + 3)

    async def run() -> Any:
        conn = await asyncpg.connect(own.database_url)
        try:
            dry = await apply_retention(conn, Retention(), now=later, dry_run=True)
            return dry, await apply_retention(conn, Retention(), now=later)
        finally:
            await conn.close()

    dry, done = asyncio.run(run())
    assert dry.caller_journeys >= 1 and done.caller_journeys == dry.caller_journeys
    after = app.get(f"/journeys/{journey['id']}", headers=operator).json()
    assert after["caller"]["phone"] is None and after["caller"]["name"].startswith("caller ")
    ride = app.get(f"/bookings/{journey['legs'][0]['ride']['booking_id']}", headers=operator).json()
    assert ride["caller"]["phone"] is None
    [row] = _sql(own, "SELECT count(*) AS n FROM journeys WHERE caller_phone IS NOT NULL")
    assert row["n"] == 0
