"""Cheapest feasible insertions of a request into vehicle plans: the one module that calls `ext.insertion`.

Its pure-Python test oracles are in `routing.oracles`.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from routing.dispatch.model import DIMENSIONS, DRIVING, Problem, Weights
from routing.kernels import require_array

try:
    from ext.insertion import DIMENSIONS as _KERNEL_DIMENSIONS
    from ext.insertion import RoutePlanner as _Kernel
except ImportError as exc:
    raise ImportError(
        "the compiled kernel ext.insertion is missing; build it with `pip install -e .` in the repository"
    ) from exc
if _KERNEL_DIMENSIONS != DIMENSIONS:
    raise ImportError(
        f"ext.insertion is written for {_KERNEL_DIMENSIONS} load dimensions, routing.dispatch.model has {DIMENSIONS}"
    )

NO_ROUTE = np.zeros(0, dtype=np.int32)


class Insertion(msgspec.Struct, frozen=True, kw_only=True):
    """Put the pickup before route position `i` and the drop-off before original position `j` (i <= j)."""

    vehicle: int
    cost: float  # weighted (Weights)
    added_s: float  # driving added
    i: int
    j: int
    pickup_s: float  # service start at the pickup in the least schedule of the new route
    dropoff_s: float


def insert_pair(route: np.ndarray, pickup: int, dropoff: int, i: int, j: int) -> np.ndarray:
    """route[:i] + [pickup] + route[i:j] + [dropoff] + route[j:]."""
    return np.concatenate((route[:i], [pickup], route[i:j], [dropoff], route[j:])).astype(np.int32)


def fixed_vehicles(problem: Problem) -> np.ndarray:
    """Per node, the vehicle that must visit it: a rider's drop-off while on board, a vehicle's own start
    and end; -1 for every other node."""
    fixed = np.full(len(problem.service_s), -1, dtype=np.int32)
    onboard = problem.onboard_vehicle >= 0
    fixed[problem.dropoff[onboard]] = problem.onboard_vehicle[onboard]
    vehicles = np.arange(problem.n_vehicles, dtype=np.int32)
    # Vehicles may share start and end nodes (a common depot): then nobody else visits them anyway.
    fixed[problem.vehicle_start] = vehicles
    fixed[problem.vehicle_end] = vehicles
    return fixed


class Planner:
    """Exact route feasibility, schedules and insertions for one Problem."""

    def __init__(self, problem: Problem, fixed_vehicle: np.ndarray | None = None) -> None:
        """`fixed_vehicle` (int32 per node, -1 free) overrides the one derived from the problem; a live
        plan passes its own array and updates it in place."""
        problem.validate()
        self.problem = problem
        self._kernel = _Kernel(
            require_array(problem.travel, np.float64, "travel"),
            require_array(problem.location, np.int32, "location")
            if problem.location is not None
            else np.arange(len(problem.service_s), dtype=np.int32),
            require_array(problem.service_s, np.float64, "service_s"),
            require_array(problem.earliest_s, np.float64, "earliest_s"),
            require_array(problem.latest_s, np.float64, "latest_s"),
            require_array(problem.demand, np.int32, "demand"),
            require_array(problem.partner, np.int32, "partner"),
            require_array(fixed_vehicle, np.int32, "fixed_vehicle")
            if fixed_vehicle is not None
            else fixed_vehicles(problem),
            require_array(problem.max_ride_s, np.float64, "max_ride_s"),
            require_array(problem.vehicle_start, np.int32, "vehicle_start"),
            require_array(problem.vehicle_end, np.int32, "vehicle_end"),
            require_array(problem.capacity, np.int32, "capacity"),
            require_array(problem.initial_load, np.int32, "initial_load"),
            require_array(problem.max_duration_s, np.float64, "max_duration_s"),
        )

    def schedule(self, vehicle: int, route: np.ndarray) -> np.ndarray | None:
        """Least feasible service starts at (start, *route, end), or None when the route is infeasible."""
        return self._kernel.schedule(vehicle, np.ascontiguousarray(route, dtype=np.int32))

    def route_cost(self, vehicle: int, route: np.ndarray) -> float:
        return self._kernel.cost(vehicle, np.ascontiguousarray(route, dtype=np.int32))

    def best_insertion(
        self, vehicle: int, route: np.ndarray, request: int, weights: Weights = DRIVING
    ) -> tuple[float, int, int]:
        """(weighted cost, i, j) of the cheapest feasible insertion; (inf, -1, -1) when none fits. With
        the default weights the cost is the driving time added."""
        p, d = int(self.problem.pickup[request]), int(self.problem.dropoff[request])
        return self.best_pair_insertion(vehicle, require_array(route, np.int32, "route"), p, d, weights)

    def best_pair_insertion(
        self, vehicle: int, route: np.ndarray, p: int, d: int, weights: Weights = DRIVING
    ) -> tuple[float, int, int]:
        """As `best_insertion`, for a pickup node `p` and drop-off node `d`."""
        route = np.ascontiguousarray(route, dtype=np.int32)
        return self._kernel.best_insertion(vehicle, route, p, d, weights.drive, weights.wait, weights.ride)

    def repair(
        self, routes: Sequence[np.ndarray], requests: Sequence[int], regret: int, noise: float, seed: int
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Insert `requests` by regret-k insertion (each at its cheapest feasible place); returns the new
        routes and, per request, its vehicle or -1 when it fits nowhere."""
        problem = self.problem
        pickups = np.ascontiguousarray(problem.pickup[list(requests)], dtype=np.int32)
        dropoffs = np.ascontiguousarray(problem.dropoff[list(requests)], dtype=np.int32)
        lengths = np.array([len(r) for r in routes], dtype=np.int32)
        rows = np.zeros((len(routes), int(lengths.max(initial=0)) + 2 * len(requests) + 2), dtype=np.int32)
        for v, route in enumerate(routes):
            rows[v, : len(route)] = route
        placed = np.full(len(requests), -1, dtype=np.int32)
        self._kernel.repair(rows, lengths, pickups, dropoffs, max(1, regret), noise, seed & (2**64 - 1), placed)
        return [rows[v, : lengths[v]].copy() for v in range(len(routes))], placed

    def options(
        self, routes: Sequence[np.ndarray], request: int, count: int = 3, weights: Weights = DRIVING
    ) -> list[Insertion]:
        """The cheapest feasible insertion in each vehicle, the `count` cheapest of them, cheapest first."""
        p, d = int(self.problem.pickup[request]), int(self.problem.dropoff[request])
        if p < 0:
            raise ValueError(f"request {request} is already on board")
        return self.pair_options(routes, p, d, count, weights)

    def pair_options(
        self, routes: Sequence[np.ndarray], p: int, d: int, count: int = 3, weights: Weights = DRIVING
    ) -> list[Insertion]:
        """As `options`, for a pickup node `p` and drop-off node `d`."""
        if len(routes) != self.problem.n_vehicles:
            raise ValueError("one route per vehicle")
        offsets = np.zeros(len(routes) + 1, dtype=np.int32)
        offsets[1:] = np.cumsum([len(r) for r in routes])
        nodes = np.concatenate([np.asarray(r, dtype=np.int32) for r in routes]) if offsets[-1] else NO_ROUTE
        costs, added, first, second = self._kernel.best_insertions(
            np.ascontiguousarray(nodes, dtype=np.int32), offsets, p, d, weights.drive, weights.wait, weights.ride
        )
        found: list[Insertion] = []
        for v in np.argsort(costs, kind="stable")[:count].tolist():
            if not np.isfinite(costs[v]):
                break
            route = insert_pair(np.asarray(routes[v], dtype=np.int32), p, d, int(first[v]), int(second[v]))
            times = self.schedule(v, route)
            assert times is not None, "the kernel returned an infeasible insertion"
            i, j = int(first[v]), int(second[v])
            found.append(
                Insertion(
                    vehicle=v,
                    cost=float(costs[v]),
                    added_s=float(added[v]),
                    i=i,
                    j=j,
                    pickup_s=float(times[i + 1]),
                    dropoff_s=float(times[j + 2]),
                )
            )
        return found
