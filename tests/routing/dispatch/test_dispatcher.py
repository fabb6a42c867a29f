"""Live plans on the Herrenberg drive network: quotes, bookings, promises, stop events, re-optimisation."""

from __future__ import annotations

import random

import msgspec
import numpy as np
import pytest

from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.drive_times import DriveTimes
from routing.dispatch.model import (
    DRIVING,
    RIDER_FIRST,
    DispatchError,
    Passengers,
    Request,
    RideRules,
    StopEvent,
    Vehicle,
    Weights,
)
from routing.oracles import best_insertion_reference, schedule_reference

H = 3600.0


def _fleet(stops: list[int], count: int, seats: int = 8, wheelchair_places: int = 1) -> list[Vehicle]:
    rng = random.Random(count)
    return [
        Vehicle(
            id=f"bus-{k}",
            seats=seats,
            wheelchair_places=wheelchair_places,
            depot_node=rng.choice(stops),
            shift_start_s=6 * H,
            shift_end_s=22 * H,
        )
        for k in range(count)
    ]


def _request(rng: random.Random, stops: list[int], name: str, lo: float = 7 * H, hi: float = 20 * H) -> Request:
    a, b = rng.sample(stops, 2)
    group = Passengers(seated=rng.choice([1, 1, 1, 2, 3]), wheelchairs=1 if rng.random() < 0.1 else 0)
    if rng.random() < 0.7:
        return Request(
            id=name, origin_node=a, destination_node=b, passengers=group, earliest_pickup_s=rng.uniform(lo, hi)
        )
    return Request(
        id=name, origin_node=a, destination_node=b, passengers=group, latest_arrival_s=rng.uniform(lo + H, hi + H)
    )


def _book_some(disp: Dispatcher, rng: random.Random, stops: list[int], count: int, lo: float, hi: float) -> int:
    """Quote `count` random rides and book the cheapest offer of each; returns how many were booked."""
    booked = 0
    for k in range(count):
        request = _request(rng, stops, f"r{k}", lo, hi)
        quote = disp.quote(request, now_s=6 * H)
        if quote.offers:
            disp.book(quote.offers[0], request)
            booked += 1
    return booked


def _assert_promises_kept(disp: Dispatcher) -> None:
    """Every active booking is planned once, inside its promise, on the vehicle it is booked on."""
    for vehicle in disp.vehicles:
        stops_ = disp.schedule(vehicle.id)
        for rid, kind, at in stops_:
            if kind == "break":
                continue
            booking = disp.booking(rid)
            assert booking.vehicle_id == vehicle.id
            if kind == "pickup":
                assert booking.promise.pickup_earliest_s - 1e-6 <= at <= booking.promise.pickup_latest_s + 1e-6
            else:
                assert at <= booking.promise.dropoff_latest_s + 1e-6
    planned = [rid for v in disp.vehicles for rid, kind, _ in disp.schedule(v.id) if kind != "break"]
    for rid, ride in disp.rides.items():
        expected = {"confirmed": 2, "picked_up": 1}.get(ride.status, 0)
        assert planned.count(rid) == expected, (rid, ride.status)


def test_offers_are_feasible_and_bookings_land_in_the_plan(drive, stops: list[int]) -> None:
    disp = Dispatcher(drive, _fleet(stops, 10))
    rng = random.Random(5)
    booked = 0
    for k in range(60):
        request = _request(rng, stops, f"r{k}")
        quote = disp.quote(request, now_s=6 * H)
        if not quote.offers:
            assert quote.reason
            continue
        # Closest to what was asked first: the soonest pickup, or for arrive-by the latest drop-off.
        if request.latest_arrival_s is not None:
            closeness = [-o.dropoff_estimate_s for o in quote.offers]
        else:
            closeness = [o.pickup_estimate_s for o in quote.offers]
        assert closeness == sorted(closeness) and len({o.vehicle_id for o in quote.offers}) == len(quote.offers)
        offer = quote.offers[0]
        promise = offer.promise
        assert promise.pickup_earliest_s <= offer.pickup_estimate_s <= promise.pickup_latest_s
        assert promise.pickup_latest_s - promise.pickup_earliest_s <= disp.rules.pickup_window_s + 1e-6
        direct = disp.times.seconds(request.origin_node, request.destination_node)
        assert offer.dropoff_estimate_s >= offer.pickup_estimate_s + disp.rules.boarding_s + direct - 1e-6
        if request.latest_arrival_s is not None:
            assert promise.dropoff_latest_s <= request.latest_arrival_s + 1e-6
        else:
            assert offer.pickup_estimate_s >= request.earliest_pickup_s - 1e-6
        booking = disp.book(offer, request)
        assert booking.status == "confirmed" and booking.vehicle_id == offer.vehicle_id
        booked += 1
    assert booked >= 50
    _assert_promises_kept(disp)


@pytest.mark.parametrize("weights", [DRIVING, RIDER_FIRST, Weights(drive=0.2, wait=5.0, ride=0.0)])
def test_kernel_agrees_with_the_python_oracle_on_live_plans(drive, stops: list[int], weights: Weights) -> None:
    disp = Dispatcher(drive, _fleet(stops, 4, seats=3, wheelchair_places=1))
    rng = random.Random(11)
    _book_some(disp, rng, stops, 40, 7 * H, 11 * H)
    # Pick some riders up so that plans hold riders on board and fixed drop-offs.
    for vehicle in disp.vehicles:
        for rid, kind, at in disp.schedule(vehicle.id)[:3]:
            if kind != "pickup":
                break
            disp.record(rid, StopEvent.PICKED_UP, at)
    assert any(ride.status == "picked_up" for ride in disp.rides.values())
    problem, routes, _ = disp.snapshot()
    from routing.dispatch.insertion import Planner

    planner = Planner(problem)
    checked = 0
    for r in range(problem.n_requests):
        if problem.pickup[r] < 0:
            continue
        p, d = int(problem.pickup[r]), int(problem.dropoff[r])
        for v in range(problem.n_vehicles):
            base = routes[v][(routes[v] != p) & (routes[v] != d)]
            kernel = planner.best_insertion(v, base, r, weights)
            oracle = best_insertion_reference(problem, v, base.tolist(), r, weights)
            assert kernel[0] == pytest.approx(oracle[0], abs=1e-6) or (np.isinf(kernel[0]) and np.isinf(oracle[0]))
            assert (planner.schedule(v, base) is None) == (schedule_reference(problem, v, base.tolist()) is None)
            checked += 1
    assert checked >= 60


def test_a_full_vehicle_refuses_with_alternatives_and_cancelling_frees_the_room(drive, stops: list[int]) -> None:
    disp = Dispatcher(drive, _fleet(stops, 1, seats=3, wheelchair_places=0))
    a, b = stops[0], stops[-1]
    first = Request(id="a", origin_node=a, destination_node=b, passengers=Passengers(seated=3), earliest_pickup_s=8 * H)
    disp.book(disp.quote(first, now_s=6 * H).offers[0], first)
    second = Request(
        id="b",
        origin_node=a,
        destination_node=b,
        passengers=Passengers(seated=1),
        earliest_pickup_s=disp.booking("a").promise.pickup_earliest_s,
    )
    quote = disp.quote(second, now_s=6 * H)
    if not quote.offers:  # the single bus is busy: the nearest feasible times either side are offered
        assert quote.reason and quote.alternatives
        for alternative in quote.alternatives:
            start = alternative.promise.pickup_earliest_s
            assert abs(start - second.earliest_pickup_s) <= 2 * H + disp.search_window_s
    wheelchair = Request(
        id="w",
        origin_node=a,
        destination_node=b,
        passengers=Passengers(seated=0, wheelchairs=2),
        earliest_pickup_s=8 * H,
    )
    assert not disp.quote(wheelchair, now_s=6 * H).offers  # two wheelchairs need four seats' room
    disp.cancel("a")
    assert disp.booking("a").status == "cancelled"
    again = Request(id="c", origin_node=a, destination_node=b, passengers=Passengers(seated=3), earliest_pickup_s=8 * H)
    assert disp.quote(again, now_s=6 * H).offers
    with pytest.raises(DispatchError, match="cancelled"):
        disp.cancel("a")


def test_stop_events_move_riders_through_their_lifecycle(drive, stops: list[int]) -> None:
    disp = Dispatcher(drive, _fleet(stops, 2))
    rng = random.Random(2)
    _book_some(disp, rng, stops, 6, 8 * H, 9 * H)
    rid, _, at = disp.schedule(disp.vehicles[0].id)[0]
    vehicle = disp.booking(rid).vehicle_id
    assert disp.record(rid, StopEvent.ARRIVED, at).status == "confirmed"
    assert disp.record(rid, StopEvent.PICKED_UP, at).status == "picked_up"
    with pytest.raises(DispatchError, match="picked_up"):
        disp.cancel(rid)
    _assert_promises_kept(disp)
    drop = next(t for r, kind, t in disp.schedule(vehicle) if r == rid and kind == "dropoff")
    assert disp.record(rid, StopEvent.DROPPED_OFF, drop).status == "completed"
    assert all(r != rid for r, _, _ in disp.schedule(vehicle))
    # A no-show is reported at the vehicle's next stop after the waiting time.
    waiting = next(plan[0] for v in disp.vehicles if (plan := disp.schedule(v.id)) and plan[0][1] == "pickup")
    assert disp.record(waiting[0], StopEvent.NO_SHOW, waiting[2] + 300).status == "no_show"
    assert all(r != waiting[0] for v in disp.vehicles for r, _, _ in disp.schedule(v.id))
    _assert_promises_kept(disp)


def test_bad_requests_are_refused_clearly(drive, stops: list[int]) -> None:
    disp = Dispatcher(drive, _fleet(stops, 1))
    cut_off = int(np.flatnonzero(~disp.times.routable)[0])
    with pytest.raises(DispatchError, match="cut off"):
        disp.quote(Request(id="x", origin_node=cut_off, destination_node=stops[0], earliest_pickup_s=8 * H), 6 * H)
    with pytest.raises(DispatchError, match="past"):
        disp.quote(Request(id="y", origin_node=stops[0], destination_node=stops[1], latest_arrival_s=7 * H), 9 * H)
    with pytest.raises(DispatchError, match="no booking"):
        disp.booking("nobody")
    with pytest.raises(DispatchError, match="earliest pickup, a latest arrival or both"):
        Request(id="z", origin_node=1, destination_node=2)
    # Both bounds (a journey's ride): refused when the drive does not fit between them.
    tight = Request(
        id="t", origin_node=stops[0], destination_node=stops[1], earliest_pickup_s=8 * H, latest_arrival_s=8 * H + 1
    )
    with pytest.raises(DispatchError, match="longer than the time between its bounds"):
        disp.quote(tight, 6 * H)
    both = msgspec.structs.replace(tight, id="b", latest_arrival_s=9 * H)
    offer = disp.quote(both, 6 * H).offers[0]
    assert offer.pickup_estimate_s >= 8 * H and offer.promise.dropoff_latest_s <= 9 * H


def test_promises_hold_through_200_bookings_and_repeated_reoptimisation(drive, stops: list[int]) -> None:
    disp = Dispatcher(drive, _fleet(stops, 12))
    rng = random.Random(200)
    booked, improved = 0, 0
    now = 6 * H
    for k in range(200):
        request = _request(rng, stops, f"r{k}", 7 * H, 21 * H)
        quote = disp.quote(request, now_s=now)
        if quote.offers:
            disp.book(quote.offers[rng.randrange(len(quote.offers))], request)
            booked += 1
        if k % 20 == 19:
            # Riders whose pickup is due are picked up; they must never change vehicle afterwards.
            for vehicle in disp.vehicles:
                plan = disp.schedule(vehicle.id)
                if plan and plan[0][1] == "pickup" and rng.random() < 0.5:
                    disp.record(plan[0][0], StopEvent.PICKED_UP, plan[0][2])
            on_board = {rid: disp.booking(rid).vehicle_id for rid, r in disp.rides.items() if r.status == "picked_up"}
            improved += disp.reoptimize(0.4, seed=k)
            assert {rid: disp.booking(rid).vehicle_id for rid in on_board} == on_board
            _assert_promises_kept(disp)
    assert booked >= 150 and improved >= 3
    _assert_promises_kept(disp)


def test_breaks_stay_in_their_window_on_their_vehicle(drive, stops: list[int]) -> None:
    from routing.dispatch.model import Break

    rest = Break(earliest_s=12 * H, latest_s=13 * H, duration_s=1800)
    fleet = [msgspec.structs.replace(v, breaks=[rest]) for v in _fleet(stops, 3)]
    disp = Dispatcher(drive, fleet)
    rng = random.Random(9)
    _book_some(disp, rng, stops, 40, 10 * H, 15 * H)
    disp.reoptimize(0.5)
    for vehicle in disp.vehicles:
        plan = disp.schedule(vehicle.id)
        rests = [(i, at) for i, (bid, kind, at) in enumerate(plan) if kind == "break"]
        assert [bid for bid, kind, _ in plan if kind == "break"] == [f"{vehicle.id}/break-0"]
        index, at = rests[0]
        assert 12 * H - 1e-6 <= at <= 13 * H + 1e-6
        if index + 1 < len(plan):  # nobody is served during the break
            assert plan[index + 1][2] >= at + 1800 - 1e-6
    _assert_promises_kept(disp)
    # A driver back from a break that was the next stop: the plan goes on from there.
    idle = Dispatcher(drive, fleet[:1])
    ((bid, _kind, at),) = idle.schedule(fleet[0].id)
    idle.end_break(bid, at + 1800)
    assert idle.schedule(fleet[0].id) == [] and idle.visits.earliest[idle.visits.vehicle_start[0]] == at + 1800
    with pytest.raises(DispatchError, match="does not fit"):
        disp.add_break("late", disp.vehicles[1].id, Break(earliest_s=23 * H, latest_s=23.5 * H, duration_s=600))


def test_an_operator_moves_a_ride_to_another_bus_only_within_its_promise(drive, stops: list[int]) -> None:
    disp = Dispatcher(drive, _fleet(stops, 3))
    rng = random.Random(21)
    assert _book_some(disp, rng, stops, 12, 8 * H, 10 * H) >= 8
    rid, ride = next(iter(disp.rides.items()))
    source = disp.vehicles[ride.vehicle].id
    moved = False
    for vehicle in disp.vehicles:
        if vehicle.id == source:
            continue
        try:
            booking = disp.reassign(rid, vehicle.id)
        except DispatchError as exc:
            assert "does not fit" in str(exc)
            continue
        assert booking.vehicle_id == vehicle.id and all(r != rid for r, _, _ in disp.schedule(source))
        moved = True
        break
    assert moved
    _assert_promises_kept(disp)
    with pytest.raises(DispatchError, match="already planned"):
        disp.reassign(rid, disp.booking(rid).vehicle_id)
    # A promise no bus can keep stays where it is: a ride squeezed to a window no other bus reaches.
    far = Request(id="tight", origin_node=stops[0], destination_node=stops[-1], earliest_pickup_s=8 * H)
    disp.book(disp.quote(far, now_s=6 * H).offers[0], far)
    before = {v.id: disp.plan_of(v.id) for v in disp.vehicles}
    for vehicle in disp.vehicles:
        try:
            disp.reassign("tight", vehicle.id)
        except DispatchError:
            assert {v.id: disp.plan_of(v.id) for v in disp.vehicles} == before
        else:
            before = {v.id: disp.plan_of(v.id) for v in disp.vehicles}
    _assert_promises_kept(disp)


def test_no_bus_is_planned_to_leave_before_now(drive, stops: list[int]) -> None:
    """A bus idle at its depot since 06:00 cannot have set off in the past: at 09:00 it reaches a far
    stop only after the drive there, in a quote and in an operator's reassignment alike."""
    times = DriveTimes(drive)
    rules_window = RideRules().pickup_window_s
    depot, stop = max(((a, b) for a in stops[::7] for b in stops[::7]), key=lambda ab: times.seconds(*ab))
    drive_s = times.seconds(depot, stop)
    assert drive_s > 60 + rules_window + 60  # a stop further than a pickup window from the depot
    now = 9 * H

    def bus(name: str, node: int) -> Vehicle:
        return Vehicle(id=name, seats=4, wheelchair_places=0, depot_node=node, shift_start_s=6 * H, shift_end_s=22 * H)

    alone = Dispatcher(drive, [bus("far", depot)])
    ride = Request(id="r", origin_node=stop, destination_node=depot, earliest_pickup_s=now)
    offer = alone.quote(ride, now_s=now).offers[0]
    assert offer.pickup_estimate_s >= now + drive_s - 1

    pair = Dispatcher(drive, [bus("here", stop), bus("far", depot)])
    soon = Request(id="s", origin_node=stop, destination_node=depot, earliest_pickup_s=now + 60)
    booked = pair.book(pair.quote(soon, now_s=now).offers[0], soon, now_s=now)
    assert booked.vehicle_id == "here"
    with pytest.raises(DispatchError, match="does not fit"):
        pair.reassign("s", "far", now_s=now)
    assert pair.booking("s").vehicle_id == "here"


def test_a_ride_waits_for_a_late_train_only_while_every_other_promise_holds(drive, stops: list[int]) -> None:
    from routing.dispatch.model import Promise

    rng = random.Random(7)
    station, village, town = rng.sample(stops, 3)
    # One bus, its shift over at 10:00.
    bus = Vehicle(id="bus", seats=4, depot_node=station, shift_start_s=6 * H, shift_end_s=10 * H)
    disp = Dispatcher(drive, [bus])
    last_mile = Request(id="rider", origin_node=station, destination_node=village, earliest_pickup_s=8 * H)
    disp.book(disp.quote(last_mile, 6 * H).offers[0], last_mile)
    # Another rider right after, promised tightly: the bus cannot wait long for the first one.
    after = disp.booking("rider").promise.pickup_latest_s + 900
    other = Request(id="other", origin_node=village, destination_node=town, earliest_pickup_s=after)
    disp.book(disp.quote(other, 6 * H).offers[0], other)
    promise = disp.booking("rider").promise
    others = disp.booking("other").promise
    width = promise.pickup_latest_s - promise.pickup_earliest_s

    def later(minutes: float) -> Promise:
        start = promise.pickup_earliest_s + minutes * 60
        return Promise(
            pickup_earliest_s=start,
            pickup_latest_s=start + width,
            dropoff_latest_s=promise.dropoff_latest_s + minutes * 60,
        )

    moved = disp.wait_for("rider", later(6), now_s=6 * H)
    assert moved.promise == later(6)
    _assert_promises_kept(disp)
    assert disp.booking("other").promise == others, "the other rider's promise is untouched"
    plan_before = [list(r) for r in disp.routes]
    with pytest.raises(DispatchError, match="keep every other promise"):
        disp.wait_for("rider", later(150), now_s=6 * H)  # past the end of the only shift
    assert [list(r) for r in disp.routes] == plan_before and disp.booking("rider").promise == later(6)
    _assert_promises_kept(disp)


def _idle_bus_and_a_pooled_one(drive) -> tuple[Dispatcher, int, int]:
    """Bus `idle` waits at Nebringen; bus `pooled` comes from Herrenberg Bahnhof for a rider booked
    at Nebringen at 09:20. Returns the dispatcher and the Nebringen and Bahnhof nodes."""
    times = DriveTimes(drive)
    nebringen, bahnhof = times.snap(48.5627, 8.8481), times.snap(48.5935, 8.8630)
    fleet = [
        Vehicle(id="idle", seats=8, wheelchair_places=1, depot_node=nebringen, shift_start_s=6 * H, shift_end_s=20 * H),
        Vehicle(id="pooled", seats=8, wheelchair_places=1, depot_node=bahnhof, shift_start_s=6 * H, shift_end_s=20 * H),
    ]
    disp = Dispatcher(drive, fleet, times=times)
    booked = Request(id="booked", origin_node=nebringen, destination_node=bahnhof, earliest_pickup_s=9 * H + 1200)
    quote = disp.quote(booked, now_s=7 * H)
    (offer,) = [o for o in quote.offers if o.vehicle_id == "pooled"]
    disp.book(offer, booked)
    return disp, nebringen, bahnhof


def test_a_rider_is_picked_up_at_the_asked_time_when_a_bus_stands_idle_at_the_pickup(drive) -> None:
    disp, nebringen, bahnhof = _idle_bus_and_a_pooled_one(drive)
    wish = Request(id="new", origin_node=nebringen, destination_node=bahnhof, earliest_pickup_s=9 * H)
    first = disp.quote(wish, now_s=8 * H).offers[0]
    assert first.vehicle_id == "idle"
    assert first.pickup_estimate_s - 9 * H <= 120
    # Weighing driving alone, the ride joins the pooled bus, which cannot come before about 09:08 (the
    # other rider's ride-time limit holds it back).
    driving_only = Dispatcher(drive, disp.vehicles, RideRules(objective=DRIVING), times=disp.times)
    pooled = Request(id="booked", origin_node=nebringen, destination_node=bahnhof, earliest_pickup_s=9 * H + 1200)
    driving_only.book(next(o for o in driving_only.quote(pooled, 7 * H).offers if o.vehicle_id == "pooled"), pooled)
    cheapest = min(driving_only.quote(wish, now_s=8 * H).offers, key=lambda o: o.added_drive_s)
    assert cheapest.vehicle_id == "pooled" and cheapest.pickup_estimate_s - 9 * H >= 5 * 60


def test_an_arrive_by_rider_arrives_within_one_window_of_the_asked_time(drive) -> None:
    disp, nebringen, bahnhof = _idle_bus_and_a_pooled_one(drive)
    deadline = 11 * H
    wish = Request(id="new", origin_node=nebringen, destination_node=bahnhof, latest_arrival_s=deadline)
    quote = disp.quote(wish, now_s=8 * H)
    first = quote.offers[0]
    window = disp.rules.pickup_window_s
    assert deadline - window - 60 <= first.dropoff_estimate_s <= deadline
    assert first.promise.dropoff_latest_s <= deadline
    assert first.promise.pickup_latest_s - first.promise.pickup_earliest_s == pytest.approx(window)
    drops = [o.dropoff_estimate_s for o in quote.offers]
    assert drops == sorted(drops, reverse=True)
    booking = disp.book(first, wish)
    _assert_promises_kept(disp)
    assert booking.promise == first.promise
