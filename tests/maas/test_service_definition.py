"""Operators define the on-demand service once, in the database, versioned: quotes and bookings follow it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.db.database import Database
from maas.demo import demo_region
from maas.served import seed_service_area
from maas.settings import Settings
from routing.ondemand import ServiceError
from tests.helpers import BERLIN, HERRENBERG_BAHNHOF, NEBRINGEN, soon, vehicle_on_shift
from tests.maas.conftest import Users, fresh_database

REGION = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())


@pytest.fixture
def operator(client: TestClient, users: Users) -> Iterator[dict[str, str]]:
    """An operator; the definition goes back to the whole region at every rule's default afterwards,
    as the other tests of the session expect."""
    _, headers = users.make("operator")
    yield headers
    reset = client.put("/service", headers=headers, json={"name": "demo region", "area": REGION, "rules": {}})
    assert reset.status_code == 200, reset.text


def _ride(hours: float) -> dict[str, Any]:
    return {"origin": NEBRINGEN, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": soon(hours)}


def test_the_definition_is_versioned_and_checked(client: TestClient, users: Users, operator: dict[str, str]) -> None:
    _, rider = users.make("rider")
    first = client.put("/service", headers=operator, json={"name": "Rufbus Gäu", "area": REGION})
    assert first.status_code == 200, first.text
    assert first.json()["rules"]["ride_factor"] == 1.5 and first.json()["rules"]["pickup_window_s"] == 600
    rules = {"min_notice_s": 1800, "max_days_ahead": 2, "pickup_window_s": 900, "change_s": 240}
    second = client.put("/service", headers=operator, json={"name": "Rufbus Gäu", "rules": rules})
    assert second.status_code == 200, second.text
    assert second.json()["version"] > first.json()["version"]
    assert second.json()["area"] == REGION, "an area left out is kept"
    seen = client.get("/service", headers=rider).json()
    assert seen["version"] == second.json()["version"] and seen["rules"]["change_s"] == 240
    # Setting the area alone keeps the rules.
    assert client.put("/service-area", headers=operator, json={"name": "Gäu", "geometry": REGION}).status_code == 200
    assert client.get("/service", headers=rider).json()["rules"]["min_notice_s"] == 1800
    assert client.put("/service", headers=rider, json={"name": "x"}).status_code == 403
    for bad, named in (
        ({"ride_factor": 0.5}, "ride_factor"),
        ({"pickup_window_s": 5}, "pickup_window_s"),
        ({"max_days_ahead": -1}, "max_days_ahead"),
        ({"hours": []}, "hours"),
        ({"hours": [{"days": ["mon"], "start": "25:00", "end": "10:00"}]}, "start"),
        ({"hours": [{"days": ["someday"]}]}, "days"),
        ({"detour": 3}, "detour"),
        ({"stops": "anywhere"}, "stops"),
    ):
        refused = client.put("/service", headers=operator, json={"name": "Gäu", "rules": bad})
        assert refused.status_code in (400, 422), (bad, refused.text)
        assert named in refused.text, (bad, refused.text)
    assert client.get("/service", headers=rider).json()["version"] >= second.json()["version"]
    assert client.put("/service", headers=operator, json={"name": " "}).status_code == 422


def test_quotes_and_bookings_follow_the_rules_in_force(
    client: TestClient, users: Users, operator: dict[str, str]
) -> None:
    vehicle_on_shift(client, operator, seats=4, hours=12)
    _, rider = users.make("rider")
    rules = {"min_notice_s": 1800, "max_days_ahead": 1, "pickup_window_s": 900}
    assert (
        client.put("/service", headers=operator, json={"name": "Gäu", "area": REGION, "rules": rules}).status_code
        == 200
    )
    too_soon = client.post("/quotes", headers=rider, json=_ride(0.2))
    assert too_soon.status_code == 422 and "30 minutes ahead" in too_soon.json()["detail"]
    too_far = client.post("/bookings", headers=rider, json=_ride(30))
    assert too_far.status_code == 422 and "1 days ahead" in too_far.json()["detail"]
    booked = client.post("/bookings", headers=rider, json=_ride(1))
    assert booked.status_code == 201, booked.text
    ride = booked.json()
    window = dt.datetime.fromisoformat(ride["pickup_window"]["latest"]) - dt.datetime.fromisoformat(
        ride["pickup_window"]["earliest"]
    )
    # The definition's width, unless it reaches the end of the pickups searched (30 min after the wish).
    asked = dt.datetime.fromisoformat(ride["earliest_pickup"])
    earliest = dt.datetime.fromisoformat(ride["pickup_window"]["earliest"])
    expected = min(dt.timedelta(seconds=900), asked + dt.timedelta(minutes=30) - earliest)
    assert abs((window - expected).total_seconds()) <= 1, "the pickup window is the definition's"
    # Hours: the service runs only on another weekday than the ride's; then only around the ride's time.
    at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    local = at.astimezone(BERLIN)
    other_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(local.weekday() + 3) % 7]
    closed = {"hours": [{"days": [other_day], "start": "06:00:00", "end": "22:00:00"}]}
    assert client.put("/service", headers=operator, json={"name": "Gäu", "rules": closed}).status_code == 200
    refused = client.post("/bookings", headers=rider, json=_ride(1))
    assert refused.status_code == 422 and "does not run" in refused.json()["detail"], refused.text
    assert other_day in refused.json()["detail"]
    start, end = (local - dt.timedelta(minutes=30)).time(), (local + dt.timedelta(minutes=90)).time()
    # Every day (a span past midnight is fine: an end before the start runs into the next day).
    around = {"hours": [{"start": start.isoformat("seconds"), "end": end.isoformat("seconds")}]}
    assert client.put("/service", headers=operator, json={"name": "Gäu", "rules": around}).status_code == 200
    assert client.post("/quotes", headers=rider, json=_ride(1)).status_code == 200
    # Three hours after the ride, not two: on the night the clocks go back, two hours are one on the wall clock.
    assert client.post("/quotes", headers=rider, json=_ride(4)).status_code == 422


def test_a_service_file_imports_into_an_empty_database(
    settings: Settings, users: Users, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import shutil

    shutil.copy(demo_region() / "herrenberg-and-around.geojson", tmp_path / "area.geojson")
    toml = tmp_path / "service.toml"
    toml.write_text(
        'name = "Rufbus Gäu"\narea_file = "area.geojson"\nstart = 06:30:00\nend = 20:00:00\n'
        "[rules]\nmin_notice_s = 1800\nmax_train_wait_s = 300\n"
    )
    assert settings.database_url is not None
    with fresh_database(settings.database_url, "maas_seed") as url:
        seeded = msgspec.structs.replace(settings, database_url=url, service_file=toml)
        with TestClient(create_app(seeded)) as app:
            _, rider = Users(seeded).make("rider")
            service = app.get("/service", headers=rider).json()
        assert service["name"] == "Rufbus Gäu" and service["rules"]["min_notice_s"] == 1800
        assert service["rules"]["hours"][0]["start"] == "06:30:00" and service["rules"]["max_train_wait_s"] == 300
    toml.write_text('name = "x"\narea_file = "area.geojson"\n[rules]\nride_factor = 0.2\n')
    with fresh_database(settings.database_url, "maas_seed") as url:
        broken = msgspec.structs.replace(settings, database_url=url, service_file=toml)

        async def seed() -> None:
            db = await Database.open(broken, min_size=1, max_size=1)
            try:
                await seed_service_area(db, broken)
            finally:
                await db.close()

        with pytest.raises(ServiceError, match=r"service.toml: \[rules\]: rules.ride_factor must be between 1 and 5"):
            asyncio.run(seed())


def test_a_stop_based_service_picks_riders_up_at_the_nearest_stop(
    client: TestClient, users: Users, operator: dict[str, str]
) -> None:
    vehicle_on_shift(client, operator, seats=4)
    _, rider = users.make("rider")
    stops = {"stops": "virtual_stops", "virtual_stop_walk_m": 400}
    assert (
        client.put("/service", headers=operator, json={"name": "Gäu", "area": REGION, "rules": stops}).status_code
        == 200
    )
    # A farm road south of Herrenberg, more than a kilometre from any stop.
    farm = {"lat": 48.57475, "lon": 8.8629187}
    far = client.post(
        "/quotes", headers=rider, json={"origin": farm, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": soon(1)}
    )
    assert far.status_code == 422 and "no stop of the service within 400 m" in far.json()["detail"]
    door = {"lat": 48.59981, "lon": 8.88535}  # Herrenberg Verenaweg
    booked = client.post(
        "/bookings", headers=rider, json={"origin": door, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": soon(1)}
    )
    assert booked.status_code == 201, booked.text
    origin = booked.json()["origin"]
    assert origin != door, "the ride starts at a stop, not at the door"
    from routing.spatial import haversine_m

    assert float(haversine_m(door["lat"], door["lon"], origin["lat"], origin["lon"])) <= 400


# Inside the area below: woods north of Herrenberg, over a kilometre from any drivable road.
FOREST = {"lat": 48.6448, "lon": 8.8576}
# Outside it, and far from every road of the network too: Stuttgart (beyond the region's streets), the sea.
STUTTGART = {"lat": 48.7784, "lon": 9.18}
NORTH_SEA = {"lat": 54.0, "lon": 7.5}
HERRENBERG_NORTH = {
    "type": "Polygon",
    "coordinates": [[[8.84, 48.58], [8.90, 48.58], [8.90, 48.66], [8.84, 48.66], [8.84, 48.58]]],
}


def test_a_refused_ride_names_its_cause(client: TestClient, users: Users, operator: dict[str, str]) -> None:
    vehicle_on_shift(client, operator)
    _, rider = users.make("rider")
    area = client.put("/service-area", headers=operator, json={"name": "Herrenberg Nord", "geometry": HERRENBERG_NORTH})
    assert area.status_code == 200, area.text
    outside = "lies outside the service area Herrenberg Nord"
    cases = [
        (NEBRINGEN, HERRENBERG_BAHNHOF, f"the ride's start {NEBRINGEN['lat']},{NEBRINGEN['lon']} {outside}"),
        (STUTTGART, HERRENBERG_BAHNHOF, f"the ride's start {STUTTGART['lat']},{STUTTGART['lon']} {outside}"),
        (HERRENBERG_BAHNHOF, NORTH_SEA, f"the ride's end {NORTH_SEA['lat']},{NORTH_SEA['lon']} {outside}"),
        (FOREST, HERRENBERG_BAHNHOF, "is more than 500 m from any road"),
    ]
    for origin, destination, words in cases:
        ride = {"origin": origin, "destination": destination, "earliest_pickup": soon(1)}
        for path, body, headers in (
            ("/quotes", ride, rider),
            ("/bookings", ride, rider),
            ("/operator/bookings", {"ride": ride, "caller": {"name": "Erika Muster", "phone": "+49 7032 0"}}, operator),
        ):
            refused = client.post(path, headers=headers, json=body)
            assert refused.status_code == 422, (path, origin, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert words in refused.json()["detail"], (path, origin, refused.json()["detail"])
