"""Door-to-door journeys: walk to stops, RAPTOR, walk from stops; Pareto over arrival and transfers.

Bike share follows OpenTripPlanner's station-based rental: walk to a station of a bicycle system
that has a bike, unlock it, ride on the bike street graph to another station of the same system
that has a free dock, dock it, walk on. Only counts the feed reports are trusted: a station
with an unknown number of bikes (-1) is never a pickup, one with an unknown number of free docks
never a return (GBFS lets a virtual station leave docks out, but the network cannot tell that
from a count that is simply unknown, and a rider sent to a full station is stuck with the bike).
A rental may be the whole journey, or lead to the first stop or from the last one. A bike-share
leg lasts from unlocking to docking minus those two overheads: the rider stands at the station
for BIKE_RENT_S before it and for BIKE_RETURN_S after it, as one waits at a stop.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Callable
from typing import Literal

import msgspec
import numpy as np

from routing.model import Network
from routing.ondemand import RideEstimator
from routing.raptor import UNREACHED, FootpathLeg, Raptor, ServiceDays, StopJourney, TransitLeg, footpath
from routing.spatial import EdgeSnapper, haversine_m
from routing.streets import StreetRouter, path_points, reversed_graph, tree_path

Mode = Literal["walk", "transit", "bike_share", "on_demand"]

# GBFS form factors ridden on the bike street graph; a system that lists no vehicle types is not
# taken for bicycles (the car-sharing feed of the sample region lists none).
BIKE_FORM_FACTORS = frozenset({"bicycle", "cargo_bicycle"})
# Time to take a bike from a station and to dock it again (OpenTripPlanner's defaults are 60 s too).
BIKE_RENT_S = 60
BIKE_RETURN_S = 60
# Longest bike ride searched; beyond it a rental is not offered.
MAX_BIKE_RIDE_S = 3600


class PlanError(Exception):
    """A request that cannot be planned as asked; the message says what to change."""


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A stop (namespaced GTFS id) or a coordinate."""

    stop: str | None = None
    lat: float | None = None
    lon: float | None = None

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """`stop:<feed>:<stop_id>` or `lat,lon`."""
        if text.startswith("stop:"):
            return cls(stop=text[5:])
        parts = text.split(",")
        try:
            lat, lon = (float(p) for p in parts)
        except ValueError:
            raise PlanError(f"{text!r}: give 'lat,lon' (e.g. 48.5935,8.8630) or 'stop:<feed>:<stop_id>'") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise PlanError(f"{text!r}: latitude must be within -90..90 and longitude within -180..180")
        return cls(lat=lat, lon=lon)


class PlanRequest(msgspec.Struct, frozen=True, kw_only=True):
    origin: Endpoint
    destination: Endpoint
    depart: dt.datetime  # aware
    max_walk_m: float = 1000.0
    min_transfer_s: int | None = None  # default: 60 s, or 0 when walking is off (the pure timetable answer)
    max_transfers: int = 6
    wheelchair: bool = False
    bike_share: bool = True  # offer rentals from bike-share stations (needs GBFS and a bike street graph)


class Place(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    lat: float
    lon: float
    stop: str | None = None
    station: str | None = None  # a sharing station, `<system_id>:<station_id>`


class Leg(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    mode: Mode
    from_: Place
    to: Place
    departure: dt.datetime
    arrival: dt.datetime
    route: str | None
    route_name: str | None
    trip: str | None
    distance_m: float  # walked or cycled along the streets, straight line for on-demand rides, 0 for transit
    geometry: str
    system: str | None = None  # the GBFS system of a bike-share leg


class Itinerary(msgspec.Struct, frozen=True, kw_only=True):
    departure: dt.datetime
    arrival: dt.datetime
    transfers: int
    walk_m: float
    legs: list[Leg]


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    itineraries: list[Itinerary]


def encode_polyline(lat: np.ndarray, lon: np.ndarray) -> str:
    """Google's encoded polyline (precision 5) of a sequence of points."""
    out: list[str] = []
    prev = (0, 0)
    for point in zip(
        np.round(np.asarray(lat) * 1e5).astype(np.int64), np.round(np.asarray(lon) * 1e5).astype(np.int64), strict=True
    ):
        for value, before in zip(point, prev, strict=True):
            delta = int(value - before)
            delta = ~(delta << 1) if delta < 0 else delta << 1
            while delta >= 0x20:
                out.append(chr((0x20 | (delta & 0x1F)) + 63))
                delta >>= 5
            out.append(chr(delta + 63))
        prev = point
    return "".join(out)


WALK, ON_DEMAND, BIKE_SHARE = 0, 1, 2


class _Rental(msgspec.Struct, frozen=True, kw_only=True):
    """Walk to a pickup station, ride to a return station of the same system, walk on."""

    pickup: int  # station index
    dropoff: int
    walk_before_m: float
    ride_s: int  # riding only, without unlocking and docking
    walk_after_m: float

    def seconds(self, walk_speed_mps: float) -> int:
        walk_s = math.ceil(self.walk_before_m / walk_speed_mps) + math.ceil(self.walk_after_m / walk_speed_mps)
        return walk_s + BIKE_RENT_S + self.ride_s + BIKE_RETURN_S


class _Access(msgspec.Struct, frozen=True, kw_only=True):
    """How an endpoint connects to stops: seconds and metres per stop, by walking, an on-demand ride or a rental."""

    stops: np.ndarray  # int32
    seconds: np.ndarray  # int64
    metres: np.ndarray  # float64: walked, or straight line for a ride
    mode: np.ndarray  # int8: WALK, ON_DEMAND or BIKE_SHARE
    place: Place
    walk_reach: np.ndarray | None = None  # metres walked to every walk-graph node (inf beyond reach); coordinates only
    rentals: dict[int, _Rental] = {}  # by stop, for BIKE_SHARE

    def with_rides(
        self,
        stops: np.ndarray,
        seconds: np.ndarray,
        metres: np.ndarray,
        mode: int = ON_DEMAND,
        rentals: dict[int, _Rental] | None = None,
    ) -> _Access:
        """Each stop by whichever is faster: the walk already known, or the given rides (or rentals)."""
        best: dict[int, tuple[int, float, int]] = {
            int(s): (int(t), float(m), int(k))
            for s, t, m, k in zip(self.stops, self.seconds, self.metres, self.mode, strict=True)
        }
        for s, t, m in zip(stops.tolist(), seconds.tolist(), metres.tolist(), strict=True):
            if s not in best or t < best[s][0]:
                best[s] = (t, m, mode)
        keys = sorted(best)
        kept = {k: v for k, v in {**self.rentals, **(rentals or {})}.items() if k in best and best[k][2] == BIKE_SHARE}
        return _Access(
            stops=np.array(keys, dtype=np.int32),
            seconds=np.array([best[k][0] for k in keys], dtype=np.int64),
            metres=np.array([best[k][1] for k in keys]),
            mode=np.array([best[k][2] for k in keys], dtype=np.int8),
            place=self.place,
            walk_reach=self.walk_reach,
            rentals=kept,
        )


class Router:
    """Plans journeys on one loaded network; create once and reuse (it keeps search state)."""

    def __init__(self, network: Network, on_demand: RideEstimator | None = None) -> None:
        self.network = network
        self.on_demand = on_demand
        manifest = network.manifest
        self.timezone = zoneinfo.ZoneInfo(manifest.timezone)
        self.walk_speed_mps = manifest.params.walk_speed_mps
        self.raptor = Raptor(network.timetable, manifest.first_date, manifest.timezone)
        self.stop_index = {str(s): i for i, s in enumerate(network.timetable.stop_id)}
        self._walk = network.streets.get("walk")
        self._walk_router = StreetRouter(self._walk, "length_m") if self._walk is not None else None
        self._snapper: EdgeSnapper | None = None
        self.bike_speed_mps = manifest.params.bike_speed_mps
        self._bike = network.streets.get("bike")
        self._bike_routers: dict[bool, StreetRouter] = {}  # by "backward"
        sharing = network.sharing
        bike_system = np.array(
            [bool(BIKE_FORM_FACTORS & set(str(f).split(","))) for f in sharing.system_form_factors],
            dtype=np.bool_,
        )
        station_system = np.asarray(sharing.station_system, dtype=np.int64)
        usable = (
            bike_system[station_system]
            & (np.asarray(sharing.station_walk_node) >= 0)
            & (np.asarray(sharing.station_bike_node) >= 0)
        )
        self._pickup_stations = np.flatnonzero(
            usable & np.asarray(sharing.station_renting) & (np.asarray(sharing.station_vehicles) > 0)
        )
        self._return_stations = np.flatnonzero(
            usable & np.asarray(sharing.station_returning) & (np.asarray(sharing.station_docks) > 0)
        )
        self._station_stops: dict[tuple[int, float], tuple[np.ndarray, np.ndarray]] = {}

    # -- endpoints ----------------------------------------------------------------------------

    def _stop_place(self, stop: int) -> Place:
        tt = self.network.timetable
        return Place(
            name=str(tt.stop_name[stop]),
            lat=float(tt.stop_lat[stop]),
            lon=float(tt.stop_lon[stop]),
            stop=str(tt.stop_id[stop]),
        )

    def _access(self, end: Endpoint, max_walk_m: float, label: str) -> _Access:
        """Stops reachable on foot from an endpoint, with the walking distance to each."""
        if end.stop is not None:
            if end.stop not in self.stop_index:
                raise PlanError(f"{label}: no stop {end.stop!r} in this network (ids look like <feed>:<stop_id>)")
            s = self.stop_index[end.stop]
            return _Access(
                stops=np.array([s], np.int32),
                seconds=np.zeros(1, np.int64),
                metres=np.zeros(1),
                mode=np.zeros(1, np.int8),
                place=self._stop_place(s),
            )
        assert end.lat is not None and end.lon is not None
        place = Place(name=f"{end.lat:.5f},{end.lon:.5f}", lat=end.lat, lon=end.lon)
        tt = self.network.timetable
        # Stops off the street graph (beyond the OSM extract, or a network without one) are
        # reached along a straight line times the build's detour factor.
        detour = self.network.manifest.params.straight_line_detour
        walk = haversine_m(end.lat, end.lon, tt.stop_lat, tt.stop_lon) * detour
        walk[~np.isfinite(walk)] = np.inf
        snap = self.network.snaps.get("walk")
        node = np.array([-1])
        reached: np.ndarray | None = None
        if snap is not None and self._walk is not None and self._walk_router is not None:
            if self._snapper is None:
                self._snapper = EdgeSnapper(self._walk)
            stop_nodes = np.asarray(snap.node)
            on_streets = stop_nodes >= 0
            walk[on_streets] = np.inf
            node, snap_m = self._snapper.snap(np.array([end.lat]), np.array([end.lon]), max(max_walk_m, 300.0))
            if node[0] >= 0:
                nodes, costs = self._walk_router.search(node, snap_m, max_walk_m)
                reached = np.full(self._walk.n_nodes, np.inf)
                reached[nodes] = costs
                walk[on_streets] = reached[stop_nodes[on_streets]] + np.asarray(snap.distance_m)[on_streets]
        stops = np.flatnonzero(walk <= max_walk_m).astype(np.int32)
        if not len(stops) and (snap is None or node[0] < 0):
            raise PlanError(
                f"{label}: {end.lat},{end.lon} is outside this network (no street and no stop within {max_walk_m:.0f} m)"
            )
        return _Access(
            stops=stops,
            seconds=np.ceil(walk[stops] / self.walk_speed_mps).astype(np.int64),
            metres=walk[stops],
            mode=np.zeros(len(stops), np.int8),
            place=place,
            walk_reach=reached,
        )

    # -- planning -----------------------------------------------------------------------------

    def plan(self, request: PlanRequest) -> Plan:
        """Itineraries leaving at or after `request.depart`, Pareto-optimal in arrival and transfers."""
        if request.depart.tzinfo is None:
            raise PlanError("the departure time needs a time zone (the CLI assumes the network's)")
        if request.max_transfers < 0 or request.max_walk_m < 0:
            raise PlanError("max_transfers and max_walk_m must not be negative")
        use_footpaths = request.max_walk_m > 0
        min_transfer = request.min_transfer_s if request.min_transfer_s is not None else (60 if use_footpaths else 0)
        origin = self._access(request.origin, request.max_walk_m, "origin")
        destination = self._access(request.destination, request.max_walk_m, "destination")
        local = request.depart.astimezone(self.timezone)
        days = self.raptor.service_days(local.date())
        start = int(request.depart.timestamp()) - days.origin_epoch_s
        search = {
            "start": start,
            "days": days,
            "request": request,
            "min_transfer": min_transfer,
            "use_footpaths": use_footpaths,
        }
        itineraries = self._transit(origin, destination, **search)
        rides = self.on_demand if self.on_demand is not None and self.on_demand.service.runs_at(local) else None
        if rides is not None and origin.place.stop is None and destination.place.stop is None:
            ride_origin = self._with_rides(origin, rides.rides_to_stops)
            ride_destination = self._with_rides(destination, rides.rides_from_stops)
            if ride_origin is not origin or ride_destination is not destination:
                with_rides = self._transit(ride_origin, ride_destination, **search)
                itineraries += [it for it in with_rides if any(leg.mode == "on_demand" for leg in it.legs)]
            ride_s = rides.direct_ride_s(
                (origin.place.lat, origin.place.lon), (destination.place.lat, destination.place.lon)
            )
            if ride_s is not None:
                itineraries.append(
                    self._direct(origin.place, destination.place, "on_demand", start, ride_s, None, days.origin_epoch_s)
                )
        direct = self._direct_walk(origin, destination, request, start, days.origin_epoch_s)
        if direct is not None:
            itineraries.append(direct)
        if self._offers_bike_share(request, origin, destination):
            rentals = self._bike_share(origin, destination, **search)
            # A rental is offered when nothing else arrives as early with as few changes and as little walking.
            everything = itineraries + rentals
            itineraries += [it for it in rentals if not any(_dominates(o, it) for o in everything)]
        itineraries.sort(key=lambda it: (it.arrival, it.transfers))
        return Plan(itineraries=itineraries)

    def plan_arriving_by(self, request: PlanRequest, deadline: dt.datetime, window_s: int = 3 * 3600) -> Plan:
        """Itineraries arriving by `deadline` that leave as late as possible (at most `window_s` before it):
        the itineraries `plan` gives for that latest departure, those of them arriving in time.

        The earliest arrival never decreases when one leaves later (trips do not overtake, waiting is
        allowed), so one latest departure exists. A backward RAPTOR from the destination's stops
        gives it for walking to and from transit; forward plans from there confirm it and move it
        later while another way (a walk, a rental, a ride) leaves later still.
        """
        if deadline.tzinfo is None:
            raise PlanError("the arrival time needs a time zone (the CLI assumes the network's)")
        if window_s <= 0:
            raise PlanError("the search window must be positive")
        earliest = int(deadline.timestamp()) - window_s
        transit = self._latest_transit_departure(request, deadline)
        leave = earliest if transit is None or transit < earliest else transit
        found = self._in_time(request, deadline, leave)
        if not found:
            if leave == earliest:
                return Plan(itineraries=[])
            # The forward plan missed what the backward search found (it shows no transit journey
            # that a walk between stops beats): find the latest departure the slow way.
            return self._arriving_by_bisection(request, deadline, earliest, leave - 1)
        while True:
            later = self._in_time(request, deadline, leave + 1)
            if not later:
                return Plan(itineraries=found)
            # Something leaving later arrives in time too. A journey with a trip cannot leave later
            # than it does; one without a trip (walk, rental, ride) may leave as late as it arrives early.
            candidate = max(
                int(it.departure.timestamp())
                if any(leg.mode == "transit" for leg in it.legs)
                else int(deadline.timestamp()) - int((it.arrival - it.departure).total_seconds())
                for it in later
            )
            at_candidate = self._in_time(request, deadline, candidate) if candidate > leave + 1 else later
            # Nothing there only for a way that depends on the hour (on-demand service times).
            leave, found = (candidate, at_candidate) if at_candidate else (leave + 1, later)

    def _latest_transit_departure(self, request: PlanRequest, deadline: dt.datetime) -> int | None:
        """Epoch seconds of the latest departure walking to transit that arrives by `deadline`, from a
        backward search over the deadline's service days; None if there is none."""
        use_footpaths = request.max_walk_m > 0
        min_transfer = request.min_transfer_s if request.min_transfer_s is not None else (60 if use_footpaths else 0)
        origin = self._access(request.origin, request.max_walk_m, "origin")
        destination = self._access(request.destination, request.max_walk_m, "destination")
        days = self.raptor.service_days(deadline.astimezone(self.timezone).date())
        by = int(deadline.timestamp()) - days.origin_epoch_s
        result = self.raptor.latest_departure(
            destination.stops,
            (by - destination.seconds).astype(np.int32),
            days,
            max_transfers=request.max_transfers,
            min_transfer_s=min_transfer,
            use_footpaths=use_footpaths,
            wheelchair=request.wheelchair,
        )
        leave = self.raptor.latest_leave(result, origin.stops, origin.seconds)
        return None if leave is None else leave + days.origin_epoch_s

    def _in_time(self, request: PlanRequest, deadline: dt.datetime, leave: int) -> list[Itinerary]:
        """The itineraries of a forward plan leaving at epoch second `leave` that arrive by `deadline`."""
        depart = dt.datetime.fromtimestamp(leave, self.timezone)
        return [
            it
            for it in self.plan(msgspec.structs.replace(request, depart=depart)).itineraries
            if it.arrival <= deadline
        ]

    def _arriving_by_bisection(self, request: PlanRequest, deadline: dt.datetime, lo: int, hi: int) -> Plan:
        """The latest departure in [lo, hi] (epoch seconds) that arrives in time, by bisection of forward plans."""
        found = self._in_time(request, deadline, lo)
        if not found:
            return Plan(itineraries=[])
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if later := self._in_time(request, deadline, mid):
                lo, found = mid, later
            else:
                hi = mid - 1
        return Plan(itineraries=found)

    def plan_range(self, request: PlanRequest, window_s: int) -> Plan:
        """Every useful itinerary leaving within `window_s` after `request.depart`: none of them leaves
        earlier, arrives later and changes more often than another (a profile, as range RAPTOR gives)."""
        if window_s <= 0:
            raise PlanError("the search window must be positive")
        origin = self._access(request.origin, request.max_walk_m, "origin")
        local = request.depart.astimezone(self.timezone)
        days = self.raptor.service_days(local.date())
        start = int(request.depart.timestamp()) - days.origin_epoch_s
        # Only leaving just in time for some departure from a reachable stop can change the answer.
        candidates = {start}
        for stop, access_s in zip(origin.stops.tolist(), origin.seconds.tolist(), strict=True):
            for dep in self.raptor.departures(stop, days).tolist():
                leave = dep - access_s
                if start <= leave <= start + window_s:
                    candidates.add(leave)
        found: dict[tuple, Itinerary] = {}
        for leave in sorted(candidates):
            depart = dt.datetime.fromtimestamp(days.origin_epoch_s + leave, self.timezone)
            for it in self.plan(msgspec.structs.replace(request, depart=depart)).itineraries:
                if it.departure > request.depart + dt.timedelta(seconds=window_s):
                    continue
                key = (it.departure, it.arrival, it.transfers, tuple(leg.trip for leg in it.legs))
                found.setdefault(key, it)
        # Of journeys arriving at the same time with as many changes, the one walking least is kept
        # (leaving a little later by walking further to a later stop of the same bus is no gain).
        by_arrival: dict[tuple, Itinerary] = {}
        for it in found.values():
            key = (it.arrival, it.transfers)
            if key not in by_arrival or (it.walk_m, -it.departure.timestamp()) < (
                by_arrival[key].walk_m,
                -by_arrival[key].departure.timestamp(),
            ):
                by_arrival[key] = it
        candidates_ = list(by_arrival.values())
        kept = [
            it
            for it in candidates_
            if not any(
                o is not it
                and o.departure >= it.departure
                and o.arrival <= it.arrival
                and o.transfers <= it.transfers
                and (o.departure, o.arrival, o.transfers) != (it.departure, it.arrival, it.transfers)
                for o in candidates_
            )
        ]
        kept.sort(key=lambda it: (it.departure, it.arrival, it.transfers))
        return Plan(itineraries=kept)

    # -- bike share ---------------------------------------------------------------------------

    def _offers_bike_share(self, request: PlanRequest, origin: _Access, destination: _Access) -> bool:
        return (
            request.bike_share
            and not request.wheelchair
            and request.max_walk_m > 0
            and len(self._pickup_stations) > 0
            and len(self._return_stations) > 0
            and self._bike is not None
            and origin.walk_reach is not None
            and destination.walk_reach is not None
        )

    def _bike_router(self, backward: bool) -> StreetRouter:
        """Searches by riding time on the bike graph; backward ones find the ways *to* a node."""
        if backward not in self._bike_routers:
            assert self._bike is not None
            graph = reversed_graph(self._bike) if backward else self._bike
            self._bike_routers[backward] = StreetRouter(graph, "travel_time_s")
        return self._bike_routers[backward]

    def _stations_near(
        self, walk_reach: np.ndarray, stations: np.ndarray, max_walk_m: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Those of `stations` within `max_walk_m` of a walk search's origin, with the metres walked."""
        sharing = self.network.sharing
        metres = (
            walk_reach[np.asarray(sharing.station_walk_node)[stations]] + np.asarray(sharing.station_walk_m)[stations]
        )
        near = metres <= max_walk_m
        return stations[near], metres[near]

    def _rides(self, station: int, backward: bool) -> tuple[np.ndarray, np.ndarray]:
        """Riding seconds from a pickup station to every return station of its system within MAX_BIKE_RIDE_S
        (backward: to a return station from every pickup station)."""
        sharing = self.network.sharing
        bike_node = np.asarray(sharing.station_bike_node)
        # Between a station and its street node the bike is ridden (or pushed) at the graph's bike speed.
        to_street_s = np.asarray(sharing.station_bike_m, dtype=np.float64) / self.bike_speed_mps
        router = self._bike_router(backward)
        nodes, costs = router.search(
            bike_node[station : station + 1], to_street_s[station : station + 1], MAX_BIKE_RIDE_S
        )
        reach = np.full(router.graph.n_nodes, np.inf)
        reach[nodes] = costs
        others = self._pickup_stations if backward else self._return_stations
        system = np.asarray(sharing.station_system)
        others = others[(system[others] == system[station]) & (others != station)]
        seconds = reach[bike_node[others]] + to_street_s[others]
        ok = seconds <= MAX_BIKE_RIDE_S
        return others[ok], np.ceil(seconds[ok]).astype(np.int64)

    def _stops_near_station(self, station: int, max_walk_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Stops on the walk graph within `max_walk_m` of a station, with the metres walked (kept per router)."""
        key = (station, max_walk_m)
        if key not in self._station_stops:
            assert self._walk_router is not None
            sharing, snap = self.network.sharing, self.network.snaps["walk"]
            nodes, costs = self._walk_router.search(
                np.asarray(sharing.station_walk_node)[station : station + 1],
                np.asarray(sharing.station_walk_m, dtype=np.float64)[station : station + 1],
                max_walk_m,
            )
            reach = np.full(self._walk_router.graph.n_nodes, np.inf)
            reach[nodes] = costs
            stop_node = np.asarray(snap.node)
            metres = np.where(stop_node >= 0, reach[stop_node] + np.asarray(snap.distance_m), np.inf)
            stops = np.flatnonzero(metres <= max_walk_m).astype(np.int32)
            self._station_stops[key] = (stops, metres[stops])
        return self._station_stops[key]

    def _bike_share(
        self,
        origin: _Access,
        destination: _Access,
        *,
        start: int,
        days: ServiceDays,
        request: PlanRequest,
        min_transfer: int,
        use_footpaths: bool,
    ) -> list[Itinerary]:
        """Rentals from near the origin to near the destination, and rentals to the first or from the last stop."""
        assert origin.walk_reach is not None and destination.walk_reach is not None
        max_walk = request.max_walk_m
        pickups, walk_to_pickup = self._stations_near(origin.walk_reach, self._pickup_stations, max_walk)
        returns, walk_from_return = self._stations_near(destination.walk_reach, self._return_stations, max_walk)
        rides = {int(p): self._rides(int(p), backward=False) for p in pickups}
        speed = self.walk_speed_mps
        itineraries: list[Itinerary] = []

        best: _Rental | None = None
        walk_to_destination = dict(zip(returns.tolist(), walk_from_return.tolist(), strict=True))
        for p, before in zip(pickups.tolist(), walk_to_pickup.tolist(), strict=True):
            for r, ride_s in zip(*(a.tolist() for a in rides[p]), strict=True):
                if r in walk_to_destination:
                    rental = _Rental(
                        pickup=p, dropoff=r, walk_before_m=before, ride_s=ride_s, walk_after_m=walk_to_destination[r]
                    )
                    if best is None or (rental.seconds(speed), before + rental.walk_after_m) < (
                        best.seconds(speed),
                        best.walk_before_m + best.walk_after_m,
                    ):
                        best = rental
        if best is not None:
            legs = self._rental_legs(best, origin.place, destination.place, start, days.origin_epoch_s)
            itineraries.append(
                Itinerary(
                    departure=legs[0].departure,
                    arrival=legs[-1].arrival,
                    transfers=0,
                    walk_m=round(best.walk_before_m + best.walk_after_m, 1),
                    legs=legs,
                )
            )

        to_stops: dict[int, _Rental] = {}
        for p, before in zip(pickups.tolist(), walk_to_pickup.tolist(), strict=True):
            for r, ride_s in zip(*(a.tolist() for a in rides[p]), strict=True):
                stops, after = self._stops_near_station(r, max_walk)
                _keep_faster(
                    to_stops,
                    stops,
                    after,
                    speed,
                    lambda stop, m: _Rental(pickup=p, dropoff=r, walk_before_m=before, ride_s=ride_s, walk_after_m=m),  # noqa: B023 - called at once
                )
        from_stops: dict[int, _Rental] = {}
        for r, after in zip(returns.tolist(), walk_from_return.tolist(), strict=True):
            for p, ride_s in zip(*(a.tolist() for a in self._rides(r, backward=True)), strict=True):
                stops, before = self._stops_near_station(p, max_walk)
                _keep_faster(
                    from_stops,
                    stops,
                    before,
                    speed,
                    lambda stop, m: _Rental(pickup=p, dropoff=r, walk_before_m=m, ride_s=ride_s, walk_after_m=after),  # noqa: B023 - called at once
                )
        if to_stops or from_stops:
            found = self._transit(
                _with_rentals(origin, to_stops, speed),
                _with_rentals(destination, from_stops, speed),
                start=start,
                days=days,
                request=request,
                min_transfer=min_transfer,
                use_footpaths=use_footpaths,
            )
            itineraries += [it for it in found if any(leg.mode == "bike_share" for leg in it.legs)]
        return itineraries

    def _station_place(self, station: int) -> Place:
        sharing = self.network.sharing
        system = str(sharing.system_id[int(sharing.station_system[station])])
        return Place(
            name=str(sharing.station_name[station]),
            lat=float(sharing.station_lat[station]),
            lon=float(sharing.station_lon[station]),
            station=f"{system}:{sharing.station_id[station]}",
        )

    def _rental_legs(self, rental: _Rental, a: Place, b: Place, dep: int, origin_epoch: int) -> list[Leg]:
        """Walk from a to the pickup station, unlock, ride, dock, walk to b; leaving a at `dep`."""
        sharing = self.network.sharing
        pickup, dropoff = self._station_place(rental.pickup), self._station_place(rental.dropoff)
        ride_from = dep + math.ceil(rental.walk_before_m / self.walk_speed_mps) + BIKE_RENT_S
        ride_to = ride_from + rental.ride_s
        walk_from = ride_to + BIKE_RETURN_S
        lat, lon, metres = self._ride_geometry(rental)
        ride = msgspec.structs.replace(
            self._leg(
                "bike_share", pickup, dropoff, ride_from, ride_to, metres, origin_epoch, encode_polyline(lat, lon)
            ),
            system=str(sharing.system_id[int(sharing.station_system[rental.pickup])]),
        )
        return [
            self._walk_leg(a, pickup, dep, ride_from - BIKE_RENT_S, rental.walk_before_m, origin_epoch),
            ride,
            self._walk_leg(
                dropoff,
                b,
                walk_from,
                walk_from + math.ceil(rental.walk_after_m / self.walk_speed_mps),
                rental.walk_after_m,
                origin_epoch,
            ),
        ]

    def _ride_geometry(self, rental: _Rental) -> tuple[np.ndarray, np.ndarray, float]:
        """The ridden way between the rental's stations along the bike graph, and its length in metres."""
        assert self._bike is not None
        sharing = self.network.sharing
        p, r = rental.pickup, rental.dropoff
        start, end = int(sharing.station_bike_node[p]), int(sharing.station_bike_node[r])
        to_street_m = float(sharing.station_bike_m[p]), float(sharing.station_bike_m[r])
        nodes, _, pred = self._bike_router(backward=False).search_tree(
            np.array([start]), np.array([to_street_m[0] / self.bike_speed_mps]), budget=rental.ride_s + 1.0
        )
        edges = tree_path(self._bike, nodes, pred, end)
        lat, lon = path_points(self._bike, edges)
        metres = float(np.asarray(self._bike.length_m, dtype=np.float64)[edges].sum()) + sum(to_street_m)
        p_at = float(sharing.station_lat[p]), float(sharing.station_lon[p])
        r_at = float(sharing.station_lat[r]), float(sharing.station_lon[r])
        return np.r_[p_at[0], lat, r_at[0]], np.r_[p_at[1], lon, r_at[1]], metres

    def _with_rides(self, access: _Access, rides: Callable[[float, float], tuple[np.ndarray, np.ndarray]]) -> _Access:
        stops, seconds = rides(access.place.lat, access.place.lon)
        if not len(stops):
            return access
        tt = self.network.timetable
        metres = haversine_m(access.place.lat, access.place.lon, tt.stop_lat[stops], tt.stop_lon[stops])
        return access.with_rides(stops, seconds, metres)

    def _transit(
        self,
        origin: _Access,
        destination: _Access,
        *,
        start: int,
        days: ServiceDays,
        request: PlanRequest,
        min_transfer: int,
        use_footpaths: bool,
    ) -> list[Itinerary]:
        """RAPTOR from the origin's stops; per number of trips, the best arrival at the destination."""
        result = self.raptor.earliest_arrival(
            origin.stops,
            (start + origin.seconds).astype(np.int32),
            days,
            max_transfers=request.max_transfers,
            min_transfer_s=min_transfer,
            use_footpaths=use_footpaths,
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
            itineraries.append(self._itinerary(journeys[0], origin, destination, j, days.origin_epoch_s))
        return itineraries

    def _time(self, origin_epoch: int, t: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(origin_epoch + t, self.timezone)

    def _access_legs(
        self, access: _Access, k: int, a: Place, b: Place, dep: int, arr: int, origin_epoch: int
    ) -> tuple[list[Leg], float]:
        """The legs between an endpoint and its k-th stop, and the metres walked on them."""
        if access.mode[k] == ON_DEMAND:
            return [self._leg("on_demand", a, b, dep, arr, float(access.metres[k]), origin_epoch)], 0.0
        if access.mode[k] == BIKE_SHARE:
            rental = access.rentals[int(access.stops[k])]
            return self._rental_legs(rental, a, b, dep, origin_epoch), rental.walk_before_m + rental.walk_after_m
        return [self._walk_leg(a, b, dep, arr, float(access.metres[k]), origin_epoch)], float(access.metres[k])

    def _direct(
        self, a: Place, b: Place, mode: Mode, start: int, seconds: int, metres: float | None, origin_epoch: int
    ) -> Itinerary:
        straight = float(haversine_m(a.lat, a.lon, b.lat, b.lon))
        if mode == "walk" and metres is not None:
            leg = self._walk_leg(a, b, start, start + seconds, metres, origin_epoch)
        else:
            leg = self._leg(mode, a, b, start, start + seconds, straight if metres is None else metres, origin_epoch)
        return Itinerary(
            departure=leg.departure,
            arrival=leg.arrival,
            transfers=0,
            walk_m=round(metres, 1) if mode == "walk" and metres is not None else 0.0,
            legs=[leg],
        )

    def _walk_leg(self, a: Place, b: Place, dep: int, arr: int, metres: float, origin_epoch: int) -> Leg:
        lat, lon = self._walk_geometry(a, b, metres)
        return self._leg("walk", a, b, dep, arr, metres, origin_epoch, encode_polyline(lat, lon))

    def _node_of(self, place: Place) -> int:
        """The walk-graph node a place is snapped to, -1 when it is off the streets."""
        if self._walk is None:
            return -1
        if place.stop is not None:
            return int(self.network.snaps["walk"].node[self.stop_index[place.stop]])
        if self._snapper is None:
            self._snapper = EdgeSnapper(self._walk)
        return int(self._snapper.snap(np.array([place.lat]), np.array([place.lon]), 300.0)[0][0])

    def _walk_geometry(self, a: Place, b: Place, metres: float) -> tuple[np.ndarray, np.ndarray]:
        """The walked way from a to b along the streets; a straight line where either end is off them."""
        straight = np.array([a.lat, b.lat]), np.array([a.lon, b.lon])
        start, end = self._node_of(a), self._node_of(b)
        if start < 0 or end < 0 or self._walk is None or self._walk_router is None:
            return straight
        nodes, _, pred = self._walk_router.search_tree(np.array([start]), budget=max(metres, 100.0) + 1.0)
        if end not in set(nodes.tolist()):
            return straight
        lat, lon = path_points(self._walk, tree_path(self._walk, nodes, pred, end))
        return np.r_[a.lat, lat, b.lat], np.r_[a.lon, lon, b.lon]

    def _leg(
        self,
        mode: Mode,
        a: Place,
        b: Place,
        dep: int,
        arr: int,
        metres: float,
        origin_epoch: int,
        geometry: str | None = None,
    ) -> Leg:
        return Leg(
            mode=mode,
            from_=a,
            to=b,
            departure=self._time(origin_epoch, dep),
            arrival=self._time(origin_epoch, arr),
            route=None,
            route_name=None,
            trip=None,
            distance_m=round(metres, 1),
            geometry=geometry or encode_polyline(np.array([a.lat, b.lat]), np.array([a.lon, b.lon])),
        )

    def _itinerary(
        self,
        journey: StopJourney,
        origin: _Access,
        destination: _Access,
        j: int,
        origin_epoch: int,
    ) -> Itinerary:
        tt = self.network.timetable
        legs: list[Leg] = []
        first_stop = journey.legs[0].from_stop
        k0 = int(np.flatnonzero(origin.stops == first_stop)[0])
        walk_total = 0.0
        if origin.place.stop is None:
            first = self._stop_place(first_stop)
            depart = journey.legs[0].departure - int(origin.seconds[k0])
            access, walked = self._access_legs(
                origin, k0, origin.place, first, depart, journey.legs[0].departure, origin_epoch
            )
            legs += access
            walk_total += walked
        for leg in journey.legs:
            if isinstance(leg, TransitLeg):
                p = leg.pattern
                s0 = int(tt.pattern_stop_offsets[p])
                stops = np.asarray(tt.pattern_stops[s0 + leg.board_pos : s0 + leg.alight_pos + 1])
                route = int(tt.pattern_route[p])
                name = str(tt.route_short_name[route]) or str(tt.route_long_name[route])
                legs.append(
                    Leg(
                        mode="transit",
                        from_=self._stop_place(leg.from_stop),
                        to=self._stop_place(leg.to_stop),
                        departure=self._time(origin_epoch, leg.departure),
                        arrival=self._time(origin_epoch, leg.arrival),
                        route=str(tt.route_id[route]),
                        route_name=name or None,
                        trip=str(tt.trip_id[leg.trip]),
                        distance_m=0.0,
                        geometry=encode_polyline(*self._transit_geometry(leg.trip, stops)),
                    )
                )
            elif isinstance(leg, FootpathLeg):
                metres = footpath(tt, leg.from_stop, leg.to_stop)[1]
                walk_total += metres
                legs.append(
                    self._walk_leg(
                        self._stop_place(leg.from_stop),
                        self._stop_place(leg.to_stop),
                        leg.departure,
                        leg.arrival,
                        metres,
                        origin_epoch,
                    )
                )
        if destination.place.stop is None:
            arrive = journey.arrival + int(destination.seconds[j])
            egress, walked = self._access_legs(
                destination,
                j,
                self._stop_place(journey.target),
                destination.place,
                journey.arrival,
                arrive,
                origin_epoch,
            )
            legs += egress
            walk_total += walked
        return Itinerary(
            departure=legs[0].departure,
            arrival=legs[-1].arrival,
            transfers=max(journey.trips - 1, 0),
            walk_m=round(walk_total, 1),
            legs=legs,
        )

    def _transit_geometry(self, trip: int, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The trip's GTFS shape between its board and alight stops, or the stops in order without one."""
        tt = self.network.timetable
        lat, lon = np.asarray(tt.stop_lat[stops]), np.asarray(tt.stop_lon[stops])
        shape = int(tt.trip_shape[trip])
        if shape < 0 or not np.isfinite(lat).all():
            return lat, lon
        lo, hi = int(tt.shape_offsets[shape]), int(tt.shape_offsets[shape + 1])
        s_lat, s_lon = np.asarray(tt.shape_lat[lo:hi]), np.asarray(tt.shape_lon[lo:hi])
        # Each stop matches the nearest shape point at or after the previous stop's, so loops stay in order.
        cut, points_lat, points_lon = 0, [lat[:1]], [lon[:1]]
        for k in range(1, len(stops)):
            rest = haversine_m(lat[k], lon[k], s_lat[cut:], s_lon[cut:])
            if not len(rest) or rest.min() > 200.0:
                # The shape does not pass this stop: draw the stop sequence instead of a wrong line.
                return lat, lon
            nxt = cut + int(np.argmin(rest))
            if k == 1:
                start = cut + int(np.argmin(haversine_m(lat[0], lon[0], s_lat[cut : nxt + 1], s_lon[cut : nxt + 1])))
                cut = start
            points_lat += [s_lat[cut + 1 : nxt], lat[k : k + 1]]
            points_lon += [s_lon[cut + 1 : nxt], lon[k : k + 1]]
            cut = nxt
        return np.concatenate(points_lat), np.concatenate(points_lon)

    def _direct_walk(
        self,
        origin: _Access,
        destination: _Access,
        request: PlanRequest,
        start: int,
        origin_epoch: int,
    ) -> Itinerary | None:
        """Walking the whole way, when the destination is within the walking limit of the origin."""
        if origin.place.stop is not None or destination.place.stop is not None or self._snapper is None:
            return None
        assert self._walk_router is not None
        nodes_o, cost_o = self._snapper.snap(np.array([origin.place.lat]), np.array([origin.place.lon]), 300.0)
        nodes_d, cost_d = self._snapper.snap(
            np.array([destination.place.lat]), np.array([destination.place.lon]), 300.0
        )
        if nodes_o[0] < 0 or nodes_d[0] < 0:
            return None
        reached, costs = self._walk_router.search(nodes_o, cost_o, request.max_walk_m)
        hit = np.flatnonzero(reached == nodes_d[0])
        if not len(hit):
            return None
        metres = float(costs[hit[0]] + cost_d[0])
        if metres > request.max_walk_m:
            return None
        seconds = math.ceil(metres / self.walk_speed_mps)
        return self._direct(origin.place, destination.place, "walk", start, seconds, metres, origin_epoch)


def _dominates(a: Itinerary, b: Itinerary) -> bool:
    """Whether a arrives no later, changes no more often and walks no further than b, and is better in one."""
    return (
        a.arrival <= b.arrival
        and a.transfers <= b.transfers
        and a.walk_m <= b.walk_m
        and (a.arrival, a.transfers, a.walk_m) != (b.arrival, b.transfers, b.walk_m)
    )


def _keep_faster(
    best: dict[int, _Rental],
    stops: np.ndarray,
    walk_m: np.ndarray,
    walk_speed_mps: float,
    rental: Callable[[int, float], _Rental],
) -> None:
    """Per stop, the faster of the rental already in `best` and `rental(stop, walk_m)` (the walk at the stop's end)."""
    if not len(stops):
        return
    # Rentals differing only in the walk at the stop's end: their times differ by that walk alone.
    base = rental(int(stops[0]), 0.0).seconds(walk_speed_mps)
    seconds = base + np.ceil(walk_m / walk_speed_mps).astype(np.int64)
    for stop, t, m in zip(stops.tolist(), seconds.tolist(), walk_m.tolist(), strict=True):
        if stop not in best or t < best[stop].seconds(walk_speed_mps):
            best[stop] = rental(stop, m)


def _with_rentals(access: _Access, rentals: dict[int, _Rental], walk_speed_mps: float) -> _Access:
    """The access with each stop reached by the faster of walking and a rental."""
    if not rentals:
        return access
    stops = np.array(sorted(rentals), dtype=np.int32)
    chosen = [rentals[s] for s in stops.tolist()]
    return access.with_rides(
        stops,
        np.array([r.seconds(walk_speed_mps) for r in chosen], dtype=np.int64),
        np.array([r.walk_before_m + r.walk_after_m for r in chosen]),
        BIKE_SHARE,
        rentals,
    )
