"""Riders and operators: quotes, bookings, cancellations, phone bookings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody

from maas.auth import roles
from maas.booking import BookingService, Caller, OfferOut, Place, RideWish, offer_out
from maas.definition import check_plausible
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


class QuoteOut(msgspec.Struct, frozen=True, kw_only=True):
    offers: list[OfferOut]  # closest to the asked time first: the soonest pickup, or the latest drop-off for arrive-by
    alternatives: list[OfferOut]  # the nearest feasible earlier and later times when there is no offer
    reason: str | None


def booking_out(b: BookingRecord) -> BookingOut:
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
    )


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

    @get("/", guards=[roles("rider", "operator", "admin")])
    async def list_bookings(
        self, request: Request[User, Any, Any], bookings: NamedDependency[BookingService]
    ) -> list[BookingOut]:
        """A rider's own bookings; every booking for operators."""
        return [booking_out(b) for b in await bookings.list(request.user)]

    @get("/{booking_id:uuid}", guards=[roles("rider", "operator", "admin")])
    async def get_booking(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        booking_id: FromPath[uuid.UUID],
    ) -> BookingOut:
        return booking_out(await bookings.get(request.user, booking_id))

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
