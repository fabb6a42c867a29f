"""Vehicles and shifts as operators add them: a vehicle's name is taken by one vehicle only."""

from __future__ import annotations

import asyncio
import uuid

from litestar.testing import TestClient

from maas.api.deps import services_of
from maas.errors import Conflict
from tests.maas.conftest import Users

HERRENBERG_BAHNHOF = {"lat": 48.5935, "lon": 8.8630}


def test_a_vehicle_name_taken_is_a_conflict(client: TestClient, users: Users) -> None:
    _, operator = users.make("operator")
    name = f"rufbus-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "seats": 3, "depot": HERRENBERG_BAHNHOF}
    first = client.post("/vehicles", headers=operator, json=body)
    assert first.status_code == 201, first.text
    again = client.post("/vehicles", headers=operator, json={**body, "name": f" {name} "})
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    assert name in again.json()["detail"]
    assert [v["name"] for v in client.get("/vehicles", headers=operator).json()].count(name) == 1


def test_racing_adds_of_one_name_make_one_vehicle(client: TestClient, users: Users) -> None:
    operator, _ = users.make("operator")
    fleet_admin = services_of(client.app).fleet_admin
    name = f"rufbus-{uuid.uuid4().hex[:6]}"
    lat, lon = HERRENBERG_BAHNHOF["lat"], HERRENBERG_BAHNHOF["lon"]

    async def race() -> list[object]:
        adds = [fleet_admin.add_vehicle(operator, name, 3, 0, lat, lon) for _ in range(8)]
        return await asyncio.gather(*adds, return_exceptions=True)

    outcomes = client.blocking_portal.call(race)  # the app's event loop: its pool lives there
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, Conflict) for o in outcomes if isinstance(o, BaseException))
