"""Riders and operators: quotes, bookings, cancellations, phone bookings."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from maas.auth import roles
from maas.booking import BookingService, Caller, OfferOut, Place, RideWish, offer_out
from maas.db.bookings import BookedConnection, BookingSearch, BookingSort, ConnectionFilter, ListedBooking
from maas.definition import check_plausible
from maas.driving import Schedules
from maas.errors import Invalid
from maas.model import BookingRecord, BookingStatus, User
from maas.served import network_header
from maas.wire import MAX_ID, PRINTABLE, Count, Text, Timestamp, iso, iso_or_none


class CancelBody(msgspec.Struct, frozen=True, kw_only=True):
    reason: Text | None = None


class Reassignment(msgspec.Struct, frozen=True, kw_only=True):
    vehicle_id: uuid.UUID
    reason: Text


class BookingBody(msgspec.Struct, frozen=True, kw_only=True):
    """Either the id of a quote's offer, or the ride itself (origin, destination, passengers, and
    earliest_pickup or latest_arrival), whose first offer is booked."""

    offer: uuid.UUID | None = None
    origin: Place | None = None
    destination: Place | None = None
    seated: Count = 1
    wheelchairs: Count = 0
    earliest_pickup: dt.datetime | None = None
    latest_arrival: dt.datetime | None = None

    def ride(self) -> RideWish | None:
        """The ride asked for, None when an offer is chosen; Invalid when the body is neither or both."""
        if self.offer is not None:
            if self.origin is not None or self.destination is not None:
                raise Invalid("give the id of a quote's offer or the ride, not both")
            return None
        if self.origin is None or self.destination is None:
            raise Invalid("give the id of a quote's offer (offer), or the ride's origin and destination")
        return plausible(
            RideWish(
                origin=self.origin,
                destination=self.destination,
                seated=self.seated,
                wheelchairs=self.wheelchairs,
                earliest_pickup=self.earliest_pickup,
                latest_arrival=self.latest_arrival,
            )
        )


def plausible(wish: RideWish) -> RideWish:
    """The ride, Invalid when its time lies too far from now to mean anything (the rules, such as how
    far ahead a ride may be booked, are checked later)."""
    now = dt.datetime.now(dt.UTC)
    for what, at in (("earliest_pickup", wish.earliest_pickup), ("latest_arrival", wish.latest_arrival)):
        if at is not None:
            check_plausible(at, what, now)
    return wish


class PhoneBooking(msgspec.Struct, frozen=True, kw_only=True):
    """A phone caller's ride, or the id of an offer the operator quoted for them."""

    caller: Caller
    ride: RideWish | None = None
    offer: uuid.UUID | None = None


class CallerOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None
    phone: str | None


class PassengersOut(msgspec.Struct, frozen=True, kw_only=True):
    seated: int
    wheelchairs: int


class BookingWindowOut(msgspec.Struct, frozen=True, kw_only=True):
    earliest: Timestamp
    latest: Timestamp


class ConnectionOut(msgspec.Struct, frozen=True, kw_only=True):
    """The train or bus a ride's promise is tied to."""

    kind: Literal["first_mile", "last_mile", "direct"]
    stop: str | None  # the station's namespaced GTFS stop id
    trip: str | None
    at: Timestamp | None  # its departure (first mile) or arrival (last mile) at the station
    change_s: int | None
    stop_name: str | None = None  # the station's name, as the booked itinerary names it
    route_name: str | None = None  # the train's or bus's route, as the booked itinerary names it


def connection_out(c: BookedConnection) -> ConnectionOut:
    return ConnectionOut(
        kind=c.kind,  # type: ignore[arg-type]  # the CHECK of migration 0019
        stop=c.stop,
        trip=c.trip,
        at=iso_or_none(c.at),
        change_s=c.change_s,
        stop_name=c.stop_name,
        route_name=c.route_name,
    )


class BookingOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    status: BookingStatus
    rider_id: uuid.UUID | None
    caller: CallerOut | None  # a phone booking's caller; None for a rider's own
    vehicle_id: uuid.UUID | None
    origin: Place
    destination: Place
    passengers: PassengersOut
    earliest_pickup: Timestamp | None
    latest_arrival: Timestamp | None
    pickup_window: BookingWindowOut
    dropoff_latest: Timestamp
    created_at: Timestamp
    # What a dispatcher's table shows (GET /bookings, GET /bookings/{id}); None where unknown or not told.
    rider_name: str | None = None  # the rider's name, to operators only; None for a phone booking
    vehicle_name: str | None = None
    journey_id: uuid.UUID | None = None  # the journey the ride is a leg of
    connection: ConnectionOut | None = None  # the train or bus the ride is tied to (None outside a journey)
    pickup_estimate: Timestamp | None = None  # the plan's time at the pickup, until the rider is picked up
    dropoff_estimate: Timestamp | None = None  # the plan's time at the drop-off, until the rider is dropped off


class QuoteOut(msgspec.Struct, frozen=True, kw_only=True):
    offers: list[OfferOut]  # closest to the asked time first: the soonest pickup, or the latest drop-off for arrive-by
    alternatives: list[OfferOut]  # the nearest feasible earlier and later times when there is no offer
    reason: str | None


def booking_out(
    b: BookingRecord,
    listed: ListedBooking | None = None,
    planned: Mapping[tuple[str, str], float | None] | None = None,
    staff: bool = False,
) -> BookingOut:
    """The booking on the wire; with what GET /bookings lists of it when `listed` is given, the rider's
    name only for `staff`, and the plan's times at its stops from `planned`."""
    planned = planned or {}
    pickup_s, dropoff_s = planned.get((str(b.id), "pickup")), planned.get((str(b.id), "dropoff"))
    return BookingOut(
        id=b.id,
        status=b.status,
        rider_id=b.rider_id,
        caller=CallerOut(name=b.caller_name, phone=b.caller_phone) if b.caller_name else None,
        vehicle_id=b.vehicle_id,
        origin=Place(lat=b.origin_lat, lon=b.origin_lon),
        destination=Place(lat=b.destination_lat, lon=b.destination_lon),
        passengers=PassengersOut(seated=b.seated, wheelchairs=b.wheelchairs),
        earliest_pickup=iso_or_none(b.earliest_pickup),
        latest_arrival=iso_or_none(b.latest_arrival),
        pickup_window=BookingWindowOut(earliest=iso(b.pickup_earliest), latest=iso(b.pickup_latest)),
        dropoff_latest=iso(b.dropoff_latest),
        created_at=iso(b.created_at),
        rider_name=listed.rider_name if listed is not None and staff else None,
        vehicle_name=listed.vehicle_name if listed is not None else None,
        journey_id=listed.journey_id if listed is not None else None,
        connection=connection_out(listed.connection) if listed is not None and listed.connection else None,
        pickup_estimate=None if pickup_s is None else iso(dt.datetime.fromtimestamp(pickup_s, dt.UTC)),
        dropoff_estimate=None if dropoff_s is None else iso(dt.datetime.fromtimestamp(dropoff_s, dt.UTC)),
    )


async def listed_out(user: User, schedules: Schedules, listed: list[ListedBooking]) -> list[BookingOut]:
    """Bookings as GET /bookings lists them, with the plan's times of those still waiting or on board."""
    planned = await schedules.planned(
        x.booking.shift_id
        for x in listed
        if x.booking.shift_id is not None and x.booking.status in ("confirmed", "picked_up")
    )
    staff = user.role in ("operator", "admin")
    return [booking_out(x.booking, x, planned, staff) for x in listed]


STATUSES = "|".join(get_args(BookingStatus))
StatusList = Annotated[
    str | None,
    QueryParameter(
        max_length=200,
        pattern=rf"^({STATUSES})(,({STATUSES}))*$",
        description="booking statuses, comma-separated: any of them matches",
    ),
]
# A search text: a caller's or rider's name, part of a phone number, or the start of an id.
SearchText = Annotated[
    str | None,
    QueryParameter(
        min_length=1,
        max_length=100,
        pattern=PRINTABLE,
        description="part of a caller's or rider's name or phone number, or the start of an id (any case)",
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="at most this many (a page)")]
Offset = Annotated[int, QueryParameter(ge=0, le=100_000, description="skip this many matches first")]
TOTAL_COUNT = ResponseHeader(
    name="X-Total-Count",
    documentation_only=True,
    description="How many match in all (the body is one page of them)",
)


def statuses(text: str | None) -> list[Any] | None:
    """The statuses of a comma-separated `status` parameter (its pattern allows only known ones)."""
    return None if text is None else sorted(set(text.split(",")))


def local_time(at: dt.datetime | None, zone: dt.tzinfo) -> dt.datetime | None:
    """A query's time; one without an offset is the network's local time (DESIGN.md)."""
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=zone)


SEARCHED_YEARS = 100  # a search time this far from now means nothing (and PostgreSQL stores years 1..9999)


def time_range(
    after: dt.datetime | None, before: dt.datetime | None, zone: dt.tzinfo
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """`from` and `to` with their offsets; Invalid naming the parameter when one lies more than a
    century from now, or `to` before `from`."""
    after, before = local_time(after, zone), local_time(before, zone)
    now = dt.datetime.now(dt.UTC)
    span = dt.timedelta(days=365 * SEARCHED_YEARS)
    for name, at in (("from", after), ("to", before)):
        if at is not None and not (now - span <= at <= now + span):
            raise Invalid(f"{name}: {at.isoformat()} lies more than {SEARCHED_YEARS} years from now")
    if after is not None and before is not None and before < after:
        raise Invalid(f"to: {before.isoformat()} lies before from ({after.isoformat()})")
    return after, before


def paged(body: list[Any], total: int) -> Response[Any]:
    return Response(body, headers={"X-Total-Count": str(total)})


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", required=False, min_length=1, max_length=MAX_ID, pattern=PRINTABLE),
]


class QuoteController(Controller):
    path = "/quotes"
    guards = [roles("rider", "operator", "admin")]

    @post("/", status_code=200)
    async def quote(
        self, request: Request[User, Any, Any], bookings: NamedDependency[BookingService], data: JSONBody[RideWish]
    ) -> Response[QuoteOut]:
        """Offers for an on-demand ride, closest to the asked time first (leave after: the soonest pickup;
        arrive by: the latest drop-off), each with an id to book it by until it expires; or the nearest
        feasible earlier and later times. The `X-Maas-Network` header names the network that answered."""
        quoted = await bookings.quote(request.user, plausible(data))
        quote, expires = quoted.quote, quoted.expires
        body = QuoteOut(
            offers=[offer_out(o, i, expires) for o, i in zip(quote.offers, quoted.offer_ids, strict=True)],
            alternatives=[
                offer_out(o, i, expires) for o, i in zip(quote.alternatives, quoted.alternative_ids, strict=True)
            ],
            reason=quote.reason,
        )
        return Response(body, headers=network_header(bookings.serving.current))


class BookingController(Controller):
    path = "/bookings"

    @post("/", guards=[roles("rider")])
    async def book(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        data: JSONBody[BookingBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BookingOut]:
        """Book a quote's offer by its id (`{"offer": id}`), or the first offer for the ride given;
        repeating the Idempotency-Key returns the same booking (200, not 201), with another request 422."""
        booking, created = await bookings.book(request.user, data.ride(), idempotency_key, offer_id=data.offer)
        return Response(booking_out(booking), status_code=201 if created else 200)

    @get("/", guards=[roles("rider", "operator", "admin")], response_headers=[TOTAL_COUNT])
    async def list_bookings(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        schedules: NamedDependency[Schedules],
        status: StatusList = None,
        q: SearchText = None,
        vehicle_id: FromQuery[uuid.UUID | None] = None,
        after: Annotated[
            dt.datetime | None, QueryParameter(name="from", description="the pickup window ends at or after")
        ] = None,
        before: Annotated[
            dt.datetime | None, QueryParameter(name="to", description="the pickup window begins at or before")
        ] = None,
        connection_kind: Annotated[
            ConnectionFilter | None,
            QueryParameter(
                name="connection",
                description="tied to a journey's train or bus: any, none, or only first_mile or last_mile",
            ),
        ] = None,
        sort: FromQuery[BookingSort] = "pickup",
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response[list[BookingOut]]:
        """A rider's own bookings; every booking for operators. Filtered by status (comma-separated),
        `q` (the caller's or rider's name or phone number, or the start of the booking's id), vehicle,
        pickup window overlapping `from`..`to` (a time without offset is the network's local time) and
        connection; sorted by `sort` (`-` for descending); one page of `limit` after `offset`, with the
        number of all matches in the X-Total-Count header."""
        after, before = time_range(after, before, bookings.serving.zone())
        search = BookingSearch(
            statuses=statuses(status),
            q=q,
            vehicle_id=vehicle_id,
            after=after,
            before=before,
            connection=connection_kind,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        page = await bookings.search(request.user, search)
        return paged(await listed_out(request.user, schedules, page.bookings), page.total)

    @get("/{booking_id:uuid}", guards=[roles("rider", "operator", "admin")])
    async def get_booking(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        schedules: NamedDependency[Schedules],
        booking_id: FromPath[uuid.UUID],
    ) -> BookingOut:
        """The booking as GET /bookings lists it."""
        listed = await bookings.get_listed(request.user, booking_id)
        return (await listed_out(request.user, schedules, [listed]))[0]

    @post("/{booking_id:uuid}/cancel", status_code=200, guards=[roles("rider", "operator", "admin")])
    async def cancel(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        booking_id: FromPath[uuid.UUID],
        data: JSONBody[CancelBody | None] = None,
    ) -> BookingOut:
        """Cancel a ride not yet picked up; an operator's reason goes into the audit log."""
        reason = data.reason if data else None
        return booking_out(await bookings.cancel(request.user, booking_id, reason))


class OperatorBookingController(Controller):
    path = "/operator/bookings"
    guards = [roles("operator", "admin")]

    @post("/")
    async def phone_booking(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        data: JSONBody[PhoneBooking],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[BookingOut]:
        """Book for a phone caller (name and number, no app account): the ride, or an offer quoted for it."""
        ride = None if data.ride is None else plausible(data.ride)
        booking, created = await bookings.book(
            request.user, ride, idempotency_key, caller=data.caller, offer_id=data.offer
        )
        return Response(booking_out(booking), status_code=201 if created else 200)

    @post("/{booking_id:uuid}/reassign", status_code=200)
    async def reassign(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        booking_id: FromPath[uuid.UUID],
        data: JSONBody[Reassignment],
    ) -> BookingOut:
        """Move a ride waiting for pickup to another vehicle, keeping its promise (409 if it cannot)."""
        return booking_out(await bookings.reassign(request.user, booking_id, data.vehicle_id, data.reason))


__all__ = ["BookingController", "OperatorBookingController", "Place", "QuoteController"]
