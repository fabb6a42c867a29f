"""The insertion kernel against the exact checkers: route verdicts, least schedules, and cheapest insertions."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from routing.dispatch.darp import DarpInstance, check_route, darp_problem, read_darp, solve_darp
from routing.dispatch.insertion import Planner, insert_pair
from routing.dispatch.model import DIMENSIONS, Passengers, Problem, Vehicle
from tests.routing.dispatch.checker import DARP, darp_check


def _solved(name: str, seconds: float = 0.5) -> tuple[DarpInstance, Planner, list[list[int]]]:
    inst = read_darp(DARP / f"{name}.txt")
    return inst, Planner(darp_problem(inst)), solve_darp(inst, seconds).routes


@pytest.mark.parametrize("name", ["a2-16", "a4-24", "a6-48", "a8-96"])
def test_route_verdicts_and_schedules_agree_with_the_checkers(name: str) -> None:
    inst, planner, routes = _solved(name)
    theirs = darp_check.read_instance(str(DARP / f"{name}.txt"))
    rng = random.Random(7)
    verdicts = []
    # Solved routes with a few visits moved: near the border between feasible and infeasible.
    for _ in range(400):
        route = list(rng.choice(routes))
        for _ in range(rng.randint(0, 2)):
            route.insert(rng.randrange(len(route) + 1), route.pop(rng.randrange(len(route))))
        times = planner.schedule(0, np.array(route, dtype=np.int32))
        # Their per-route verdict covers pairing, precedence, capacity and timing.
        expected = darp_check.check(theirs, [route], "exact")["routes"][0]["feasible"]
        assert (times is not None) == expected == check_route(inst, route).feasible, route
        if times is not None:
            assert darp_check.evaluate_schedule(theirs, route, list(times), 1e-5) == []
            # The least schedule: no service starts earlier than in the exact witness of the other checker.
            witness = check_route(inst, route).start_s
            assert all(a <= b + 1e-6 for a, b in zip(times[1:-1], witness[1:-1], strict=True))
        verdicts.append(times is not None)
    assert any(verdicts) and not all(verdicts)


@pytest.mark.parametrize("name", ["a3-24", "a5-40"])
def test_best_insertion_is_the_cheapest_feasible_position(name: str) -> None:
    inst, planner, routes = _solved(name)
    n = inst.requests
    rng = random.Random(3)
    found = 0
    for _ in range(40):
        v = rng.randrange(len(routes))
        route = list(routes[v])
        if not route:
            continue
        request = rng.choice([x for x in route if x <= n])
        base = [x for x in route if x not in (request, request + n)]
        # Try the removed request and one served elsewhere.
        other = rng.choice([x for r in routes for x in r if x <= n and x not in route] or [request])
        for r in {request, other}:
            cost, i, j = planner.best_insertion(v, np.array(base, dtype=np.int32), r - 1)
            best = np.inf
            for a, b in itertools.combinations_with_replacement(range(len(base) + 1), 2):
                trial = insert_pair(np.array(base, dtype=np.int32), r, r + n, a, b).tolist()
                if check_route(inst, trial).feasible:
                    best = min(
                        best,
                        planner.route_cost(0, np.array(trial, dtype=np.int32))
                        - planner.route_cost(0, np.array(base, dtype=np.int32)),
                    )
            assert cost == pytest.approx(best, abs=1e-6) if np.isfinite(best) else not np.isfinite(cost)
            if np.isfinite(cost):
                found += 1
                trial = insert_pair(np.array(base, dtype=np.int32), r, r + n, i, j).tolist()
                assert check_route(inst, trial).feasible
    assert found >= 20


def test_options_rank_vehicles_and_report_the_promised_times() -> None:
    inst, planner, routes = _solved("a4-24")
    n = inst.requests
    request = routes[0][0]  # a pickup
    stripped = [np.array([x for x in r if x not in (request, request + n)], dtype=np.int32) for r in routes]
    stripped += [np.zeros(0, dtype=np.int32)] * (inst.vehicles - len(stripped))
    options = planner.options(stripped, request - 1, count=3)
    assert options and [o.added_s for o in options] == sorted(o.added_s for o in options)
    assert len({o.vehicle for o in options}) == len(options)
    for option in options:
        assert inst.earliest[request] - 1e-6 <= option.pickup_s <= inst.latest[request] + 1e-6
        assert option.dropoff_s >= option.pickup_s + inst.service_s[request] + inst.travel(request, request + n) - 1e-6


def _one_vehicle_problem(inst: DarpInstance, vehicle: Vehicle, groups: list[Passengers]) -> Problem:
    """Instance a2-16's first requests carrying `groups`, all of them travelling together."""
    n = inst.requests
    base = darp_problem(inst)
    demand = base.demand.copy()
    for k, group in enumerate(groups, start=1):
        demand[k] = group.demand()
        demand[k + n] = [-x for x in group.demand()]
    return Problem(
        travel=base.travel,
        service_s=base.service_s,
        earliest_s=np.zeros_like(base.earliest_s),
        latest_s=np.full_like(base.latest_s, 1e6),
        demand=demand,
        partner=base.partner,
        max_ride_s=np.full_like(base.max_ride_s, 1e6),
        vehicle_start=base.vehicle_start[:1],
        vehicle_end=base.vehicle_end[:1],
        capacity=np.array([vehicle.capacity()], dtype=np.int32),
        initial_load=np.zeros((1, DIMENSIONS), dtype=np.int32),
        max_duration_s=np.array([1e6]),
        pickup=base.pickup,
        dropoff=base.dropoff,
        onboard_vehicle=base.onboard_vehicle,
    )


@pytest.mark.parametrize(
    ("groups", "fits"),
    [
        ([Passengers(seated=4), Passengers(seated=0, wheelchairs=1)], True),  # the wheelchair place
        ([Passengers(seated=2, wheelchairs=1), Passengers(seated=0, wheelchairs=1)], True),  # folds two seats
        ([Passengers(seated=3, wheelchairs=1), Passengers(seated=0, wheelchairs=1)], False),  # no seats left to fold
        ([Passengers(seated=5)], False),  # a wheelchair place is no seat
        ([Passengers(seated=0, wheelchairs=3)], True),  # one place, four seats folded
    ],
)
def test_a_wheelchair_takes_its_place_or_the_room_of_two_seats(groups: list[Passengers], fits: bool) -> None:
    inst = read_darp(DARP / "a2-16.txt")
    vehicle = Vehicle(id="minibus", seats=4, wheelchair_places=1, depot_node=0, shift_start_s=0, shift_end_s=1e6)
    planner = Planner(_one_vehicle_problem(inst, vehicle, groups))
    n = inst.requests
    together = list(range(1, len(groups) + 1)) + [k + n for k in range(1, len(groups) + 1)]
    assert (planner.schedule(0, np.array(together, dtype=np.int32)) is not None) == fits


def test_a_node_visited_twice_is_never_feasible() -> None:
    inst = read_darp(DARP / "a2-16.txt")
    planner = Planner(darp_problem(inst))
    n = inst.requests
    assert planner.schedule(0, np.array([1, 1 + n], dtype=np.int32)) is not None
    for route in ([1, 1, 1 + n], [1, 1 + n, 1 + n], [1, 0, 1 + n], [1, 1 + n, 2 * n + 1]):
        assert planner.schedule(0, np.array(route, dtype=np.int32)) is None, route


def test_pruning_by_ride_time_never_hides_the_cheapest_insertion() -> None:
    """a7-84 has tight ride times (L = 30): removing up to three requests from solved routes and
    inserting one back (or one from another route), the kernel's pruned search finds the same
    cheapest cost as trying every position with the exact route test."""
    inst, planner, routes = _solved("a7-84", 1.0)
    n = inst.requests
    rng = random.Random(5)
    tried = feasible = 0
    for _ in range(120):
        v = rng.randrange(len(routes))
        route = list(routes[v])
        if not route:
            continue
        gone = rng.sample([x for x in route if x <= n], min(len(route) // 2, rng.randint(1, 3)))
        base = np.array([x for x in route if x not in gone and x - n not in gone], dtype=np.int32)
        for r in {gone[0], rng.choice([x for other in routes for x in other if x <= n])} - set(base.tolist()):
            cost, _, _ = planner.best_insertion(v, base, r - 1)
            best = np.inf
            for a, b in itertools.combinations_with_replacement(range(len(base) + 1), 2):
                trial = insert_pair(base, r, r + n, a, b)
                if planner.schedule(v, trial) is not None:
                    best = min(best, planner.route_cost(v, trial) - planner.route_cost(v, base))
            assert cost == pytest.approx(best, abs=1e-6) if np.isfinite(best) else not np.isfinite(cost), (v, r)
            tried += 1
            feasible += bool(np.isfinite(best))
    assert tried > 150 and 0 < feasible < tried
