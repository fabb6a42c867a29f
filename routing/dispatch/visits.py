"""The visits of a live plan as slots of flat arrays, read in place by the insertion kernel.

Every visit (a vehicle's current position and its depot at shift end, each pickup, drop-off and
break) occupies one slot; a slot released is reused. Visits refer to places of `DriveTimes`, so the
Problem built over all slots shares its growing matrix instead of copying an N×N one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from routing.dispatch.drive_times import DriveTimes
from routing.dispatch.insertion import Planner
from routing.dispatch.model import DIMENSIONS, Problem, Route, Vehicle

_Scalar = TypeVar("_Scalar", bound=np.generic)


def _grown(array: npt.NDArray[_Scalar], size: int, fill: float) -> npt.NDArray[_Scalar]:
    """`array` extended to `size` rows of `fill`."""
    bigger = np.full((size, *array.shape[1:]), fill, dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


class Visits:
    """Slot arrays of every visit, the fleet's per-vehicle arrays, and the Planner over them.

    Slots 2k and 2k + 1 are vehicle k's start and end; the others are free or hold a pickup, a
    drop-off or a break.
    """

    def __init__(self, times: DriveTimes, vehicles: Sequence[Vehicle], size: int) -> None:
        self.times = times
        n = len(vehicles)
        size = max(size, 2 * n + 2)
        self.service: npt.NDArray[np.float64] = np.zeros(size, dtype=np.float64)
        self.earliest: npt.NDArray[np.float64] = np.zeros(size, dtype=np.float64)
        self.latest: npt.NDArray[np.float64] = np.full(size, math.inf, dtype=np.float64)
        self.partner: npt.NDArray[np.int32] = np.full(size, -1, dtype=np.int32)
        self.max_ride: npt.NDArray[np.float64] = np.full(size, math.inf, dtype=np.float64)
        self.location: npt.NDArray[np.int32] = np.zeros(size, dtype=np.int32)
        self.fixed: npt.NDArray[np.int32] = np.full(size, -1, dtype=np.int32)  # the vehicle a visit must stay on
        self.demand: npt.NDArray[np.int32] = np.zeros((size, DIMENSIONS), dtype=np.int32)
        self.capacity: npt.NDArray[np.int32] = np.array([v.capacity() for v in vehicles], dtype=np.int32).reshape(
            -1, DIMENSIONS
        )
        self.initial_load: npt.NDArray[np.int32] = np.zeros((n, DIMENSIONS), dtype=np.int32)
        self.max_duration: npt.NDArray[np.float64] = np.array(
            [v.shift_end_s - v.shift_start_s for v in vehicles], dtype=np.float64
        )
        self.vehicle_start: npt.NDArray[np.int32] = np.arange(0, 2 * n, 2, dtype=np.int32)
        self.vehicle_end: npt.NDArray[np.int32] = self.vehicle_start + 1
        for k, v in enumerate(vehicles):
            depot = times.place(v.depot_node)
            for slot in (2 * k, 2 * k + 1):
                self.location[slot] = depot
                self.earliest[slot] = v.shift_start_s
                self.latest[slot] = v.shift_end_s
                self.fixed[slot] = k
        # Popped from the end: the lowest free slot first.
        self._free = list(range(size - 1, 2 * n - 1, -1))
        self._planner: Planner | None = None
        self._planner_key: tuple[int, int] = (-1, -1)

    def _grow(self, size: int) -> None:
        old = len(self.service)
        self.service = _grown(self.service, size, 0.0)
        self.earliest = _grown(self.earliest, size, 0.0)
        self.latest = _grown(self.latest, size, math.inf)
        self.partner = _grown(self.partner, size, -1)
        self.max_ride = _grown(self.max_ride, size, math.inf)
        self.location = _grown(self.location, size, 0)
        self.fixed = _grown(self.fixed, size, -1)
        self.demand = _grown(self.demand, size, 0)
        self._free = list(range(size - 1, old - 1, -1)) + self._free

    def slot(self) -> int:
        """A free slot (the arrays double when none is left); its values are those of a released slot."""
        if not self._free:
            self._grow(2 * len(self.service))
        return self._free.pop()

    def add(
        self,
        place: int,
        service_s: float,
        earliest_s: float,
        latest_s: float,
        demand: Sequence[int] = (0,) * DIMENSIONS,
        fixed: int = -1,
    ) -> int:
        """A new visit at `place` (of DriveTimes), starting inside [earliest_s, latest_s]; its slot."""
        slot = self.slot()
        self.location[slot] = place
        self.service[slot] = service_s
        self.earliest[slot], self.latest[slot] = earliest_s, latest_s
        self.demand[slot] = demand
        self.fixed[slot] = fixed
        return slot

    def release(self, slot: int) -> None:
        """Free a slot for reuse, clearing what the planner reads of it."""
        self.partner[slot] = -1
        self.demand[slot] = 0
        self.fixed[slot] = -1
        self.earliest[slot], self.latest[slot], self.max_ride[slot] = 0.0, math.inf, math.inf
        self._free.append(slot)

    def problem(self) -> Problem:
        """The live plan as a Problem over every slot (free slots are never visited)."""
        none = np.zeros(0, dtype=np.int32)
        return Problem(
            travel=self.times.matrix,
            location=self.location,
            service_s=self.service,
            earliest_s=self.earliest,
            latest_s=self.latest,
            demand=self.demand,
            partner=self.partner,
            max_ride_s=self.max_ride,
            vehicle_start=self.vehicle_start,
            vehicle_end=self.vehicle_end,
            capacity=self.capacity,
            initial_load=self.initial_load,
            max_duration_s=self.max_duration,
            pickup=none,
            dropoff=none,
            onboard_vehicle=none,
        )

    @property
    def planner(self) -> Planner:
        """The Planner over `problem()`, rebuilt only when an array was replaced by a bigger one."""
        key = (len(self.service), self.times.grown)
        if self._planner is None or key != self._planner_key:
            self._planner = Planner(self.problem(), fixed_vehicle=self.fixed)
            self._planner_key = key
        return self._planner

    def snapshot(
        self, requests: Sequence[tuple[int, int, int]], routes: Sequence[Route]
    ) -> tuple[Problem, list[Route], Route]:
        """A compact Problem of the vehicles and `requests` (pickup slot or -1, drop-off slot, vehicle the
        drop-off is fixed to or -1), `routes` in its node ids, and each compact node's slot."""
        slots = np.concatenate(
            [
                np.stack([self.vehicle_start, self.vehicle_end], axis=1).ravel(),
                np.array([x for p, d, _ in requests for x in (p, d) if x >= 0], dtype=np.int32),
            ]
        ).astype(np.int32)
        compact = {int(x): k for k, x in enumerate(slots.tolist())}
        partner = np.array(
            [compact[int(self.partner[x])] if self.partner[x] >= 0 else -1 for x in slots], dtype=np.int32
        )
        n_vehicles = len(self.vehicle_start)
        problem = Problem(
            travel=np.ascontiguousarray(self.times.matrix[np.ix_(self.location[slots], self.location[slots])]),
            service_s=self.service[slots].copy(),
            earliest_s=self.earliest[slots].copy(),
            latest_s=self.latest[slots].copy(),
            demand=np.ascontiguousarray(self.demand[slots]),
            partner=partner,
            max_ride_s=self.max_ride[slots].copy(),
            vehicle_start=np.arange(0, 2 * n_vehicles, 2, dtype=np.int32),
            vehicle_end=np.arange(1, 2 * n_vehicles, 2, dtype=np.int32),
            capacity=self.capacity.copy(),
            initial_load=self.initial_load.copy(),
            max_duration_s=self.max_duration.copy(),
            pickup=np.array([compact[p] if p >= 0 else -1 for p, _, _ in requests], dtype=np.int32),
            dropoff=np.array([compact[d] for _, d, _ in requests], dtype=np.int32),
            onboard_vehicle=np.array([v for _, _, v in requests], dtype=np.int32),
        )
        compact_routes = [np.array([compact[int(s)] for s in route.tolist()], dtype=np.int32) for route in routes]
        return problem, compact_routes, slots
