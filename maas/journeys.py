"""Door-to-door journeys with live on-demand legs: planned with the fleet's offers, kept so that a
rider can book what was shown, booked as one (every ride with its connection, or none), cancelled
as one.

A plan's on-demand legs come from `routing.plan.live.FleetRides`: optimistic rides in the router,
then an exact check of each against the vehicles' current plans, timed to its train. The itineraries
are stored (until their offers expire); booking one re-checks every ride against the plans under
the fleet lock and writes each ride with `maas_book`, the journey, its legs and its first event in
the same transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import msgspec

from maas.area import covers, polygon_of
from maas.booking import Caller
from maas.db import Connection, audit
from maas.db import fleet as fleet_repo
from maas.db import journeys as journey_repo
from maas.db.bookings import find_booking, utc
from maas.db.bookings import set_status as set_booking_status
from maas.db.database import Database
from maas.db.offers import EXPIRED_KEPT
from maas.definition import check_ride_time
from maas.errors import Conflict, Invalid, NotFound
from maas.fleet import FleetService, now_s
from maas.model import BookingRecord, JourneyEvent, JourneyLegRecord, JourneyRecord, ServiceDefinition, User
from maas.served import ServedNetwork, Serving
from maas.transit_rt import TransitRealtime
from routing.dispatch.model import DispatchError, Passengers
from routing.plan import Itinerary, Plan, PlanRequest, Router
from routing.plan.live import Candidate, FleetRides, LiveRules, Ride, pareto
from routing.plan.wire import RideOffer, Window

STAFF = ("operator", "admin")
# Journeys, not rides: a rider's whole party travels together.
MAX_PASSENGERS = 20


class Wish(msgspec.Struct, frozen=True, kw_only=True):
    """A plan request as kept with its itineraries: to plan again when one no longer fits."""

    request: PlanRequest
    arrive_by: bool
    seated: int = 1
    wheelchairs: int = 0


class JourneyDetails(msgspec.Struct, frozen=True, kw_only=True):
    journey: JourneyRecord
    itinerary: Itinerary
    legs: list[JourneyLegRecord]
    bookings: dict[uuid.UUID, BookingRecord]
    events: list[JourneyEvent]


class Planned(msgspec.Struct, frozen=True, kw_only=True):
    plan: Plan
    network_id: int | None


_itinerary = msgspec.json.Decoder(Itinerary)
_rides = msgspec.json.Decoder(list[Ride])
_wish = msgspec.json.Decoder(Wish)
_encode = msgspec.json.Encoder().encode


def _plan(router: Router, request: PlanRequest, arrive_by: bool) -> Plan:
    return router.plan_arriving_by(request, request.depart) if arrive_by else router.plan(request)


def _without_rides(plan: Plan) -> Plan:
    return Plan(itineraries=[it for it in plan.itineraries if not any(leg.mode == "on_demand" for leg in it.legs)])


def _replayed(known: JourneyRecord, itinerary_id: uuid.UUID, key: str, caller: Caller | None) -> JourneyRecord:
    """The journey an Idempotency-Key booked, if this request is its retry (same itinerary, same
    caller); Invalid when the key is reused for another one."""
    if known.itinerary_id != itinerary_id:
        raise Invalid(
            f"Idempotency-Key {key!r} was used for booking itinerary {known.itinerary_id}; use a new key for"
            " another itinerary"
        )
    if (known.caller_name, known.caller_phone) != ((caller.name, caller.phone) if caller else (None, None)):
        raise Invalid(f"Idempotency-Key {key!r} was used for booking this itinerary for another caller")
    return known


class JourneyService:
    def __init__(self, db: Database, serving: Serving, transit: TransitRealtime) -> None:
        self.db = db
        self.serving = serving
        self.transit = transit  # the trains' realtime times: journeys are planned on them

    # -- planning -------------------------------------------------------------------------------------
    async def plan(self, user: User, wish: Wish) -> Planned:
        """Itineraries with live offers for their on-demand legs, each kept under an id for booking."""
        if wish.seated < 0 or wish.wheelchairs < 0 or not 1 <= wish.seated + wish.wheelchairs <= MAX_PASSENGERS:
            raise Invalid(f"a journey is planned for 1 to {MAX_PASSENGERS} passengers")
        served = self.serving.current
        if served is None:
            raise Conflict("no network is served: set MAAS_NETWORK_DIR or publish a feed")
        async with self.db.pool.acquire() as conn:
            definition = await self.serving.definition(conn)
        itineraries = await self._itineraries(served, definition, wish)
        ttl = definition.rules.offer_ttl_s if definition is not None else 600
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
        kept: list[tuple[uuid.UUID, bytes, bytes]] = []
        answered: list[Itinerary] = []
        for it, rides in itineraries:
            itinerary_id = uuid.uuid4()
            shown = _with_offers(it, rides, itinerary_id, expires, served.router.timezone)
            kept.append((itinerary_id, _encode(shown), _encode(rides)))
            answered.append(shown)
        if kept:
            async with self.db.pool.acquire() as conn:
                await journey_repo.forget_itineraries(conn, dt.datetime.now(dt.UTC) - EXPIRED_KEPT)
                await journey_repo.save_itineraries(
                    conn,
                    user.id,
                    served.id,
                    definition.version if definition is not None else None,
                    expires,
                    _encode(wish),
                    kept,
                )
        return Planned(plan=Plan(itineraries=answered), network_id=served.id)

    async def _itineraries(
        self, served: ServedNetwork, definition: ServiceDefinition | None, wish: Wish
    ) -> list[tuple[Itinerary, list[Ride]]]:
        request = wish.request
        fleet = served.fleet
        router = served.router_for(definition) if definition is not None else None
        if fleet is None or router is None or definition is None:
            timetable_only = await self.transit.planning(served.router)
            plan = await asyncio.to_thread(_plan, timetable_only, request, wish.arrive_by)
            return [(it, []) for it in plan.itineraries]
        router = await self.transit.planning(router)
        plan = await asyncio.to_thread(_plan, router, request, wish.arrive_by)
        rules = definition.rules
        rides = FleetRides(
            router,
            LiveRules(
                change_s=rules.change_s,
                min_ride_m=rules.min_ride_m,
                virtual_stops=rules.stops == "virtual_stops",
                max_walk_to_stop_m=rules.virtual_stop_walk_m,
            ),
        )
        deadline = request.depart if wish.arrive_by else None
        now = dt.datetime.now(dt.UTC)
        not_before = now + dt.timedelta(seconds=rules.min_notice_s)
        plain, candidates = rides.candidates(
            plan, request, deadline, Passengers(seated=wish.seated, wheelchairs=wish.wheelchairs), not_before
        )
        served_rides: list[Candidate] = []
        for _ in range(1 + rides.rules.later_trains):
            if not candidates:
                break
            async with fleet.mutex, self.db.pool.acquire() as conn:
                fleet_version, _ = await fleet_repo.read_versions(conn)
                dispatcher = await fleet.current(conn, fleet_version)
                if dispatcher is None:
                    break  # no vehicle on shift: no ride is offered
                fleet.follow(rules)
                with fleet.guard():
                    checked = rides.offers(candidates, dispatcher, now_s())
            served_rides += [c for c in checked.served if _keeps_rules(c, definition, now, served)]
            later = await asyncio.gather(
                *(asyncio.to_thread(rides.later_trains, m, request, not_before) for m in checked.missed)
            )
            candidates = [c for c in later if c is not None]
        found: list[tuple[Itinerary, list[Ride]]] = [(it, []) for it in plain]
        found += [(c.itinerary, c.rides) for c in served_rides]
        best = pareto([it for it, _ in found])
        by_identity = {id(it): r for it, r in found}
        chosen = [(it, by_identity[id(it)]) for it in best]
        if deadline is None:
            chosen = [(it, r) for it, r in chosen if it.departure >= request.depart - dt.timedelta(seconds=1)]
        else:
            chosen = [(it, r) for it, r in chosen if it.arrival <= deadline]
        return chosen

    # -- booking ----------------------------------------------------------------------------------------
    async def book(
        self, user: User, itinerary_id: uuid.UUID, idempotency_key: str | None, caller: Caller | None = None
    ) -> tuple[JourneyRecord, bool]:
        """(journey, created): every ride of the itinerary booked with its connection's promise, or
        none (Conflict with the itineraries a new plan finds); for a phone `caller` (an operator books)
        the journey and its rides name the caller instead of the user. A repeated Idempotency-Key
        returns the first journey unchanged."""
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
            raise Invalid("Idempotency-Key must have 1 to 200 characters")
        async with self.db.pool.acquire() as conn:
            if idempotency_key is not None:
                known = await journey_repo.find_by_idempotency_key(conn, user.id, idempotency_key)
                if known is not None:
                    return _replayed(known, itinerary_id, idempotency_key, caller), False
            stored = await journey_repo.find_itinerary(conn, itinerary_id)
        if stored is None or (stored.owner_id != user.id and user.role not in STAFF):
            raise NotFound(f"no itinerary {itinerary_id}: plan again")
        wish = _wish.decode(stored.request)
        if stored.expires_at < dt.datetime.now(dt.UTC):
            raise await self._refusal(user, wish, f"the itinerary expired at {stored.expires_at.isoformat()}")
        itinerary = _itinerary.decode(stored.itinerary)
        rides = _rides.decode(stored.rides)
        if not rides:
            async with self.db.pool.acquire() as conn, conn.transaction():
                return await self._store(conn, user, itinerary_id, itinerary, rides, [], idempotency_key, caller)
        fleet = self.serving.fleet()
        if fleet is None:
            raise Conflict("no on-demand service is configured (serve a network built with --osm)")
        refusal = None
        async with fleet.changing(self.db.pool) as locked:
            if idempotency_key is not None:
                known = await journey_repo.find_by_idempotency_key(locked, user.id, idempotency_key)
                if known is not None:
                    return _replayed(known, itinerary_id, idempotency_key, caller), False
            if await journey_repo.find_by_itinerary(locked, itinerary_id) is not None:
                raise Conflict("this itinerary is booked already: see GET /journeys")
            fleet_version, area_version = await fleet_repo.read_versions(locked)
            definition = await self.serving.definition(locked, area_version)
            dispatcher = await fleet.current(locked, fleet_version)
            if dispatcher is None:
                refusal = "no vehicle is on shift"
            else:
                bookings = await self._book_rides(
                    locked, fleet, user, itinerary, rides, definition, area_version, caller
                )
                if isinstance(bookings, str):
                    refusal = bookings
                else:
                    return await self._store(
                        locked, user, itinerary_id, itinerary, rides, bookings, idempotency_key, caller
                    )
        raise await self._refusal(user, wish, refusal)

    async def _book_rides(
        self,
        conn: Connection,
        fleet: FleetService,
        user: User,
        itinerary: Itinerary,
        rides: list[Ride],
        definition: ServiceDefinition | None,
        area_version: int | None,
        caller: Caller | None,
    ) -> list[BookingRecord] | str:
        """Book every ride on the copy and store it (under the fleet lock held by the caller); the
        reason when one no longer fits (the copy is then dropped: the transaction rolls back)."""
        dispatcher = fleet.dispatcher
        assert dispatcher is not None
        area = polygon_of(definition.geometry) if definition is not None else None
        records = []
        now = now_s()
        for ride in rides:
            leg = itinerary.legs[ride.leg]
            if area is not None and not (
                covers(area, leg.from_.lat, leg.from_.lon) and covers(area, leg.to.lat, leg.to.lon)
            ):
                fleet.forget()
                return "the ride lies outside the service area in force"
            if ride.offer is None:
                fleet.forget()
                return "the itinerary has an on-demand leg without an offer"
            try:
                origin, destination = fleet.times.snap_many([leg.from_.lat, leg.to.lat], [leg.from_.lon, leg.to.lon])
                request = msgspec.structs.replace(ride.request, origin_node=origin, destination_node=destination)
                placed = dispatcher.book(ride.offer, request, now)
            except DispatchError:
                fleet.forget()
                return f"the on-demand leg from {leg.from_.name} to {leg.to.name} no longer fits any vehicle"
            record = BookingRecord(
                id=uuid.UUID(request.id),
                rider_id=user.id if caller is None else None,
                caller_name=caller.name if caller else None,
                caller_phone=caller.phone if caller else None,
                created_by=user.id,
                origin_lat=leg.from_.lat,
                origin_lon=leg.from_.lon,
                destination_lat=leg.to.lat,
                destination_lon=leg.to.lon,
                seated=request.passengers.seated,
                wheelchairs=request.passengers.wheelchairs,
                earliest_pickup=None if request.earliest_pickup_s is None else utc(request.earliest_pickup_s),
                latest_arrival=None if request.latest_arrival_s is None else utc(request.latest_arrival_s),
                status="confirmed",
                vehicle_id=fleet.shift_vehicle[placed.vehicle_id],
                shift_id=uuid.UUID(placed.vehicle_id),
                pickup_earliest=utc(placed.promise.pickup_earliest_s),
                pickup_latest=utc(placed.promise.pickup_latest_s),
                dropoff_latest=utc(placed.promise.dropoff_latest_s),
                created_at=dt.datetime.now(dt.UTC),
            )
            outcome = await fleet.book_ride(conn, record, area_version, None)
            if outcome.outcome != "booked":
                raise RuntimeError(f"maas_book answered {outcome.outcome!r} under the fleet lock")
            if caller is not None:  # audited as every phone booking (the log keeps no number: 0029)
                await audit.record(
                    conn, user.id, "phone_booking", str(record.id), {"caller": caller.name, "phone": caller.phone}
                )
            records.append(record)
        return records

    async def _store(
        self,
        conn: Connection,
        user: User,
        itinerary_id: uuid.UUID,
        itinerary: Itinerary,
        rides: list[Ride],
        bookings: list[BookingRecord],
        idempotency_key: str | None,
        caller: Caller | None,
    ) -> tuple[JourneyRecord, bool]:
        journey_id = uuid.uuid4()
        booked = {ride.leg: (ride, record) for ride, record in zip(rides, bookings, strict=True)}
        await journey_repo.insert_journey(
            conn,
            journey_id,
            user.id if caller is None else None,
            user.id,
            itinerary_id,
            itinerary.departure,
            itinerary.arrival,
            _encode(itinerary),
            idempotency_key,
            (caller.name, caller.phone) if caller else None,
        )
        for k, leg in enumerate(itinerary.legs):
            ride, record = booked.get(k, (None, None))
            connection = ride.connection if ride is not None else None
            await journey_repo.insert_leg(
                conn,
                JourneyLegRecord(
                    journey_id=journey_id,
                    leg=k,
                    mode=leg.mode,
                    booking_id=record.id if record is not None else None,
                    connection_kind=connection.kind if connection is not None else None,
                    connection_stop=connection.stop if connection is not None else None,
                    connection_trip=connection.trip if connection is not None else None,
                    connection_at=connection.at if connection is not None else None,
                    change_s=connection.change_s if connection is not None else None,
                ),
            )
        detail = "; ".join(
            f"{ride.connection.kind.replace('_', ' ')} ride {record.pickup_earliest:%H:%M}-{record.pickup_latest:%H:%M} UTC"
            + (
                f", for {ride.connection.route_name or ride.connection.trip} at {ride.connection.stop}"
                if ride.connection.kind != "direct"
                else ""
            )
            for ride, record in booked.values()
        )
        await journey_repo.add_event(conn, journey_id, "confirmed", detail or None, user.id)
        found = await journey_repo.find_journey(conn, journey_id)
        assert found is not None
        return found, True

    async def _refusal(self, user: User, wish: Wish, reason: str | None) -> Conflict:
        """The Conflict with the reason and the itineraries a new plan finds now."""
        planned = await self.plan(user, wish)
        return Conflict(
            f"{reason or 'the itinerary can no longer be booked'}: here are the itineraries that fit now",
            itineraries=msgspec.to_builtins(planned.plan.itineraries),
        )

    # -- reading and cancelling ------------------------------------------------------------------------
    async def get(self, user: User, journey_id: uuid.UUID) -> JourneyRecord:
        async with self.db.pool.acquire() as conn:
            journey = await journey_repo.find_journey(conn, journey_id)
        if journey is None or not (journey.rider_id == user.id or user.role in STAFF):
            raise NotFound(f"no journey {journey_id}")
        return journey

    async def details(self, journey: JourneyRecord) -> JourneyDetails:
        """A journey's legs, the bookings of its rides and its events."""
        # One snapshot: the journey's status, its rides and its events as one commit left them.
        async with self.db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            journey = await journey_repo.find_journey(conn, journey.id) or journey
            legs = await journey_repo.list_legs(conn, journey.id)
            bookings = {}
            for leg in legs:
                if leg.booking_id is not None:
                    found = await find_booking(conn, leg.booking_id)
                    if found is not None:
                        bookings[leg.booking_id] = found
            events = await journey_repo.list_events(conn, journey.id)
        return JourneyDetails(
            journey=journey, itinerary=_itinerary.decode(journey.itinerary), legs=legs, bookings=bookings, events=events
        )

    async def search(self, user: User, search: journey_repo.JourneySearch) -> journey_repo.JourneyPage:
        """A page of the journeys the search matches: a rider's own only, every journey for operators."""
        if user.role not in STAFF:
            search = msgspec.structs.replace(search, rider_id=user.id)
        async with self.db.pool.acquire() as conn:
            return await journey_repo.search(conn, search)

    async def cancel(self, user: User, journey_id: uuid.UUID, reason: str | None) -> JourneyRecord:
        """Cancel the journey: every ride not yet picked up is freed at once."""
        journey = await self.get(user, journey_id)
        if journey.status in ("cancelled", "completed"):
            raise Conflict(f"the journey is {journey.status}")
        fleet = self.serving.fleet()
        async with self.db.pool.acquire() as conn:
            legs = await journey_repo.list_legs(conn, journey_id)
        booking_ids = [leg.booking_id for leg in legs if leg.booking_id is not None]
        if booking_ids and fleet is None:
            raise Conflict("no on-demand service is configured (serve a network built with --osm)")
        if fleet is None:
            async with self.db.pool.acquire() as conn, conn.transaction():
                await self._cancelled(conn, user, journey_id, reason, [])
        else:
            async with fleet.changing(self.db.pool) as locked:
                dispatcher = await fleet.current(locked)
                touched: set[str] = set()
                freed = []
                for booking_id in booking_ids:
                    ride = dispatcher.rides.get(str(booking_id)) if dispatcher is not None else None
                    if dispatcher is None or ride is None or ride.status != "confirmed":
                        continue  # picked up, completed or gone already: nothing to free
                    touched.add(dispatcher.booking(str(booking_id)).vehicle_id)
                    dispatcher.cancel(str(booking_id))
                    await set_booking_status(locked, booking_id, "cancelled", user.id, reason or "journey cancelled")
                    freed.append(booking_id)
                await self._cancelled(locked, user, journey_id, reason, freed)
                if touched:
                    await fleet.commit(locked, touched)
        return await self.get(user, journey_id)

    async def _cancelled(
        self, conn: Connection, user: User, journey_id: uuid.UUID, reason: str | None, freed: list[uuid.UUID]
    ) -> None:
        await journey_repo.set_status(conn, journey_id, "cancelled")
        detail = f"{len(freed)} ride(s) freed" + (f": {reason}" if reason else "")
        await journey_repo.add_event(conn, journey_id, "cancelled", detail, user.id)


def _keeps_rules(candidate: Candidate, definition: ServiceDefinition, now: dt.datetime, served: ServedNetwork) -> bool:
    """Whether every ride of the itinerary lies inside the service's hours and booking rules."""
    for ride in candidate.rides:
        if ride.offer is None:
            return False
        pickup = utc(ride.offer.pickup_estimate_s)
        try:
            check_ride_time(definition.rules, pickup, now, pickup.astimezone(served.router.timezone))
        except Invalid:
            return False
    return True


def _with_offers(
    it: Itinerary, rides: list[Ride], itinerary_id: uuid.UUID, expires: dt.datetime, tz: dt.tzinfo
) -> Itinerary:
    """The itinerary as shown: its id, and each on-demand leg's offer."""
    legs = list(it.legs)
    for ride in rides:
        offer = ride.offer
        if offer is None:
            continue
        promise = offer.promise

        def local(epoch_s: float) -> dt.datetime:
            return dt.datetime.fromtimestamp(round(epoch_s), tz)

        legs[ride.leg] = msgspec.structs.replace(
            legs[ride.leg],
            offer=RideOffer(
                id=ride.request.id,
                expires=expires.astimezone(tz),
                pickup_window=Window(earliest=local(promise.pickup_earliest_s), latest=local(promise.pickup_latest_s)),
                dropoff_latest=local(promise.dropoff_latest_s),
                pickup_estimate=local(offer.pickup_estimate_s),
                dropoff_estimate=local(offer.dropoff_estimate_s),
            ),
        )
    return msgspec.structs.replace(it, id=str(itinerary_id), legs=legs)
