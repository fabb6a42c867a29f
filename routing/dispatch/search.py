"""Plan every request of a Problem: regret insertion, then large neighbourhood search, with the best
routes ever seen recombined by a set-partitioning model.

The search ruins a few requests (random, related or costly ones) and recreates the plan with
regret insertion, each insertion exact (ext.insertion). Simulated annealing decides which plans to
keep. Every feasible route met on the way is remembered by the set of requests it serves, with its
cheapest order; from time to time a set-partitioning MIP (CBC) picks the cheapest set of remembered routes that serves
every request once with at most one route per vehicle, and the search continues from there.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import msgspec
import numpy as np
import numpy.typing as npt
from ortools.linear_solver import pywraplp

from routing.dispatch.insertion import Planner
from routing.dispatch.model import Problem, Route

# An unserved request costs this many times the longest drive in the problem.
UNSERVED_WEIGHT = 100.0


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """CBC prints some notes straight to file descriptor 1 whatever its log level; `maas darp solve
    --json` must print JSON only, so the descriptor points to /dev/null while it runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class Solution(msgspec.Struct, frozen=True, kw_only=True):
    routes: list[list[int]]  # node ids per vehicle, start and end omitted
    cost: float  # driving time (distance for the benchmark instances)
    unserved: list[int]  # request indices left out


class _State:
    """A plan under search: one route per vehicle, its cost, and the requests left out."""

    def __init__(self, planner: Planner, routes: list[Route], request_of_node: dict[int, int]) -> None:
        """`request_of_node`: the request of each pickup, and of each drop-off of a rider on board."""
        self.planner = planner
        self.routes = routes
        self.costs = [planner.route_cost(v, r) for v, r in enumerate(routes)]
        problem = planner.problem
        self.vehicle_of = np.full(problem.n_requests, -1, dtype=np.int64)
        for v, r in enumerate(routes):
            for node in r.tolist():
                request = request_of_node.get(node)
                if request is not None:
                    self.vehicle_of[request] = v

    def copy(self) -> _State:
        other = _State.__new__(_State)
        other.planner = self.planner
        other.routes = list(self.routes)
        other.costs = list(self.costs)
        other.vehicle_of = self.vehicle_of.copy()
        return other

    def unserved(self) -> list[int]:
        """Requests waiting for a pickup that no route serves (riders on board are always served)."""
        return [int(r) for r in np.flatnonzero((self.vehicle_of < 0) & (self.planner.problem.pickup >= 0))]

    def objective(self, penalty: float) -> float:
        return sum(self.costs) + penalty * len(self.unserved())

    def set_route(self, v: int, route: Route) -> None:
        self.routes[v] = route
        self.costs[v] = self.planner.route_cost(v, route)


class Search:
    """Large neighbourhood search over one Problem; `run` returns the best plan found in the time given."""

    def __init__(self, problem: Problem, seed: int = 0) -> None:
        self.planner = Planner(problem)
        self.problem = problem
        self.request_of_pickup = {int(p): r for r, p in enumerate(problem.pickup.tolist()) if p >= 0}
        on_board = {int(problem.dropoff[r]): r for r, p in enumerate(problem.pickup.tolist()) if p < 0}
        self.request_of_node = {**on_board, **self.request_of_pickup}
        self.rng = random.Random(seed)
        self.travel = problem.visit_travel()
        self.penalty = UNSERVED_WEIGHT * max(1.0, float(self.travel.max()))
        self.pool: dict[frozenset[int], tuple[float, int, Route]] = {}
        self._iterations = 0  # the operator weights adapt every 100, counted over every run
        self.movable = [r for r in range(problem.n_requests) if problem.pickup[r] >= 0]
        self._movable_array = np.array(self.movable, dtype=np.int64)
        order = np.argsort(self._related_matrix(), axis=1, kind="stable").tolist()
        self._related_order = [[j for j in row if j != k] for k, row in enumerate(order)]
        self._gone = np.zeros(len(problem.service_s), dtype=bool)

    # -- construction and repair ------------------------------------------------------------------
    def construct(self, routes: list[Route] | None = None) -> _State:
        """Regret insertion of every request not yet in `routes` (empty routes by default)."""
        if routes is None:
            routes = [np.zeros(0, dtype=np.int32) for _ in range(self.problem.n_vehicles)]
        state = _State(self.planner, routes, self.request_of_node)
        self._repair(state, [r for r in self.movable if state.vehicle_of[r] < 0], regret=2, noise=0.0)
        return state

    def _repair(self, state: _State, requests: list[int], regret: int, noise: float) -> None:
        if not requests:
            return
        routes, placed = self.planner.repair(state.routes, requests, regret, noise, self.rng.getrandbits(63))
        for v, route in enumerate(routes):
            if len(route) != len(state.routes[v]):
                state.set_route(v, route)
        for r, v in zip(requests, placed.tolist(), strict=True):
            state.vehicle_of[r] = v

    # -- ruin -------------------------------------------------------------------------------------
    def _related_matrix(self) -> npt.NDArray[np.float64]:
        p = self.problem
        movable = np.array(self.movable, dtype=np.int64)
        if not len(movable):
            return np.zeros((0, 0))
        pick, drop = p.pickup[movable], p.dropoff[movable]
        t = self.travel
        space = t[np.ix_(pick, pick)] + t[np.ix_(drop, drop)]
        time_ = np.abs(p.earliest_s[pick][:, None] - p.earliest_s[pick][None, :]) + np.abs(
            p.latest_s[drop][:, None] - p.latest_s[drop][None, :]
        )
        space = space / max(space.max(), 1e-9)
        time_ = time_ / max(time_.max(), 1e-9)
        related: npt.NDArray[np.float64] = 9.0 * space + 3.0 * time_
        return related

    def _remove(self, state: _State, requests: list[int]) -> None:
        touched: set[int] = set()
        for r in requests:
            v = int(state.vehicle_of[r])
            if v < 0:
                continue
            self._gone[self.problem.pickup[r]] = self._gone[self.problem.dropoff[r]] = True
            state.vehicle_of[r] = -1
            touched.add(v)
        for v in touched:
            route = state.routes[v]
            state.set_route(v, route[~self._gone[route]])
        self._gone[:] = False

    def _ruin_random(self, state: _State, q: int) -> list[int]:
        return self.rng.sample(self.movable, q)

    def _ruin_related(self, state: _State, q: int) -> list[int]:
        """Requests close in space and time to one another, so that they can swap places."""
        first = self.rng.randrange(len(self.movable))
        chosen = [first]
        taken = {first}
        while len(chosen) < q:
            seed = self.rng.choice(chosen)
            # Each row of _related_order lists the others from most to least related.
            rest = [k for k in self._related_order[seed] if k not in taken]
            pick = rest[int(len(rest) * self.rng.random() ** 6)]
            chosen.append(pick)
            taken.add(pick)
        return [self.movable[k] for k in chosen]

    def _ruin_worst(self, state: _State, q: int) -> list[int]:
        """Requests whose removal saves most driving, with some randomness."""
        p, t = self.problem, self.travel
        gain = np.zeros(len(p.service_s))
        for v, route in enumerate(state.routes):
            if not len(route):
                continue
            full = np.concatenate(([p.vehicle_start[v]], route, [p.vehicle_end[v]]))
            gain[route] = t[full[:-2], full[1:-1]] + t[full[1:-1], full[2:]] - t[full[:-2], full[2:]]
        movable = self._movable_array
        saving = gain[p.pickup[movable]] + gain[p.dropoff[movable]]
        saving[state.vehicle_of[movable] < 0] = np.inf
        order = np.argsort(-saving, kind="stable").tolist()
        chosen: list[int] = []
        while len(chosen) < q:
            chosen.append(self.movable[order.pop(int(len(order) * self.rng.random() ** 4))])
        return chosen

    # -- the route pool and set partitioning ------------------------------------------------------
    def _remember(self, v: int, route: Route, cost: float) -> None:
        if not len(route):
            return
        key = frozenset(self.request_of_pickup[n] for n in route.tolist() if n in self.request_of_pickup)
        known = self.pool.get(key)
        if known is None or cost < known[0] - 1e-9:
            self.pool[key] = (cost, v, route)

    def _partition(self, best: _State, limit_s: float) -> _State | None:
        """The cheapest plan made of remembered routes (a set-partitioning MIP), if it beats `best`.

        Only for vehicles that are alike, where any route may go to any vehicle.
        """
        p = self.problem
        if not self._vehicles_alike():
            return None
        for v, route in enumerate(best.routes):
            self._remember(v, route, best.costs[v])
        keys = list(self.pool)
        solver = pywraplp.Solver.CreateSolver("CBC") or pywraplp.Solver.CreateSolver("SCIP")
        if solver is None:
            return None
        pick = [solver.BoolVar(f"x{k}") for k in range(len(keys))]
        rows = {r: solver.Constraint(1.0, 1.0) for r in self.movable}
        fleet = solver.Constraint(0.0, float(p.n_vehicles))
        objective = solver.Objective()
        for k, key in enumerate(keys):
            for r in key:
                rows[r].SetCoefficient(pick[k], 1.0)
            fleet.SetCoefficient(pick[k], 1.0)
            objective.SetCoefficient(pick[k], self.pool[key][0])
        objective.SetMinimization()
        solver.SetTimeLimit(max(50, int(1000 * limit_s)))
        solver.SuppressOutput()
        with _quiet_stdout():
            status = solver.Solve()
        if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
            return None
        chosen_routes = [self.pool[key][2] for k, key in enumerate(keys) if pick[k].solution_value() > 0.5]
        routes = [np.zeros(0, dtype=np.int32) for _ in range(p.n_vehicles)]
        for v, route in enumerate(chosen_routes):
            routes[v] = route
        state = _State(self.planner, routes, self.request_of_node)
        if (state.vehicle_of < 0).any() or any(self.planner.schedule(v, r) is None for v, r in enumerate(routes)):
            return None
        if sum(state.costs) < sum(best.costs) - 1e-9:
            return state
        return None

    def _vehicles_alike(self) -> bool:
        p = self.problem
        return bool(
            (p.vehicle_start == p.vehicle_start[0]).all()
            and (p.vehicle_end == p.vehicle_end[0]).all()
            and (p.capacity == p.capacity[0]).all()
            and (p.initial_load == 0).all()
            and (p.max_duration_s == p.max_duration_s[0]).all()
        )

    # -- the search -------------------------------------------------------------------------------
    def run(
        self,
        time_limit_s: float,
        start: _State | None = None,
        progress: Callable[[float, float], None] | None = None,
        heat: float = 0.05,
    ) -> Solution:
        """The best plan found in `time_limit_s`. `heat`: at first, a plan this share worse than the
        best passes half the time (lower to stay close to a good `start`)."""
        began = time.perf_counter()
        # The last set partitioning gets a share of the time, and the whole run stays inside the limit.
        final_s = min(2.0, 0.1 * time_limit_s) if self._vehicles_alike() else 0.0
        deadline = began + time_limit_s - final_s
        current = start if start is not None else self.construct()
        best = current.copy()
        best_value = best.objective(self.penalty)
        current_value = best_value
        n = len(self.movable)
        if n == 0:
            return self._solution(best)
        operators = [self._ruin_random, self._ruin_related, self._ruin_worst]
        weights = [1.0, 1.0, 1.0]
        scores = [0.0, 0.0, 0.0]
        uses = [0, 0, 0]
        # Annealing: at first a plan `heat` worse passes half the time; at the end almost none does.
        t_start = heat * max(best_value, 1e-9) / math.log(2)
        t_end = t_start / 500.0
        partition_every = max(1.0, time_limit_s / 6)
        next_partition = began + partition_every
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            if progress is not None:
                progress(now - began, best_value)
            if now >= next_partition and self._vehicles_alike():
                next_partition = now + partition_every
                better = self._partition(best, min(1.0, 0.2 * partition_every))
                if better is not None:
                    best = better.copy()
                    best_value = best.objective(self.penalty)
                    current, current_value = better, best_value
                continue
            temperature = t_start * (t_end / t_start) ** ((now - began) / time_limit_s)
            op = self.rng.choices(range(len(operators)), weights)[0]
            q = self.rng.randint(min(2, n), max(min(2, n), min(n, int(0.35 * n), 30)))
            trial = current.copy()
            removed = operators[op](trial, q)
            self._remove(trial, removed)
            noise = 0.025 if self.rng.random() < 0.3 else 0.0
            self._repair(trial, trial.unserved(), regret=self.rng.choice((1, 2, 3)), noise=noise)
            value = trial.objective(self.penalty)
            for v, route in enumerate(trial.routes):
                self._remember(v, route, trial.costs[v])
            self._iterations += 1
            uses[op] += 1
            if value < best_value - 1e-9:
                best, best_value = trial.copy(), value
                current, current_value = trial, value
                scores[op] += 33
            elif value < current_value - 1e-9 or self.rng.random() < math.exp(-(value - current_value) / temperature):
                scores[op] += 9 if value < current_value else 13
                current, current_value = trial, value
            if self._iterations % 100 == 0:
                for k in range(len(operators)):
                    if uses[k]:
                        weights[k] = 0.8 * weights[k] + 0.2 * scores[k] / uses[k]
                    weights[k] = max(weights[k], 0.05)
                    scores[k], uses[k] = 0.0, 0
        if self._vehicles_alike() and self.pool:
            better = self._partition(best, max(0.05, began + time_limit_s - time.perf_counter()))
            if better is not None:
                best = better
        return self._solution(best)

    def improve(self, routes: Sequence[Sequence[int] | Route], time_limit_s: float, heat: float = 0.05) -> Solution:
        """A plan at most as costly as `routes` (which must be feasible), serving at least the same requests."""
        start = _State(self.planner, [np.asarray(r, dtype=np.int32) for r in routes], self.request_of_node)
        return self.run(time_limit_s, start=start, heat=heat)

    def _solution(self, state: _State) -> Solution:
        return Solution(
            routes=[r.tolist() for r in state.routes], cost=float(sum(state.costs)), unserved=state.unserved()
        )
