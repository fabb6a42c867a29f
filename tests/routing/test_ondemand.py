"""On-demand legs: the service definition, the drive-time estimator, and plans that use rides."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from maas.cli import main
from maas.demo import demo_region
from routing.network import load_network
from routing.ondemand import DriveTimeEstimator, ServiceError, load_service
from routing.plan import Endpoint, PlanRequest, Router
from routing.streets import StreetRouter, reversed_graph
from tests.helpers import assert_sound

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
SERVICE = demo_region() / "on-demand.toml"
NEBRINGEN = Endpoint(lat=48.5627, lon=8.8481)
EHNINGEN = Endpoint(lat=48.6582, lon=8.9408)


@pytest.fixture(scope="module")
def rides(network_dir: Path) -> tuple[Router, Router]:
    net = load_network(network_dir)
    return Router(net), Router(net, DriveTimeEstimator(net, load_service(SERVICE)))


def test_a_village_without_buses_is_served_by_ride_and_train(rides: tuple[Router, Router]) -> None:
    plain, with_rides = rides
    depart = dt.datetime(2020, 10, 6, 7, 30, tzinfo=BERLIN)
    request = PlanRequest(origin=NEBRINGEN, destination=EHNINGEN, depart=depart)
    assert not [it for it in plain.plan(request).itineraries if it.legs[0].mode != "walk"]
    plan = with_rides.plan(request)
    assert plan.itineraries
    for it in plan.itineraries:
        assert_sound(it, depart)
    feeder = [it for it in plan.itineraries if [leg.mode for leg in it.legs][:2] == ["on_demand", "transit"]]
    assert feeder, [[leg.mode for leg in it.legs] for it in plan.itineraries]
    assert feeder[0].legs[1].route_name == "S1"
    rides_ = [leg for it in plan.itineraries for leg in it.legs if leg.mode == "on_demand"]
    assert rides_ and all(leg.estimated and leg.offer is None for leg in rides_), "estimates say so"


def test_ride_times_follow_the_drive_graph(rides: tuple[Router, Router], network_dir: Path) -> None:
    _, with_rides = rides
    estimator = with_rides.on_demand
    assert isinstance(estimator, DriveTimeEstimator)
    seconds = estimator.direct_ride_s((NEBRINGEN.lat, NEBRINGEN.lon), (48.5935, 8.8630))
    assert seconds is not None
    # 3.7 km as the crow flies: at least the straight line at 100 km/h plus the pickup delay.
    assert 600 + 3700 / 27.8 <= seconds <= 600 + 1.5 * 15 * 60
    assert estimator.direct_ride_s((NEBRINGEN.lat, NEBRINGEN.lon), (48.78525, 9.20223)) is None, "Stuttgart is outside"
    stops, ride_s = estimator.rides_to_stops(NEBRINGEN.lat, NEBRINGEN.lon)
    assert len(stops) > 20 and (ride_s >= 600).all()


def test_no_rides_outside_the_service_hours(rides: tuple[Router, Router]) -> None:
    _, with_rides = rides
    late = dt.datetime(2020, 10, 6, 23, 30, tzinfo=BERLIN)
    plan = with_rides.plan(PlanRequest(origin=NEBRINGEN, destination=EHNINGEN, depart=late))
    assert not [leg for it in plan.itineraries for leg in it.legs if leg.mode == "on_demand"]


def test_reversed_graph_finds_the_ways_to_a_node(network_dir: Path) -> None:
    drive = load_network(network_dir).streets["drive"]
    forward = StreetRouter(drive, "travel_time_s")
    backward = StreetRouter(reversed_graph(drive), "travel_time_s")
    rng = np.random.default_rng(2)
    for target in rng.integers(0, drive.n_nodes, size=5):
        nodes, costs = backward.search(np.array([target]), budget=600)
        for node, cost in list(zip(nodes, costs, strict=True))[:: max(len(nodes) // 10, 1)]:
            reached, there = forward.search(np.array([node]), budget=cost + 1)
            assert there[np.flatnonzero(reached == target)[0]] == pytest.approx(cost)


def test_bad_service_definitions_are_named(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="no such file"):
        load_service(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\narea_file = "nowhere.geojson"\n')
    with pytest.raises(ServiceError, match=r"nowhere\.geojson"):
        load_service(bad)
    bad.write_text('name = "x"\narea_file = "a.geojson"\ndetour_factor = 0.5\n')
    with pytest.raises(ServiceError, match="detour_factor"):
        load_service(bad)
    bad.write_text('name = "x"\narea_file = "a.geojson"\ncolour = "red"\n')
    with pytest.raises(ServiceError, match="colour"):
        load_service(bad)
    (tmp_path / "point.geojson").write_text('{"type": "Point", "coordinates": [8.8, 48.6]}')
    bad.write_text('name = "x"\narea_file = "point.geojson"\n')
    with pytest.raises(ServiceError, match="Polygon"):
        load_service(bad)


def test_cli_plans_with_a_service(network_dir: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "plan",
            str(network_dir),
            "--from",
            "48.5627,8.8481",
            "--to",
            "48.5935,8.8630",
            "--depart",
            "2021-06-15T07:30",
            "--on-demand",
            str(SERVICE),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "on-demand ride (times estimated: no fleet was asked)" in result.output
