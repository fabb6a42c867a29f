"""Door-to-door plans on the Herrenberg network between real named places: they exist and are physically sound."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
import shutil
import zoneinfo
from pathlib import Path

import msgspec
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from maas.cli import main
from routing.builder import BuildInputs, build_network
from routing.network import load_network
from routing.plan import (
    BIKE_RENT_S,
    BIKE_RETURN_S,
    Endpoint,
    Itinerary,
    Leg,
    PlanError,
    PlanRequest,
    Router,
    encode_polyline,
)
from routing.spatial import haversine_m
from tests.conftest import HERRENBERG

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def router(network_dir: Path) -> Router:
    return Router(load_network(network_dir))


def _named_places() -> list[tuple[str, float, float]]:
    with (HERRENBERG / "od" / "stadtnavi-test-locations.csv").open() as fh:
        return [(r[0], float(r[1]), float(r[2])) for r in csv.reader(fh) if r]


def _places_in_region() -> list[tuple[str, float, float]]:
    area = json.loads((HERRENBERG / "herrenberg-and-around.geojson").read_text())
    polygon = shapely.geometry.shape(area["features"][0]["geometry"])
    return [r for r in _named_places() if polygon.contains(shapely.Point(r[2], r[1]))]


def decode_polyline(text: str) -> np.ndarray:
    """Points of an encoded polyline, written independently of the encoder under test."""
    values, shift, acc = [], 0, 0
    for ch in text:
        b = ord(ch) - 63
        acc |= (b & 0x1F) << shift
        shift += 5
        if b < 0x20:
            values.append(~(acc >> 1) if acc & 1 else acc >> 1)
            shift, acc = 0, 0
    return np.cumsum(np.array(values, dtype=np.int64).reshape(-1, 2), axis=0) / 1e5


def _assert_sound(it: Itinerary, depart: dt.datetime, max_walk_m: float = 1000.0) -> None:
    assert it.legs
    assert it.departure >= depart
    assert it.departure == it.legs[0].departure and it.arrival == it.legs[-1].arrival
    for before, after in zip(it.legs, it.legs[1:], strict=False):
        assert (before.to.lat, before.to.lon) == (after.from_.lat, after.from_.lon), "legs connect in space"
        assert after.departure >= before.arrival, "legs connect in time"
    for leg in it.legs:
        seconds = (leg.arrival - leg.departure).total_seconds()
        assert seconds >= 0, "no leg goes back in time"
        straight = float(haversine_m(leg.from_.lat, leg.from_.lon, leg.to.lat, leg.to.lon))
        if leg.mode == "walk":
            assert leg.distance_m + 1 >= straight
            assert leg.distance_m <= 2.0 * max(seconds, 1.0) + 1, "nobody walks faster than 2 m/s"
        elif leg.mode == "transit":
            assert leg.route and leg.trip
            assert straight <= 45.0 * max(seconds, 60.0), "no bus or train is faster than 160 km/h"
        elif leg.mode == "bike_share":
            assert leg.system and leg.route is None and leg.trip is None
            assert leg.from_.station and leg.to.station and leg.from_.station != leg.to.station
            assert leg.from_.station.startswith(f"{leg.system}:") and leg.to.station.startswith(f"{leg.system}:"), (
                "a bike goes back to a station of its own system"
            )
            assert leg.distance_m + 1 >= straight and seconds > 0
            assert 5.0 / 3.6 < leg.distance_m / seconds < 30.0 / 3.6, "a rented bike rides at 5-30 km/h"
        else:
            assert leg.mode == "on_demand" and leg.route is None
            assert straight <= 36.0 * max(seconds, 60.0), "no minibus is faster than 130 km/h"
        points = decode_polyline(leg.geometry)
        assert np.allclose(points[0], (leg.from_.lat, leg.from_.lon), atol=2e-5)
        assert np.allclose(points[-1], (leg.to.lat, leg.to.lon), atol=2e-5)
        if leg.mode in ("walk", "bike_share") and leg.distance_m > 150:
            drawn = haversine_m(points[:-1, 0], points[:-1, 1], points[1:, 0], points[1:, 1]).sum()
            assert 0.6 * leg.distance_m <= drawn <= 1.3 * leg.distance_m + 50, "the drawn walk is the walked way"
    transit = [leg for leg in it.legs if leg.mode == "transit"]
    assert it.transfers == max(len(transit) - 1, 0)
    walks = [leg.distance_m for leg in it.legs if leg.mode == "walk"]
    assert it.walk_m == pytest.approx(sum(walks), abs=0.5)
    for k, leg in enumerate(it.legs):
        if leg.mode != "bike_share":
            continue
        before, after = it.legs[k - 1], it.legs[k + 1]
        assert before.mode == "walk" and after.mode == "walk", "one walks to and from a bike-share station"
        assert before.distance_m <= max_walk_m and after.distance_m <= max_walk_m
        assert (leg.departure - before.arrival).total_seconds() >= BIKE_RENT_S, "unlocking takes time"
        assert (after.departure - leg.arrival).total_seconds() >= BIKE_RETURN_S, "docking takes time"


def test_plans_between_named_places_exist_and_are_sound(router: Router) -> None:
    date = dt.date(2021, 6, 15)  # inside the city-bus feed's service period
    places = _places_in_region()
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
                _assert_sound(it, depart)
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
        assert set(it) == {"departure", "arrival", "transfers", "walk_m", "legs"}
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


def test_encoded_polyline_matches_the_published_example() -> None:
    # The example of Google's polyline format documentation.
    lat = np.array([38.5, 40.7, 43.252])
    lon = np.array([-120.2, -120.95, -126.453])
    assert encode_polyline(lat, lon) == "_p~iF~ps|U_ulLnnqC_mqNvxq`@"


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
    _assert_sound(best, depart)
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
            _assert_sound(it, request.depart)
        planned += bool(plan.itineraries)
    assert planned >= 1  # most random pairs in this rural region have no bus on that day


def test_arrive_by_leaves_as_late_as_possible(router: Router) -> None:
    deadline = dt.datetime(2021, 6, 15, 9, 0, tzinfo=BERLIN)
    request = PlanRequest(
        origin=Endpoint(lat=48.5935, lon=8.8630), destination=Endpoint(lat=48.6113, lon=8.8430), depart=deadline
    )
    plan = router.plan_arriving_by(request, deadline)
    assert plan.itineraries
    latest = max(it.departure for it in plan.itineraries)
    for it in plan.itineraries:
        assert it.arrival <= deadline
        _assert_sound(it, deadline - dt.timedelta(hours=3))
    # One minute later nothing arrives in time: the departure is the latest possible.
    later = router.plan(msgspec.structs.replace(request, depart=latest + dt.timedelta(seconds=60)))
    assert all(it.arrival > deadline for it in later.itineraries)
    res = CliRunner().invoke(main, ["plan", "/nowhere", "--from", "1,1", "--to", "2,2"])
    assert res.exit_code == 2 and "exactly one of --depart and --arrive-by" in res.output


def _arriving_by_bisection(
    router: Router, request: PlanRequest, deadline: dt.datetime, window_s: int
) -> list[Itinerary]:
    """Arrive-by as it was planned before the backward search: bisection on the departure second."""

    def in_time(seconds_before: int) -> list[Itinerary]:
        plan = router.plan(msgspec.structs.replace(request, depart=deadline - dt.timedelta(seconds=seconds_before)))
        return [it for it in plan.itineraries if it.arrival <= deadline]

    if not in_time(window_s):
        return []
    early, late = window_s, 0
    while early - late > 1:
        mid = (early + late) // 2
        if in_time(mid):
            early = mid
        else:
            late = mid
    return in_time(early)


def test_arrive_by_equals_bisection_of_forward_plans(router: Router) -> None:
    places = {name: (lat, lon) for name, lat, lon in _places_in_region()}
    cases = [
        ("Herrenberg Bahnhof", "Kuppingen", (7, 0)),
        ("Kuppingen", "Herrenberg Verenaweg", (8, 17)),
        ("Herrenberg Verenaweg", "Herrenberg Bahnhof", (12, 40)),
        ("Kuppingen", "Herrenberg Bahnhof", (17, 5)),
        ("Herrenberg Bahnhof", "Herrenberg Verenaweg", (22, 30)),
        ("Herrenberg Verenaweg", "Kuppingen", (6, 10)),
    ]
    compared = 0
    for a, b, (hour, minute) in cases:
        deadline = dt.datetime(2021, 6, 15, hour, minute, tzinfo=BERLIN)
        request = PlanRequest(
            origin=Endpoint(lat=places[a][0], lon=places[a][1]),
            destination=Endpoint(lat=places[b][0], lon=places[b][1]),
            depart=deadline,
        )
        expected = _arriving_by_bisection(router, request, deadline, 3 * 3600)
        got = router.plan_arriving_by(request, deadline).itineraries
        assert [msgspec.json.encode(it) for it in got] == [msgspec.json.encode(it) for it in expected], (a, b, deadline)
        compared += any(leg.mode == "transit" for it in got for leg in it.legs)
    assert compared >= 4, "most cases leave by bus or train"


def test_range_query_gives_every_useful_departure_in_the_window(router: Router) -> None:
    start = dt.datetime(2021, 6, 15, 7, 0, tzinfo=BERLIN)
    request = PlanRequest(
        origin=Endpoint(lat=48.5935, lon=8.8630), destination=Endpoint(lat=48.6113, lon=8.8430), depart=start
    )
    profile = router.plan_range(request, 2 * 3600).itineraries
    assert len(profile) >= 4, "the city bus runs every 15-30 minutes"
    first = router.plan(request).itineraries
    assert min(it.arrival for it in profile) == min(it.arrival for it in first)
    for it in profile:
        _assert_sound(it, start)
        assert it.departure <= start + dt.timedelta(hours=2, minutes=1)
        single = router.plan(msgspec.structs.replace(request, depart=it.departure)).itineraries
        assert min(x.arrival for x in single) == it.arrival or it.transfers < min(
            x.transfers for x in single if x.arrival < it.arrival
        )
    for a in profile:
        for b in profile:
            if a is not b:
                assert not (
                    b.departure >= a.departure
                    and b.arrival <= a.arrival
                    and b.transfers <= a.transfers
                    and (b.departure, b.arrival) != (a.departure, a.arrival)
                ), "no itinerary is dominated"


def test_transit_legs_follow_the_gtfs_shape(router: Router) -> None:
    depart = dt.datetime(2020, 10, 6, 7, 30, tzinfo=BERLIN)
    plan = router.plan(
        PlanRequest(
            origin=Endpoint(lat=48.5935, lon=8.8630), destination=Endpoint(lat=48.6582, lon=8.9408), depart=depart
        )
    )
    leg = next(leg for it in plan.itineraries for leg in it.legs if leg.mode == "transit")
    points = decode_polyline(leg.geometry)
    drawn = haversine_m(points[:-1, 0], points[:-1, 1], points[1:, 0], points[1:, 1]).sum()
    straight = float(haversine_m(leg.from_.lat, leg.from_.lon, leg.to.lat, leg.to.lon))
    # Herrenberg -> Ehningen (two stops on the S1) is drawn along the railway, not as one straight line.
    assert len(points) > 20
    assert straight < drawn < 1.6 * straight


# -- bike share ---------------------------------------------------------------------------------

HERRENBERG_GBFS = sorted(p for p in (HERRENBERG / "gbfs").iterdir() if p.is_dir())
STADTRAD = "de.stadtnavi.gbfs.stadtrad"
# Stations added to a copy of the real stadtRad feed, each at a real named place of the region
# (od/stadtnavi-test-locations.csv) and with the availability written here: (bikes, free docks).
ADDED_STATIONS = {
    "bahnhof": ("Herrenberg Bahnhof", 0, 4),
    "kuppingen": ("Kuppingen", 0, 3),
    "verenaweg": ("Herrenberg Verenaweg", 2, 0),
    "nebringen": ("Nebringen", 3, 2),
}


def _build_with_gbfs(out: Path, gbfs: list[Path]) -> Path:
    build_network(
        BuildInputs(
            gtfs=[str(p) for p in sorted((HERRENBERG / "gtfs").glob("*.zip"))],
            gbfs=[str(p) for p in gbfs],
            osm=str(HERRENBERG / "herrenberg-and-around.osm.pbf"),
        ),
        out,
    )
    return out


def _derive_stadtrad(target: Path) -> Path:
    """The real stadtRad feed with its one station copied to four more places (the real one keeps its status)."""
    shutil.copytree(HERRENBERG / "gbfs" / "stadtrad", target)
    info = json.loads((target / "station_information.json").read_text())
    status = json.loads((target / "station_status.json").read_text())
    real_info, real_status = info["data"]["stations"][0], status["data"]["stations"][0]
    places = {name: (lat, lon) for name, lat, lon in _places_in_region()}
    for station_id, (place, bikes, docks) in ADDED_STATIONS.items():
        lat, lon = places[place]
        record = copy.deepcopy(real_info) | {"station_id": station_id, "name": place, "lat": lat, "lon": lon}
        state = copy.deepcopy(real_status) | {
            "station_id": station_id,
            "num_bikes_available": bikes,
            "num_docks_available": docks,
        }
        state["vehicle_types_available"][0]["count"] = bikes
        info["data"]["stations"].append(record)
        status["data"]["stations"].append(state)
    (target / "station_information.json").write_text(json.dumps(info))
    (target / "station_status.json").write_text(json.dumps(status))
    return target


def _availability(gbfs: list[Path]) -> dict[str, tuple[int | None, int | None]]:
    """(bikes, free docks) of every station, `<system_id>:<station_id>`, read from the raw status files."""
    found = {}
    for directory in gbfs:
        system = json.loads((directory / "system_information.json").read_text())["data"]["system_id"]
        for s in json.loads((directory / "station_status.json").read_text())["data"]["stations"]:
            found[f"{system}:{s['station_id']}"] = (s.get("num_bikes_available"), s.get("num_docks_available"))
    return found


@pytest.fixture(scope="module")
def real_gbfs_router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    return Router(load_network(_build_with_gbfs(tmp_path_factory.mktemp("real-gbfs") / "net", HERRENBERG_GBFS)))


@pytest.fixture(scope="module")
def derived_gbfs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    stadtrad = _derive_stadtrad(tmp_path_factory.mktemp("gbfs") / "stadtrad")
    return [p for p in HERRENBERG_GBFS if p.name != "stadtrad"] + [stadtrad]


@pytest.fixture(scope="module")
def bike_network(tmp_path_factory: pytest.TempPathFactory, derived_gbfs: list[Path]) -> Path:
    return _build_with_gbfs(tmp_path_factory.mktemp("derived-gbfs") / "net", derived_gbfs)


@pytest.fixture(scope="module")
def bike_router(bike_network: Path) -> Router:
    return Router(load_network(bike_network))


def _endpoints(router: Router) -> list[tuple[str, float, float]]:
    """The named places of the region and a point 150 m north of every bike-share station in it."""
    sharing = router.network.sharing
    stations = [
        (f"near {sharing.station_name[k]}", float(sharing.station_lat[k]) + 0.00135, float(sharing.station_lon[k]))
        for k in range(len(sharing.station_id))
        if "bicycle" in str(sharing.system_form_factors[sharing.station_system[k]])
    ]
    return _places_in_region() + stations


def _all_plans(router: Router, depart: dt.datetime, max_walk_m: float = 1000.0) -> list[Itinerary]:
    found = []
    for name_a, lat_a, lon_a in _endpoints(router):
        for name_b, lat_b, lon_b in _endpoints(router):
            if name_a != name_b:
                found += router.plan(
                    PlanRequest(
                        origin=Endpoint(lat=lat_a, lon=lon_a),
                        destination=Endpoint(lat=lat_b, lon=lon_b),
                        depart=depart,
                        max_walk_m=max_walk_m,
                    )
                ).itineraries
    return found


def _bike_legs(itineraries: list[Itinerary]) -> list[Leg]:
    return [leg for it in itineraries for leg in it.legs if leg.mode == "bike_share"]


def test_the_real_feeds_allow_no_bike_share_ride(real_gbfs_router: Router) -> None:
    # Each real bike system has one station (and only Gültstein's reports free docks): a rental
    # can only go back where it started, which is no journey. Car sharing is not taken for bikes.
    sharing = real_gbfs_router.network.sharing
    forms = dict(zip(sharing.system_id.tolist(), sharing.system_form_factors.tolist(), strict=True))
    assert forms["car-sharing"] == "" and forms[STADTRAD] == "cargo_bicycle"
    assert (np.asarray(sharing.station_vehicles)[np.asarray(sharing.station_walk_node) >= 0] > 0).sum() >= 4
    depart = dt.datetime(2021, 6, 15, 7, 30, tzinfo=BERLIN)
    plans = _all_plans(real_gbfs_router, depart)
    assert len(plans) >= 20
    for it in plans:
        _assert_sound(it, depart)
    assert not _bike_legs(plans)


def test_bike_share_rides_from_a_station_with_bikes_to_one_of_the_same_system_with_docks(
    bike_router: Router,
    derived_gbfs: list[Path],
) -> None:
    availability = _availability(derived_gbfs)
    depart = dt.datetime(2021, 6, 15, 7, 30, tzinfo=BERLIN)
    plans = _all_plans(bike_router, depart)
    legs = _bike_legs(plans)
    assert len(legs) >= 20
    for it in plans:
        _assert_sound(it, depart)
    used = set()
    for leg in legs:
        assert leg.from_.station and leg.to.station
        bikes, _ = availability[leg.from_.station]
        _, docks = availability[leg.to.station]
        assert bikes is not None and bikes > 0, f"{leg.from_.name} has no bike to rent"
        assert docks is not None and docks > 0, f"{leg.to.name} has no free dock"
        used.add((leg.from_.station.removeprefix(f"{STADTRAD}:"), leg.to.station.removeprefix(f"{STADTRAD}:")))
    # Pickups only where there are bikes (the real station, Verenaweg, Nebringen), returns only
    # where there are docks (Bahnhof, Kuppingen, Nebringen).
    assert {a for a, _ in used} <= {"technisches_rathaus", "verenaweg", "nebringen"}
    assert {b for _, b in used} <= {"bahnhof", "kuppingen", "nebringen"}
    assert len(used) >= 4


def test_bike_share_reaches_the_train_where_no_bus_runs(bike_router: Router) -> None:
    places = {name: (lat, lon) for name, lat, lon in _named_places()}
    nebringen, ehningen = (
        Endpoint(lat=places["Nebringen"][0], lon=places["Nebringen"][1]),
        Endpoint(lat=places["Ehningen"][0], lon=places["Ehningen"][1]),
    )
    # There: walk to the Nebringen station, ride to the one at Herrenberg station, take the S1.
    depart = dt.datetime(2020, 10, 6, 7, 30, tzinfo=BERLIN)
    there = bike_router.plan(PlanRequest(origin=nebringen, destination=ehningen, depart=depart)).itineraries
    assert there
    modes = [leg.mode for leg in there[0].legs]
    assert modes[:4] == ["walk", "bike_share", "walk", "transit"]
    assert [leg.route_name for leg in there[0].legs if leg.mode == "transit"] == ["S1"]
    for it in there:
        _assert_sound(it, depart)
    # Back: the S1 to Herrenberg, walk to the one station there with a bike, ride home.
    depart = dt.datetime(2020, 10, 6, 16, 30, tzinfo=BERLIN)
    back = bike_router.plan(PlanRequest(origin=ehningen, destination=nebringen, depart=depart)).itineraries
    assert back
    assert [leg.mode for leg in back[0].legs][-3:] == ["walk", "bike_share", "walk"]
    assert back[0].legs[-2].from_.station == f"{STADTRAD}:technisches_rathaus"
    for it in back:
        _assert_sound(it, depart)
    # Without bike share (as without stations), Nebringen has no scheduled journey at all.
    assert not bike_router.plan(
        PlanRequest(origin=nebringen, destination=ehningen, depart=depart, bike_share=False)
    ).itineraries


def test_a_direct_rental_is_kept_when_nothing_beats_it(bike_router: Router) -> None:
    places = {name: (lat, lon) for name, lat, lon in _places_in_region()}
    depart = dt.datetime(2021, 6, 15, 7, 30, tzinfo=BERLIN)
    plan = bike_router.plan(
        PlanRequest(
            origin=Endpoint(lat=places["Herrenberg Verenaweg"][0], lon=places["Herrenberg Verenaweg"][1]),
            destination=Endpoint(lat=places["Kuppingen"][0], lon=places["Kuppingen"][1]),
            depart=depart,
        )
    )
    direct = [it for it in plan.itineraries if [leg.mode for leg in it.legs] == ["walk", "bike_share", "walk"]]
    assert len(direct) == 1
    ride = direct[0].legs[1]
    assert (ride.from_.station, ride.to.station) == (f"{STADTRAD}:verenaweg", f"{STADTRAD}:kuppingen")
    assert direct[0].departure == depart and direct[0].transfers == 0
    # The city buses need a change there and arrive later: the rental is the first itinerary.
    assert plan.itineraries[0] is direct[0] or plan.itineraries[0].arrival == direct[0].arrival
    others = [it for it in plan.itineraries if it is not direct[0]]
    assert not any(o.arrival <= direct[0].arrival and o.transfers <= 0 and o.walk_m <= direct[0].walk_m for o in others)


def test_stations_without_bikes_or_docks_are_not_used(bike_router: Router) -> None:
    places = {name: (lat, lon) for name, lat, lon in _places_in_region()}
    depart = dt.datetime(2021, 6, 15, 7, 30, tzinfo=BERLIN)
    # From Kuppingen (docks, no bikes) to Nebringen: no pickup within walking distance of Kuppingen.
    # From Nebringen to Verenaweg (bikes, no docks): no return within walking distance of Verenaweg.
    for a, b in (("Kuppingen", "Nebringen"), ("Nebringen", "Herrenberg Verenaweg")):
        for max_walk_m in (300.0, 1000.0):
            plan = bike_router.plan(
                PlanRequest(
                    origin=Endpoint(lat=places[a][0], lon=places[a][1]),
                    destination=Endpoint(lat=places[b][0], lon=places[b][1]),
                    depart=depart,
                    max_walk_m=max_walk_m,
                )
            )
            for leg in _bike_legs(plan.itineraries):
                assert leg.from_.station not in (f"{STADTRAD}:kuppingen", f"{STADTRAD}:bahnhof")
                assert leg.to.station not in (f"{STADTRAD}:verenaweg", f"{STADTRAD}:technisches_rathaus")
    # The other way round the same stations are used: what kept them out above is their availability.
    for a, b in (("Nebringen", "Kuppingen"), ("Herrenberg Verenaweg", "Nebringen")):
        plan = bike_router.plan(
            PlanRequest(
                origin=Endpoint(lat=places[a][0], lon=places[a][1]),
                destination=Endpoint(lat=places[b][0], lon=places[b][1]),
                depart=depart,
            )
        )
        rides = {(leg.from_.name, leg.to.name) for leg in _bike_legs(plan.itineraries)}
        assert (a, b) in rides


def test_the_walking_limit_holds_for_the_walks_to_and_from_stations(bike_router: Router) -> None:
    depart = dt.datetime(2021, 6, 15, 7, 30, tzinfo=BERLIN)
    plans = _all_plans(bike_router, depart, max_walk_m=400.0)
    assert _bike_legs(plans)
    for it in plans:
        _assert_sound(it, depart, max_walk_m=400.0)


def test_cli_shows_bike_share_and_can_leave_it_out(bike_network: Path) -> None:
    args = [
        "plan",
        str(bike_network),
        "--from",
        "48.5627,8.8481",
        "--to",
        "48.6582,8.9408",
        "--depart",
        "2020-10-06T07:30",
    ]
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0, shown.output
    assert "bike share (de.stadtnavi.gbfs.stadtrad)" in shown.output and "Nebringen" in shown.output
    as_json = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    ride = next(leg for leg in as_json["itineraries"][0]["legs"] if leg["mode"] == "bike_share")
    assert ride["from"]["station"] == f"{STADTRAD}:nebringen" and ride["system"] == STADTRAD
    assert ride["from"]["name"] == "Nebringen" and ride["to"]["name"] == "Herrenberg Bahnhof"
    without = CliRunner().invoke(main, [*args, "--no-bike-share"])
    assert without.exit_code == 0 and "bike share" not in without.output
