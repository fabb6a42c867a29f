"""Arrive-by and range queries: the latest departure arriving in time, and every useful one in a window."""

from __future__ import annotations

import datetime as dt

import msgspec
from click.testing import CliRunner

from maas.cli import main
from routing.plan import Endpoint, Itinerary, PlanRequest, Router
from tests.helpers import BERLIN, assert_sound, places_in_region


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
        assert_sound(it, deadline - dt.timedelta(hours=3))
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
    places = {name: (lat, lon) for name, lat, lon in places_in_region()}
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
        assert_sound(it, start)
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
