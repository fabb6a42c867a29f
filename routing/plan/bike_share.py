"""Station-based bike share, as OpenTripPlanner rents: which rentals a journey may use.

Walk to a station of a bicycle system that has a bike, unlock it, ride on the bike street graph
to another station of the same system that has a free dock, dock it, walk on. Only counts the
feed reports are trusted: a station with an unknown number of bikes (-1) is never a pickup, one
with an unknown number of free docks never a return (GBFS lets a virtual station leave docks
out, but the network cannot tell that from a count that is simply unknown, and a rider sent to
a full station is stuck with the bike). A rental may be the whole journey, or lead to the first
stop or from the last one. A bike-share leg lasts from unlocking to docking minus those two
overheads: the rider stands at the station for BIKE_RENT_S before it and for BIKE_RETURN_S
after it, as one waits at a stop.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import msgspec
import numpy as np

from routing.model import Network
from routing.plan.access import BIKE_SHARE, Access
from routing.plan.scratch import RouterScratch, StreetGraphs
from routing.plan.wire import PlanRequest

# GBFS form factors ridden on the bike street graph; a system that lists no vehicle types is not
# taken for bicycles (the car-sharing feed of the sample region lists none).
BIKE_FORM_FACTORS = frozenset({"bicycle", "cargo_bicycle"})
# Time to take a bike from a station and to dock it again (OpenTripPlanner's defaults are 60 s too).
BIKE_RENT_S = 60
BIKE_RETURN_S = 60
# Longest bike ride searched; beyond it a rental is not offered.
MAX_BIKE_RIDE_S = 3600


class Rental(msgspec.Struct, frozen=True, kw_only=True):
    """Walk to a pickup station, ride to a return station of the same system, walk on."""

    pickup: int  # station index
    dropoff: int
    walk_before_m: float
    ride_s: int  # riding only, without unlocking and docking
    walk_after_m: float

    def seconds(self, walk_speed_mps: float) -> int:
        walk_s = math.ceil(self.walk_before_m / walk_speed_mps) + math.ceil(self.walk_after_m / walk_speed_mps)
        return walk_s + BIKE_RENT_S + self.ride_s + BIKE_RETURN_S


class Rentals(msgspec.Struct, frozen=True, kw_only=True):
    """The rentals a journey may use: the whole way, to each stop near the origin, from each near the destination."""

    direct: Rental | None
    to_stops: dict[int, Rental]  # by the stop the rider walks to from the return station
    from_stops: dict[int, Rental]  # by the stop the rider walks from to the pickup station


class BikeShare:
    """The bike-share stations of one network and the rides between them."""

    def __init__(self, network: Network, graphs: StreetGraphs) -> None:
        self.network = network
        self.graphs = graphs
        self.walk_speed_mps = network.manifest.params.walk_speed_mps
        self.bike_speed_mps = network.manifest.params.bike_speed_mps
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
        self.pickup_stations = np.flatnonzero(
            usable & np.asarray(sharing.station_renting) & (np.asarray(sharing.station_vehicles) > 0)
        )
        self.return_stations = np.flatnonzero(
            usable & np.asarray(sharing.station_returning) & (np.asarray(sharing.station_docks) > 0)
        )
        # Stops near a station by (station, max_walk_m), shared by every thread: entries are read-only.
        self._station_stops: dict[tuple[int, float], tuple[np.ndarray, np.ndarray]] = {}
        self._station_stops_lock = threading.Lock()

    def offered(self, request: PlanRequest, origin: Access, destination: Access) -> bool:
        return (
            request.bike_share
            and not request.wheelchair
            and request.max_walk_m > 0
            and len(self.pickup_stations) > 0
            and len(self.return_stations) > 0
            and self.graphs.bike is not None
            and origin.walk_reach is not None
            and destination.walk_reach is not None
        )

    def rentals(self, origin: Access, destination: Access, max_walk_m: float, scratch: RouterScratch) -> Rentals:
        """The fastest rental all the way, and per stop the fastest rental to it from the origin or from it on."""
        assert origin.walk_reach is not None and destination.walk_reach is not None
        pickups, walk_to_pickup = self._stations_near(origin.walk_reach, self.pickup_stations, max_walk_m)
        returns, walk_from_return = self._stations_near(destination.walk_reach, self.return_stations, max_walk_m)
        rides = {int(p): self._rides(int(p), False, scratch) for p in pickups}
        speed = self.walk_speed_mps

        best: Rental | None = None
        walk_to_destination = dict(zip(returns.tolist(), walk_from_return.tolist(), strict=True))
        for p, before in zip(pickups.tolist(), walk_to_pickup.tolist(), strict=True):
            for r, ride_s in zip(*(a.tolist() for a in rides[p]), strict=True):
                if r in walk_to_destination:
                    rental = Rental(
                        pickup=p, dropoff=r, walk_before_m=before, ride_s=ride_s, walk_after_m=walk_to_destination[r]
                    )
                    if best is None or (rental.seconds(speed), before + rental.walk_after_m) < (
                        best.seconds(speed),
                        best.walk_before_m + best.walk_after_m,
                    ):
                        best = rental

        to_stops: dict[int, Rental] = {}
        for p, before in zip(pickups.tolist(), walk_to_pickup.tolist(), strict=True):
            for r, ride_s in zip(*(a.tolist() for a in rides[p]), strict=True):
                stops, after = self._stops_near_station(r, max_walk_m, scratch)
                keep_faster(
                    to_stops,
                    stops,
                    after,
                    speed,
                    lambda stop, m: Rental(pickup=p, dropoff=r, walk_before_m=before, ride_s=ride_s, walk_after_m=m),  # noqa: B023 - called at once
                )
        from_stops: dict[int, Rental] = {}
        for r, after in zip(returns.tolist(), walk_from_return.tolist(), strict=True):
            for p, ride_s in zip(*(a.tolist() for a in self._rides(r, True, scratch)), strict=True):
                stops, before_m = self._stops_near_station(p, max_walk_m, scratch)
                keep_faster(
                    from_stops,
                    stops,
                    before_m,
                    speed,
                    lambda stop, m: Rental(pickup=p, dropoff=r, walk_before_m=m, ride_s=ride_s, walk_after_m=after),  # noqa: B023 - called at once
                )
        return Rentals(direct=best, to_stops=to_stops, from_stops=from_stops)

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

    def _rides(self, station: int, backward: bool, scratch: RouterScratch) -> tuple[np.ndarray, np.ndarray]:
        """Riding seconds from a pickup station to every return station of its system within MAX_BIKE_RIDE_S
        (backward: to a return station from every pickup station)."""
        sharing = self.network.sharing
        bike_node = np.asarray(sharing.station_bike_node)
        # Between a station and its street node the bike is ridden (or pushed) at the graph's bike speed.
        to_street_s = np.asarray(sharing.station_bike_m, dtype=np.float64) / self.bike_speed_mps
        router = scratch.bike(backward)
        nodes, costs = router.search(
            bike_node[station : station + 1], to_street_s[station : station + 1], MAX_BIKE_RIDE_S
        )
        reach = np.full(router.graph.n_nodes, np.inf)
        reach[nodes] = costs
        others = self.pickup_stations if backward else self.return_stations
        system = np.asarray(sharing.station_system)
        others = others[(system[others] == system[station]) & (others != station)]
        seconds = reach[bike_node[others]] + to_street_s[others]
        ok = seconds <= MAX_BIKE_RIDE_S
        return others[ok], np.ceil(seconds[ok]).astype(np.int64)

    def _stops_near_station(
        self, station: int, max_walk_m: float, scratch: RouterScratch
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stops on the walk graph within `max_walk_m` of a station, with the metres walked (kept per router)."""
        key = (station, max_walk_m)
        found = self._station_stops.get(key)
        if found is not None:
            return found
        assert scratch.walk is not None
        sharing, snap = self.network.sharing, self.network.snaps["walk"]
        nodes, costs = scratch.walk.search(
            np.asarray(sharing.station_walk_node)[station : station + 1],
            np.asarray(sharing.station_walk_m, dtype=np.float64)[station : station + 1],
            max_walk_m,
        )
        reach = np.full(scratch.walk.graph.n_nodes, np.inf)
        reach[nodes] = costs
        stop_node = np.asarray(snap.node)
        metres = np.where(stop_node >= 0, reach[stop_node] + np.asarray(snap.distance_m), np.inf)
        stops = np.flatnonzero(metres <= max_walk_m).astype(np.int32)
        found = (stops, metres[stops])
        for array in found:
            array.flags.writeable = False
        with self._station_stops_lock:
            # Two threads may both have searched: the first answer stays (they are the same).
            return self._station_stops.setdefault(key, found)


def keep_faster(
    best: dict[int, Rental],
    stops: np.ndarray,
    walk_m: np.ndarray,
    walk_speed_mps: float,
    rental: Callable[[int, float], Rental],
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


def with_rentals(access: Access, rentals: dict[int, Rental], walk_speed_mps: float) -> Access:
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
