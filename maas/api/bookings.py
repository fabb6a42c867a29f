"""Riders and operators: quotes, bookings, cancellations, phone bookings."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody

from maas.auth import roles
from maas.booking import BookingService, Caller, Place, RideWish, offer_out
from maas.model import BookingRecord, User
from maas.served import network_header


class CancelBody(msgspec.Struct, frozen=True, kw_only=True):
    reason: str | None = None


class Reassignment(msgspec.Struct, frozen=True, kw_only=True):
    vehicle_id: uuid.UUID
    reason: str


class PhoneBooking(msgspec.Struct, frozen=True, kw_only=True):
    ride: RideWish
    caller: Caller


def booking_out(b: BookingRecord) -> dict[str, Any]:
    return {
        "id": str(b.id),
        "status": b.status,
        "rider_id": str(b.rider_id) if b.rider_id else None,
        "caller": {"name": b.caller_name, "phone": b.caller_phone} if b.caller_name else None,
        "vehicle_id": str(b.vehicle_id) if b.vehicle_id else None,
        "origin": {"lat": b.origin_lat, "lon": b.origin_lon},
        "destination": {"lat": b.destination_lat, "lon": b.destination_lon},
        "passengers": {"seated": b.seated, "wheelchairs": b.wheelchairs},
        "earliest_pickup": b.earliest_pickup.isoformat() if b.earliest_pickup else None,
        "latest_arrival": b.latest_arrival.isoformat() if b.latest_arrival else None,
        "pickup_window": {"earliest": b.pickup_earliest.isoformat(), "latest": b.pickup_latest.isoformat()},
        "dropoff_latest": b.dropoff_latest.isoformat(),
        "created_at": b.created_at.isoformat(),
    }


IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)]


class QuoteController(Controller):
    path = "/quotes"
    guards = [roles("rider", "operator", "admin")]

    @post("/", status_code=200)
    async def quote(
        self, request: Request[User, Any, Any], bookings: NamedDependency[BookingService], data: JSONBody[RideWish]
    ) -> Response[dict[str, Any]]:
        """Offers for an on-demand ride (cheapest first), or the nearest feasible earlier and later times.
        The `X-Maas-Network` header names the network that answered."""
        service = bookings
        quote = await service.quote(data)
        body = {
            "offers": [offer_out(o) for o in quote.offers],
            "alternatives": [offer_out(o) for o in quote.alternatives],
            "reason": quote.reason,
        }
        return Response(body, headers=network_header(service.serving.current))


class BookingController(Controller):
    path = "/bookings"

    @post("/", guards=[roles("rider")])
    async def book(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        data: JSONBody[RideWish],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[dict[str, Any]]:
        """Book the best offer; repeating the Idempotency-Key returns the same booking (200, not 201)."""
        booking, created = await bookings.book(request.user, data, idempotency_key)
        return Response(booking_out(booking), status_code=201 if created else 200)

    @get("/", guards=[roles("rider", "operator", "admin")])
    async def list_bookings(
        self, request: Request[User, Any, Any], bookings: NamedDependency[BookingService]
    ) -> list[dict[str, Any]]:
        """A rider's own bookings; every booking for operators."""
        return [booking_out(b) for b in await bookings.list(request.user)]

    @get("/{booking_id:uuid}", guards=[roles("rider", "operator", "admin")])
    async def get_booking(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        booking_id: FromPath[uuid.UUID],
    ) -> dict[str, Any]:
        return booking_out(await bookings.get(request.user, booking_id))

    @post("/{booking_id:uuid}/cancel", status_code=200, guards=[roles("rider", "operator", "admin")])
    async def cancel(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        booking_id: FromPath[uuid.UUID],
        data: JSONBody[CancelBody | None] = None,
    ) -> dict[str, Any]:
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
    ) -> Response[dict[str, Any]]:
        """Book for a phone caller (name and number, no app account)."""
        booking, created = await bookings.book(request.user, data.ride, idempotency_key, caller=data.caller)
        return Response(booking_out(booking), status_code=201 if created else 200)

    @post("/{booking_id:uuid}/reassign", status_code=200)
    async def reassign(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        booking_id: FromPath[uuid.UUID],
        data: JSONBody[Reassignment],
    ) -> dict[str, Any]:
        """Move a ride waiting for pickup to another vehicle, keeping its promise (409 if it cannot)."""
        return booking_out(await bookings.reassign(request.user, booking_id, data.vehicle_id, data.reason))


__all__ = ["BookingController", "OperatorBookingController", "Place", "QuoteController"]
