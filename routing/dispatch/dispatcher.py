"""Live vehicle plans: quotes, bookings with promises, stop events, and re-optimised plans adopted safely.

Every visit (a vehicle's current position and its depot at shift end, each pickup and drop-off)
occupies a slot of flat arrays that the insertion kernel reads in place. Visits refer to places
(drive-graph nodes); driving times between places come from `DriveTimes`, one forward and one
backward search per new place, cached.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence

import msgspec
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from routing.dispatch.insertion import Insertion, Planner, insert_pair
from routing.dispatch.model import (
    DIMENSIONS,
    Break,
    DispatchError,
    Problem,
    Promise,
    Request,
    RideRules,
    StopEvent,
    Vehicle,
)
from routing.dispatch.optimize import optimize
from routing.dispatch.search import Search
from routing.model import StreetArrays
from routing.spatial import NearestIndex
from routing.streets import StreetRouter, reversed_graph

# Driving time used for places that cannot reach each other: large but finite, so that sums stay numbers.
UNREACHABLE_S = 1e9
# Re-optimisation: the large neighbourhood search first, OR-Tools' guided local search for the rest.
SEARCH_SHARE = 0.6
SNAP_RADIUS_M = 500.0


class DriveTimes:
    """Driving seconds between the places in use, grown one place at a time."""

    def __init__(self, drive: StreetArrays, capacity: int = 256) -> None:
        self.graph = drive
        # Only the largest strongly connected part of the roads can be served both ways.
        adjacency = csr_matrix(
            (np.ones(drive.n_edges), np.asarray(drive.indices), np.asarray(drive.indptr)),
            shape=(drive.n_nodes, drive.n_nodes),
        )
        _, component = connected_components(adjacency, directed=True, connection="strong")
        self.routable = component == np.bincount(component).argmax()
        self._forward = StreetRouter(drive, "travel_time_s")
        self._backward = StreetRouter(reversed_graph(drive), "travel_time_s")
        self._nearest: NearestIndex | None = None
        self.matrix = np.zeros((capacity, capacity), dtype=np.float64)
        self.nodes: list[int] = []
        self._place_of: dict[int, int] = {}
        self.grown = 0  # bumps whenever `matrix` is replaced by a bigger one

    def snap(self, lat: float, lon: float) -> int:
        """The drive-graph node nearest to a position, within 500 m."""
        return self.snap_many([lat], [lon])[0]

    def snap_many(self, lats: Sequence[float], lons: Sequence[float]) -> list[int]:
        """`snap` of several positions in one look-up; DispatchError names the first too far from a road."""
        if self._nearest is None:
            lat_, lon_ = np.asarray(self.graph.node_lat).copy(), np.asarray(self.graph.node_lon).copy()
            lat_[~self.routable] = np.nan  # never snap onto a road cut off from the rest
            self._nearest = NearestIndex(lat_, lon_)
        if not len(lats):
            return []
        index, _ = self._nearest.nearest(
            np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64), SNAP_RADIUS_M
        )
        for k in np.flatnonzero(index < 0)[:1].tolist():
            raise DispatchError(f"{lats[k]:.5f},{lons[k]:.5f} is more than {SNAP_RADIUS_M:.0f} m from any road")
        return index.tolist()

    def place(self, node: int) -> int:
        """The place index of a drive-graph node, adding it (two searches) when new."""
        known = self._place_of.get(node)
        if known is not None:
            return known
        if not 0 <= node < self.graph.n_nodes:
            raise DispatchError(f"node {node} is not in the drive graph")
        if not self.routable[node]:
            raise DispatchError(f"node {node} lies on a road cut off from the rest of the network")
        k = len(self.nodes)
        if k == len(self.matrix):
            bigger = np.zeros((2 * k, 2 * k), dtype=np.float64)
            bigger[:k, :k] = self.matrix[:k, :k]
            self.matrix = bigger
            self.grown += 1
        targets = np.array(self.nodes, dtype=np.int64)
        source = np.array([node], dtype=np.int32)
        row = self._times(self._forward, source, targets)
        column = self._times(self._backward, source, targets)
        self.matrix[k, :k] = row
        self.matrix[:k, k] = column
        self.matrix[k, k] = 0.0
        self.nodes.append(node)
        self._place_of[node] = k
        return k

    def warm(self, nodes: Sequence[int]) -> None:
        """Add the places riders will mostly use (the bus stops on the drive graph) ahead of the first
        quote; nodes off the routable roads are skipped."""
        for node in nodes:
            if 0 <= node < self.graph.n_nodes and self.routable[node]:
                self.place(int(node))

    def _times(self, router: StreetRouter, source: np.ndarray, targets: np.ndarray) -> np.ndarray:
        nodes, costs = router.search(source)
        full = np.full(self.graph.n_nodes, UNREACHABLE_S)
        full[nodes] = costs
        return full[targets]

    def seconds(self, a: int, b: int) -> float:
        return float(self.matrix[self.place(a), self.place(b)])


class Offer(msgspec.Struct, frozen=True, kw_only=True):
    """A feasible ride for a request: the promise it would carry and the vehicle planned for it."""

    request_id: str
    vehicle_id: str
    promise: Promise
    pickup_estimate_s: float
    dropoff_estimate_s: float
    added_drive_s: float


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    offers: list[Offer]
    alternatives: list[Offer]  # when nothing fits: the nearest feasible earlier and later times
    reason: str | None = None


class Booking(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    request: Request
    promise: Promise
    vehicle_id: str
    status: str  # confirmed | picked_up | completed | cancelled | no_show


class _Ride(msgspec.Struct, kw_only=True):
    request: Request
    promise: Promise
    vehicle: int
    pickup: int  # slot, -1 once picked up
    dropoff: int  # slot, -1 once dropped off
    status: str


class Dispatcher:
    """The fleet's plans; not thread-safe: the service serialises calls (one writer)."""

    def __init__(
        self,
        drive: StreetArrays,
        vehicles: Sequence[Vehicle],
        rules: RideRules | None = None,
        *,
        search_window_s: float = 1800.0,
        capacity: int = 256,
        times: DriveTimes | None = None,
    ) -> None:
        """`times` shares driving times already searched (for the same drive graph) with a new plan."""
        if not vehicles:
            raise DispatchError("a fleet needs at least one vehicle")
        if len({v.id for v in vehicles}) != len(vehicles):
            raise DispatchError("vehicle ids must be unique")
        self.rules = rules or RideRules()
        self.search_window_s = search_window_s
        if times is not None and times.graph is not drive:
            raise DispatchError("shared driving times must come from the same drive graph")
        self.times = times or DriveTimes(drive)
        self.vehicles = list(vehicles)
        self._vehicle_index = {v.id: k for k, v in enumerate(self.vehicles)}
        n_vehicles = len(vehicles)
        self._allocate(max(capacity, 2 * n_vehicles + 2))
        self.capacity = np.array([v.capacity() for v in vehicles], dtype=np.int32).reshape(-1, DIMENSIONS)
        self.initial_load = np.zeros((n_vehicles, DIMENSIONS), dtype=np.int32)
        self.max_duration = np.array([v.shift_end_s - v.shift_start_s for v in vehicles], dtype=np.float64)
        self.vehicle_start = np.arange(0, 2 * n_vehicles, 2, dtype=np.int32)
        self.vehicle_end = self.vehicle_start + 1
        for k, v in enumerate(vehicles):
            depot = self.times.place(v.depot_node)
            for slot in (2 * k, 2 * k + 1):
                self.location[slot] = depot
                self.earliest[slot] = v.shift_start_s
                self.latest[slot] = v.shift_end_s
                self.fixed[slot] = k
        self._free = list(range(len(self.service) - 1, 2 * n_vehicles - 1, -1))
        self._moved: dict[int, tuple[int, float]] = {}  # vehicles whose plan no longer starts at the depot
        self._slot_ride: dict[int, str] = {}  # the ride each pickup or drop-off slot was last given to
        self.routes: list[np.ndarray] = [np.zeros(0, dtype=np.int32) for _ in vehicles]
        self.rides: dict[str, _Ride] = {}
        self.breaks: dict[str, tuple[int, int]] = {}  # break id -> (vehicle, slot)
        self._planner: Planner | None = None
        self._planner_key: tuple[int, int] = (-1, -1)
        for v in vehicles:
            for n, rest in enumerate(v.breaks):
                self.add_break(f"{v.id}/break-{n}", v.id, rest)

    # -- storage ------------------------------------------------------------------------------------
    def _allocate(self, size: int) -> None:
        old = getattr(self, "service", None)
        fields = {
            "service": (np.float64, 0.0),
            "earliest": (np.float64, 0.0),
            "latest": (np.float64, math.inf),
            "partner": (np.int32, -1),
            "max_ride": (np.float64, math.inf),
            "location": (np.int32, 0),
            "fixed": (np.int32, -1),
        }
        for name, (dtype, fill) in fields.items():
            array = np.full(size, fill, dtype=dtype)
            if old is not None:
                array[: len(old)] = getattr(self, name)
            setattr(self, name, array)
        demand = np.zeros((size, DIMENSIONS), dtype=np.int32)
        if old is not None:
            demand[: len(old)] = self.demand
            self._free = list(range(size - 1, len(old) - 1, -1)) + self._free
        self.demand = demand

    def _slot(self) -> int:
        if not self._free:
            self._allocate(2 * len(self.service))
        return self._free.pop()

    def _release(self, slot: int) -> None:
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
        key = (len(self.service), self.times.grown)
        if self._planner is None or key != self._planner_key:
            self._planner = Planner(self.problem(), fixed_vehicle=self.fixed)
            self._planner_key = key
        return self._planner

    # -- quotes and bookings ------------------------------------------------------------------------
    def _windows(self, request: Request, now_s: float) -> tuple[float, float, float, float, float]:
        """Pickup earliest/latest, drop-off earliest/latest, and the maximum ride time of a request."""
        direct = self.times.seconds(request.origin_node, request.destination_node)
        if direct >= UNREACHABLE_S:
            raise DispatchError(f"request {request.id}: the destination cannot be reached by road from the origin")
        ride = self.rules.max_ride_s(direct)
        s = self.rules.boarding_s
        if request.earliest_pickup_s is not None:
            pick_lo = max(request.earliest_pickup_s, now_s)
            pick_hi = request.earliest_pickup_s + self.search_window_s
            drop_hi = pick_hi + s + ride
        else:
            drop_hi = float(request.latest_arrival_s)  # type: ignore[arg-type]
            pick_lo = max(now_s, drop_hi - s - ride - self.search_window_s)
            pick_hi = drop_hi - s - direct
        if pick_hi < pick_lo:
            raise DispatchError(f"request {request.id}: its time lies in the past")
        return pick_lo, pick_hi, pick_lo + s + direct, drop_hi, ride

    def _place_request(self, request: Request, windows: tuple[float, float, float, float, float]) -> tuple[int, int]:
        pick_lo, pick_hi, drop_lo, drop_hi, ride = windows
        p, d = self._slot(), self._slot()
        demand = request.passengers.demand()
        self.location[p] = self.times.place(request.origin_node)
        self.location[d] = self.times.place(request.destination_node)
        for slot, lo, hi, sign in ((p, pick_lo, pick_hi, 1), (d, drop_lo, drop_hi, -1)):
            self.service[slot] = self.rules.boarding_s
            self.earliest[slot], self.latest[slot] = lo, hi
            self.demand[slot] = [sign * x for x in demand]
        self.partner[p], self.partner[d] = d, p
        self.max_ride[p] = ride
        # A released slot keeps its old entry until reused; plan_of checks it against the ride.
        self._slot_ride[p] = self._slot_ride[d] = request.id
        return p, d

    @contextlib.contextmanager
    def trial(self, request: Request, now_s: float) -> Iterator[tuple[int, int]]:
        """The request's pickup and drop-off as visits (slots) that exist only inside the block."""
        p, d = self._place_request(request, self._windows(request, now_s))
        try:
            yield p, d
        finally:
            self._release(p)
            self._release(d)

    def _offers(self, request: Request, windows: tuple[float, float, float, float, float], count: int) -> list[Offer]:
        p, d = self._place_request(request, windows)
        try:
            found = self.planner.pair_options(self.routes, p, d, count)
            return [self._offer(request, option, windows) for option in found]
        finally:
            self._release(p)
            self._release(d)

    def _offer(self, request: Request, option: Insertion, windows: tuple[float, float, float, float, float]) -> Offer:
        pick_hi, drop_hi = windows[1], windows[3]
        width = self.rules.pickup_window_s
        promise = Promise(
            pickup_earliest_s=option.pickup_s,
            pickup_latest_s=min(option.pickup_s + width, pick_hi),
            dropoff_latest_s=min(option.dropoff_s + width, drop_hi),
        )
        return Offer(
            request_id=request.id,
            vehicle_id=self.vehicles[option.vehicle].id,
            promise=promise,
            pickup_estimate_s=option.pickup_s,
            dropoff_estimate_s=option.dropoff_s,
            added_drive_s=option.added_s,
        )

    @contextlib.contextmanager
    def _leaving_after(self, now_s: float | None) -> Iterator[None]:
        """Inside the block no vehicle leaves the start of its plan before `now_s`: a vehicle idle at
        its depot or last stop cannot have set off in the past to reach a new rider early. (One
        already driving to its next stop is held to the same rule, which can only refuse more.)"""
        if now_s is None:
            yield
            return
        starts = self.vehicle_start
        saved = self.earliest[starts].copy()
        self.earliest[starts] = np.maximum(saved, now_s)
        try:
            yield
        finally:
            self.earliest[starts] = saved

    def quote(self, request: Request, now_s: float, count: int = 3) -> Quote:
        """Feasible offers, cheapest first; when none fits, the nearest feasible earlier and later times."""
        with self._leaving_after(now_s):
            return self._quote(request, now_s, count)

    def _quote(self, request: Request, now_s: float, count: int) -> Quote:
        if request.id in self.rides:
            raise DispatchError(f"request {request.id} is already booked")
        windows = self._windows(request, now_s)
        offers = self._offers(request, windows, count)
        if offers:
            return Quote(request_id=request.id, offers=offers, alternatives=[])
        alternatives: list[Offer] = []
        step = self.rules.pickup_window_s
        for direction in (-1, 1):
            for k in range(1, 13):  # up to two hours either way, in steps of one pickup window
                shift = direction * k * step
                moved = msgspec.structs.replace(
                    request,
                    earliest_pickup_s=None if request.earliest_pickup_s is None else request.earliest_pickup_s + shift,
                    latest_arrival_s=None if request.latest_arrival_s is None else request.latest_arrival_s + shift,
                )
                try:
                    found = self._offers(moved, self._windows(moved, now_s), 1)
                except DispatchError:
                    continue  # that time is already past
                if found:
                    alternatives.append(found[0])
                    break
        return Quote(
            request_id=request.id,
            offers=[],
            alternatives=alternatives,
            reason="no vehicle can serve this ride within its time window",
        )

    def book(self, offer: Offer, request: Request, now_s: float | None = None) -> Booking:
        """Confirm an offer if its promise still fits some vehicle's plan (leaving no start before
        `now_s`, as the quote did); DispatchError otherwise."""
        with self._leaving_after(now_s):
            return self._book(offer, request)

    def _book(self, offer: Offer, request: Request) -> Booking:
        if request.id in self.rides or request.id != offer.request_id:
            raise DispatchError(f"request {request.id}: already booked or not the offer's request")
        promise = offer.promise
        _, _, drop_lo, _, ride = self._windows(request, -math.inf)
        windows = (promise.pickup_earliest_s, promise.pickup_latest_s, drop_lo, promise.dropoff_latest_s, ride)
        p, d = self._place_request(request, windows)
        # The offered vehicle first (the usual case, one route to test), then any other.
        v = self._vehicle(offer.vehicle_id)
        added, i, j = self.planner.best_pair_insertion(v, self.routes[v], p, d)
        if not math.isfinite(added):
            found = self.planner.pair_options(self.routes, p, d, count=1)
            if not found:
                self._release(p)
                self._release(d)
                raise DispatchError(f"request {request.id}: the offer no longer fits any vehicle's plan")
            v, i, j = found[0].vehicle, found[0].i, found[0].j
        self.routes[v] = insert_pair(self.routes[v], p, d, i, j)
        self.rides[request.id] = _Ride(
            request=request, promise=promise, vehicle=v, pickup=p, dropoff=d, status="confirmed"
        )
        return self.booking(request.id)

    def restore(self, request: Request, promise: Promise, vehicle_id: str, status: str) -> None:
        """Put back a ride read from storage (confirmed or picked up) without planning it; `set_plan`
        then gives each vehicle its stored visiting order."""
        if request.id in self.rides:
            raise DispatchError(f"request {request.id} is already planned")
        if status not in ("confirmed", "picked_up"):
            raise DispatchError(f"request {request.id}: only confirmed or picked-up rides are planned")
        v = self._vehicle(vehicle_id)
        _, _, drop_lo, _, ride_s = self._windows(request, -math.inf)
        p, d = self._place_request(
            request, (promise.pickup_earliest_s, promise.pickup_latest_s, drop_lo, promise.dropoff_latest_s, ride_s)
        )
        ride = _Ride(request=request, promise=promise, vehicle=v, pickup=p, dropoff=d, status=status)
        if status == "picked_up":
            self.initial_load[v] += self.demand[p]
            self.partner[d] = -1
            self.fixed[d] = v
            self._release(p)
            ride.pickup = -1
        self.rides[request.id] = ride

    def clear_vehicle(self, vehicle_id: str) -> None:
        """Forget every ride planned on a vehicle and its load (breaks stay): before `restore` puts back
        that vehicle's rides as another process left them."""
        v = self._vehicle(vehicle_id)
        for rid in [rid for rid, ride in self.rides.items() if ride.vehicle == v and ride.dropoff >= 0]:
            ride = self.rides.pop(rid)
            for slot in (ride.pickup, ride.dropoff):
                if slot >= 0:
                    self._release(slot)
        rests = {slot for u, slot in self.breaks.values() if u == v}
        self.routes[v] = np.array([x for x in self.routes[v].tolist() if x in rests], dtype=np.int32)
        self.initial_load[v] = 0

    def set_plan(self, vehicle_id: str, stops: Sequence[tuple[str, str]]) -> bool:
        """Give a vehicle its visiting order as (request id, 'pickup' | 'dropoff'); returns whether the
        plan can still be kept (a stored plan may have fallen behind time)."""
        v = self._vehicle(vehicle_id)
        slots = []
        for rid, kind in stops:
            ride = self._ride(rid)
            slot = ride.pickup if kind == "pickup" else ride.dropoff
            if slot < 0 or ride.vehicle != v:
                raise DispatchError(f"vehicle {vehicle_id}: stop {rid}/{kind} is not planned on it")
            slots.append(slot)
        self.routes[v] = np.array(slots, dtype=np.int32)
        return self.planner.schedule(v, self.routes[v]) is not None

    def plan_of(self, vehicle_id: str) -> list[tuple[str, str]]:
        """The vehicle's visiting order as (request id, 'pickup' | 'dropoff'), breaks left out."""
        v = self._vehicle(vehicle_id)
        stops = []
        for x in self.routes[v].tolist():
            ride = self.rides.get(self._slot_ride.get(x, ""))
            if ride is None:
                continue  # a break
            if ride.pickup == x:
                stops.append((ride.request.id, "pickup"))
            elif ride.dropoff == x:
                stops.append((ride.request.id, "dropoff"))
        return stops

    def booking(self, request_id: str) -> Booking:
        ride = self._ride(request_id)
        return Booking(
            id=request_id,
            request=ride.request,
            promise=ride.promise,
            vehicle_id=self.vehicles[ride.vehicle].id,
            status=ride.status,
        )

    def _ride(self, request_id: str) -> _Ride:
        ride = self.rides.get(request_id)
        if ride is None:
            raise DispatchError(f"no booking {request_id}")
        return ride

    # -- breaks -------------------------------------------------------------------------------------
    def add_break(self, break_id: str, vehicle_id: str, rest: Break) -> None:
        """Plan a driver's break at its cheapest feasible place in the vehicle's route; DispatchError if none."""
        if break_id in self.breaks:
            raise DispatchError(f"break {break_id} exists already")
        v = self._vehicle(vehicle_id)
        slot = self._slot()
        node = self.vehicles[v].depot_node if rest.node is None else rest.node
        self.location[slot] = self.times.place(node)
        self.service[slot] = rest.duration_s
        self.earliest[slot], self.latest[slot] = rest.earliest_s, rest.latest_s
        self.fixed[slot] = v
        route = self.routes[v]
        best, best_cost = None, math.inf
        for i in range(len(route) + 1):
            trial = np.concatenate((route[:i], [slot], route[i:])).astype(np.int32)
            cost = self.planner.route_cost(v, trial)
            if cost < best_cost and self.planner.schedule(v, trial) is not None:
                best, best_cost = trial, cost
        if best is None:
            self._release(slot)
            raise DispatchError(f"vehicle {vehicle_id}: the break does not fit its plan")
        self.routes[v] = best
        self.breaks[break_id] = (v, slot)

    def end_break(self, break_id: str, at_s: float) -> None:
        """The driver is back from the break: the vehicle is free where it rested from `at_s` on."""
        if break_id not in self.breaks:
            raise DispatchError(f"no break {break_id}")
        v, slot = self.breaks.pop(break_id)
        node = self.times.nodes[int(self.location[slot])]
        self.routes[v] = self.routes[v][self.routes[v] != slot]
        self._release(slot)
        self.vehicle_at(self.vehicles[v].id, node, at_s)

    # -- stop events and cancellations --------------------------------------------------------------
    def _drop_visits(self, ride: _Ride, *slots: int) -> None:
        route = self.routes[ride.vehicle]
        self.routes[ride.vehicle] = route[~np.isin(route, [s for s in slots if s >= 0])]
        for slot in slots:
            if slot >= 0:
                self._release(slot)

    def cancel(self, request_id: str) -> Booking:
        """Cancel a ride not yet picked up; its room is free at once."""
        ride = self._ride(request_id)
        if ride.status != "confirmed":
            raise DispatchError(f"booking {request_id} is {ride.status}: only a confirmed ride can be cancelled")
        self._drop_visits(ride, ride.pickup, ride.dropoff)
        ride.pickup = ride.dropoff = -1
        ride.status = "cancelled"
        return self.booking(request_id)

    def reassign(self, request_id: str, vehicle_id: str, now_s: float | None = None) -> Booking:
        """Move a confirmed ride to another vehicle, at its cheapest place there, keeping its promise
        (leaving no start before `now_s`); DispatchError (nothing changed) when it does not fit."""
        with self._leaving_after(now_s):
            return self._reassign(request_id, vehicle_id)

    def _reassign(self, request_id: str, vehicle_id: str) -> Booking:
        ride = self._ride(request_id)
        if ride.status != "confirmed":
            raise DispatchError(f"booking {request_id} is {ride.status}: only a ride waiting for pickup moves")
        target = self._vehicle(vehicle_id)
        if target == ride.vehicle:
            raise DispatchError(f"booking {request_id} is already planned on {vehicle_id}")
        cost, i, j = self.planner.best_pair_insertion(target, self.routes[target], ride.pickup, ride.dropoff)
        if not math.isfinite(cost):
            raise DispatchError(f"booking {request_id} does not fit the plan of {vehicle_id} within its promise")
        source = self.routes[ride.vehicle]
        self.routes[ride.vehicle] = source[(source != ride.pickup) & (source != ride.dropoff)]
        self.routes[target] = insert_pair(self.routes[target], ride.pickup, ride.dropoff, i, j)
        ride.vehicle = target
        return self.booking(request_id)

    def vehicle_at(self, vehicle_id: str, node: int, at_s: float) -> None:
        """The vehicle is free at `node` from `at_s` on: its plan starts there."""
        v = self._vehicle(vehicle_id)
        start = int(self.vehicle_start[v])
        self.location[start] = self.times.place(node)
        self.earliest[start] = max(at_s, self.earliest[start])
        self._moved[v] = (node, float(self.earliest[start]))

    def start_of(self, vehicle_id: str) -> tuple[int, float] | None:
        """(node, time) where the vehicle's plan starts, if `vehicle_at` moved it from its depot."""
        return self._moved.get(self._vehicle(vehicle_id))

    def _vehicle(self, vehicle_id: str) -> int:
        if vehicle_id not in self._vehicle_index:
            raise DispatchError(f"no vehicle {vehicle_id}")
        return self._vehicle_index[vehicle_id]

    def record(self, request_id: str, event: StopEvent, at_s: float) -> Booking:
        """Apply a driver's stop event: picked up, no-show or dropped off (arrived changes no plan)."""
        ride = self._ride(request_id)
        vehicle_id = self.vehicles[ride.vehicle].id
        if event is StopEvent.ARRIVED:
            return self.booking(request_id)
        if event in (StopEvent.PICKED_UP, StopEvent.NO_SHOW):
            if ride.status != "confirmed":
                raise DispatchError(f"booking {request_id} is {ride.status}, not waiting for its pickup")
            node = self.times.nodes[int(self.location[ride.pickup])]
            if event is StopEvent.NO_SHOW:
                self._drop_visits(ride, ride.pickup, ride.dropoff)
                ride.pickup = ride.dropoff = -1
                ride.status = "no_show"
                self.vehicle_at(vehicle_id, node, at_s)
                return self.booking(request_id)
            d = ride.dropoff
            s = self.service[ride.pickup]
            self.initial_load[ride.vehicle] += self.demand[ride.pickup]
            self.max_ride[d] = math.inf
            self.latest[d] = min(ride.promise.dropoff_latest_s, at_s + s + self.max_ride[ride.pickup])
            # Picked up before the window opened: the drop-off may come as early as the drive allows.
            self.earliest[d] = at_s + s
            self.partner[d] = -1
            self.fixed[d] = ride.vehicle  # a rider on board never changes vehicle
            self._drop_visits(ride, ride.pickup)
            ride.pickup = -1
            ride.status = "picked_up"
            self.vehicle_at(vehicle_id, node, at_s + s)
            return self.booking(request_id)
        if event is StopEvent.DROPPED_OFF:
            if ride.status != "picked_up":
                raise DispatchError(f"booking {request_id} is {ride.status}, nobody to drop off")
            node = self.times.nodes[int(self.location[ride.dropoff])]
            s = self.service[ride.dropoff]
            self.initial_load[ride.vehicle] += self.demand[ride.dropoff]
            self._drop_visits(ride, ride.dropoff)
            ride.dropoff = -1
            ride.status = "completed"
            self.vehicle_at(vehicle_id, node, at_s + s)
            return self.booking(request_id)
        raise DispatchError(f"unknown stop event {event!r}")

    # -- schedules and re-optimisation ---------------------------------------------------------------
    def schedule(self, vehicle_id: str) -> list[tuple[str, str, float]]:
        """The vehicle's next stops: (request or break id, 'pickup' | 'dropoff' | 'break', planned start)."""
        v = self._vehicle(vehicle_id)
        times = self.planner.schedule(v, self.routes[v])
        if times is None:
            raise DispatchError(f"vehicle {vehicle_id}: its plan can no longer be kept")
        owner = {slot: (bid, "break") for bid, (_, slot) in self.breaks.items()}
        for rid, ride in self.rides.items():
            if ride.pickup >= 0:
                owner[ride.pickup] = (rid, "pickup")
            if ride.dropoff >= 0:
                owner[ride.dropoff] = (rid, "dropoff")
        return [(*owner[int(slot)], float(t)) for slot, t in zip(self.routes[v].tolist(), times[1:-1], strict=True)]

    def snapshot(self) -> tuple[Problem, list[np.ndarray], np.ndarray]:
        """A compact Problem of the visits in use (for the optimiser), its routes, and each compact
        node's slot. Riders on board appear as requests without pickup, fixed to their vehicle."""
        # (pickup slot or -1, drop-off slot, vehicle it is fixed to or -1); breaks travel as riders on
        # board without load: one visit fixed to its vehicle.
        visits = [
            (r.pickup, r.dropoff, r.vehicle if r.pickup < 0 else -1) for r in self.rides.values() if r.dropoff >= 0
        ]
        visits += [(-1, slot, v) for v, slot in self.breaks.values()]
        slots = np.concatenate(
            [
                np.stack([self.vehicle_start, self.vehicle_end], axis=1).ravel(),
                np.array([x for p, d, _ in visits for x in (p, d) if x >= 0], dtype=np.int32),
            ]
        )
        slots = slots.astype(np.int32)
        compact = {int(x): k for k, x in enumerate(slots.tolist())}
        partner = np.array(
            [compact[int(self.partner[x])] if self.partner[x] >= 0 else -1 for x in slots], dtype=np.int32
        )
        n_vehicles = len(self.vehicles)
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
            pickup=np.array([compact[p] if p >= 0 else -1 for p, _, _ in visits], dtype=np.int32),
            dropoff=np.array([compact[d] for _, d, _ in visits], dtype=np.int32),
            onboard_vehicle=np.array([v for _, _, v in visits], dtype=np.int32),
        )
        routes = [np.array([compact[int(s)] for s in route.tolist()], dtype=np.int32) for route in self.routes]
        return problem, routes, slots

    def reoptimize(self, time_limit_s: float, seed: int = 0) -> bool:
        """Improve the plans for `time_limit_s` and adopt the result if it keeps every promise.

        The service runs `snapshot` and `adopt` on its event loop and the search in between in a worker,
        so that quotes never wait for it; this method does all three in a row.
        """
        problem, routes, slots = self.snapshot()
        if not problem.n_requests:
            return False
        improved = Search(problem, seed=seed).improve(routes, SEARCH_SHARE * time_limit_s)
        if improved.unserved:
            return False
        polished = optimize(
            problem, [np.array(r, dtype=np.int32) for r in improved.routes], (1.0 - SEARCH_SHARE) * time_limit_s
        )
        before = sum(self.planner.route_cost(v, r) for v, r in enumerate(self.routes))
        changed = self.adopt(polished, slots)
        return changed and sum(self.planner.route_cost(v, r) for v, r in enumerate(self.routes)) <= before + 1e-6

    def adopt(self, routes: Sequence[np.ndarray], slots: np.ndarray) -> bool:
        """Take re-optimised routes (compact node ids of `snapshot`) if they still keep every promise under
        the current plan: every visit planned exactly once, riders on board on their vehicle, every
        route feasible. Plans changed since the snapshot (a new booking, an event) reject them."""
        mapped = [np.asarray(slots, dtype=np.int32)[np.asarray(r, dtype=np.int64)] for r in routes]
        current = sorted(itertools.chain.from_iterable(r.tolist() for r in self.routes))
        proposed = sorted(itertools.chain.from_iterable(r.tolist() for r in mapped))
        if len(mapped) != len(self.routes) or current != proposed:
            return False
        if any(self.planner.schedule(v, r) is None for v, r in enumerate(mapped)):
            return False
        for v, route in enumerate(mapped):
            self.routes[v] = route
        for ride in self.rides.values():
            if ride.dropoff >= 0:
                ride.vehicle = next(v for v, r in enumerate(self.routes) if ride.dropoff in r)
        return True
