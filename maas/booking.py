"""Quotes, bookings and cancellations: each change commits together with the fleet's plans."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from typing import Any

import msgspec

from maas.alerts import delay_condition, resolve_alerts
from maas.area import covers, polygon_of
from maas.db import Connection, audit
from maas.db import bookings as booking_repo
from maas.db import fleet as fleet_repo
from maas.db import offers as offer_repo
from maas.db.database import Database
from maas.definition import check_ride, check_ride_time
from maas.errors import Conflict, Invalid, NotFound
from maas.fleet import FleetService, now_s
from maas.model import BookingRecord, ServiceDefinition, ServiceRules, User
from maas.served import ServedNetwork, Serving
from maas.wire import Count, Latitude, Longitude, Name, Phone, Timestamp, iso
from routing.dispatch.dispatcher import Booking, Offer, Quote
from routing.dispatch.model import DispatchError, Passengers, Request


class Place(msgspec.Struct, frozen=True, kw_only=True):
    lat: Latitude
    lon: Longitude


class RideWish(msgspec.Struct, frozen=True, kw_only=True):
    """What a rider asks for: from, to, who, and either a time to leave after or to arrive by."""

    origin: Place
    destination: Place
    seated: Count = 1
    wheelchairs: Count = 0
    earliest_pickup: dt.datetime | None = None
    latest_arrival: dt.datetime | None = None


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """A phone caller without an app account, booked by an operator."""

    name: Name
    phone: Phone


class Quoted(msgspec.Struct, frozen=True, kw_only=True):
    """A quote with the ids its offers and alternatives are kept under until `expires`."""

    quote: Quote
    offer_ids: list[uuid.UUID]
    alternative_ids: list[uuid.UUID]
    expires: dt.datetime


class NoRoom(Conflict):
    """No vehicle can take the ride: a refusal that carries the nearest feasible earlier and later
    offers, given ids before it reaches the rider."""

    def __init__(self, reason: str, offers: list[Offer]) -> None:
        super().__init__(reason, alternatives=[msgspec.to_builtins(offer_out(o)) for o in offers])
        self.offers = offers


_encode = msgspec.json.Encoder().encode
_wish = msgspec.json.Decoder(RideWish)
_offer = msgspec.json.Decoder(Offer)


def request_hash(wish: RideWish | None, offer_id: uuid.UUID | None, caller: Caller | None) -> str:
    """What a booking was asked with, as a digest: the same ride (times compared as instants) or the
    same offer, for the same caller."""
    if wish is not None:
        wish = msgspec.structs.replace(
            wish,
            earliest_pickup=wish.earliest_pickup.astimezone(dt.UTC) if wish.earliest_pickup else None,
            latest_arrival=wish.latest_arrival.astimezone(dt.UTC) if wish.latest_arrival else None,
        )
    return hashlib.sha256(_encode([wish, offer_id, caller])).hexdigest()


def _replayed(known: BookingRecord, digest: str, key: str) -> BookingRecord:
    """The booking an Idempotency-Key made, if this request is its retry; Invalid (422, as the IETF
    Idempotency-Key draft asks) when the key comes with another request."""
    if known.request_hash is not None and known.request_hash != digest:
        raise Invalid(
            f"Idempotency-Key {key!r} was used for another request (booking {known.id}); use a new key for a"
            " new booking"
        )
    return known


def _check(wish: RideWish) -> None:
    for place in (wish.origin, wish.destination):
        if not (-90 <= place.lat <= 90 and -180 <= place.lon <= 180):
            raise Invalid(f"{place.lat},{place.lon} is not a latitude,longitude")
    if (wish.earliest_pickup is None) == (wish.latest_arrival is None):
        raise Invalid("give either earliest_pickup or latest_arrival")
    when = wish.earliest_pickup or wish.latest_arrival
    if when is not None and when.tzinfo is None:
        raise Invalid("times need a UTC offset, e.g. 2026-11-27T09:10:00+01:00")
    if (
        wish.seated < 0
        or wish.wheelchairs < 0
        or wish.seated + wish.wheelchairs == 0
        or wish.seated + wish.wheelchairs > 20
    ):
        raise Invalid("a ride carries 1 to 20 passengers")


class _Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One booking being made: the ride, its request, and what identifies it for a retry."""

    wish: RideWish
    request: Request
    key: str | None
    digest: str
    offer_id: uuid.UUID | None
    chosen: Offer | None


# Plan-and-store rounds a booking tries on the process's copy before it queues for the fleet lock.
BOOK_ATTEMPTS = 4
FORGET_EVERY_S = 60.0  # how often offers expired for a day are deleted, at most (by a process keeping offers)
_UNREAD = object()  # the service area has not been read yet


class BookingService:
    def __init__(self, db: Database, serving: Serving) -> None:
        self.db = db
        self.serving = serving  # the fleet's copy of the plans is the served network's
        self._area: tuple[Any, Any] = (_UNREAD, None)  # (version or None when no area is set, prepared polygon)
        self._forget_after = 0.0  # time.monotonic() from which old offers are deleted again

    async def _check_service(
        self, conn: Connection, fleet: FleetService, wish: RideWish, version: int | bool | None = False
    ) -> RideWish:
        """Refuse rides that break the service definition in force (if one is set): outside its area,
        its hours or its booking rules; its ride rules become the fleet's. The ride as it will be
        driven: from and to the nearest virtual stops when the service is stop-based. `version`: the
        definition's version when already read, else it is read here."""
        definition = await self.serving.definition(conn, version)
        riders = wish.seated + wish.wheelchairs
        places = (wish.origin.lat, wish.origin.lon), (wish.destination.lat, wish.destination.lon)
        check_ride(definition.rules if definition is not None else ServiceRules(), *places, riders)
        if definition is None:
            self._area = (None, None)
            return wish
        self._check_area(definition, wish)
        fleet.follow(definition.rules)
        when = wish.earliest_pickup or wish.latest_arrival
        served = self.serving.current
        if when is not None and served is not None:
            now = dt.datetime.now(dt.UTC)
            check_ride_time(definition.rules, when, now, when.astimezone(served.router.timezone))
        if definition.rules.stops == "virtual_stops" and served is not None:
            return _at_virtual_stops(served, definition, wish)
        return wish

    def _check_area(self, definition: ServiceDefinition, wish: RideWish) -> None:
        """Refuse a ride that starts or ends outside the definition's area, naming the area."""
        if self._area[0] != definition.version:
            self._area = (definition.version, polygon_of(definition.geometry))
        for what, place in (("start", wish.origin), ("end", wish.destination)):
            if not covers(self._area[1], place.lat, place.lon):
                raise Invalid(
                    f"the ride's {what} {place.lat},{place.lon} lies outside the service area {definition.name}"
                )

    async def _snapped(
        self, fleet: FleetService, request_id: str, wish: RideWish, conn: Connection | None = None
    ) -> Request:
        """`_request`; a place too far from a road is refused for lying outside the service area when
        it does: that is the cause (a place outside the network is far from every road too). `conn`: the
        caller's connection, if it holds one."""
        try:
            return self._request(fleet, request_id, wish)
        except DispatchError:
            if conn is None:
                async with self.db.pool.acquire() as own:
                    definition = await self.serving.definition(own)
            else:
                definition = await self.serving.definition(conn)
            if definition is not None:
                self._check_area(definition, wish)
            raise

    def _fleet(self) -> FleetService:
        fleet = self.serving.fleet()
        if fleet is None:
            raise Conflict("no on-demand service is configured (serve a network built with --osm)")
        return fleet

    def _request(self, fleet: FleetService, request_id: str, wish: RideWish) -> Request:
        _check(wish)
        origin, destination = fleet.times.snap_many(
            [wish.origin.lat, wish.destination.lat], [wish.origin.lon, wish.destination.lon]
        )
        return Request(
            id=request_id,
            origin_node=origin,
            destination_node=destination,
            passengers=Passengers(seated=wish.seated, wheelchairs=wish.wheelchairs),
            earliest_pickup_s=wish.earliest_pickup.timestamp() if wish.earliest_pickup else None,
            latest_arrival_s=wish.latest_arrival.timestamp() if wish.latest_arrival else None,
        )

    async def quote(self, user: User, wish: RideWish) -> Quoted:
        """Offers for the ride, closest to the asked time first, each kept under an id until the
        service's `offer_ttl_s` has passed."""
        fleet = self._fleet()
        request = await self._snapped(fleet, f"quote-{uuid.uuid4()}", wish)
        async with fleet.mutex, self.db.pool.acquire() as conn:
            # Nothing is written, so the copy need not be locked: it is as current as the last commit.
            fleet_version, area_version = await fleet_repo.read_versions(conn)
            driven = await self._check_service(conn, fleet, wish, area_version)
            if driven is not wish:
                request = self._request(fleet, request.id, driven)
            dispatcher = await fleet.current(conn, fleet_version)
            if dispatcher is None:
                quote = Quote(request_id=request.id, offers=[], alternatives=[], reason="no vehicle is on shift")
            else:
                quote = dispatcher.quote(request, now_s())
            definition = await self.serving.definition(conn, area_version)
            rules = definition.rules if definition is not None else ServiceRules()
        async with self.db.pool.acquire() as conn:
            offer_ids, expires = await self._keep(conn, user, wish, quote.offers + quote.alternatives, rules)
        return Quoted(
            quote=quote,
            offer_ids=offer_ids[: len(quote.offers)],
            alternative_ids=offer_ids[len(quote.offers) :],
            expires=expires,
        )

    async def _keep(
        self, conn: Connection, user: User, wish: RideWish, offers: list[Offer], rules: ServiceRules | None = None
    ) -> tuple[list[uuid.UUID], dt.datetime]:
        """Keep offers for booking by id: their ids and when they expire."""
        now = dt.datetime.now(dt.UTC)
        if rules is None:
            definition = await self.serving.definition(conn)
            rules = definition.rules if definition is not None else ServiceRules()
        expires = now + dt.timedelta(seconds=rules.offer_ttl_s)
        ids = [uuid.uuid4() for _ in offers]
        if offers:
            if time.monotonic() >= self._forget_after:  # not on every refusal: one statement less each time
                self._forget_after = time.monotonic() + FORGET_EVERY_S
                await offer_repo.forget_offers(conn, now - offer_repo.EXPIRED_KEPT)
            await offer_repo.save_offers(
                conn, user.id, _encode(wish), expires, [(i, _encode(o)) for i, o in zip(ids, offers, strict=True)]
            )
        return ids, expires

    async def _refusal(
        self, conn: Connection, user: User, wish: RideWish, refused: NoRoom, rules: ServiceRules | None = None
    ) -> Conflict:
        """The refusal as the rider sees it: its alternatives kept under ids to book them by."""
        ids, expires = await self._keep(conn, user, wish, refused.offers, rules)
        return Conflict(
            str(refused),
            alternatives=[
                msgspec.to_builtins(offer_out(o, i, expires)) for o, i in zip(refused.offers, ids, strict=True)
            ],
        )

    async def _chosen(self, conn: Connection, user: User, offer_id: uuid.UUID) -> tuple[RideWish, Offer]:
        """The ride and the offer kept under `offer_id`: NotFound unless the user asked for it (or is
        staff), Conflict once it expired."""
        stored = await offer_repo.find_offer(conn, offer_id)
        booked = await booking_repo.find_by_offer(conn, offer_id)
        if stored is None or (stored.created_by != user.id and user.role not in ("operator", "admin")):
            raise NotFound(f"no offer {offer_id}: ask for a quote (POST /quotes)")
        if booked is not None:
            raise Conflict(f"offer {offer_id} is booked already (booking {booked.id}): ask for a new quote")
        if stored.expires_at < dt.datetime.now(dt.UTC):
            raise Conflict(f"the offer expired at {stored.expires_at.isoformat()}: ask for a new quote (POST /quotes)")
        return _wish.decode(stored.wish), _offer.decode(stored.offer)

    async def book(
        self,
        user: User,
        wish: RideWish | None,
        idempotency_key: str | None,
        caller: Caller | None = None,
        offer_id: uuid.UUID | None = None,
    ) -> tuple[BookingRecord, bool]:
        """(booking, created) of the ride `wish` (its first offer) or of the quote's offer `offer_id`. A
        repeated Idempotency-Key returns the first booking unchanged; with another request, Invalid."""
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
            raise Invalid("Idempotency-Key must have 1 to 200 characters")
        if (wish is None) == (offer_id is None):
            raise Invalid("give either the ride (origin, destination, a time) or the id of a quote's offer")
        digest = request_hash(wish, offer_id, caller)
        async with self.db.pool.acquire() as conn:
            seen = await booking_repo.find_with_versions(conn, user.id, idempotency_key)
            if (
                seen.known is not None and idempotency_key is not None
            ):  # a retry books nothing, even once its offer expired
                return _replayed(seen.known, digest, idempotency_key), False
            chosen: Offer | None = None
            if offer_id is not None:
                wish, chosen = await self._chosen(conn, user, offer_id)
            assert wish is not None
            fleet = self._fleet()
            request = await self._snapped(fleet, str(uuid.uuid4()), wish, conn)
            attempt = _Attempt(
                wish=wish, request=request, key=idempotency_key, digest=digest, offer_id=offer_id, chosen=chosen
            )
            try:
                await self._refuse_at_once(conn, fleet, attempt, seen)
            except NoRoom as refused:
                definition = await self.serving.definition(conn, seen.area_version)
                rules = definition.rules if definition is not None else ServiceRules()
                raise await self._refusal(conn, user, wish, refused, rules) from None
        try:
            found = None
            # A phone booking is audited in the same transaction as it is stored: it takes the lock.
            if caller is None:
                found = await self._book_on_copy(fleet, user, attempt)
            return found or await self._book_locked(fleet, user, attempt, caller)
        except NoRoom as refused:
            async with self.db.pool.acquire() as conn:
                raise await self._refusal(conn, user, wish, refused) from None

    async def _refuse_at_once(
        self, conn: Connection, fleet: FleetService, attempt: _Attempt, seen: booking_repo.KeyAndVersions
    ) -> None:
        """Refuse a ride that does not fit on this process's copy while the copy holds the plans of the
        versions `seen` (read with the attempt's key, which had booked nothing then), without queueing for
        the copy or the fleet lock; return when the ride may fit or the copy is behind: it is booked then."""
        driven = await self._check_service(conn, fleet, attempt.wish, seen.area_version)
        request = attempt.request if driven is attempt.wish else self._request(fleet, attempt.request.id, driven)
        # From here to the end of the trial nothing awaits: no other coroutine changes the copy meanwhile.
        if fleet.holds(seen.fleet_version):
            placed = self._placed(fleet, request, attempt)
            assert fleet.dispatcher is not None
            fleet.dispatcher.withdraw(placed.id)  # a trial: the ride is booked under the mutex, as every booking

    async def _replay_or(
        self, conn: Connection, user: User, attempt: _Attempt, refusal: Conflict | Invalid
    ) -> tuple[BookingRecord, bool]:
        """The booking the attempt's key made (a twin booked it when there was room), else the refusal."""
        key = attempt.key
        known = await booking_repo.find_by_idempotency_key(conn, user.id, key) if key is not None else None
        if known is not None and key is not None:
            return _replayed(known, attempt.digest, key), False
        raise refusal

    async def _book_on_copy(
        self, fleet: FleetService, user: User, attempt: _Attempt
    ) -> tuple[BookingRecord, bool] | None:
        """Book on this process's copy and store in one call (`maas_book`); None when other processes
        kept changing the chosen shift for BOOK_ATTEMPTS rounds."""
        wish, request, key = attempt.wish, attempt.request, attempt.key
        async with fleet.mutex, self.db.pool.acquire() as conn:
            # When the copy turned out stale it has been re-read: plan again.
            with fleet.guard():
                fresh = False
                for _ in range(BOOK_ATTEMPTS):
                    if fresh or fleet.dispatcher is None or self._area[0] is _UNREAD:
                        fleet_version, area_version = await fleet_repo.read_versions(conn)
                        await fleet.current(conn, fleet_version)
                        fresh = True
                    else:
                        area_version = self._area[0]
                    try:
                        driven = await self._check_service(conn, fleet, wish, area_version)
                        moved = request if driven is wish else self._request(fleet, request.id, driven)
                        record = self._plan(fleet, user, driven, moved, None, attempt)
                        outcome = await fleet.book_ride(conn, record, area_version, key)
                    except (Conflict, Invalid) as refusal:
                        if fresh:
                            return await self._replay_or(conn, user, attempt, refusal)
                        fresh = True  # refuse only on a copy as current as the last commit
                        continue
                    if outcome.outcome == "booked":
                        return record, True
                    if outcome.outcome == "replay":
                        known = await booking_repo.find_booking(conn, outcome.known) if outcome.known else None
                        if known is not None and key is not None:
                            return _replayed(known, attempt.digest, key), False
                    if outcome.outcome == "area":
                        self._area = (_UNREAD, None)
        return None  # other processes kept changing the same shift: wait for the lock like every other change

    def _plan(
        self,
        fleet: FleetService,
        user: User,
        wish: RideWish,
        request: Request,
        caller: Caller | None,
        attempt: _Attempt,
    ) -> BookingRecord:
        """Book the chosen offer, or the first of a new quote, on the copy: the record to store, or
        NoRoom with the nearest alternatives."""
        placed = self._placed(fleet, request, attempt)
        shift = placed.vehicle_id
        return BookingRecord(
            id=uuid.UUID(request.id),
            rider_id=user.id if caller is None else None,
            caller_name=caller.name if caller else None,
            caller_phone=caller.phone if caller else None,
            created_by=user.id,
            origin_lat=wish.origin.lat,
            origin_lon=wish.origin.lon,
            destination_lat=wish.destination.lat,
            destination_lon=wish.destination.lon,
            seated=wish.seated,
            wheelchairs=wish.wheelchairs,
            earliest_pickup=wish.earliest_pickup,
            latest_arrival=wish.latest_arrival,
            status="confirmed",
            vehicle_id=fleet.shift_vehicle[shift],
            shift_id=uuid.UUID(shift),
            pickup_earliest=booking_repo.utc(placed.promise.pickup_earliest_s),
            pickup_latest=booking_repo.utc(placed.promise.pickup_latest_s),
            dropoff_latest=booking_repo.utc(placed.promise.dropoff_latest_s),
            created_at=dt.datetime.now(dt.UTC),
            offer_id=attempt.offer_id,
            request_hash=attempt.digest,
        )

    @staticmethod
    def _placed(fleet: FleetService, request: Request, attempt: _Attempt) -> Booking:
        """The ride booked on the copy: the chosen offer, or the first of a new quote; NoRoom with the
        nearest alternatives when it does not fit."""
        dispatcher = fleet.dispatcher
        if dispatcher is None:
            raise NoRoom("no vehicle is on shift", [])
        now = now_s()
        if attempt.chosen is not None:
            try:
                return dispatcher.book(msgspec.structs.replace(attempt.chosen, request_id=request.id), request, now)
            except DispatchError:
                quote = dispatcher.quote(request, now)
                raise NoRoom(
                    "the chosen offer no longer fits the vehicles' plans: here are the ones that do",
                    quote.offers or quote.alternatives,
                ) from None
        quote = dispatcher.quote(request, now)
        if not quote.offers:
            raise NoRoom(quote.reason or "no vehicle can serve this ride", quote.alternatives)
        return dispatcher.book(quote.offers[0], request, now)

    async def _book_locked(
        self, fleet: FleetService, user: User, attempt: _Attempt, caller: Caller | None
    ) -> tuple[BookingRecord, bool]:
        """Book inside one transaction that holds the fleet lock throughout."""
        wish, request, key = attempt.wish, attempt.request, attempt.key
        async with fleet.changing(self.db.pool) as conn:
            fleet_version, area_version = await fleet_repo.read_versions(conn)
            if key is not None:  # a replay, or a concurrent twin that committed first
                known = await booking_repo.find_by_idempotency_key(conn, user.id, key)
                if known is not None:
                    return _replayed(known, attempt.digest, key), False
            driven = await self._check_service(conn, fleet, wish, area_version)
            if driven is not wish:
                request = self._request(fleet, request.id, driven)
            await fleet.current(conn, fleet_version)
            record = self._plan(fleet, user, driven, request, caller, attempt)
            # The one way a booking is written (as on the copy): maas_book, here under the lock already held,
            # so the copy it checks is the one just read.
            outcome = await fleet.book_ride(conn, record, area_version, key)
            if outcome.outcome != "booked":
                raise RuntimeError(f"maas_book answered {outcome.outcome!r} under the fleet lock")
            if caller is not None:
                await audit.record(
                    conn, user.id, "phone_booking", str(record.id), {"caller": caller.name, "phone": caller.phone}
                )
        return record, True

    async def get(self, user: User, booking_id: uuid.UUID) -> BookingRecord:
        async with self.db.pool.acquire() as conn:
            booking = await booking_repo.find_booking(conn, booking_id)
        if booking is None or not _may_see(user, booking):
            raise NotFound(f"no booking {booking_id}")
        return booking

    async def search(self, user: User, search: booking_repo.BookingSearch) -> booking_repo.BookingPage:
        """A page of the bookings the search matches: a rider's own only, every booking for operators."""
        if user.role not in ("operator", "admin"):
            search = msgspec.structs.replace(search, rider_id=user.id)
        async with self.db.pool.acquire() as conn:
            return await booking_repo.search(conn, search)

    async def get_listed(self, user: User, booking_id: uuid.UUID) -> booking_repo.ListedBooking:
        """The booking with its names and connection, as GET /bookings lists it."""
        async with self.db.pool.acquire() as conn:
            listed = await booking_repo.find_listed(conn, booking_id)
        if listed is None or not _may_see(user, listed.booking):
            raise NotFound(f"no booking {booking_id}")
        return listed

    async def cancel(self, user: User, booking_id: uuid.UUID, reason: str | None) -> BookingRecord:
        fleet = self._fleet()
        async with fleet.changing(self.db.pool) as conn:
            booking = await booking_repo.find_booking(conn, booking_id)
            if booking is None or not _may_see(user, booking):
                raise NotFound(f"no booking {booking_id}")
            if booking.status != "confirmed":
                raise Conflict(f"the booking is {booking.status}; only a confirmed ride can be cancelled")
            dispatcher = await fleet.current(conn)
            if dispatcher is not None and str(booking_id) in dispatcher.rides:
                dispatcher.cancel(str(booking_id))
            await booking_repo.set_status(conn, booking_id, "cancelled", user.id, reason)
            await resolve_alerts(conn, booking_id, ["%"], f"the booking was cancelled by its {user.role}")
            if user.role in ("operator", "admin"):
                await audit.record(conn, user.id, "cancel_booking", str(booking_id), {"reason": reason})
            if dispatcher is not None and booking.shift_id is not None:
                await fleet.commit(conn, {str(booking.shift_id)})
        return msgspec.structs.replace(booking, status="cancelled")

    async def reassign(self, user: User, booking_id: uuid.UUID, vehicle_id: uuid.UUID, reason: str) -> BookingRecord:
        """Move a confirmed ride to another vehicle (an operator's decision, audited); 409 if its promise
        cannot be kept there."""
        if not reason.strip():
            raise Invalid("a reassignment needs a reason")
        fleet = self._fleet()
        async with fleet.changing(self.db.pool) as conn:
            booking = await booking_repo.find_booking(conn, booking_id)
            if booking is None:
                raise NotFound(f"no booking {booking_id}")
            if booking.status != "confirmed":
                raise Conflict(f"the booking is {booking.status}; only a ride waiting for pickup moves")
            dispatcher = await fleet.current(conn)
            shifts = [s for s, v in fleet.shift_vehicle.items() if v == vehicle_id]
            if dispatcher is None or not shifts:
                raise Conflict(f"vehicle {vehicle_id} has no current shift")
            errors = []
            for shift in shifts:
                try:
                    dispatcher.reassign(str(booking_id), shift, now_s())
                except DispatchError as exc:
                    errors.append(str(exc))
                    continue
                await booking_repo.set_vehicle(conn, booking_id, vehicle_id, uuid.UUID(shift))
                await booking_repo.add_event(
                    conn, booking_id, "confirmed", user.id, f"reassigned to vehicle {vehicle_id}: {reason}"
                )
                await audit.record(
                    conn, user.id, "reassign_booking", str(booking_id), {"vehicle": str(vehicle_id), "reason": reason}
                )
                # Another vehicle: its delay is another estimate. (A broken connection stays: the promise
                # is the same on any vehicle.)
                await resolve_alerts(conn, booking_id, [delay_condition("%")], f"reassigned to vehicle {vehicle_id}")
                await fleet.commit(conn, {shift, str(booking.shift_id)})
                return msgspec.structs.replace(booking, vehicle_id=vehicle_id, shift_id=uuid.UUID(shift))
            raise Conflict(errors[0] if errors else "the ride does not fit that vehicle")


def _at_virtual_stops(served: ServedNetwork, definition: ServiceDefinition, wish: RideWish) -> RideWish:
    """The ride from and to the virtual stops nearest its door (Invalid when none is near enough)."""
    router = served.router_for(definition)
    estimator = router.on_demand if router is not None else None
    if estimator is None:
        return wish
    tt = served.network.timetable
    reach = definition.rules.virtual_stop_walk_m
    places = []
    for what, place in (("start", wish.origin), ("end", wish.destination)):
        stop = estimator.nearest_stop(place.lat, place.lon, reach)
        if stop is None:
            raise Invalid(f"the ride's {what} {place.lat},{place.lon} has no stop of the service within {reach:.0f} m")
        places.append(Place(lat=float(tt.stop_lat[stop]), lon=float(tt.stop_lon[stop])))
    return msgspec.structs.replace(wish, origin=places[0], destination=places[1])


def _may_see(user: User, booking: BookingRecord) -> bool:
    return user.role in ("operator", "admin") or booking.rider_id == user.id


class WindowOut(msgspec.Struct, frozen=True, kw_only=True):
    """A promised time window; a drop-off window has no earliest time."""

    earliest: Timestamp | None
    latest: Timestamp


class OfferOut(msgspec.Struct, frozen=True, kw_only=True):
    """An offer as riders see it: what is promised and what is expected, and the id to book it by until
    it expires (the wire of /quotes and of a refused booking's alternatives, so declared here where the
    refusal is raised)."""

    id: uuid.UUID | None  # None only inside a refusal not yet answered
    expires: Timestamp | None
    pickup_window: WindowOut
    dropoff_latest: Timestamp
    pickup_estimate: Timestamp
    dropoff_estimate: Timestamp


def offer_out(offer: Offer, offer_id: uuid.UUID | None = None, expires: dt.datetime | None = None) -> OfferOut:
    utc = booking_repo.utc
    return OfferOut(
        id=offer_id,
        expires=iso(expires) if expires is not None else None,
        pickup_window=WindowOut(
            earliest=iso(utc(offer.promise.pickup_earliest_s)), latest=iso(utc(offer.promise.pickup_latest_s))
        ),
        dropoff_latest=iso(utc(offer.promise.dropoff_latest_s)),
        pickup_estimate=iso(utc(offer.pickup_estimate_s)),
        dropoff_estimate=iso(utc(offer.dropoff_estimate_s)),
    )


__all__ = ["BookingService", "Caller", "DispatchError", "OfferOut", "Place", "RideWish", "WindowOut", "offer_out"]
