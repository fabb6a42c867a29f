"""Bike share on the Herrenberg network: the real feeds, and a copy of stadtRad with more stations."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest
from click.testing import CliRunner

from maas.cli import main
from routing.builder import BuildInputs, build_network
from routing.network import load_network
from routing.plan import Endpoint, Itinerary, Leg, Plan, PlanRequest, Router
from tests.conftest import HERRENBERG
from tests.helpers import BERLIN, answers_in_threads, assert_sound, named_places, places_in_region

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
    places = {name: (lat, lon) for name, lat, lon in places_in_region()}
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
    return places_in_region() + stations


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
        assert_sound(it, depart)
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
        assert_sound(it, depart)
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
    places = {name: (lat, lon) for name, lat, lon in named_places()}
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
        assert_sound(it, depart)
    # Back: the S1 to Herrenberg, walk to the one station there with a bike, ride home.
    depart = dt.datetime(2020, 10, 6, 16, 30, tzinfo=BERLIN)
    back = bike_router.plan(PlanRequest(origin=ehningen, destination=nebringen, depart=depart)).itineraries
    assert back
    assert [leg.mode for leg in back[0].legs][-3:] == ["walk", "bike_share", "walk"]
    assert back[0].legs[-2].from_.station == f"{STADTRAD}:technisches_rathaus"
    for it in back:
        assert_sound(it, depart)
    # Without bike share (as without stations), Nebringen has no scheduled journey at all.
    assert not bike_router.plan(
        PlanRequest(origin=nebringen, destination=ehningen, depart=depart, bike_share=False)
    ).itineraries


def test_a_direct_rental_is_kept_when_nothing_beats_it(bike_router: Router) -> None:
    places = {name: (lat, lon) for name, lat, lon in places_in_region()}
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
    places = {name: (lat, lon) for name, lat, lon in places_in_region()}
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
        assert_sound(it, depart, max_walk_m=400.0)


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


def test_rentals_planned_from_several_threads_at_once_are_those_planned_one_at_a_time(
    bike_router: Router, bike_network: Path
) -> None:
    depart = dt.datetime(2021, 6, 15, 7, 30, tzinfo=BERLIN)
    calls: list[Callable[[Router], Plan]] = [
        lambda r, q=request: r.plan(q)
        for _, lat_a, lon_a in _endpoints(bike_router)
        for _, lat_b, lon_b in _endpoints(bike_router)
        if (lat_a, lon_a) != (lat_b, lon_b)
        for request in [
            PlanRequest(
                origin=Endpoint(lat=lat_a, lon=lon_a), destination=Endpoint(lat=lat_b, lon=lon_b), depart=depart
            )
        ]
    ]
    one_at_a_time = [msgspec.json.encode(call(bike_router)) for call in calls]
    # A fresh router: the threads race for the reversed bike graph and the stops near each station too.
    at_once = answers_in_threads(Router(load_network(bike_network)), calls)
    assert at_once == one_at_a_time
    assert sum(b'"mode":"bike_share"' in answer for answer in at_once) >= 10
