"""Journeys whose on-demand legs are offers of the live fleet: Nebringen (no scheduled stop) by Rufbus
to Herrenberg and the S1 to Stuttgart, checked exactly against the vehicles' plans (2020 timetable,
the fleet on a 2020 clock)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from maas.demo import demo_region
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.model import Passengers, Request, Vehicle
from routing.network import load_network
from routing.ondemand import DriveTimeEstimator, OnDemandService
from routing.plan import Endpoint, Itinerary, PlanRequest, Router
from routing.plan.live import Candidate, FleetRides, LiveRules, pareto, plan_with_fleet
from tests.helpers import BERLIN

NEBRINGEN = Endpoint(lat=48.5627, lon=8.8481)
STUTTGART = Endpoint(stop="vvs-s1-only:de:08111:6118:1:102")
DEPART = dt.datetime(2020, 10, 6, 7, 30, tzinfo=BERLIN)
RULES = LiveRules(change_s=180, min_ride_m=500.0)


@pytest.fixture(scope="module")
def router(network_dir: Path) -> Router:
    net = load_network(network_dir)
    area = json.loads((demo_region() / "herrenberg-and-around.geojson").read_text())["features"][0]["geometry"]
    optimistic = OnDemandService(
        name="Rufbus", area=area, detour_factor=1.0, pickup_delay_s=240, start=dt.time(0), end=dt.time(23, 59)
    )
    return Router(net, DriveTimeEstimator(net, optimistic))


def _fleet(router: Router, seats: int = 3, start: dt.datetime = DEPART - dt.timedelta(hours=1)) -> Dispatcher:
    drive = router.network.streets["drive"]
    dispatcher = Dispatcher(drive, [_bus("bus-1", router, seats, start)])
    return dispatcher


def _bus(name: str, router: Router, seats: int, start: dt.datetime) -> Vehicle:
    from routing.dispatch.drive_times import DriveTimes

    depot = DriveTimes(router.network.streets["drive"]).snap(48.5935, 8.8630)  # Herrenberg Bahnhof
    return Vehicle(
        id=name,
        seats=seats,
        depot_node=depot,
        shift_start_s=start.timestamp(),
        shift_end_s=(start + dt.timedelta(hours=6)).timestamp(),
    )


def _live(router: Router, dispatcher: Dispatcher, now: dt.datetime) -> list[Candidate]:
    request = PlanRequest(origin=NEBRINGEN, destination=STUTTGART, depart=DEPART)
    plain, served = plan_with_fleet(FleetRides(router, RULES), request, None, Passengers(seated=1), dispatcher, now)
    assert all(leg.mode != "on_demand" for it in plain for leg in it.legs)
    return served


def _first_train(it: Itinerary) -> dt.datetime:
    return next(leg.departure for leg in it.legs if leg.mode == "transit")


def test_a_rufbus_brings_the_rider_to_the_s1_in_time(router: Router) -> None:
    dispatcher = _fleet(router)
    now = DEPART - dt.timedelta(minutes=20)
    served = _live(router, dispatcher, now)
    feeders = [c for c in served if c.rides and c.rides[0].connection.kind == "first_mile"]
    assert feeders, "the plan offers a Rufbus to the S1"
    best = min(feeders, key=lambda c: c.itinerary.arrival)
    it, ride = best.itinerary, best.rides[0]
    assert it.legs[0].mode == "on_demand" and not it.legs[0].estimated
    assert it.legs[0].to.name.startswith("Herrenberg")
    train = next(leg for leg in it.legs if leg.mode == "transit")
    assert train.route_name == "S1" and ride.connection.trip == train.trip
    offer = ride.offer
    assert offer is not None
    # The promise protects the connection: dropped off by the S1's departure less the change time.
    assert offer.promise.dropoff_latest_s <= train.departure.timestamp() - RULES.change_s
    assert offer.promise.pickup_earliest_s >= DEPART.timestamp()
    assert it.legs[0].departure.timestamp() == pytest.approx(offer.pickup_estimate_s, abs=1)
    assert it.legs[0].arrival <= train.departure
    # The offer is one the fleet can really serve: booking it lands it in the plan.
    booked = dispatcher.book(offer, ride.request, now.timestamp())
    assert booked.promise == offer.promise
    times = {rid: t for rid, kind, t in dispatcher.schedule("bus-1") if kind == "dropoff"}
    assert times[ride.request.id] <= offer.promise.dropoff_latest_s


def test_a_full_fleet_moves_the_rider_to_a_later_train_or_offers_nothing(router: Router) -> None:
    now = DEPART - dt.timedelta(minutes=20)
    empty = _live(router, _fleet(router), now)
    first = min(_first_train(c.itinerary) for c in empty if c.rides[0].connection.kind == "first_mile")
    # The only bus has one seat, taken from Kuppingen to Rohrau from 07:25: it cannot fetch the rider
    # in Nebringen (south of the station) in time for the first train as well.
    dispatcher = _fleet(router, seats=1)
    kuppingen, rohrau = dispatcher.times.snap(48.6113, 8.8430), dispatcher.times.snap(48.6237, 8.9101)
    busy = Request(
        id="busy",
        origin_node=kuppingen,
        destination_node=rohrau,
        earliest_pickup_s=(DEPART - dt.timedelta(minutes=5)).timestamp(),
    )
    quote = dispatcher.quote(busy, now.timestamp())
    assert quote.offers, "the bus takes the busy ride"
    dispatcher.book(quote.offers[0], busy, now.timestamp())
    served = _live(router, dispatcher, now)
    feeders = [c for c in served if c.rides and c.rides[0].connection.kind == "first_mile"]
    assert feeders, "a later train is offered instead"
    for c in served:
        if c.rides and c.rides[0].connection.kind == "first_mile":
            assert _first_train(c.itinerary) > first, "a full bus is not offered for the first train"
            offer = c.rides[0].offer
            assert offer is not None
            assert offer.promise.dropoff_latest_s <= _first_train(c.itinerary).timestamp() - RULES.change_s
    # And with no bus at all before 09:00 nothing is offered on demand.
    late = Dispatcher(router.network.streets["drive"], [_bus("late", router, 3, DEPART + dt.timedelta(hours=4))])
    assert not [c for c in _live(router, late, now) if c.itinerary.departure < DEPART + dt.timedelta(hours=4)]


def test_one_pareto_set_over_arrival_changes_walking_and_ride_time(router: Router) -> None:
    served = _live(router, _fleet(router), DEPART - dt.timedelta(minutes=20))
    its = [c.itinerary for c in served]
    best = pareto(its)
    assert best and len(best) <= len(its)
    for a in best:
        for b in best:
            if a is not b:
                assert not (
                    a.arrival <= b.arrival
                    and a.transfers <= b.transfers
                    and a.walk_m <= b.walk_m
                    and a.arrival < b.arrival
                ), "no kept itinerary is beaten by another on every criterion"


def test_a_ride_that_only_replaces_a_short_walk_is_not_offered(router: Router) -> None:
    request = PlanRequest(origin=NEBRINGEN, destination=STUTTGART, depart=DEPART)
    plan = router.plan(request)
    now = DEPART - dt.timedelta(minutes=20)
    _, usual = FleetRides(router, RULES).candidates(plan, request, None, Passengers(), now)
    assert usual, "the 3.6 km ride from Nebringen to Herrenberg is a candidate"
    # With rides under 5 km walked instead, no itinerary of the plan keeps a ride.
    picky = FleetRides(router, LiveRules(change_s=180, min_ride_m=5000.0))
    _, none = picky.candidates(plan, request, None, Passengers(), now)
    assert not none
