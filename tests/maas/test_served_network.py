"""One served network: bookings go on while a feed is published, a publish keeps every other feed,
and journey plans and quotes answer from the same network and service area after a publish and a
rollback. The module runs its own app on its own database, so that what it publishes and activates
does not change what the other modules' app serves.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.settings import Settings
from routing.network import read_manifest
from tests.conftest import SHARED_DATA
from tests.helpers import HERRENBERG_BAHNHOF, KUPPINGEN, NEBRINGEN, soon
from tests.maas.conftest import RAISED_LIMITS, Users, fresh_database

REGION = Path(__file__).resolve().parents[2] / "maas" / "data" / "region-herrenberg"
S1 = REGION / "gtfs" / "vvs-s1-only.gtfs.zip"
CAIRNS = SHARED_DATA / "gtfs" / "cairns-2014.gtfs.zip"
# Around Herrenberg's centre and station only: Nebringen, 3.5 km south, lies outside.
TOWN = {
    "type": "Polygon",
    "coordinates": [[[8.845, 48.585], [8.885, 48.585], [8.885, 48.615], [8.845, 48.615], [8.845, 48.585]]],
}
TO_THE_TRAIN = {"from": "48.5627,8.8481", "to": "48.6582,8.9408", "depart": "2020-10-06T07:30:00+02:00"}
BUILD_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def own_settings(settings: Settings, network_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    assert settings.database_url is not None
    osm = tmp_path_factory.mktemp("osm") / "herrenberg.osm.pbf"
    shutil.copy(REGION / "herrenberg-and-around.osm.pbf", osm)
    with fresh_database(settings.database_url, "maas_served") as url:
        yield Settings.from_env(
            {},
            database_url=url,
            network_dir=network_dir,
            data_dir=tmp_path_factory.mktemp("served-data"),
            jwt_secret=secrets.token_urlsafe(32),
            **RAISED_LIMITS,
            osm_file=osm,
        )


@pytest.fixture(scope="module")
def app(own_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(own_settings)) as client:
        yield client


@pytest.fixture(scope="module")
def people(own_settings: Settings, app: TestClient) -> dict[str, dict[str, str]]:
    users = Users(own_settings)
    return {
        role: users.make(role, agency="vvs" if role == "agency" else None)[1]
        for role in ("agency", "operator", "rider")
    }


def _set_area(app: TestClient, operator: dict[str, str], name: str, geometry: dict[str, Any]) -> None:
    answer = app.put("/service-area", headers=operator, json={"name": name, "geometry": geometry})
    assert answer.status_code == 200, answer.text


def _upload(app: TestClient, agency: dict[str, str], path: Path, feed_id: str) -> dict[str, Any]:
    answer = app.post(
        "/feeds",
        headers={**agency, "Content-Type": "application/zip"},
        params={"feed_id": feed_id},
        content=path.read_bytes(),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _active(app: TestClient, operator: dict[str, str]) -> dict[str, Any]:
    return next(n for n in app.get("/networks", headers=operator).json() if n["active"])


def _quote(app: TestClient, rider: dict[str, str], origin: dict[str, float]) -> Any:
    wish = {"origin": origin, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": soon(0.5)}
    return app.post("/quotes", headers=rider, json=wish)


def _plan(app: TestClient, rider: dict[str, str]) -> Any:
    answer = app.get("/plan", headers=rider, params=TO_THE_TRAIN)
    assert answer.status_code == 200, answer.text
    return answer


@pytest.fixture(scope="module")
def published(app: TestClient, people: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The S1 uploaded as feed `s1` and published, with rides booked while its network was built."""
    region = json.loads((REGION / "herrenberg-and-around.geojson").read_text())
    _set_area(app, people["operator"], "Rufbus Herrenberg", region)
    vehicle = app.post(
        "/vehicles",
        headers=people["operator"],
        json={"name": "rufbus-1", "seats": 8, "wheelchair_places": 1, "depot": HERRENBERG_BAHNHOF},
    )
    assert vehicle.status_code == 201, vehicle.text
    shift = app.post(
        "/shifts",
        headers=people["operator"],
        json={"vehicle_id": vehicle.json()["id"], "starts_at": soon(-0.5), "ends_at": soon(8)},
    )
    assert shift.status_code == 201, shift.text
    configured = _active(app, people["operator"])
    version = _upload(app, people["agency"], S1, "s1")
    started = app.post(f"/feeds/{version['id']}/publish", headers=people["agency"])
    assert started.status_code == 202, started.text
    during = []
    for origin in (NEBRINGEN, KUPPINGEN):
        wish = {"origin": origin, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": soon(0.5)}
        booked = app.post("/bookings", headers={**people["rider"], "Idempotency-Key": str(uuid.uuid4())}, json=wish)
        status = app.get(f"/feeds/{version['id']}", headers=people["agency"]).json()["status"]
        during.append((booked.status_code, status))
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    while (now := app.get(f"/feeds/{version['id']}", headers=people["agency"]).json())["status"] == "publishing":
        assert time.monotonic() < deadline, "still publishing"
        time.sleep(0.25)
    assert now["status"] == "published", now
    return {"configured": configured, "version": version, "during": during, "network": _active(app, people["operator"])}


def test_rides_are_booked_while_a_feed_is_published(published: dict[str, Any]) -> None:
    # The publish holds the network lock for its whole build; bookings take the fleet lock: both
    # bookings were confirmed while the version was still building.
    assert published["during"] == [(201, "publishing"), (201, "publishing")]


def test_publishing_a_feed_keeps_every_other_feed(
    published: dict[str, Any],
    app: TestClient,
    people: dict[str, dict[str, str]],
    network_dir: Path,
    own_settings: Settings,
) -> None:
    configured_feeds = {f.id for f in read_manifest(network_dir).feeds}
    network = published["network"]
    assert network["id"] != published["configured"]["id"]
    assert {f["feed_id"] for f in network["feeds"]} == configured_feeds | {"s1"}
    assert next(f for f in network["feeds"] if f["feed_id"] == "s1")["version_id"] == published["version"]["id"]
    built = read_manifest(Path(own_settings.data_dir) / "networks" / str(network["id"]))
    assert {f.id for f in built.feeds} == configured_feeds | {"s1"}
    assert built.counts.sharing == read_manifest(network_dir).counts.sharing
    # The configured feeds' journeys are still there: the 2021 buses run in Herrenberg.
    answer = app.get(
        "/plan",
        headers=people["rider"],
        params={"from": "48.5935,8.8630", "to": "48.6113,8.8430", "depart": "2021-06-15T07:30:00+02:00"},
    )
    trips = [leg["trip"] for it in answer.json()["itineraries"] for leg in it["legs"] if leg["mode"] == "transit"]
    assert any(t.startswith("vvs-herrenberg-2021-subset:") for t in trips), trips


def test_a_feed_of_another_region_is_refused(
    published: dict[str, Any], app: TestClient, people: dict[str, dict[str, str]]
) -> None:
    cairns = _upload(app, people["agency"], CAIRNS, "cairns")
    answer = app.post(f"/feeds/{cairns['id']}/publish", headers=people["agency"])
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "none of its 416 stops" in answer.json()["detail"] and "another region" in answer.json()["detail"]
    assert app.get(f"/feeds/{cairns['id']}", headers=people["agency"]).json()["status"] == "uploaded"
    assert _active(app, people["operator"])["id"] == published["network"]["id"]


def test_plans_and_quotes_answer_from_one_network_and_one_area(
    published: dict[str, Any], app: TestClient, people: dict[str, dict[str, str]]
) -> None:
    rider, operator = people["rider"], people["operator"]

    def answered_by() -> tuple[str, str]:
        quote = _quote(app, rider, NEBRINGEN)
        assert quote.status_code == 200, quote.text
        return _plan(app, rider).headers["x-maas-network"], quote.headers["x-maas-network"]

    after_publish = str(published["network"]["id"])
    assert answered_by() == (after_publish, after_publish)
    rolled_back = str(published["configured"]["id"])
    assert app.post(f"/networks/{rolled_back}/activate", headers=operator).status_code == 200
    try:
        assert answered_by() == (rolled_back, rolled_back)
        # The area in force is the database's (tests/maas/test_journeys.py shows plans follow it too).
        _set_area(app, operator, "Herrenberg town", TOWN)
        refused = _quote(app, rider, NEBRINGEN)
        assert refused.status_code == 422 and "outside the service area" in refused.json()["detail"]
        assert _quote(app, rider, KUPPINGEN).status_code == 422  # Kuppingen lies west of the town box
    finally:
        assert app.post(f"/networks/{after_publish}/activate", headers=operator).status_code == 200
    assert _plan(app, rider).headers["x-maas-network"] == after_publish
