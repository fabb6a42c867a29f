"""Door-to-door journeys: walk to stops, RAPTOR, walk from stops; Pareto over arrival and transfers.

On-demand rides and bike-share rentals join in as other ways to the first stop or from the last
one, and as the whole journey. `Router.plan` puts these together; the modules beside this one
find the ways (`access`, `bike_share`), draw the legs (`legs`) and plan around a time (`profiles`).
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import zoneinfo
from typing import Protocol

import msgspec
import numpy as np

from routing.model import Network
from routing.ondemand import OnDemandService, RideEstimator
from routing.plan import profiles
from routing.plan.access import Access, Walking
from routing.plan.bike_share import BikeShare, with_rentals
from routing.plan.legs import Legs
from routing.plan.scratch import Once, PerThread, RouterScratch, StreetGraphs
from routing.plan.wire import Itinerary, Plan, PlanError, PlanRequest
from routing.raptor import UNREACHED, Raptor, ServiceDays
from routing.realtime import RealtimeIndex, RealtimeOverlay
from routing.spatial import haversine_m


class ScheduledRideEstimator(RideEstimator, Protocol):
    """A ride estimator with the service it estimates for, which says when rides run."""

    @property
    def service(self) -> OnDemandService: ...


class Query(msgspec.Struct, frozen=True, kw_only=True):
    """A request resolved on the network: how its endpoints reach stops, and the transit search's options."""

    request: PlanRequest
    origin: Access
    destination: Access
    min_transfer_s: int
    use_footpaths: bool


class Router:
    """Plans journeys on one loaded network; create once and reuse, from as many threads as wanted.

    A Router never changes: `with_realtime` gives another that plans on realtime times (and shares
    this one's street searches), so that swapping realtime data is replacing one reference.
    """

    def __init__(self, network: Network, on_demand: ScheduledRideEstimator | None = None) -> None:
        self.network = network
        self.on_demand = on_demand
        manifest = network.manifest
        self.timezone = zoneinfo.ZoneInfo(manifest.timezone)
        self.walk_speed_mps = manifest.params.walk_speed_mps
        self.raptor = Raptor(network.timetable, manifest.first_date, manifest.timezone)
        graphs = StreetGraphs(network)
        self.walking = Walking(network, graphs)
        self.stop_index = self.walking.stop_index
        self.bike_share = BikeShare(network, graphs)
        self.legs = Legs(network, self.walking)
        self._scratch = PerThread(graphs)
        # A RideEstimator promises no thread safety (DriveTimeEstimator's street searches keep scratch).
        self._rides_lock = threading.Lock()
        self.realtime: RealtimeOverlay | None = None  # the realtime times planned on, None: the timetable's
        self._timetable = (self.raptor, self.legs)
        raptor = self.raptor
        self.realtime_index = Once(lambda: RealtimeIndex(network, raptor))  # applies trip updates to this network

    def with_realtime(self, overlay: RealtimeOverlay | None) -> Router:
        """A router planning on the overlay's times (None: on the timetable's) with everything else shared."""
        if overlay is not None and overlay.base is not self.network.timetable:
            raise ValueError("the realtime overlay was made for another network's timetable")
        router = copy.copy(self)
        router.realtime = overlay
        if overlay is None:
            router.raptor, router.legs = self._timetable
        else:
            router.raptor = overlay.raptor
            router.legs = Legs(
                msgspec.structs.replace(self.network, timetable=overlay.timetable), self.walking, overlay
            )
        return router

    def scratch(self) -> RouterScratch:
        """The calling thread's search state on this router."""
        return self._scratch.get()

    def query(self, request: PlanRequest, scratch: RouterScratch) -> Query:
        """The request's endpoints on the network, and its change time (default 60 s, 0 when walking is off)."""
        use_footpaths = request.max_walk_m > 0
        return Query(
            request=request,
            origin=self.walking.access(request.origin, request.max_walk_m, "origin", scratch),
            destination=self.walking.access(request.destination, request.max_walk_m, "destination", scratch),
            min_transfer_s=request.min_transfer_s
            if request.min_transfer_s is not None
            else (60 if use_footpaths else 0),
            use_footpaths=use_footpaths,
        )

    def plan(self, request: PlanRequest) -> Plan:
        """Itineraries leaving at or after `request.depart`, Pareto-optimal in arrival and transfers."""
        if request.depart.tzinfo is None:
            raise PlanError("the departure time needs a time zone (the CLI assumes the network's)")
        if request.max_transfers < 0 or request.max_walk_m < 0:
            raise PlanError("max_transfers and max_walk_m must not be negative")
        scratch = self.scratch()
        query = self.query(request, scratch)
        origin, destination = query.origin, query.destination
        local = request.depart.astimezone(self.timezone)
        days = self.raptor.service_days(local.date())
        start = int(request.depart.timestamp()) - days.origin_epoch_s
        itineraries = self._transit(query, origin, destination, start, days, scratch)
        itineraries += self._rides(query, local, start, days, scratch)
        walk = self.walking.direct_walk(origin, destination, request.max_walk_m, scratch)
        if walk is not None:
            seconds, metres = walk
            itineraries.append(
                self.legs.direct(
                    origin.place, destination.place, "walk", start, seconds, metres, days.origin_epoch_s, scratch
                )
            )
        if self.bike_share.offered(request, origin, destination):
            rentals = self._rentals(query, start, days, scratch)
            # A rental is offered when nothing else arrives as early with as few changes and as little walking.
            everything = itineraries + rentals
            itineraries += [it for it in rentals if not any(_dominates(o, it) for o in everything)]
        itineraries.sort(key=lambda it: (it.arrival, it.transfers))
        return Plan(itineraries=itineraries)

    def plan_arriving_by(self, request: PlanRequest, deadline: dt.datetime, window_s: int = 3 * 3600) -> Plan:
        """Itineraries arriving by `deadline` that leave as late as possible (at most `window_s` before it)."""
        return profiles.plan_arriving_by(self, request, deadline, window_s)

    def plan_range(self, request: PlanRequest, window_s: int) -> Plan:
        """Every useful itinerary leaving within `window_s` after `request.depart` (a profile)."""
        return profiles.plan_range(self, request, window_s)

    def _transit(
        self, query: Query, origin: Access, destination: Access, start: int, days: ServiceDays, scratch: RouterScratch
    ) -> list[Itinerary]:
        """RAPTOR from the origin's stops; per number of trips, the best arrival at the destination."""
        request = query.request
        result = self.raptor.earliest_arrival(
            origin.stops,
            (start + origin.seconds).astype(np.int32),
            days,
            max_transfers=request.max_transfers,
            min_transfer_s=query.min_transfer_s,
            use_footpaths=query.use_footpaths,
            wheelchair=request.wheelchair,
        )
        itineraries: list[Itinerary] = []
        best = UNREACHED
        labels = result.labels[:, destination.stops].astype(np.int64)
        for k in range(1, labels.shape[0]):
            total = np.where(labels[k] < UNREACHED, labels[k] + destination.seconds, np.iinfo(np.int64).max)
            if not len(total):
                break
            j = int(np.argmin(total))
            if total[j] >= best:
                continue
            target = int(destination.stops[j])
            # A stop both origin and destination reach on foot gives a journey without a trip: the
            # direct walk covers that case.
            journeys = [
                jr for jr in self.raptor.journeys(result, target, days) if jr.arrival == labels[k, j] and jr.trips > 0
            ]
            if not journeys:
                continue
            best = int(total[j])
            itineraries.append(self.legs.itinerary(journeys[0], origin, destination, j, days.origin_epoch_s, scratch))
        return itineraries

    def _rides(
        self, query: Query, local: dt.datetime, start: int, days: ServiceDays, scratch: RouterScratch
    ) -> list[Itinerary]:
        """While the on-demand service runs: rides to the first stop or from the last one, and all the way."""
        rides, origin, destination = self.on_demand, query.origin, query.destination
        if rides is None or not rides.service.runs_at(local):
            return []
        a, b = origin.place, destination.place
        # A ride starts or ends at a door: an endpoint that is a stop is reached by transit only.
        none = (np.zeros(0, np.int32), np.zeros(0, np.int64))
        with self._rides_lock:
            to_stops = rides.rides_to_stops(a.lat, a.lon) if a.stop is None else none
            from_stops = rides.rides_from_stops(b.lat, b.lon) if b.stop is None else none
            ride_s = rides.direct_ride_s((a.lat, a.lon), (b.lat, b.lon)) if a.stop is None and b.stop is None else None
        found: list[Itinerary] = []
        ride_origin, ride_destination = self._with_rides(origin, to_stops), self._with_rides(destination, from_stops)
        if ride_origin is not origin or ride_destination is not destination:
            with_rides = self._transit(query, ride_origin, ride_destination, start, days, scratch)
            found += [it for it in with_rides if any(leg.mode == "on_demand" for leg in it.legs)]
        if ride_s is not None:
            found.append(self.legs.direct(a, b, "on_demand", start, ride_s, None, days.origin_epoch_s, scratch))
        return found

    def _with_rides(self, access: Access, rides: tuple[np.ndarray, np.ndarray]) -> Access:
        stops, seconds = rides
        if not len(stops):
            return access
        tt = self.network.timetable
        metres = haversine_m(access.place.lat, access.place.lon, tt.stop_lat[stops], tt.stop_lon[stops])
        return access.with_rides(stops, seconds, metres)

    def _rentals(self, query: Query, start: int, days: ServiceDays, scratch: RouterScratch) -> list[Itinerary]:
        """Rentals from near the origin to near the destination, and rentals to the first or from the last stop."""
        origin, destination = query.origin, query.destination
        rentals = self.bike_share.rentals(origin, destination, query.request.max_walk_m, scratch)
        found: list[Itinerary] = []
        if rentals.direct is not None:
            found.append(
                self.legs.rental(rentals.direct, origin.place, destination.place, start, days.origin_epoch_s, scratch)
            )
        if rentals.to_stops or rentals.from_stops:
            speed = self.walk_speed_mps
            by_bike = self._transit(
                query,
                with_rentals(origin, rentals.to_stops, speed),
                with_rentals(destination, rentals.from_stops, speed),
                start,
                days,
                scratch,
            )
            found += [it for it in by_bike if any(leg.mode == "bike_share" for leg in it.legs)]
        return found


def _dominates(a: Itinerary, b: Itinerary) -> bool:
    """Whether a arrives no later, changes no more often and walks no further than b, and is better in one."""
    return (
        a.arrival <= b.arrival
        and a.transfers <= b.transfers
        and a.walk_m <= b.walk_m
        and (a.arrival, a.transfers, a.walk_m) != (b.arrival, b.transfers, b.walk_m)
    )
