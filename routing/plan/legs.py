"""Itineraries and their legs: times on the clock, the way drawn along streets, shapes or bike paths."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo

import msgspec
import numpy as np

from routing.model import Network
from routing.plan.access import BIKE_SHARE, ON_DEMAND, Access, Walking, stop_place
from routing.plan.bike_share import BIKE_RENT_S, BIKE_RETURN_S, Rental
from routing.plan.scratch import RouterScratch
from routing.plan.wire import Itinerary, Leg, Mode, Place
from routing.raptor import FootpathLeg, StopJourney, TransitLeg, footpath
from routing.realtime import RealtimeOverlay
from routing.spatial import haversine_m
from routing.streets import path_points, tree_path


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


class Legs:
    """Builds the legs of itineraries on one network; times are seconds from a service day's origin.

    With a realtime overlay, `network`'s timetable is the overlay's, and transit legs on its realtime
    runs show the timetable's times beside the predicted ones.
    """

    def __init__(self, network: Network, walking: Walking, realtime: RealtimeOverlay | None = None) -> None:
        self.network = network
        self.walking = walking
        self.realtime = realtime
        self.timezone = zoneinfo.ZoneInfo(network.manifest.timezone)
        self.walk_speed_mps = network.manifest.params.walk_speed_mps
        self.bike_speed_mps = network.manifest.params.bike_speed_mps

    def _time(self, origin_epoch: int, t: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(origin_epoch + t, self.timezone)

    def leg(
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
        """A leg without a trip, drawn as a straight line unless `geometry` is given."""
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

    def walk_leg(
        self, a: Place, b: Place, dep: int, arr: int, metres: float, origin_epoch: int, scratch: RouterScratch
    ) -> Leg:
        lat, lon = self._walk_geometry(a, b, metres, scratch)
        return self.leg("walk", a, b, dep, arr, metres, origin_epoch, encode_polyline(lat, lon))

    def direct(
        self,
        a: Place,
        b: Place,
        mode: Mode,
        start: int,
        seconds: int,
        metres: float | None,
        origin_epoch: int,
        scratch: RouterScratch,
    ) -> Itinerary:
        """One leg the whole way: a walk of `metres`, or a ride (straight-line metres unless given)."""
        straight = float(haversine_m(a.lat, a.lon, b.lat, b.lon))
        if mode == "walk" and metres is not None:
            leg = self.walk_leg(a, b, start, start + seconds, metres, origin_epoch, scratch)
        else:
            leg = self.leg(mode, a, b, start, start + seconds, straight if metres is None else metres, origin_epoch)
            leg = msgspec.structs.replace(leg, estimated=mode == "on_demand")
        return Itinerary(
            departure=leg.departure,
            arrival=leg.arrival,
            transfers=0,
            walk_m=round(metres, 1) if mode == "walk" and metres is not None else 0.0,
            legs=[leg],
        )

    def rental(
        self, rental: Rental, a: Place, b: Place, start: int, origin_epoch: int, scratch: RouterScratch
    ) -> Itinerary:
        """A rental the whole way from a to b, leaving at `start`."""
        legs = self._rental_legs(rental, a, b, start, origin_epoch, scratch)
        return Itinerary(
            departure=legs[0].departure,
            arrival=legs[-1].arrival,
            transfers=0,
            walk_m=round(rental.walk_before_m + rental.walk_after_m, 1),
            legs=legs,
        )

    def itinerary(
        self,
        journey: StopJourney,
        origin: Access,
        destination: Access,
        j: int,
        origin_epoch: int,
        scratch: RouterScratch,
    ) -> Itinerary:
        """A stop-to-stop journey with the ways from the origin to its first stop and from its last to the destination's j-th."""
        tt = self.network.timetable
        legs: list[Leg] = []
        first_stop = journey.legs[0].from_stop
        k0 = int(np.flatnonzero(origin.stops == first_stop)[0])
        walk_total = 0.0
        if origin.place.stop is None:
            first = stop_place(tt, first_stop)
            depart = journey.legs[0].departure - int(origin.seconds[k0])
            access, walked = self._access_legs(
                origin, k0, origin.place, first, depart, journey.legs[0].departure, origin_epoch, scratch
            )
            legs += access
            walk_total += walked
        for leg in journey.legs:
            if isinstance(leg, TransitLeg):
                legs.append(self._transit_leg(leg, origin_epoch))
            elif isinstance(leg, FootpathLeg):
                metres = footpath(tt, leg.from_stop, leg.to_stop)[1]
                walk_total += metres
                legs.append(
                    self.walk_leg(
                        stop_place(tt, leg.from_stop),
                        stop_place(tt, leg.to_stop),
                        leg.departure,
                        leg.arrival,
                        metres,
                        origin_epoch,
                        scratch,
                    )
                )
        if destination.place.stop is None:
            arrive = journey.arrival + int(destination.seconds[j])
            egress, walked = self._access_legs(
                destination,
                j,
                stop_place(tt, journey.target),
                destination.place,
                journey.arrival,
                arrive,
                origin_epoch,
                scratch,
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

    def _transit_leg(self, leg: TransitLeg, origin_epoch: int) -> Leg:
        tt = self.network.timetable
        s0 = int(tt.pattern_stop_offsets[leg.pattern])
        stops = np.asarray(tt.pattern_stops[s0 + leg.board_pos : s0 + leg.alight_pos + 1])
        route = int(tt.pattern_route[leg.pattern])
        name = str(tt.route_short_name[route]) or str(tt.route_long_name[route])
        scheduled_dep, scheduled_arr = self._scheduled(leg)
        realtime = self.realtime is not None and self.realtime.is_realtime(leg.trip)
        return Leg(
            mode="transit",
            from_=stop_place(tt, leg.from_stop),
            to=stop_place(tt, leg.to_stop),
            departure=self._time(origin_epoch, leg.departure),
            arrival=self._time(origin_epoch, leg.arrival),
            route=str(tt.route_id[route]),
            route_name=name or None,
            trip=str(tt.trip_id[leg.trip]),
            distance_m=0.0,
            geometry=encode_polyline(*self._transit_geometry(leg.trip, stops)),
            scheduled_departure=self._time(origin_epoch, scheduled_dep),
            scheduled_arrival=self._time(origin_epoch, scheduled_arr),
            realtime=realtime,
            delay_s=leg.departure - scheduled_dep if realtime else None,
        )

    def _scheduled(self, leg: TransitLeg) -> tuple[int, int]:
        """The timetable's departure and arrival of a transit leg, on the leg's clock."""
        if self.realtime is None or not self.realtime.is_realtime(leg.trip):
            return leg.departure, leg.arrival
        tt, base = self.network.timetable, self.realtime.base
        n = int(tt.pattern_stop_offsets[leg.pattern + 1]) - int(tt.pattern_stop_offsets[leg.pattern])
        row = leg.trip - int(tt.pattern_trip_offsets[leg.pattern])
        at = int(tt.pattern_stop_time_offsets[leg.pattern]) + row * n
        # The run's pattern has its timetable trip's stops, so positions are the same in both.
        trip = int(self.realtime.run_of[leg.trip])
        p = int(self.realtime.raptor.trip_pattern[trip])
        scheduled_at = int(base.pattern_stop_time_offsets[p]) + (trip - int(base.pattern_trip_offsets[p])) * n
        day_offset = leg.departure - int(tt.departure[at + leg.board_pos])
        return (
            int(base.departure[scheduled_at + leg.board_pos]) + day_offset,
            int(base.arrival[scheduled_at + leg.alight_pos]) + day_offset,
        )

    def _access_legs(
        self, access: Access, k: int, a: Place, b: Place, dep: int, arr: int, origin_epoch: int, scratch: RouterScratch
    ) -> tuple[list[Leg], float]:
        """The legs between an endpoint and its k-th stop, and the metres walked on them."""
        if access.mode[k] == ON_DEMAND:
            ride = self.leg("on_demand", a, b, dep, arr, float(access.metres[k]), origin_epoch)
            return [msgspec.structs.replace(ride, estimated=True)], 0.0
        if access.mode[k] == BIKE_SHARE:
            rental = access.rentals[int(access.stops[k])]
            legs = self._rental_legs(rental, a, b, dep, origin_epoch, scratch)
            return legs, rental.walk_before_m + rental.walk_after_m
        metres = float(access.metres[k])
        return [self.walk_leg(a, b, dep, arr, metres, origin_epoch, scratch)], metres

    def _station_place(self, station: int) -> Place:
        sharing = self.network.sharing
        system = str(sharing.system_id[int(sharing.station_system[station])])
        return Place(
            name=str(sharing.station_name[station]),
            lat=float(sharing.station_lat[station]),
            lon=float(sharing.station_lon[station]),
            station=f"{system}:{sharing.station_id[station]}",
        )

    def _rental_legs(
        self, rental: Rental, a: Place, b: Place, dep: int, origin_epoch: int, scratch: RouterScratch
    ) -> list[Leg]:
        """Walk from a to the pickup station, unlock, ride, dock, walk to b; leaving a at `dep`."""
        sharing = self.network.sharing
        pickup, dropoff = self._station_place(rental.pickup), self._station_place(rental.dropoff)
        ride_from = dep + math.ceil(rental.walk_before_m / self.walk_speed_mps) + BIKE_RENT_S
        ride_to = ride_from + rental.ride_s
        walk_from = ride_to + BIKE_RETURN_S
        lat, lon, metres = self._ride_geometry(rental, scratch)
        ride = msgspec.structs.replace(
            self.leg(
                "bike_share", pickup, dropoff, ride_from, ride_to, metres, origin_epoch, encode_polyline(lat, lon)
            ),
            system=str(sharing.system_id[int(sharing.station_system[rental.pickup])]),
        )
        return [
            self.walk_leg(a, pickup, dep, ride_from - BIKE_RENT_S, rental.walk_before_m, origin_epoch, scratch),
            ride,
            self.walk_leg(
                dropoff,
                b,
                walk_from,
                walk_from + math.ceil(rental.walk_after_m / self.walk_speed_mps),
                rental.walk_after_m,
                origin_epoch,
                scratch,
            ),
        ]

    def _walk_geometry(
        self, a: Place, b: Place, metres: float, scratch: RouterScratch
    ) -> tuple[np.ndarray, np.ndarray]:
        """The walked way from a to b along the streets; a straight line where either end is off them."""
        straight = np.array([a.lat, b.lat]), np.array([a.lon, b.lon])
        start, end = self.walking.node_of(a), self.walking.node_of(b)
        walk = self.walking.graphs.walk
        if start < 0 or end < 0 or walk is None or scratch.walk is None:
            return straight
        nodes, _, pred = scratch.walk.search_tree(np.array([start]), budget=max(metres, 100.0) + 1.0)
        if end not in set(nodes.tolist()):
            return straight
        lat, lon = path_points(walk, tree_path(walk, nodes, pred, end))
        return np.r_[a.lat, lat, b.lat], np.r_[a.lon, lon, b.lon]

    def _ride_geometry(self, rental: Rental, scratch: RouterScratch) -> tuple[np.ndarray, np.ndarray, float]:
        """The ridden way between the rental's stations along the bike graph, and its length in metres."""
        bike = self.walking.graphs.bike
        assert bike is not None
        sharing = self.network.sharing
        p, r = rental.pickup, rental.dropoff
        start, end = int(sharing.station_bike_node[p]), int(sharing.station_bike_node[r])
        to_street_m = float(sharing.station_bike_m[p]), float(sharing.station_bike_m[r])
        nodes, _, pred = scratch.bike(backward=False).search_tree(
            np.array([start]), np.array([to_street_m[0] / self.bike_speed_mps]), budget=rental.ride_s + 1.0
        )
        edges = tree_path(bike, nodes, pred, end)
        lat, lon = path_points(bike, edges)
        metres = float(np.asarray(bike.length_m, dtype=np.float64)[edges].sum()) + sum(to_street_m)
        p_at = float(sharing.station_lat[p]), float(sharing.station_lon[p])
        r_at = float(sharing.station_lat[r]), float(sharing.station_lon[r])
        return np.r_[p_at[0], lat, r_at[0]], np.r_[p_at[1], lon, r_at[1]], metres

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
