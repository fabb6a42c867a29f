"""Cordeau's dial-a-ride benchmark format and an exact feasibility test for one vehicle's route.

Travel time = cost = Euclidean distance. Waiting is allowed before every node, so a route is
feasible when *some* schedule meets all time windows, ride times and the route duration; with the
visiting order fixed, every timing rule is a difference constraint between two service starts,
and a schedule exists exactly when the constraint graph has no negative cycle.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from routing.dispatch.model import DIMENSIONS, ROOM, SEATS, Problem
from routing.dispatch.optimize import optimize
from routing.dispatch.search import Search
from routing.errors import RoutingError

# Share of the time limit for the large neighbourhood search; OR-Tools polishes in the rest.
SEARCH_SHARE = 0.7

# With several workers, another worker searches on from the best plan, starting this cool, while
# OR-Tools polishes it; the searches then get this share of the time. Measured on a7-84 (the same
# 6 seeds): mean / worst gap 0.94 / 1.38 % with 0.5, against 1.51 / 2.22 % with 0.7.
POLISH_HEAT = 0.005
SEARCH_SHARE_WITH_POLISH = 0.5

# A schedule may violate a constraint by this much (the instances use doubles).
TOLERANCE = 1e-6


class DarpError(RoutingError):
    """An instance file that cannot be read; the message names the file and line."""


class DarpInstance(msgspec.Struct, frozen=True, kw_only=True):
    """Nodes 0 (start depot), 1..n (pickups), n+1..2n (deliveries), 2n+1 (end depot)."""

    name: str
    vehicles: int
    requests: int
    max_route_s: float
    capacity: int
    max_ride_s: float
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    service_s: npt.NDArray[np.float64]
    load: npt.NDArray[np.int64]
    earliest: npt.NDArray[np.float64]
    latest: npt.NDArray[np.float64]

    @property
    def end_depot(self) -> int:
        return 2 * self.requests + 1

    def travel(self, a: int, b: int) -> float:
        return float(np.hypot(self.x[a] - self.x[b], self.y[a] - self.y[b]))


def read_darp(path: str | Path) -> DarpInstance:
    """Read `m n T Q L` with nodes 0..2n+1, or `m 2n T Q L` with nodes 0..2n (the end depot copied from 0)."""
    path = Path(path)
    try:
        lines = [ln.split() for ln in path.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DarpError(f"{path}: cannot be read: {exc}") from exc
    numbers = [k + 1 for k, ln in enumerate(lines) if ln]
    lines = [ln for ln in lines if ln]
    if not lines or len(lines[0]) != 5:
        raise DarpError(
            f"{path}:{numbers[0] if numbers else 1}: the header must be 'm n T Q L' (vehicles, requests, route duration, capacity, ride time)"
        )
    try:
        m, count, duration, capacity, ride = (
            int(lines[0][0]),
            int(lines[0][1]),
            float(lines[0][2]),
            int(lines[0][3]),
            float(lines[0][4]),
        )
    except ValueError as exc:
        raise DarpError(f"{path}:{numbers[0]}: not a number: {exc}") from exc
    values = []
    for line_no, ln in zip(numbers[1:], lines[1:], strict=True):
        if len(ln) < 7:
            raise DarpError(f"{path}:{line_no}: a node line needs 'id x y service load earliest latest'")
        try:
            values.append([float(v) for v in ln[:7]])
        except ValueError as exc:
            raise DarpError(f"{path}:{line_no}: not a number: {exc}") from exc
    rows = np.array(values, dtype=np.float64).reshape(-1, 7)
    if len(rows) == 2 * count + 2:
        n = count
    elif count % 2 == 0 and len(rows) == count + 1:
        n = count // 2
        rows = np.vstack([rows, rows[:1]])  # the end depot is the start depot
    else:
        raise DarpError(f"{path}: {len(rows)} node lines fit neither 2n+2 nor 2n+1 nodes for n={count}")
    if m <= 0 or n <= 0 or capacity <= 0:
        raise DarpError(f"{path}:1: vehicles, requests and capacity must be positive")
    return DarpInstance(
        name=path.name.removesuffix(".txt"),
        vehicles=m,
        requests=n,
        max_route_s=duration,
        capacity=capacity,
        max_ride_s=ride,
        x=rows[:, 1],
        y=rows[:, 2],
        service_s=rows[:, 3],
        load=rows[:, 4].astype(np.int64),
        earliest=rows[:, 5],
        latest=rows[:, 6],
    )


def darp_problem(inst: DarpInstance) -> Problem:
    """Cordeau's instance as a Problem: nodes keep their numbers, every vehicle runs depot 0 to 2n+1."""
    n, m = inst.requests, inst.vehicles
    count = 2 * n + 2
    travel = np.hypot(inst.x[:, None] - inst.x[None, :], inst.y[:, None] - inst.y[None, :])
    demand = np.zeros((count, DIMENSIONS), dtype=np.int32)
    demand[:, ROOM] = inst.load
    demand[:, SEATS] = inst.load
    partner = np.full(count, -1, dtype=np.int32)
    partner[1 : n + 1] = np.arange(n + 1, 2 * n + 1)
    partner[n + 1 : 2 * n + 1] = np.arange(1, n + 1)
    max_ride = np.full(count, math.inf)
    max_ride[1 : n + 1] = inst.max_ride_s
    return Problem(
        travel=np.ascontiguousarray(travel),
        service_s=inst.service_s.astype(np.float64),
        earliest_s=inst.earliest.astype(np.float64),
        latest_s=inst.latest.astype(np.float64),
        demand=demand,
        partner=partner,
        max_ride_s=max_ride,
        vehicle_start=np.zeros(m, dtype=np.int32),
        vehicle_end=np.full(m, count - 1, dtype=np.int32),
        capacity=np.full((m, DIMENSIONS), inst.capacity, dtype=np.int32),
        initial_load=np.zeros((m, DIMENSIONS), dtype=np.int32),
        max_duration_s=np.full(m, inst.max_route_s),
        pickup=np.arange(1, n + 1, dtype=np.int32),
        dropoff=np.arange(n + 1, 2 * n + 1, dtype=np.int32),
        onboard_vehicle=np.full(n, -1, dtype=np.int32),
    )


class RouteCheck(msgspec.Struct, frozen=True, kw_only=True):
    feasible: bool
    reason: str | None = None
    start_s: list[float] | None = None  # a witness schedule: service start at each node of the full route


def check_route(inst: DarpInstance, route: Sequence[int]) -> RouteCheck:
    """Decide exactly whether one vehicle can serve `route` (pickups and deliveries, depots omitted)."""
    n = inst.requests
    stops = [int(v) for v in route]
    seen: set[int] = set()
    load = 0
    for v in stops:
        if not 1 <= v <= 2 * n:
            return RouteCheck(feasible=False, reason=f"node {v} is not a pickup or delivery")
        if v in seen:
            return RouteCheck(feasible=False, reason=f"node {v} is visited twice")
        if v > n and v - n not in seen:
            return RouteCheck(feasible=False, reason=f"delivery {v} comes before its pickup {v - n}")
        seen.add(v)
        load += int(inst.load[v])
        if load > inst.capacity:
            return RouteCheck(feasible=False, reason=f"capacity {inst.capacity} exceeded at node {v}")
    missing = [v for v in stops if v <= n and v + n not in seen]
    if missing:
        return RouteCheck(feasible=False, reason=f"pickup {missing[0]} is never delivered")
    full = [0, *stops, inst.end_depot]
    k = len(full)
    # Edge (a -> b, w) means B[b] - B[a] <= w. Node k is the time origin (B = 0).
    edges: list[tuple[int, int, float]] = []
    for i, v in enumerate(full):
        edges.append((k, i, float(inst.latest[v])))  # B_i <= l
        edges.append((i, k, -float(inst.earliest[v])))  # B_i >= e
    for i in range(k - 1):
        a, b = full[i], full[i + 1]
        edges.append((i + 1, i, -(float(inst.service_s[a]) + inst.travel(a, b))))  # B_{i+1} >= B_i + s + t
    position = {v: i for i, v in enumerate(full)}
    for v in stops:
        if v <= n:
            p, d = position[v], position[v + n]
            edges.append((p, d, float(inst.service_s[v]) + inst.max_ride_s))  # B_d - (B_p + s_p) <= L
    edges.append((0, k - 1, inst.max_route_s))  # B_end - B_start <= T
    dist = [0.0] * (k + 1)
    for _ in range(k + 1):
        changed = False
        for a, b, w in edges:
            if dist[a] + w < dist[b] - TOLERANCE:
                dist[b] = dist[a] + w
                changed = True
        if not changed:
            # Shortest distances from the origin give a feasible schedule: B_i = dist[i] - dist[origin].
            return RouteCheck(feasible=True, start_s=[dist[i] - dist[k] for i in range(k)])
    return RouteCheck(feasible=False, reason="no schedule meets the time windows, ride times and route duration")


class DarpSolution(msgspec.Struct, frozen=True, kw_only=True):
    """The benchmark's output: routes of node ids in visiting order, depots omitted."""

    cost: float
    routes: list[list[int]]
    feasible: bool


def solution_cost(inst: DarpInstance, routes: Sequence[Sequence[int]]) -> float:
    total = 0.0
    for route in routes:
        if route:
            full = [0, *route, inst.end_depot]
            total += sum(inst.travel(a, b) for a, b in itertools.pairwise(full))
    return total


def verify_solution(inst: DarpInstance, routes: Sequence[Sequence[int]]) -> str | None:
    """Why the routes do not solve the instance (every request served once, at most m routes, every route
    feasible), or None when they do."""
    used = [r for r in routes if r]
    if len(used) > inst.vehicles:
        return f"{len(used)} routes for {inst.vehicles} vehicles"
    seen = [v for r in used for v in r]
    if sorted(seen) != list(range(1, 2 * inst.requests + 1)):
        return "not every pickup and delivery is visited exactly once"
    for k, route in enumerate(used):
        check = check_route(inst, route)
        if not check.feasible:
            return f"route {k}: {check.reason}"
    return None


def _search(inst: DarpInstance, seconds: float, seed: int) -> tuple[float, int, list[list[int]]]:
    """One search of the instance: (cost, unserved count, routes); runs in a worker process."""
    found = Search(darp_problem(inst), seed=seed).run(seconds)
    return found.cost, len(found.unserved), found.routes


def _polish(inst: DarpInstance, routes: list[list[int]], seconds: float, seed: int) -> tuple[float, list[list[int]]]:
    """A cool search from `routes` (a feasible plan): (cost, routes); runs in a worker process."""
    found = Search(darp_problem(inst), seed=seed).improve(routes, seconds, heat=POLISH_HEAT)
    return (found.cost if not found.unserved else np.inf), found.routes


def solve_darp(
    inst: DarpInstance,
    time_limit_s: float,
    seed: int = 0,
    progress: Callable[[float, float], None] | None = None,
    workers: int = 1,
) -> DarpSolution:
    """Plan the instance within `time_limit_s`; `feasible` comes from `verify_solution`, not from the search.

    With `workers` > 1, as many searches with different seeds run side by side and the best goes
    on to OR-Tools: the randomised search's spread between runs shrinks. Meanwhile a worker searches
    on from that best, starting cool, and the cheaper of the two plans is kept.
    """
    if time_limit_s <= 0:
        raise DarpError("the time limit must be positive")
    if workers < 1:
        raise DarpError("at least one worker")
    problem = darp_problem(inst)
    # Measured on the a-instances: the search's plan polished by OR-Tools' guided local search for
    # the rest of the time (30 % with one worker, half with several) beats either alone
    # (e.g. a8-96: 1.6 % -> 0.4 % gap at 10 s).
    began = time.perf_counter()
    search_s = (SEARCH_SHARE_WITH_POLISH if workers > 1 else SEARCH_SHARE) * time_limit_s
    others = []
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(max_workers=workers - 1, mp_context=multiprocessing.get_context("fork"))
        # Seeds far apart from the caller's, one per worker; each worker stops a little early for the hand-over.
        others = [pool.submit(_search, inst, 0.95 * search_s, seed * 1000 + k) for k in range(1, workers)]
    try:
        found = Search(problem, seed=seed).run(search_s, progress=progress)
        candidates = [(found.cost, len(found.unserved), found.routes)]
        candidates += [future.result() for future in others]
        _cost, unserved, best = min(candidates, key=lambda c: (c[1], c[0]))
        routes = [np.array(r, dtype=np.int32) for r in best]
        if not unserved:
            rest_s = time_limit_s - (time.perf_counter() - began)
            polished = pool.submit(_polish, inst, best, 0.9 * rest_s, seed * 1000 + workers) if pool else None
            # OR-Tools overshoots its limit by a few tens of milliseconds; leave it that much less.
            routes = optimize(problem, routes, max(0.1, rest_s - 0.05))
            if polished is not None:
                polished_cost, polished_routes = polished.result()
                if polished_cost < solution_cost(inst, [r.tolist() for r in routes]) - 1e-9:
                    routes = [np.array(r, dtype=np.int32) for r in polished_routes]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    plan = [[int(v) for v in r] for r in routes if len(r)]
    return DarpSolution(
        cost=solution_cost(inst, plan), routes=plan, feasible=not unserved and verify_solution(inst, plan) is None
    )
