"""Re-optimising the live plans in the service, on the Herrenberg network: a day of about 200 rides
booked over HTTP between real street places of the service area, some cancelled, some riders on
board; then the re-optimiser runs and the stored plans are checked independently of the dispatcher."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import shapely
from litestar.testing import TestClient

from maas.api.deps import services_of
from maas.app import create_app
from maas.demo import demo_region
from maas.reoptimizing import RunStart
from maas.settings import Settings
from routing.dispatch.drive_times import DriveTimes
from routing.spatial import haversine_m
from tests.helpers import HERRENBERG_BAHNHOF, KUPPINGEN, NEBRINGEN, places_in_region, vehicle_on_shift
from tests.maas.conftest import Users, own_database

REGION = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())
RIDES = 200
CANCELLED = 20
ON_BOARD = 3
TIME_LIMIT_S = 4.0
BOARDING_S = 60.0
RIDE_FACTOR, RIDE_SLACK_S = 1.5, 600.0  # the default rules: the longest ride is 1.5 x direct + 10 min
DEPOTS = [HERRENBERG_BAHNHOF, NEBRINGEN, KUPPINGEN, {"lat": 48.6237, "lon": 8.9101}]
TOLERANCE_S = 1e-3


@pytest.fixture(scope="module")
def reopt_settings(
    settings: Settings, today_network_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    with own_database(settings, "maas_reopt", today_network_dir, tmp_path_factory.mktemp("reopt-data")) as own:
        yield own


@pytest.fixture(scope="module")
def app(reopt_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(reopt_settings)) as client:
        yield client


@dataclass
class Day:
    operator: dict[str, str]
    rider: dict[str, str]
    confirmed: list[str]  # booking ids still to be driven
    on_board: list[str]


def _sql(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def _street_places(app: TestClient, count: int, seed: int) -> list[tuple[float, float]]:
    """`count` drive-graph nodes inside the service area (and the region's named places), at random."""
    served = services_of(app.app).serving.current
    assert served is not None
    drive = served.network.streets["drive"]
    area = shapely.geometry.shape(REGION["features"][0]["geometry"])
    rng = random.Random(seed)
    found = [(lat, lon) for _, lat, lon in places_in_region()]
    while len(found) < count:
        k = rng.randrange(drive.n_nodes)
        lat, lon = float(drive.node_lat[k]), float(drive.node_lon[k])
        if area.contains(shapely.Point(lon, lat)):
            found.append((lat, lon))
    return found


@pytest.fixture(scope="module")
def day(app: TestClient, reopt_settings: Settings) -> Day:
    """Ten buses on shift from half an hour ago, about 200 rides over the next eight hours, 20 of them
    cancelled, three riders on board."""
    users = Users(reopt_settings)
    operator = users.make("operator")[1]
    rider = users.make("rider")[1]
    # Runs on demand only; riders of the next hour may board now (the test picks some up at once).
    rules = {"reoptimize_every_s": 0, "reoptimize_time_limit_s": TIME_LIMIT_S, "early_pickup_s": 3600}
    defined = app.put("/service", headers=operator, json={"name": "Rufbus Gäu", "area": REGION, "rules": rules})
    assert defined.status_code == 200, defined.text
    for k in range(10):
        vehicle_on_shift(app, operator, seats=8, wheelchair_places=1, depot=DEPOTS[k % len(DEPOTS)], hours=10)
    rng = random.Random(2024)
    places = _street_places(app, 400, seed=7)
    now = dt.datetime.now(dt.UTC)
    booked: list[dict[str, Any]] = []
    for n in range(RIDES):
        while True:
            a, b = rng.sample(places, 2)
            if haversine_m(a[0], a[1], b[0], b[1]) > 1500:
                break
        at = now + dt.timedelta(minutes=20 + rng.uniform(0, 8 * 60 - 120))
        answer = app.post(
            "/bookings",
            headers={**rider, "Idempotency-Key": f"day-{n}"},
            json={
                "origin": {"lat": a[0], "lon": a[1]},
                "destination": {"lat": b[0], "lon": b[1]},
                "seated": rng.choice((1, 1, 1, 2)),
                "earliest_pickup": at.isoformat(),
            },
        )
        assert answer.status_code in (201, 409, 422), answer.text
        if answer.status_code == 201:
            booked.append(answer.json())
    assert len(booked) >= 0.75 * RIDES, f"only {len(booked)} of {RIDES} rides were booked"
    ids = [b["id"] for b in booked]
    rng.shuffle(ids)
    for rid in ids[:CANCELLED]:
        cancelled = app.post(f"/bookings/{rid}/cancel", headers=rider, json={"reason": "plans changed"})
        assert cancelled.status_code == 200, cancelled.text
    confirmed = ids[CANCELLED:]
    # The riders of the first pickups on three buses get on.
    url = reopt_settings.database_url
    assert url is not None
    rows = _sql(
        url,
        "SELECT id, shift_id FROM bookings WHERE status = 'confirmed' AND pickup_earliest < now() + interval '55 minutes'"
        " ORDER BY pickup_earliest",
    )
    on_board: list[str] = []
    shifts_used: set[uuid.UUID] = set()
    for row in rows:
        if row["shift_id"] in shifts_used:
            continue
        driver = users.make("driver")[1]
        signed = app.post(f"/driver/shifts/{row['shift_id']}/sign-in", headers=driver)
        assert signed.status_code == 200, signed.text
        for kind in ("arrived", "picked_up"):
            event = app.post("/driver/events", headers=driver, json={"booking_id": str(row["id"]), "event": kind})
            assert event.status_code == 200, event.text
        on_board.append(str(row["id"]))
        shifts_used.add(row["shift_id"])
        if len(on_board) == ON_BOARD:
            break
    return Day(operator=operator, rider=rider, confirmed=confirmed, on_board=on_board)


# -- an independent check of the stored plans ------------------------------------------------------


@dataclass
class Stored:
    plans: dict[uuid.UUID, list[tuple[str, str]]]
    starts: dict[uuid.UUID, tuple[float, float, dt.datetime] | None]
    shifts: dict[uuid.UUID, asyncpg.Record]  # with the vehicle's seats, wheelchair places and depot
    bookings: dict[str, asyncpg.Record]  # confirmed and picked up


def _stored(url: str) -> Stored:
    plans = {}
    starts = {}
    for r in _sql(url, "SELECT shift_id, stops, start_lat, start_lon, start_at FROM shift_plans"):
        plans[r["shift_id"]] = [(rid, kind) for rid, kind in json.loads(r["stops"])]
        starts[r["shift_id"]] = None if r["start_at"] is None else (r["start_lat"], r["start_lon"], r["start_at"])
    shifts = {
        r["id"]: r
        for r in _sql(
            url,
            "SELECT s.id, s.starts_at, s.ends_at, v.seats, v.wheelchair_places, v.depot_lat, v.depot_lon"
            " FROM shifts s JOIN vehicles v ON v.id = s.vehicle_id",
        )
    }
    bookings = {str(r["id"]): r for r in _sql(url, "SELECT * FROM bookings WHERE status IN ('confirmed', 'picked_up')")}
    return Stored(plans=plans, starts=starts, shifts=shifts, bookings=bookings)


def _feasible(n: int, edges: list[tuple[int, int, float]]) -> bool:
    """Whether the difference constraints B[v] - B[u] <= w of `edges` over n unknowns have a solution:
    no negative cycle (Bellman-Ford from a source joined to every unknown by 0)."""
    dist = [0.0] * n
    for _ in range(n + 1):
        changed = False
        for u, v, w in edges:
            if dist[u] + w < dist[v] - TOLERANCE_S:
                dist[v] = dist[u] + w
                changed = True
        if not changed:
            return True
    return False


def _check_plans(stored: Stored, drive: DriveTimes) -> float:
    """Assert that every stored ride is planned once, on the shift stored with it, and that each shift's
    stored order has a schedule keeping every promise (pickup window, latest drop-off, longest ride),
    room and seats, and the shift; the fleet's driving seconds along the stored plans."""
    seen: dict[tuple[str, str], uuid.UUID] = {}
    total_drive = 0.0
    for shift_id, stops in stored.plans.items():
        shift = stored.shifts[shift_id]
        for rid, kind in stops:
            assert (rid, kind) not in seen, f"{rid} {kind} is planned twice"
            seen[(rid, kind)] = shift_id
        start = stored.starts[shift_id]
        start_node = drive.snap(start[0], start[1]) if start else drive.snap(shift["depot_lat"], shift["depot_lon"])
        start_at = max(shift["starts_at"], start[2]) if start else shift["starts_at"]
        origin = shift["starts_at"].timestamp()
        nodes, lo, hi, service = (
            [start_node],
            [start_at.timestamp() - origin],
            [shift["ends_at"].timestamp() - origin],
            [0.0],
        )
        rides: list[tuple[int, int, float]] = []  # (pickup position, drop-off position, longest ride)
        where: dict[str, int] = {}
        riding = [b for b in stored.bookings.values() if b["status"] == "picked_up" and b["shift_id"] == shift_id]
        room = sum(b["seated"] + 2 * b["wheelchairs"] for b in riding)
        seats = sum(b["seated"] for b in riding)
        for rid, kind in stops:
            b = stored.bookings[rid]
            assert b["shift_id"] == shift_id, f"ride {rid} is planned on another shift than stored with it"
            if kind == "pickup":
                nodes.append(drive.snap(b["origin_lat"], b["origin_lon"]))
                lo.append(b["pickup_earliest"].timestamp() - origin)
                hi.append(b["pickup_latest"].timestamp() - origin)
                where[rid] = len(nodes) - 1
                room += b["seated"] + 2 * b["wheelchairs"]
                seats += b["seated"]
            else:
                nodes.append(drive.snap(b["destination_lat"], b["destination_lon"]))
                lo.append(-math.inf)
                hi.append(b["dropoff_latest"].timestamp() - origin)
                if rid in where:
                    direct = drive.seconds(nodes[where[rid]], nodes[-1])
                    rides.append((where[rid], len(nodes) - 1, RIDE_FACTOR * direct + RIDE_SLACK_S))
                else:
                    assert b["status"] == "picked_up", f"ride {rid} is dropped off before its pickup"
                room -= b["seated"] + 2 * b["wheelchairs"]
                seats -= b["seated"]
            service.append(BOARDING_S)
            assert room <= shift["seats"] + 2 * shift["wheelchair_places"] and seats <= shift["seats"]
        nodes.append(drive.snap(shift["depot_lat"], shift["depot_lon"]))
        lo.append(-math.inf)
        hi.append(shift["ends_at"].timestamp() - origin)
        service.append(0.0)
        k = len(nodes)
        source = k
        edges = []
        for x in range(k):
            edges.append((source, x, hi[x]))  # B[x] <= hi
            if math.isfinite(lo[x]):
                edges.append((x, source, -lo[x]))  # B[x] >= lo
        for x in range(k - 1):
            leg = drive.seconds(nodes[x], nodes[x + 1])
            total_drive += leg
            edges.append((x + 1, x, -(service[x] + leg)))  # B[x+1] >= B[x] + s + t
        for p, d, longest in rides:
            edges.append((p, d, service[p] + longest))  # B[d] - B[p] - s <= longest ride
        assert _feasible(k + 1, edges), f"shift {shift_id}: no schedule keeps every promise"
    for rid, b in stored.bookings.items():
        kinds = ["dropoff"] if b["status"] == "picked_up" else ["pickup", "dropoff"]
        for kind in kinds:
            assert seen.get((rid, kind)) == b["shift_id"], f"ride {rid}: its {kind} is not planned on its shift"
    return total_drive


def _drive_times(app: TestClient) -> DriveTimes:
    served = services_of(app.app).serving.current
    assert served is not None
    return DriveTimes(served.network.streets["drive"])  # a copy of its own, not the fleet's


# -- the tests ---------------------------------------------------------------------------------------


def test_a_stale_result_is_not_adopted(app: TestClient, day: Day, reopt_settings: Settings) -> None:
    """A result searched on plans that changed meanwhile (a ride booked) is dropped, and the plans stay."""
    services = services_of(app.app)
    reoptimizer, fleet = services.reoptimizer, services.serving.fleet()
    assert fleet is not None
    portal = app.blocking_portal
    snapshot = portal.call(reoptimizer.snapshot, fleet)
    assert snapshot is not None and snapshot.rides >= len(day.confirmed)
    routes = portal.call(reoptimizer.search, snapshot, 1.0)
    at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    late = app.post(
        "/bookings",
        headers={**day.rider, "Idempotency-Key": "meanwhile"},
        json={"origin": NEBRINGEN, "destination": HERRENBERG_BAHNHOF, "earliest_pickup": at.isoformat()},
    )
    assert late.status_code == 201, late.text
    url = reopt_settings.database_url
    assert url is not None
    before = _stored(url)
    run = portal.call(reoptimizer.adopt, fleet, snapshot, routes, RunStart.now("manual"))
    assert run.outcome == "stale", run
    after = _stored(url)
    assert after.plans == before.plans
    assert any(late.json()["id"] == rid for stops in after.plans.values() for rid, _ in stops)
    day.confirmed.append(late.json()["id"])


def test_the_day_is_reoptimised_and_every_promise_holds(app: TestClient, day: Day, reopt_settings: Settings) -> None:
    url = reopt_settings.database_url
    assert url is not None
    drive = _drive_times(app)
    before = _stored(url)
    assert set(before.bookings) == set(day.confirmed) | set(day.on_board)
    drive_before = _check_plans(before, drive)
    answer = app.post("/fleet/reoptimizations", headers=day.operator)
    assert answer.status_code == 201, answer.text
    run = answer.json()
    assert run["outcome"] == "adopted", run
    assert run["trigger"] == "manual" and run["rides"] == len(before.bookings) and run["vehicles"] == 10
    assert run["drive_after_s"] < run["drive_before_s"] - 60
    assert run["drive_before_s"] == pytest.approx(drive_before, rel=1e-6)

    after = _stored(url)
    assert set(after.bookings) == set(before.bookings)
    drive_after = _check_plans(after, drive)
    assert drive_after == pytest.approx(run["drive_after_s"], rel=1e-6)
    for rid in day.on_board:
        assert after.bookings[rid]["shift_id"] == before.bookings[rid]["shift_id"], "a rider on board changed bus"
        assert after.bookings[rid]["status"] == "picked_up"
    for rid, b in after.bookings.items():  # promises are kept as they were, not renegotiated
        for field in ("pickup_earliest", "pickup_latest", "dropoff_latest"):
            assert b[field] == before.bookings[rid][field]
    moved = [rid for rid in after.bookings if after.bookings[rid]["shift_id"] != before.bookings[rid]["shift_id"]]
    assert len(moved) == run["moved_rides"]
    print(
        f"\n{run['rides']} rides on {run['vehicles']} buses: driving {drive_before / 3600:.2f} h ->"
        f" {drive_after / 3600:.2f} h ({100 * (1 - drive_after / drive_before):.1f} % less),"
        f" {len(moved)} rides moved, search {run['search_s']:.1f} s"
    )

    listed = app.get("/fleet/reoptimizations", headers=day.operator)
    assert listed.status_code == 200
    assert listed.json()[0] == run
    assert app.get("/fleet/reoptimizations", headers=day.rider).status_code == 403
    audit = app.get("/audit", headers=day.operator).json()
    assert any(e["action"] == "reoptimize" and e["subject"] == str(run["id"]) for e in audit)
    fleet_version = _sql(url, "SELECT version FROM fleet_state")[0]["version"]
    assert run["adopted_version"] == fleet_version

    # The plans just adopted leave little to gain at once: the next run changes nothing it need not.
    again = app.post("/fleet/reoptimizations", headers=day.operator).json()
    assert again["outcome"] in ("no_gain", "adopted")
    _check_plans(_stored(url), drive)


def test_a_cancellation_is_followed_by_a_run(app: TestClient, day: Day, reopt_settings: Settings) -> None:
    """With re-optimisation on, a cancellation (heard over LISTEN/NOTIFY, as from any process) brings a run
    shortly after; the plans it leaves keep every promise."""
    rules = {"reoptimize_every_s": 86400, "reoptimize_time_limit_s": 1.0}
    defined = app.put("/service", headers=day.operator, json={"name": "Rufbus Gäu", "area": REGION, "rules": rules})
    assert defined.status_code == 200, defined.text
    services_of(app.app).reoptimizer.after_cancellation_s = 0.5  # not half a minute, in a test
    known = {r["id"] for r in app.get("/fleet/reoptimizations", headers=day.operator).json()}
    rid = day.confirmed.pop()
    cancelled = app.post(f"/bookings/{rid}/cancel", headers=day.rider, json={"reason": "not needed"})
    assert cancelled.status_code == 200, cancelled.text
    deadline = time.monotonic() + 30
    while True:
        runs = [r for r in app.get("/fleet/reoptimizations", headers=day.operator).json() if r["id"] not in known]
        if runs:
            break
        assert time.monotonic() < deadline, "no run followed the cancellation"
        time.sleep(0.25)
    assert [r["trigger"] for r in runs] == ["cancellation"]
    assert runs[0]["outcome"] in ("adopted", "no_gain"), runs[0]
    url = reopt_settings.database_url
    assert url is not None
    stored = _stored(url)
    assert rid not in stored.bookings
    _check_plans(stored, _drive_times(app))
