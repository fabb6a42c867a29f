"""Many riders at once against two API worker processes: nobody is overbooked, everybody gets an answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import httpx
from litestar.testing import TestClient

from maas.fleet import FleetService
from maas.settings import Settings
from routing.network import load_network
from tests.maas.conftest import Users

NEBRINGEN = {"lat": 48.5627, "lon": 8.8481}
HERRENBERG_BAHNHOF = {"lat": 48.5935, "lon": 8.8630}


def test_500_concurrent_bookings_never_overbook(
    server: str, client: TestClient, users: Users, settings: Settings
) -> None:
    _, operator = users.make("operator")
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    shifts = []
    for k in range(2):
        vehicle = client.post(
            "/vehicles",
            headers=operator,
            json={"name": f"crowd-{uuid.uuid4().hex[:6]}-{k}", "seats": 3, "depot": HERRENBERG_BAHNHOF},
        ).json()
        shift = client.post(
            "/shifts",
            headers=operator,
            json={
                "vehicle_id": vehicle["id"],
                "starts_at": start.isoformat(),
                "ends_at": (start + dt.timedelta(hours=2)).isoformat(),
            },
        )
        assert shift.status_code == 201, shift.text
        shifts.append(shift.json()["id"])
    riders = [users.make("rider")[1] for _ in range(50)]
    wish = {
        "origin": NEBRINGEN,
        "destination": HERRENBERG_BAHNHOF,
        "seated": 1,
        "earliest_pickup": (start + dt.timedelta(minutes=20)).isoformat(),
    }

    retried: list[int] = []
    run = uuid.uuid4().hex[:8]

    async def attempt(http: httpx.AsyncClient, k: int) -> httpx.Response:
        # As a rider's app does: one key per booking attempt, and a retry with it when the connection
        # drops (seen now and then on this 2-core machine under load, with nothing in the server's log).
        headers = {**riders[k % len(riders)], "Idempotency-Key": f"crowd-{run}-{k}"}
        try:
            return await http.post("/bookings", headers=headers, json=wish)
        except httpx.TransportError:
            retried.append(k)
            return await http.post("/bookings", headers=headers, json=wish)

    async def crowd() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server, timeout=120, limits=limits) as http:
            return await asyncio.gather(*(attempt(http, k) for k in range(500)))

    responses = asyncio.run(crowd())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, sorted(set(statuses))
    assert 0 < statuses.count(201) < 500
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["detail"]
    confirmed = {r.json()["id"] for r in responses if r.status_code == 201}

    async def replan() -> FleetService:
        # The plans as committed, rebuilt from the database the way a fresh worker would.
        fleet = FleetService(load_network(settings.network_dir).streets["drive"])
        conn = await asyncpg.connect(settings.database_url)
        try:
            await fleet.current(conn)
        finally:
            await conn.close()
        return fleet

    fleet = asyncio.run(replan())
    dispatcher = fleet.dispatcher
    assert dispatcher is not None
    planned = set()
    # Other tests' buses may be on shift in the same database: check every plan.
    for vehicle in dispatcher.vehicles:
        stops = dispatcher.plan_of(vehicle.id)
        planned |= {rid for rid, _ in stops}
        # Exact check: seats, time windows, ride times and every promise hold on each bus.
        assert dispatcher.schedule(vehicle.id) is not None
        if vehicle.id in shifts:
            load = 0
            for _, kind in stops:
                load += 1 if kind == "pickup" else -1
                assert 0 <= load <= 3
    assert confirmed <= planned

    async def stored() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetchval("SELECT count(*) FROM bookings WHERE idempotency_key LIKE $1", f"crowd-{run}-%")
        finally:
            await conn.close()

    # One booking per confirmation, none behind a refusal, and a retried attempt is one booking at most.
    assert asyncio.run(stored()) == len(confirmed), retried
