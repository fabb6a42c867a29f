"""Journeys whose on-demand legs are offers of the live fleet, timed to their trains.

The router plans with optimistic ride times (the direct drive, boarding and the change at the
station: no vehicle can do better), so that no train a vehicle could reach is missed. Each
on-demand leg of its itineraries then becomes a ride request tied to its connection and is
checked exactly against the vehicles' current plans by the dispatcher's insertion search:

- a first-mile ride leaves no earlier than the rider and arrives by the train's departure minus
  the change time; when no vehicle can make it, the next train from that station is tried;
- a last-mile ride is picked up from the train's arrival plus the change time;
- a direct ride is picked up from the departure time asked (or arrives by the deadline), at the
  nearest time a vehicle can serve.

The router's part (`candidates`, `later_trains`) runs in worker threads; the dispatcher's part
(`offers`) runs where the fleet's plans may be read, one caller at a time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Literal

import msgspec
import numpy as np

from routing.dispatch.dispatcher import Dispatcher, Offer
from routing.dispatch.model import DispatchError, Passengers, Request
from routing.plan.access import stop_place
from routing.plan.legs import encode_polyline
from routing.plan.router import Router
from routing.plan.wire import Endpoint, Itinerary, Leg, Place, Plan, PlanRequest
from routing.spatial import haversine_m

RideKind = Literal["first_mile", "last_mile", "direct"]


class LiveRules(msgspec.Struct, frozen=True, kw_only=True):
    """How rides are tied to their connections (from the service definition)."""

    change_s: int = 180  # from the bus to the train or back, at the station
    min_ride_m: float = 500.0  # shorter rides (straight line) replace a walk and are not offered
    later_trains: int = 3  # how many later trains are tried for a first-mile ride that does not fit
    virtual_stops: bool = False  # rides start and end at stops (riders walk there), not at the door
    max_walk_to_stop_m: float = 400.0


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    """The trip a ride feeds or is fed by, and where: what the ride's promise protects."""

    kind: RideKind
    stop: str | None = None  # the station, namespaced
    trip: str | None = None
    route_name: str | None = None
    at: dt.datetime | None = None  # the trip's departure (first mile) or arrival (last mile) there
    change_s: int = 0


class Ride(msgspec.Struct, frozen=True, kw_only=True):
    """One on-demand leg of an itinerary as a ride request, and (once checked) the fleet's offer."""

    leg: int
    request: Request
    connection: Connection
    offer: Offer | None = None


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    itinerary: Itinerary
    rides: list[Ride]


class Checked(msgspec.Struct, frozen=True, kw_only=True):
    """The offers of one round: itineraries every ride of which a vehicle can serve (re-timed to the
    offers), and first-mile rides that missed their train, to be tried with a later one."""

    served: list[Candidate]
    missed: list[Candidate]


def is_ride(leg: Leg) -> bool:
    return leg.mode == "on_demand"


def ride_s(it: Itinerary) -> float:
    return sum((leg.arrival - leg.departure).total_seconds() for leg in it.legs if is_ride(leg))


class FleetRides:
    """Turns a router's itineraries into ones with live offers (see the module's docstring)."""

    def __init__(self, router: Router, rules: LiveRules) -> None:
        self.router = router  # with optimistic on-demand ride times
        self.rules = rules
        self.timezone = router.timezone

    # -- the router's part ---------------------------------------------------------------------------
    def candidates(
        self,
        plan: Plan,
        request: PlanRequest,
        deadline: dt.datetime | None,
        passengers: Passengers,
        not_before: dt.datetime,
    ) -> tuple[list[Itinerary], list[Candidate]]:
        """The plan's itineraries without rides (kept as they are) and those with rides, as requests
        picked up no earlier than `not_before` (now plus the booking notice)."""
        plain: list[Itinerary] = []
        with_rides: list[Candidate] = []
        for it in plan.itineraries:
            if not any(is_ride(leg) for leg in it.legs):
                plain.append(it)
                continue
            found = self._candidate(it, request, deadline, passengers, not_before)
            if found is not None:
                with_rides.append(found)
        return plain, with_rides

    def _candidate(
        self,
        it: Itinerary,
        request: PlanRequest,
        deadline: dt.datetime | None,
        passengers: Passengers,
        not_before: dt.datetime,
    ) -> Candidate | None:
        rides = []
        # Arriving by a deadline, a ride is timed by what follows it; leaving at a time, by that too.
        depart = None if deadline is not None else max(request.depart, not_before)
        if self.rules.virtual_stops:
            moved = self._to_virtual_stops(it)
            if moved is None:
                return None  # no stop near enough to the door
            it = moved
        for k, leg in enumerate(it.legs):
            if not is_ride(leg):
                continue
            if float(haversine_m(leg.from_.lat, leg.from_.lon, leg.to.lat, leg.to.lon)) < self.rules.min_ride_m:
                return None  # the ride only replaces a short walk
            rides.append(self._ride(it.legs, k, depart, deadline, passengers, not_before))
        return Candidate(itinerary=it, rides=rides)

    def _to_virtual_stops(self, it: Itinerary) -> Itinerary | None:
        """The itinerary with every ride moved from the door to the nearest virtual stop, walking there
        (or on from there); None when a door has no stop within reach."""
        estimator = self.router.on_demand
        if estimator is None:
            return None
        tt = self.router.network.timetable
        legs: list[Leg] = []
        walked = 0.0
        for leg in it.legs:
            if not is_ride(leg):
                legs.append(leg)
                continue
            ride = leg
            if ride.from_.stop is None:
                stop = estimator.nearest_stop(ride.from_.lat, ride.from_.lon, self.rules.max_walk_to_stop_m)
                if stop is None:
                    return None
                walk = self._walk(ride.from_, stop_place(tt, stop), ride.departure)
                legs.append(walk)
                walked += walk.distance_m
                ride = msgspec.structs.replace(ride, from_=walk.to, departure=walk.arrival)
            after = None
            if ride.to.stop is None:
                stop = estimator.nearest_stop(ride.to.lat, ride.to.lon, self.rules.max_walk_to_stop_m)
                if stop is None:
                    return None
                after = self._walk(stop_place(tt, stop), ride.to, ride.arrival)
                walked += after.distance_m
                ride = msgspec.structs.replace(ride, to=after.from_)
            legs.append(ride)
            if after is not None:
                legs.append(after)
        return msgspec.structs.replace(it, legs=legs, walk_m=round(it.walk_m + walked, 1))

    def _walk(self, a: Place, b: Place, at: dt.datetime) -> Leg:
        """A walk from a to b starting at `at`, at walking pace along a straight line lengthened by the
        network's detour factor."""
        params = self.router.network.manifest.params
        metres = float(haversine_m(a.lat, a.lon, b.lat, b.lon)) * params.straight_line_detour
        seconds = dt.timedelta(seconds=round(metres / params.walk_speed_mps))
        start = at
        return Leg(
            mode="walk",
            from_=a,
            to=b,
            departure=start,
            arrival=start + seconds,
            route=None,
            route_name=None,
            trip=None,
            distance_m=round(metres, 1),
            geometry=encode_polyline(np.array([a.lat, b.lat]), np.array([a.lon, b.lon])),
        )

    def _ride(
        self,
        legs: Sequence[Leg],
        k: int,
        depart: dt.datetime | None,
        deadline: dt.datetime | None,
        passengers: Passengers,
        not_before: dt.datetime,
    ) -> Ride:
        """The ride request of leg k: bounded by the trip after it (first mile) or before it (last
        mile), picked up no earlier than `depart` (first mile, direct) and `not_before`."""
        change = self.rules.change_s
        after = next((x for x in legs[k + 1 :] if x.mode == "transit"), None)
        before = next((x for x in reversed(legs[:k]) if x.mode == "transit"), None)
        earliest = depart.timestamp() if depart is not None else None
        if earliest is not None and k == 1 and legs[0].mode == "walk":  # first to the virtual stop
            earliest += (legs[0].arrival - legs[0].departure).total_seconds()
        latest = deadline.timestamp() if deadline is not None else None
        if after is not None:
            # Arrive by the next leg's start (the train, or the walk to its platform) less the change.
            connection = Connection(
                kind="first_mile",
                stop=after.from_.stop,
                trip=after.trip,
                route_name=after.route_name,
                at=after.departure,
                change_s=change,
            )
            latest = legs[k + 1].departure.timestamp() - change
        elif before is not None:
            connection = Connection(
                kind="last_mile",
                stop=before.to.stop,
                trip=before.trip,
                route_name=before.route_name,
                at=before.arrival,
                change_s=change,
            )
            earliest = max(legs[k - 1].arrival.timestamp() + change, not_before.timestamp())
        else:
            connection = Connection(kind="direct")
        return Ride(
            leg=k,
            request=Request(
                id=str(uuid.uuid4()),
                origin_node=-1,  # snapped onto the fleet's drive graph when checked
                destination_node=-1,
                passengers=passengers,
                earliest_pickup_s=earliest,
                latest_arrival_s=latest,
                # To a train: as late as it allows, so that nobody waits long at the station.
                prefer_late=connection.kind == "first_mile",
            ),
            connection=connection,
        )

    def later_trains(self, missed: Candidate, request: PlanRequest, not_before: dt.datetime) -> Candidate | None:
        """The itinerary of a first-mile ride that missed its train, by the next train from that
        station (the rest planned again from there), or None when no later one reaches the destination."""
        first = missed.rides[0]
        station = first.connection.stop
        at = first.connection.at
        if first.connection.kind != "first_mile" or station is None or at is None:
            return None
        onward = self.router.plan(
            msgspec.structs.replace(request, origin=Endpoint(stop=station), depart=at + dt.timedelta(seconds=1))
        )
        ride_leg = missed.itinerary.legs[first.leg]
        for it in onward.itineraries:
            if not it.legs or it.legs[0].mode == "on_demand" or not any(x.mode == "transit" for x in it.legs):
                continue
            if it.legs[0].departure <= at:
                continue
            # The ride keeps its optimistic duration until the fleet re-times it.
            duration = ride_leg.arrival - ride_leg.departure
            arrive = it.legs[0].departure - dt.timedelta(seconds=self.rules.change_s)
            ride = msgspec.structs.replace(ride_leg, departure=arrive - duration, arrival=arrive)
            legs = [ride, *it.legs]
            itinerary = Itinerary(
                departure=ride.departure, arrival=it.arrival, transfers=it.transfers, walk_m=it.walk_m, legs=legs
            )
            passengers = first.request.passengers
            rides = [self._ride(legs, 0, _earliest(first.request), None, passengers, not_before)]
            rides += [
                self._ride(legs, k, None, None, passengers, not_before) for k in range(1, len(legs)) if is_ride(legs[k])
            ]
            return Candidate(itinerary=itinerary, rides=rides)
        return None

    # -- the dispatcher's part -----------------------------------------------------------------------
    def offers(self, candidates: Sequence[Candidate], dispatcher: Dispatcher, now_s: float) -> Checked:
        """Check every ride exactly against the fleet's current plans. The rides of one itinerary are
        checked together (the first booked on trial while the next is checked) and the plans are left
        as they were found."""
        served: list[Candidate] = []
        missed: list[Candidate] = []
        for candidate in candidates:
            checked = self._check(candidate, dispatcher, now_s)
            if isinstance(checked, Candidate):
                served.append(checked)
            elif checked == "missed":
                missed.append(candidate)
        return Checked(served=served, missed=missed)

    def _check(self, candidate: Candidate, dispatcher: Dispatcher, now_s: float) -> Candidate | str:
        legs = list(candidate.itinerary.legs)
        rides: list[Ride] = []
        trial: list[str] = []
        try:
            for ride in candidate.rides:
                leg = legs[ride.leg]
                try:
                    origin, destination = dispatcher.times.snap_many(
                        [leg.from_.lat, leg.to.lat], [leg.from_.lon, leg.to.lon]
                    )
                except DispatchError:
                    return "dropped"  # no road near the door: no vehicle comes there
                request = msgspec.structs.replace(ride.request, origin_node=origin, destination_node=destination)
                offer = self._offer(dispatcher, request, ride.connection.kind, now_s)
                if offer is None:
                    return "missed" if ride.connection.kind == "first_mile" else "dropped"
                if ride is not candidate.rides[-1]:
                    dispatcher.book(offer, request, now_s)  # the next ride is checked with this one planned
                    trial.append(request.id)
                rides.append(msgspec.structs.replace(ride, request=request, offer=offer))
                legs[ride.leg] = msgspec.structs.replace(
                    leg,
                    departure=self._local(offer.pickup_estimate_s),
                    arrival=self._local(offer.dropoff_estimate_s),
                    estimated=False,
                )
        finally:
            for request_id in trial:
                dispatcher.withdraw(request_id)
        for ride in rides:  # walks to and from a virtual stop move with their ride
            k = ride.leg
            if k > 0 and legs[k - 1].mode == "walk" and legs[k - 1].to == legs[k].from_:
                walk = legs[k - 1]
                legs[k - 1] = msgspec.structs.replace(
                    walk, departure=legs[k].departure - (walk.arrival - walk.departure), arrival=legs[k].departure
                )
            if k + 1 < len(legs) and legs[k + 1].mode == "walk" and legs[k + 1].from_ == legs[k].to:
                walk = legs[k + 1]
                legs[k + 1] = msgspec.structs.replace(
                    walk, departure=legs[k].arrival, arrival=legs[k].arrival + (walk.arrival - walk.departure)
                )
        it = candidate.itinerary
        retimed = msgspec.structs.replace(it, departure=legs[0].departure, arrival=legs[-1].arrival, legs=legs)
        return Candidate(itinerary=retimed, rides=rides)

    def _offer(self, dispatcher: Dispatcher, request: Request, kind: RideKind, now_s: float) -> Offer | None:
        """The fleet's offer for a ride; a direct ride takes the nearest time a vehicle can serve."""
        try:
            quote = dispatcher.quote(request, now_s, count=1)
        except DispatchError:
            return None  # past, or the drive does not fit between the bounds
        if quote.offers:
            return quote.offers[0]
        if kind != "direct":
            return None
        if request.earliest_pickup_s is not None:
            later = [o for o in quote.alternatives if o.pickup_estimate_s >= request.earliest_pickup_s]
            return min(later, key=lambda o: o.pickup_estimate_s) if later else None
        assert request.latest_arrival_s is not None
        earlier = [o for o in quote.alternatives if o.dropoff_estimate_s <= request.latest_arrival_s]
        return max(earlier, key=lambda o: o.dropoff_estimate_s) if earlier else None

    def _local(self, epoch_s: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(round(epoch_s), self.timezone)


def plan_with_fleet(
    rides: FleetRides,
    request: PlanRequest,
    deadline: dt.datetime | None,
    passengers: Passengers,
    dispatcher: Dispatcher,
    now: dt.datetime,
) -> tuple[list[Itinerary], list[Candidate]]:
    """All of it in one thread, on a clock of the caller's (benchmarks, tests, the CLI): the plan's
    itineraries without rides, and those whose rides the fleet serves. The service runs the same
    steps with the router in worker threads and the fleet's part under its lock."""
    router = rides.router
    plan = router.plan_arriving_by(request, deadline) if deadline is not None else router.plan(request)
    plain, candidates = rides.candidates(plan, request, deadline, passengers, now)
    served: list[Candidate] = []
    for _ in range(1 + rides.rules.later_trains):
        if not candidates:
            break
        checked = rides.offers(candidates, dispatcher, now.timestamp())
        served += checked.served
        candidates = [c for m in checked.missed if (c := rides.later_trains(m, request, now)) is not None]
    return plain, served


def _earliest(request: Request) -> dt.datetime | None:
    if request.earliest_pickup_s is None:
        return None
    return dt.datetime.fromtimestamp(request.earliest_pickup_s, dt.UTC)


def pareto(itineraries: Sequence[Itinerary]) -> list[Itinerary]:
    """The itineraries no other beats: arriving no later, changing no more often, walking no further
    and riding on demand no longer, and better in one of them; sorted by arrival."""

    def key(it: Itinerary) -> tuple[float, int, float, float]:
        return (it.arrival.timestamp(), it.transfers, it.walk_m, ride_s(it))

    keys = [key(it) for it in itineraries]
    kept = []
    seen = set()
    for it, a in zip(itineraries, keys):
        if any(all(x <= y for x, y in zip(b, a)) and b != a for b in keys):
            continue
        if a in seen:
            continue  # the same journey found twice
        seen.add(a)
        kept.append(it)
    return sorted(kept, key=key)
