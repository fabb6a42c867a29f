"""The OR-Tools re-optimiser on Cordeau's instances: feasible by the independent checker, never worse
than its warm start, every request kept, riders on board kept on their vehicle, promises kept."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future

import msgspec
import numpy as np
import pytest

from routing.dispatch.darp import check_route, darp_problem, read_darp, solution_cost
from routing.dispatch.insertion import Planner
from routing.dispatch.model import DispatchError, Problem
from routing.dispatch.optimize import Reoptimizer, optimize
from routing.dispatch.search import Search
from tests.routing.dispatch.checker import DARP, darp_check, independent_check


def _warm_start(name: str) -> tuple[Problem, list[np.ndarray]]:
    problem = darp_problem(read_darp(DARP / f"{name}.txt"))
    return problem, Search(problem, seed=0).construct().routes


def _cost(problem: Problem, routes: list[np.ndarray]) -> float:
    planner = Planner(problem)
    return sum(planner.route_cost(v, r) for v, r in enumerate(routes))


def _nodes(routes: list[np.ndarray]) -> set[int]:
    return {int(x) for r in routes for x in r.tolist()}


@pytest.mark.parametrize(("name", "limit_s"), [("a2-16", 0.5), ("a4-24", 0.5), ("a6-48", 1.0)])
def test_optimized_routes_are_feasible_cheaper_and_serve_the_same_requests(name: str, limit_s: float) -> None:
    problem, warm = _warm_start(name)
    inst = read_darp(DARP / f"{name}.txt")
    routes = optimize(problem, warm, limit_s)
    assert _nodes(routes) == _nodes(warm) == set(range(1, 2 * inst.requests + 1))
    assert all(len(r) == len(set(r.tolist())) for r in routes)
    for route in routes:
        check = check_route(inst, route.tolist())
        assert check.feasible, check.reason
    report = independent_check(name, [r.tolist() for r in routes])
    assert report["feasible"], report["errors"]
    cost = solution_cost(inst, [r.tolist() for r in routes])
    assert report["total_distance"] == pytest.approx(cost, rel=1e-9)
    # Regret insertion alone leaves plenty to gain: the model must find some of it, not echo its input.
    assert cost < _cost(problem, warm) - 1e-6


def test_optimizing_again_never_makes_it_worse() -> None:
    problem, warm = _warm_start("a2-16")
    once = optimize(problem, warm, 0.5)
    again = optimize(problem, once, 0.3)
    assert _cost(problem, again) <= _cost(problem, once) + 1e-9
    assert _nodes(again) == _nodes(once)


def _with_riders_on_board(
    problem: Problem, routes: list[np.ndarray]
) -> tuple[Problem, list[np.ndarray], dict[int, int]]:
    """The plan some time later: each vehicle has served its route up to its fullest moment and starts
    afresh from a new node (a copy of the last place it served, fixed to the time it leaves) with the
    riders picked up and not dropped off on board. Returns the problem, the routes left and the
    drop-off nodes of riders on board by vehicle."""
    planner = Planner(problem)
    n = len(problem.service_s)
    request_of = {int(p): r for r, p in enumerate(problem.pickup.tolist())}
    keep = np.ones(problem.n_requests, dtype=bool)
    pickup, onboard = problem.pickup.copy(), problem.onboard_vehicle.copy()
    latest, partner = problem.latest_s.copy(), problem.partner.copy()
    initial_load, max_duration = problem.initial_load.copy(), problem.max_duration_s.copy()
    places, leave, rest, onboard_of = [], [], [], {}
    for v, route in enumerate(routes):
        times = planner.schedule(v, route)  # at start, *route, end
        assert times is not None and len(route)
        q = int(np.argmax(np.cumsum(problem.demand[route, 0]))) + 1  # visits served so far
        done = route[:q].tolist()
        for k, node in enumerate(done):
            if node not in request_of:
                continue
            r, drop = request_of[node], int(problem.dropoff[request_of[node]])
            if drop in done:
                keep[r] = False  # completed: its nodes stay, no request refers to them
                continue
            pickup[r], onboard[r], onboard_of[drop] = -1, v, v
            latest[drop] = min(latest[drop], times[k + 1] + problem.service_s[node] + problem.max_ride_s[node])
            partner[node] = partner[drop] = -1
            initial_load[v] += problem.demand[node]
        places.append(done[-1])
        leave.append(times[q] + problem.service_s[done[-1]])
        max_duration[v] -= leave[-1] - times[0]
        rest.append(np.ascontiguousarray(route[q:]))
    extra = len(places)
    copy = np.concatenate((np.arange(n), places))
    live = Problem(
        travel=np.ascontiguousarray(problem.travel[np.ix_(copy, copy)]),
        service_s=np.concatenate((problem.service_s, np.zeros(extra))),
        earliest_s=np.concatenate((problem.earliest_s, leave)),
        latest_s=np.concatenate((latest, leave)),
        demand=np.concatenate((problem.demand, np.zeros((extra, problem.demand.shape[1]), dtype=np.int32))),
        partner=np.concatenate((partner, np.full(extra, -1, dtype=np.int32))),
        max_ride_s=np.concatenate((problem.max_ride_s, np.full(extra, np.inf))),
        vehicle_start=np.arange(n, n + extra, dtype=np.int32),
        vehicle_end=problem.vehicle_end,
        capacity=problem.capacity,
        initial_load=initial_load,
        max_duration_s=max_duration,
        pickup=pickup[keep],
        dropoff=problem.dropoff[keep],
        onboard_vehicle=onboard[keep],
    )
    live.validate()
    return live, rest, onboard_of


def test_riders_on_board_stay_on_their_vehicle() -> None:
    problem, warm = _warm_start("a4-24")
    live, routes, onboard_of = _with_riders_on_board(problem, warm)
    assert len(onboard_of) >= 4 and len(set(onboard_of.values())) >= 2
    planner = Planner(live)
    assert all(planner.schedule(v, r) is not None for v, r in enumerate(routes))
    found = optimize(live, routes, 1.0)
    for drop, v in onboard_of.items():
        assert drop in found[v].tolist()
    assert _nodes(found) == _nodes(routes)
    assert all(planner.schedule(v, r) is not None for v, r in enumerate(found))
    assert _cost(live, found) < _cost(live, routes) - 1e-6


def test_promised_pickup_windows_hold() -> None:
    name = "a4-24"
    problem, warm = _warm_start(name)
    planner = Planner(problem)
    earliest, latest = problem.earliest_s.copy(), problem.latest_s.copy()
    for v, route in enumerate(warm):
        times = planner.schedule(v, route)
        for k, node in enumerate(route.tolist()):
            if problem.partner[node] >= 0 and problem.demand[node, 0] > 0:
                # Cordeau's times are minutes: the promise is the planned pickup ± 5 minutes.
                earliest[node] = max(earliest[node], times[k + 1] - 5.0)
                latest[node] = min(latest[node], times[k + 1] + 5.0)
    promised = msgspec.structs.replace(problem, earliest_s=earliest, latest_s=latest)
    routes = optimize(promised, warm, 1.0)
    assert _nodes(routes) == _nodes(warm)
    theirs = darp_check.read_instance(str(DARP / f"{name}.txt"))
    theirs = dataclasses.replace(theirs, e=earliest.tolist(), l=latest.tolist())
    report = darp_check.check(theirs, [r.tolist() for r in routes], "exact")
    assert report["feasible"], report["errors"]
    check = Planner(promised)
    for v, route in enumerate(routes):
        times = check.schedule(v, route)
        assert times is not None
        for k, node in enumerate(route.tolist()):
            assert earliest[node] - 1e-6 <= times[k + 1] <= latest[node] + 1e-6


def test_a_request_left_out_is_added_back() -> None:
    problem, warm = _warm_start("a2-16")
    p, d = int(problem.pickup[3]), int(problem.dropoff[3])
    without = [r[~np.isin(r, [p, d])] for r in warm]
    routes = optimize(problem, without, 0.5)
    assert _nodes(routes) == _nodes(warm)


def test_an_infeasible_input_plan_is_refused() -> None:
    problem, warm = _warm_start("a2-16")
    broken = [warm[0][::-1].copy(), *warm[1:]]
    with pytest.raises(DispatchError, match="not a feasible plan"):
        optimize(problem, broken, 0.1)


def test_the_reoptimizer_answers_with_a_future_and_a_valid_plan() -> None:
    name = "a4-24"
    problem, warm = _warm_start(name)
    with Reoptimizer() as worker:
        future = worker.submit(problem, warm, 1.0)
        assert isinstance(future, Future)
        assert not future.done()  # the solver runs for its whole time limit elsewhere
        routes = future.result(timeout=120)
    assert _nodes(routes) == _nodes(warm)
    report = independent_check(name, [r.tolist() for r in routes])
    assert report["feasible"], report["errors"]
    assert _cost(problem, routes) <= _cost(problem, warm) + 1e-9
