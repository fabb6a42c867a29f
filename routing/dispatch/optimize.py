"""Re-optimise live vehicle plans with the OR-Tools routing solver, warm-started from the current plans.

The model: pickup-and-delivery pairs on one vehicle, pickup first; two capacity dimensions (room,
seats) starting from each vehicle's load on board; a time dimension whose cumul is the service
start, with waiting as slack, every node's window, the route duration as a span bound and the
maximum ride time as a cumul-difference constraint; riders on board fixed to their vehicle.
Promises reach the model as the Problem's windows, so they are hard constraints.

OR-Tools counts in integers. Times are scaled by SCALE and rounded so that every integer schedule
is a feasible float schedule (transits rounded up, limits rounded down). The solver's routes are
still checked with the exact Planner, and the input routes come back whenever the solver finds
nothing better or anything it returns fails a check.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Self

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routing.dispatch.insertion import Planner
from routing.dispatch.model import DIMENSIONS, DispatchError, Problem, Route
from routing.dispatch.search import UNSERVED_WEIGHT, Search

# Integer units per unit of time: a millisecond for seconds, 1/1000 for Cordeau's distances.
SCALE = 1000.0
# Scaled values this close to an integer count as that integer (float noise, not slack).
_ROUNDING = 1e-6


def _up(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.ceil(x - _ROUNDING).astype(np.int64)


def _down(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.floor(x + _ROUNDING).astype(np.int64)


def plan_cost(planner: Planner, routes: Sequence[Route]) -> float:
    """Driving time of all routes plus Search's penalty for every movable request left out."""
    p = planner.problem
    served = {int(node) for r in routes for node in np.asarray(r).tolist()}
    unserved = sum(1 for node in p.pickup.tolist() if node >= 0 and node not in served)
    penalty = UNSERVED_WEIGHT * max(1.0, float(p.travel.max()))
    return sum(planner.route_cost(v, np.asarray(r, dtype=np.int32)) for v, r in enumerate(routes)) + penalty * unserved


def find_plan_error(planner: Planner, before: Sequence[Route], after: Sequence[Route]) -> str | None:
    """Why `after` may not replace `before` (a route infeasible, a node twice, a served request or an
    on-board rider lost, a rider on the wrong vehicle), or None when it may."""
    p = planner.problem
    if len(after) != p.n_vehicles:
        return f"{len(after)} routes for {p.n_vehicles} vehicles"
    where: dict[int, int] = {}
    for v, route in enumerate(after):
        for node in np.asarray(route).tolist():
            if node in where:
                return f"node {node} is visited twice"
            where[node] = v
        if planner.schedule(v, np.asarray(route, dtype=np.int32)) is None:
            return f"route of vehicle {v} has no feasible schedule"
    for node in (int(x) for r in before for x in np.asarray(r).tolist()):
        if node not in where:
            return f"node {node} was served and is no longer"
    for r in np.flatnonzero(p.pickup < 0).tolist():
        d, v = int(p.dropoff[r]), int(p.onboard_vehicle[r])
        if where.get(d) != v:
            return f"request {r} is on board vehicle {v} but its drop-off is not on that vehicle's route"
    return None


class _Model:
    """The routing model of one Problem; `served` lists the requests that must stay served."""

    def __init__(self, problem: Problem, served: set[int]) -> None:
        p = self.problem = problem
        n, m = len(p.service_s), p.n_vehicles
        self.manager = pywrapcp.RoutingIndexManager(
            n, m, [int(x) for x in p.vehicle_start], [int(x) for x in p.vehicle_end]
        )
        routing = self.routing = pywrapcp.RoutingModel(self.manager)
        solver = routing.solver()
        index = self.manager.NodeToIndex

        # Problem.location (visits sharing places) may index travel by place; the model wants visits.
        travel = p.visit_travel()

        # The integer cumul T at node i stands for service start origin + (T + frac[i]) / SCALE, where
        # frac[i] is the fraction of the node's scaled window opening. Openings are then exact (a
        # vehicle's start fixed to "now" is a window of width zero), and rounding every transit up and
        # every limit down makes each integer schedule a feasible one in seconds.
        finite = np.concatenate((p.earliest_s, p.latest_s[np.isfinite(p.latest_s)]))
        origin = math.floor(float(finite.min()))
        opening = (p.earliest_s - origin) * SCALE
        frac = opening - np.floor(opening)
        transit = _up(frac[:, None] - frac[None, :] + (p.service_s[:, None] + travel) * SCALE)
        horizon = int(np.ceil((float(finite.max()) - origin) * SCALE)) + int(transit.max(axis=1).sum()) + 1
        low = np.floor(opening).astype(np.int64)
        high = _down(np.minimum((p.latest_s - origin) * SCALE - frac, horizon))  # an open window ends at the horizon

        cost = routing.RegisterTransitMatrix(np.rint(travel * SCALE).astype(np.int64).tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(cost)
        for dim in range(DIMENSIONS):
            load = routing.RegisterUnaryTransitVector(p.demand[:, dim].astype(np.int64).tolist())
            name = f"load{dim}"
            routing.AddDimensionWithVehicleCapacity(load, 0, [int(c) for c in p.capacity[:, dim]], False, name)
            dimension = routing.GetDimensionOrDie(name)
            for v in range(m):
                dimension.CumulVar(routing.Start(v)).SetValue(int(p.initial_load[v, dim]))
        time = routing.RegisterTransitMatrix(transit.tolist())
        routing.AddDimension(time, horizon, horizon, False, "time")
        self.time = routing.GetDimensionOrDie("time")

        def window(at: int, node: int) -> None:
            self.time.CumulVar(at).SetRange(int(low[node]), int(high[node]))

        for v in range(m):
            start, end = int(p.vehicle_start[v]), int(p.vehicle_end[v])
            window(routing.Start(v), start)
            window(routing.End(v), end)
            if math.isfinite(p.max_duration_s[v]):
                span = _down(p.max_duration_s[v] * SCALE + frac[start] - frac[end])
                self.time.SetSpanUpperBoundForVehicle(int(span), v)

        ends = {int(x) for x in p.vehicle_start} | {int(x) for x in p.vehicle_end}
        used: set[int] = set()
        penalty = int(np.ceil(UNSERVED_WEIGHT * max(1.0, float(p.travel.max())) * SCALE / 2))
        for r in range(p.n_requests):
            pick, drop = int(p.pickup[r]), int(p.dropoff[r])
            used.update((pick, drop))
            d = index(drop)
            window(d, drop)
            if pick < 0:
                routing.VehicleVar(d).SetValue(int(p.onboard_vehicle[r]))  # the rider's seat is taken
                continue
            i = index(pick)
            window(i, pick)
            routing.AddPickupAndDelivery(i, d)
            solver.Add(routing.VehicleVar(i) == routing.VehicleVar(d))
            solver.Add(self.time.CumulVar(i) <= self.time.CumulVar(d))
            if math.isfinite(p.max_ride_s[pick]):
                ride = _down((p.service_s[pick] + p.max_ride_s[pick]) * SCALE + frac[pick] - frac[drop])
                solver.Add(self.time.CumulVar(d) - self.time.CumulVar(i) <= int(ride))
            if r not in served:
                # Not planned yet: the solver may add it; leaving it out costs what it costs the search.
                routing.AddDisjunction([i], penalty)
                routing.AddDisjunction([d], penalty)
        for node in range(n):
            if node not in used and node not in ends:
                routing.AddDisjunction([index(node)], 0)  # a node no request refers to: never visit
                routing.ActiveVar(index(node)).SetValue(0)

    def read(self, routes: Sequence[Route]) -> pywrapcp.Assignment | None:
        index = self.manager.NodeToIndex
        return self.routing.ReadAssignmentFromRoutes([[index(int(x)) for x in r] for r in routes], True)

    def routes(self, solution: pywrapcp.Assignment) -> list[Route]:
        found = []
        for v in range(self.problem.n_vehicles):
            at, nodes = solution.Value(self.routing.NextVar(self.routing.Start(v))), []
            while not self.routing.IsEnd(at):
                nodes.append(self.manager.IndexToNode(at))
                at = solution.Value(self.routing.NextVar(at))
            found.append(np.array(nodes, dtype=np.int32))
        return found


def optimize(problem: Problem, routes: list[Route], time_limit_s: float) -> list[Route]:
    """Routes at most as costly as `routes` (the input routes when nothing better is found); every
    request served in `routes` stays served; riders on board stay on their vehicle; every route is
    verified with Planner.schedule before it is returned.

    Cost is driving time plus Search's penalty for each request left out, so the solver may add
    requests no route serves yet. OR-Tools' routing search takes no seed.
    """
    if time_limit_s <= 0:
        raise ValueError("the time limit must be positive")
    planner = Planner(problem)
    routes = [np.asarray(r, dtype=np.int32) for r in routes]
    error = find_plan_error(planner, routes, routes)
    if error is not None:
        raise DispatchError(f"the input routes are not a feasible plan: {error}")
    in_routes = {int(x) for r in routes for x in r.tolist()}
    served = {r for r in range(problem.n_requests) if int(problem.dropoff[r]) in in_routes}
    model = _Model(problem, served)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    initial = model.read(routes)
    if initial is not None:
        solution = model.routing.SolveFromAssignmentWithParameters(initial, params)
    else:
        # Rounding to integers made the plan infeasible for the model: construct afresh and keep
        # whichever plan is better below.
        solution = model.routing.SolveWithParameters(params)
    if solution is None:
        return routes
    found = model.routes(solution)
    if find_plan_error(planner, routes, found) is not None:
        return routes
    return found if plan_cost(planner, found) < plan_cost(planner, routes) - 1e-9 else routes


def improve_plans(
    problem: Problem, routes: list[Route], time_limit_s: float, search_share: float, seed: int = 0
) -> list[Route]:
    """The large neighbourhood search for `search_share` of the time, then `optimize` from its plan for the
    rest: routes at most as costly as `routes`, with the guarantees of `optimize`. A module-level function,
    so that a worker process can run it (the service does)."""
    improved = Search(problem, seed=seed).improve(routes, search_share * time_limit_s)
    start = routes if improved.unserved else [np.array(r, dtype=np.int32) for r in improved.routes]
    return optimize(problem, start, (1.0 - search_share) * time_limit_s)


class Reoptimizer:
    """Runs `optimize` in a worker process; `submit` returns a Future at once.

    A process, not a thread: the solver holds the interpreter lock for its whole time limit, so a
    thread would stall the service's event loop just as a direct call would.
    """

    def __init__(self, max_workers: int = 1) -> None:
        # Forking a threaded parent (OR-Tools, the web server) can deadlock the child; start clean.
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        self._executor = ProcessPoolExecutor(max_workers=max_workers, mp_context=multiprocessing.get_context(method))

    def submit(self, problem: Problem, routes: list[Route], time_limit_s: float) -> Future[list[Route]]:
        """Optimise in the background; the Future holds what `optimize` returns or raises."""
        return self._executor.submit(optimize, problem, [np.asarray(r, dtype=np.int32) for r in routes], time_limit_s)

    def close(self) -> None:
        """Cancel the plans still waiting, finish the ones being optimised and stop the workers."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
