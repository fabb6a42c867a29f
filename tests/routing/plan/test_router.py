"""Door-to-door plans on the Herrenberg network between real named places: they exist and are physically sound."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest
from click.testing import CliRunner

from maas.cli import main
from maas.demo import demo_region
from routing.network import load_network
from routing.ondemand import DriveTimeEstimator, load_service
from routing.plan import Endpoint, Plan, PlanError, PlanRequest, Router
from tests.helpers import BERLIN, answers_in_threads, assert_sound, places_in_region


def test_plans_between_named_places_exist_and_are_sound(router: Router) -> None:
    date = dt.date(2021, 6, 15)  # inside the city-bus feed's service period
    places = places_in_region()
    assert len(places) >= 5
    found: set[tuple[str, str]] = set()
    for name_a, lat_a, lon_a in places:
        for name_b, lat_b, lon_b in places:
            if name_a == name_b:
                continue
            depart = dt.datetime.combine(date, dt.time(7, 30), BERLIN)
            plan = router.plan(
                PlanRequest(
                    origin=Endpoint(lat=lat_a, lon=lon_a),
                    destination=Endpoint(lat=lat_b, lon=lon_b),
                    depart=depart,
                )
            )
            for it in plan.itineraries:
                assert_sound(it, depart)
            arrivals = [it.arrival for it in plan.itineraries]
            transfers = [it.transfers for it in plan.itineraries]
            for i, j in zip(range(len(arrivals)), range(1, len(arrivals)), strict=False):
                assert not (
                    arrivals[j] >= arrivals[i]
                    and transfers[j] >= transfers[i]
                    and plan.itineraries[j].legs[0].mode == "transit"
                ), "itineraries are Pareto-optimal"
            if plan.itineraries:
                found.add((name_a, name_b))
    # Rohrau and Nebringen have no scheduled stop within walking distance in these feeds (their buses
    # run on demand); every pair of the other places has a plan.
    served = {"Herrenberg Bahnhof", "Herrenberg Verenaweg", "Kuppingen"}
    assert {(a, b) for a in served for b in served if a != b} <= found


def test_pure_timetable_answer_between_stops(network_dir: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "plan",
            str(network_dir),
            "--from",
            "stop:vvs-s1-only:de:08115:4512:1:2",
            "--to",
            "stop:vvs-s1-only:de:08111:6002:1:2",
            "--depart",
            "2020-10-06T08:00",
            "--max-walk-m",
            "0",
            "--json",
        ],
    )
    if result.exit_code != 0 and "no stop" in result.output:
        pytest.fail(result.output)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["itineraries"]
    for it in plan["itineraries"]:
        assert {leg["mode"] for leg in it["legs"]} == {"transit"}, "no footpaths with --max-walk-m 0"
        for a, b in zip(it["legs"], it["legs"][1:], strict=False):
            assert a["to"]["stop"] == b["from"]["stop"], "changes only at the same stop id"
        assert set(it) == {"id", "departure", "arrival", "transfers", "walk_m", "legs"}
        assert set(it["legs"][0]) >= {"mode", "from", "to", "departure", "arrival", "route", "trip", "geometry"}
        assert it["departure"].startswith("2020-10-06T08") and it["departure"].endswith("+02:00")


def test_bad_requests_are_clear_errors(router: Router, network_dir: Path) -> None:
    depart = dt.datetime(2020, 10, 6, 7, 30, tzinfo=BERLIN)
    with pytest.raises(PlanError, match="no stop 'x:y'"):
        router.plan(PlanRequest(origin=Endpoint(stop="x:y"), destination=Endpoint(lat=48.59, lon=8.86), depart=depart))
    with pytest.raises(PlanError, match="outside this network"):
        router.plan(
            PlanRequest(origin=Endpoint(lat=10.0, lon=10.0), destination=Endpoint(lat=48.59, lon=8.86), depart=depart)
        )
    with pytest.raises(PlanError, match="lat,lon"):
        Endpoint.parse("Herrenberg")
    runner = CliRunner()
    res = runner.invoke(
        main, ["plan", str(network_dir), "--from", "48.59,8.86", "--to", "48.61,8.84", "--depart", "tomorrow"]
    )
    assert res.exit_code == 2 and "ISO 8601" in res.output and "Traceback" not in res.output


def test_the_s_bahn_takes_a_rider_from_herrenberg_to_ehningen(router: Router) -> None:
    depart = dt.datetime(2020, 10, 6, 7, 30, tzinfo=BERLIN)
    plan = router.plan(
        PlanRequest(
            origin=Endpoint(lat=48.5935, lon=8.8630),
            destination=Endpoint(lat=48.6582, lon=8.9408),
            depart=depart,
        )
    )
    assert plan.itineraries
    best = plan.itineraries[0]
    assert_sound(best, depart)
    assert [leg.route_name for leg in best.legs if leg.mode == "transit"] == ["S1"]
    assert best.arrival - depart < dt.timedelta(minutes=45)


def test_random_points_in_the_region_plan_or_refuse_cleanly(router: Router) -> None:
    rng = np.random.default_rng(21)
    walk = router.network.streets["walk"]
    lats, lons = np.asarray(walk.node_lat), np.asarray(walk.node_lon)
    planned = 0
    for _ in range(60):
        a, b = rng.integers(0, len(lats), size=2)
        jitter = rng.normal(0, 0.003, size=4)
        request = PlanRequest(
            origin=Endpoint(lat=float(lats[a] + jitter[0]), lon=float(lons[a] + jitter[1])),
            destination=Endpoint(lat=float(lats[b] + jitter[2]), lon=float(lons[b] + jitter[3])),
            depart=dt.datetime(2021, 6, 15, int(rng.integers(5, 21)), 0, tzinfo=BERLIN),
        )
        try:
            plan = router.plan(request)
        except PlanError:
            continue
        for it in plan.itineraries:
            assert_sound(it, request.depart)
        planned += bool(plan.itineraries)
    assert planned >= 1  # most random pairs in this rural region have no bus on that day


def test_plans_from_several_threads_at_once_are_the_plans_one_at_a_time(network_dir: Path) -> None:
    network = load_network(network_dir)
    service = load_service(demo_region() / "on-demand.toml")
    rng = np.random.default_rng(7)
    walk = network.streets["walk"]
    lats, lons = np.asarray(walk.node_lat), np.asarray(walk.node_lon)
    places = [(lat, lon) for _, lat, lon in places_in_region()]
    places += [(float(lats[k]), float(lons[k])) for k in rng.integers(0, len(lats), size=4)]
    calls: list[Callable[[Router], Plan]] = []
    for a in places:
        for b in places:
            if a != b:
                hour = int(rng.integers(6, 20))
                request = PlanRequest(
                    origin=Endpoint(lat=a[0], lon=a[1]),
                    destination=Endpoint(lat=b[0], lon=b[1]),
                    depart=dt.datetime(2021, 6, 15, hour, 0, tzinfo=BERLIN),
                )
                calls.append(lambda r, q=request: _plan_or_nothing(r, q))
                if len(calls) % 10 == 0:
                    calls.append(lambda r, q=request: r.plan_arriving_by(q, q.depart))
    alone = Router(network, DriveTimeEstimator(network, service))
    one_at_a_time = [msgspec.json.encode(call(alone)) for call in calls]
    # A fresh router, so that the threads also race to build what it builds on first use.
    at_once = answers_in_threads(Router(network, DriveTimeEstimator(network, service)), calls)
    assert at_once == one_at_a_time
    # The calls walk, take buses and trains, and ride on demand (from the villages without buses).
    assert sum(b'"mode":"on_demand"' in answer for answer in at_once) >= 3
    assert sum(b'"mode":"transit"' in answer for answer in at_once) >= 10


def _plan_or_nothing(router: Router, request: PlanRequest) -> Plan:
    try:
        return router.plan(request)
    except PlanError:
        return Plan(itineraries=[])
