"""A fleet of its own for the driver and live tests: a fresh database on the test server, the app
over it, and buses whose drivers are known, so that whichever bus a booking lands on, its
driver can be asked. Real places (stadtnavi test locations) and real bus GPS pings (AVL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import msgspec
import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.model import User
from maas.settings import Settings
from tests.maas.conftest import Users, fresh_database

NEBRINGEN = {"lat": 48.5627, "lon": 8.8481}
HERRENBERG_BAHNHOF = {"lat": 48.5935, "lon": 8.8630}
HERRENBERG_VERENAWEG = {"lat": 48.59981, "lon": 8.88535}
KUPPINGEN = {"lat": 48.6113, "lon": 8.8430}
ROHRAU = {"lat": 48.6237, "lon": 8.9101}
AVL = (
    Path(__file__).parents[2]
    / "maas"
    / "data"
    / "region-herrenberg"
    / "avl"
    / "herrenberg-overlapping-vehicle-positions.ndjson"
)


def soon(hours: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).isoformat()


def avl_fixes(last_at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The recorded pings of one Herrenberg bus, moved in time so that the last is `last_at` (default now)."""
    pings = [json.loads(line) for line in AVL.read_text().splitlines() if line.strip()]
    end = max(p["t"] for p in pings)
    last_at = last_at or dt.datetime.now(dt.UTC)
    return [
        {
            "lat": p["latitude"],
            "lon": p["longitude"],
            "at": (last_at - dt.timedelta(milliseconds=end - p["t"])).isoformat(),
        }
        for p in pings
    ]


class Bus(NamedTuple):
    vehicle_id: str
    shift_id: str
    driver: User | None
    headers: dict[str, str]  # the driver's


class World:
    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.users = Users(settings)
        self.operator = self.users.make("operator")[1]
        self.buses: dict[str, Bus] = {}  # by vehicle id

    def bus(
        self, depot: dict[str, float], *, seats: int = 3, wheelchair_places: int = 0, with_driver: bool = True
    ) -> Bus:
        """A vehicle on a shift from half an hour ago for eight hours; its driver signed in."""
        vehicle = self.client.post(
            "/vehicles",
            headers=self.operator,
            json={
                "name": f"rufbus-{uuid.uuid4().hex[:6]}",
                "seats": seats,
                "wheelchair_places": wheelchair_places,
                "depot": depot,
            },
        )
        assert vehicle.status_code == 201, vehicle.text
        driver, headers = self.users.make("driver") if with_driver else (None, {})
        shift = self.client.post(
            "/shifts",
            headers=self.operator,
            json={
                "vehicle_id": vehicle.json()["id"],
                "starts_at": soon(-0.5),
                "ends_at": soon(8),
                "driver_id": str(driver.id) if driver else None,
            },
        )
        assert shift.status_code == 201, shift.text
        bus = Bus(vehicle.json()["id"], shift.json()["id"], driver, headers)
        if driver is not None:
            signed = self.client.post(f"/driver/shifts/{bus.shift_id}/sign-in", headers=headers)
            assert signed.status_code == 200, signed.text
            self.buses[bus.vehicle_id] = bus
        return bus

    def book(
        self, rider: dict[str, str], origin: dict[str, float], destination: dict[str, float], **extra: Any
    ) -> dict[str, Any]:
        wish = {"origin": origin, "destination": destination, "earliest_pickup": soon(0.25), **extra}
        booked = self.client.post("/bookings", headers=rider, json=wish)
        assert booked.status_code == 201, booked.text
        return booked.json()

    def bus_of(self, booking: dict[str, Any]) -> Bus:
        return self.buses[booking["vehicle_id"]]

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async def work() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.settings.database_url)
            try:
                return await conn.fetch(query, *args)
            finally:
                await conn.close()

        return asyncio.run(work())


@pytest.fixture(scope="module")
def own_settings(settings: Settings, database_url: str) -> Iterator[Settings]:
    with fresh_database(database_url, "maas_live") as url:
        yield msgspec.structs.replace(settings, database_url=url)


@pytest.fixture(scope="module")
def world(own_settings: Settings) -> Iterator[World]:
    with TestClient(create_app(own_settings)) as client:
        yield World(client, own_settings)
