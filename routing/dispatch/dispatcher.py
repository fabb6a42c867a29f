"""Live vehicle plans: quotes, bookings with promises, stop events, breaks, and re-optimised plans
adopted safely.

The visits live in the slot arrays of `Visits`; driving times between their places come from
`DriveTimes`. This module decides what goes into a plan and keeps each ride's promise and status.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from routing.dispatch.drive_times import UNREACHABLE_S, DriveTimes
from routing.dispatch.insertion import Insertion, Planner, insert_pair
from routing.dispatch.model import (
    Break,
    DispatchError,
    Problem,
    Promise,
    Request,
    RideRules,
    RideStatus,
    Route,
    StopEvent,
    Vehicle,
    Weights,
)
from routing.dispatch.optimize import optimize
from routing.dispatch.search import Search
from routing.dispatch.visits import Visits
from routing.model import StreetArrays

# Re-optimisation: the large neighbourhood search first, OR-Tools' guided local search for the rest.
SEARCH_SHARE = 0.6

# Pickup earliest/latest, drop-off earliest/latest, and the maximum ride time of a request.
_Windows = tuple[float, float, float, float, float]


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
    status: RideStatus


class _Ride(msgspec.Struct, kw_only=True):
    request: Request
    promise: Promise
    vehicle: int
    pickup: int  # slot, -1 once picked up
    dropoff: int  # slot, -1 once dropped off
    status: RideStatus


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
        self.visits = Visits(self.times, vehicles, capacity)
        self._moved: dict[int, tuple[int, float]] = {}  # vehicles whose plan no longer starts at the depot
        self._slot_ride: dict[int, str] = {}  # the ride each pickup or drop-off slot was last given to
        self.routes: list[Route] = [np.zeros(0, dtype=np.int32) for _ in vehicles]
        self.rides: dict[str, _Ride] = {}
        self.breaks: dict[str, tuple[int, int]] = {}  # break id -> (vehicle, slot)
        for v in vehicles:
            for n, rest in enumerate(v.breaks):
                self.add_break(f"{v.id}/break-{n}", v.id, rest)

    @property
    def planner(self) -> Planner:
        """The Planner over every visit (for the benchmark's oracle comparisons, too)."""
        return self.visits.planner

    @property
    def fixed(self) -> npt.NDArray[np.int32]:
        """Per slot, the vehicle the visit must stay on, or -1."""
        return self.visits.fixed

    def problem(self) -> Problem:
        """The live plan as a Problem over every slot (free slots are never visited)."""
        return self.visits.problem()

    # -- quotes and bookings ------------------------------------------------------------------------
    def _windows(self, request: Request, now_s: float) -> _Windows:
        """Pickup earliest/latest, drop-off earliest/latest, and the maximum ride time of a request."""
        direct = self.times.seconds(request.origin_node, request.destination_node)
        if direct >= UNREACHABLE_S:
            raise DispatchError(f"request {request.id}: the destination cannot be reached by road from the origin")
        ride = self.rules.max_ride_s(direct)
        s = self.rules.boarding_s
        early, late = request.earliest_pickup_s, request.latest_arrival_s
        if early is not None and late is not None:
            # Both bounds are the rider's (after the train arrives, in time for the next): the
            # pickup may lie anywhere between them.
            pick_lo = max(early, now_s)
            drop_hi = float(late)
            pick_hi = drop_hi - s - direct
            if pick_hi < pick_lo:
                raise DispatchError(f"request {request.id}: the drive takes longer than the time between its bounds")
        elif early is not None:
            pick_lo = max(early, now_s)
            pick_hi = early + self.search_window_s
            drop_hi = pick_hi + s + ride
        elif late is not None:
            drop_hi = float(late)
            pick_lo = max(now_s, drop_hi - s - ride - self.search_window_s)
            pick_hi = drop_hi - s - direct
        else:  # Request refuses this when it is made
            raise DispatchError(f"request {request.id}: give an earliest pickup, a latest arrival or both")
        if pick_hi < pick_lo:
            raise DispatchError(f"request {request.id}: its time lies in the past")
        return pick_lo, pick_hi, pick_lo + s + direct, drop_hi, ride

    def _place_request(self, request: Request, windows: _Windows) -> tuple[int, int]:
        pick_lo, pick_hi, drop_lo, drop_hi, ride = windows
        boarding, demand = self.rules.boarding_s, request.passengers.demand()
        visits = self.visits
        p = visits.add(self.times.place(request.origin_node), boarding, pick_lo, pick_hi, demand)
        d = visits.add(self.times.place(request.destination_node), boarding, drop_lo, drop_hi, [-x for x in demand])
        visits.partner[p], visits.partner[d] = d, p
        visits.max_ride[p] = ride
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
            self.visits.release(p)
            self.visits.release(d)

    def _offers(self, request: Request, windows: _Windows, count: int) -> list[Offer]:
        """Up to `count` offers (the cheapest by the objective, one per vehicle), the closest to what was
        asked first: the soonest pickup, or for a ride that should arrive late, the latest drop-off."""
        if self._late(request):
            return self._latest_offers(request, windows, count)
        found = [self._offer(request, option, windows) for option in self._options(request, windows, count)]
        return sorted(found, key=lambda o: (o.pickup_estimate_s, o.added_drive_s))

    @staticmethod
    def _late(request: Request) -> bool:
        return request.latest_arrival_s is not None and (request.earliest_pickup_s is None or request.prefer_late)

    def _options(
        self, request: Request, windows: _Windows, count: int, weights: Weights | None = None
    ) -> list[Insertion]:
        p, d = self._place_request(request, windows)
        try:
            return self.planner.pair_options(self.routes, p, d, count, weights or self.rules.objective)
        finally:
            self.visits.release(p)
            self.visits.release(d)

    def _latest_offers(self, request: Request, windows: _Windows, count: int) -> list[Offer]:
        """Offers arriving as late as the latest arrival allows: pickups are searched one window at a
        time backwards from the latest possible one, and each found is moved as late as its plan lets
        it (at most one window before the latest, so that its promised window fits before it)."""
        pick_lo, pick_hi, drop_lo, drop_hi, ride = windows
        width = self.rules.pickup_window_s
        direct_and_boarding = drop_lo - pick_lo
        top = max(pick_lo, pick_hi - width)
        # Waiting is not what an arrive-by rider minds (arriving early is, and the search moves later).
        weights = msgspec.structs.replace(self.rules.objective, wait=0.0)
        lo = top
        while True:
            sliced = (lo, pick_hi, lo + direct_and_boarding, drop_hi, ride)
            p, d = self._place_request(request, sliced)
            try:
                found = self.planner.pair_options(self.routes, p, d, count, weights)
                if found:
                    offers = [self._offer(request, self._as_late_as(option, p, d, top), windows) for option in found]
                    return sorted(offers, key=lambda o: (-o.dropoff_estimate_s, o.added_drive_s))
            finally:
                self.visits.release(p)
                self.visits.release(d)
            if lo <= pick_lo:
                return []
            lo = max(pick_lo, lo - width)

    def _as_late_as(self, option: Insertion, p: int, d: int, latest_s: float) -> Insertion:
        """The insertion with its pickup started as late as its route allows, up to `latest_s` (to one
        second: raising the pickup's earliest start can only make the route infeasible, never again
        feasible)."""
        route = insert_pair(self.routes[option.vehicle], p, d, option.i, option.j)
        earliest = self.visits.earliest
        saved = float(earliest[p])
        low, high = option.pickup_s, latest_s
        try:
            earliest[p] = high
            if self.planner.schedule(option.vehicle, route) is None:
                while high - low > 1.0:
                    middle = (low + high) / 2
                    earliest[p] = middle
                    if self.planner.schedule(option.vehicle, route) is None:
                        high = middle
                    else:
                        low = middle
                earliest[p] = low
            times = self.planner.schedule(option.vehicle, route)
            assert times is not None, "a pickup moved later than its route allows"
        finally:
            earliest[p] = saved
        return msgspec.structs.replace(
            option, pickup_s=float(times[option.i + 1]), dropoff_s=float(times[option.j + 2])
        )

    def _offer(self, request: Request, option: Insertion, windows: _Windows) -> Offer:
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
        starts = self.visits.vehicle_start
        saved = self.visits.earliest[starts].copy()
        self.visits.earliest[starts] = np.maximum(saved, now_s)
        try:
            yield
        finally:
            self.visits.earliest[starts] = saved

    def quote(self, request: Request, now_s: float, count: int = 3) -> Quote:
        """Feasible offers, the closest to the asked time first (`_offers`); when none fits, the nearest
        feasible earlier and later times."""
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
        placed = self._insert_preferring(self._vehicle(offer.vehicle_id), p, d)
        if placed is None:
            self.visits.release(p)
            self.visits.release(d)
            raise DispatchError(f"request {request.id}: the offer no longer fits any vehicle's plan")
        v = placed
        self.rides[request.id] = _Ride(
            request=request, promise=promise, vehicle=v, pickup=p, dropoff=d, status="confirmed"
        )
        return self.booking(request.id)

    def _insert_preferring(self, v: int, p: int, d: int) -> int | None:
        """Insert the pickup p and drop-off d at their cheapest feasible place on vehicle v, else on
        any vehicle; the vehicle used, or None (nothing changed) when none can take them."""
        weights = self.rules.objective
        cost, i, j = self.planner.best_pair_insertion(v, self.routes[v], p, d, weights)
        if not math.isfinite(cost):
            found = self.planner.pair_options(self.routes, p, d, 1, weights)
            if not found:
                return None
            v, i, j = found[0].vehicle, found[0].i, found[0].j
        self.routes[v] = insert_pair(self.routes[v], p, d, i, j)
        return v

    def restore(self, request: Request, promise: Promise, vehicle_id: str, status: RideStatus) -> None:
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
            self.visits.initial_load[v] += self.visits.demand[p]
            self.visits.partner[d] = -1
            self.visits.fixed[d] = v
            self.visits.release(p)
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
                    self.visits.release(slot)
        rests = {slot for u, slot in self.breaks.values() if u == v}
        self.routes[v] = np.array([x for x in self.routes[v].tolist() if x in rests], dtype=np.int32)
        self.visits.initial_load[v] = 0

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
        node = self.vehicles[v].depot_node if rest.node is None else rest.node
        slot = self.visits.add(self.times.place(node), rest.duration_s, rest.earliest_s, rest.latest_s, fixed=v)
        route = self.routes[v]
        best, best_cost = None, math.inf
        for i in range(len(route) + 1):
            trial = np.concatenate((route[:i], [slot], route[i:])).astype(np.int32)
            cost = self.planner.route_cost(v, trial)
            if cost < best_cost and self.planner.schedule(v, trial) is not None:
                best, best_cost = trial, cost
        if best is None:
            self.visits.release(slot)
            raise DispatchError(f"vehicle {vehicle_id}: the break does not fit its plan")
        self.routes[v] = best
        self.breaks[break_id] = (v, slot)

    def end_break(self, break_id: str, at_s: float) -> None:
        """The driver is back from the break: the vehicle is free where it rested from `at_s` on."""
        if break_id not in self.breaks:
            raise DispatchError(f"no break {break_id}")
        v, slot = self.breaks.pop(break_id)
        node = self.times.nodes[int(self.visits.location[slot])]
        self.routes[v] = self.routes[v][self.routes[v] != slot]
        self.visits.release(slot)
        self.vehicle_at(self.vehicles[v].id, node, at_s)

    # -- stop events and cancellations --------------------------------------------------------------
    def _drop_visits(self, ride: _Ride, *slots: int) -> None:
        route = self.routes[ride.vehicle]
        self.routes[ride.vehicle] = route[~np.isin(route, [s for s in slots if s >= 0])]
        for slot in slots:
            if slot >= 0:
                self.visits.release(slot)

    def withdraw(self, request_id: str) -> None:
        """Take back a ride booked on this copy that was never confirmed to anyone (a trial, or one leg
        of a journey whose other leg did not fit): as if it had never been booked."""
        ride = self._ride(request_id)
        if ride.status != "confirmed":
            raise DispatchError(f"booking {request_id} is {ride.status}: only a ride waiting for pickup is withdrawn")
        self._drop_visits(ride, ride.pickup, ride.dropoff)
        del self.rides[request_id]

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

    def wait_for(self, request_id: str, promise: Promise, now_s: float | None = None) -> Booking:
        """Give a confirmed ride a later promise (its rider's train is late): the ride moves, on its
        vehicle or another, only if every other rider's promise still holds (leaving no start before
        `now_s`); DispatchError, nothing changed, otherwise."""
        with self._leaving_after(now_s):
            return self._wait_for(request_id, promise)

    def _wait_for(self, request_id: str, promise: Promise) -> Booking:
        ride = self._ride(request_id)
        if ride.status != "confirmed":
            raise DispatchError(f"booking {request_id} is {ride.status}: only a ride waiting for pickup moves")
        if promise.pickup_latest_s < promise.pickup_earliest_s:
            raise DispatchError(f"booking {request_id}: the new pickup window closes before it opens")
        visits, p, d = self.visits, ride.pickup, ride.dropoff
        saved_windows = (visits.earliest[p], visits.latest[p], visits.earliest[d], visits.latest[d])
        saved_routes = [r.copy() for r in self.routes]
        direct = self.times.seconds(ride.request.origin_node, ride.request.destination_node)
        visits.earliest[p], visits.latest[p] = promise.pickup_earliest_s, promise.pickup_latest_s
        visits.earliest[d] = promise.pickup_earliest_s + self.rules.boarding_s + direct
        visits.latest[d] = promise.dropoff_latest_s
        v = ride.vehicle
        self.routes[v] = self.routes[v][(self.routes[v] != p) & (self.routes[v] != d)]
        # Its own vehicle first (the driver knows the rider), then any other.
        placed = self._insert_preferring(v, p, d)
        if placed is None:
            visits.earliest[p], visits.latest[p], visits.earliest[d], visits.latest[d] = saved_windows
            self.routes = saved_routes
            raise DispatchError(f"booking {request_id}: no vehicle can wait so long and keep every other promise")
        ride.vehicle, ride.promise = placed, promise
        return self.booking(request_id)

    def vehicle_at(self, vehicle_id: str, node: int, at_s: float) -> None:
        """The vehicle is free at `node` from `at_s` on: its plan starts there."""
        v = self._vehicle(vehicle_id)
        start = int(self.visits.vehicle_start[v])
        self.visits.location[start] = self.times.place(node)
        self.visits.earliest[start] = max(at_s, self.visits.earliest[start])
        self._moved[v] = (node, float(self.visits.earliest[start]))

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
            node = self.times.nodes[int(self.visits.location[ride.pickup])]
            if event is StopEvent.NO_SHOW:
                self._drop_visits(ride, ride.pickup, ride.dropoff)
                ride.pickup = ride.dropoff = -1
                ride.status = "no_show"
                self.vehicle_at(vehicle_id, node, at_s)
                return self.booking(request_id)
            d = ride.dropoff
            s = self.visits.service[ride.pickup]
            self.visits.initial_load[ride.vehicle] += self.visits.demand[ride.pickup]
            self.visits.max_ride[d] = math.inf
            self.visits.latest[d] = min(ride.promise.dropoff_latest_s, at_s + s + self.visits.max_ride[ride.pickup])
            # Picked up before the window opened: the drop-off may come as early as the drive allows.
            self.visits.earliest[d] = at_s + s
            self.visits.partner[d] = -1
            self.visits.fixed[d] = ride.vehicle  # a rider on board never changes vehicle
            self._drop_visits(ride, ride.pickup)
            ride.pickup = -1
            ride.status = "picked_up"
            self.vehicle_at(vehicle_id, node, at_s + s)
            return self.booking(request_id)
        if event is StopEvent.DROPPED_OFF:
            if ride.status != "picked_up":
                raise DispatchError(f"booking {request_id} is {ride.status}, nobody to drop off")
            node = self.times.nodes[int(self.visits.location[ride.dropoff])]
            s = self.visits.service[ride.dropoff]
            self.visits.initial_load[ride.vehicle] += self.visits.demand[ride.dropoff]
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
        owner = self._owners()
        return [(*owner[int(slot)], float(t)) for slot, t in zip(self.routes[v].tolist(), times[1:-1], strict=True)]

    def visits_of(self, vehicle_id: str) -> list[tuple[str, str, int, float, float]]:
        """The vehicle's next stops in plan order as (request or break id, 'pickup' | 'dropoff' | 'break',
        drive-graph node, earliest start, service seconds): what a new estimate of their times needs."""
        v = self._vehicle(vehicle_id)
        owner = self._owners()
        visits = self.visits
        return [
            (
                *owner[slot],
                self.times.nodes[int(visits.location[slot])],
                float(visits.earliest[slot]),
                float(visits.service[slot]),
            )
            for slot in self.routes[v].tolist()
        ]

    def _owners(self) -> dict[int, tuple[str, str]]:
        """Per slot in use, its (request or break id, kind)."""
        owner = {slot: (bid, "break") for bid, (_, slot) in self.breaks.items()}
        for rid, ride in self.rides.items():
            if ride.pickup >= 0:
                owner[ride.pickup] = (rid, "pickup")
            if ride.dropoff >= 0:
                owner[ride.dropoff] = (rid, "dropoff")
        return owner

    def snapshot(self) -> tuple[Problem, list[Route], Route]:
        """A compact Problem of the visits in use (for the optimiser), its routes, and each compact
        node's slot. Riders on board appear as requests without pickup, fixed to their vehicle."""
        # Breaks travel as riders on board without load: one visit fixed to its vehicle.
        requests = [
            (r.pickup, r.dropoff, r.vehicle if r.pickup < 0 else -1) for r in self.rides.values() if r.dropoff >= 0
        ]
        requests += [(-1, slot, v) for v, slot in self.breaks.values()]
        return self.visits.snapshot(requests, self.routes)

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

    def adopt(self, routes: Sequence[Route], slots: Route) -> bool:
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
