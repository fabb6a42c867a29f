"""Riders: door-to-door plans whose on-demand legs are live offers, and journeys booked from them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, get_args

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from maas.api.bookings import (
    TOTAL_COUNT,
    BookingWindowOut,
    CallerOut,
    ConnectionOut,
    IdempotencyKey,
    Limit,
    Offset,
    SearchText,
    paged,
    statuses,
)
from maas.api.live import ride_view
from maas.auth import roles
from maas.db.journeys import JourneySearch, JourneySort
from maas.driving import Schedules
from maas.eta import Etas, EtaSource
from maas.journeys import JourneyDetails, JourneyService
from maas.model import BookingStatus, JourneyStatus, User
from maas.wire import Text, Timestamp, iso, iso_or_none
from routing.plan import Place

_STATUSES = "|".join(get_args(JourneyStatus))
JourneyStatuses = Annotated[
    str | None,
    QueryParameter(
        max_length=200,
        pattern=rf"^({_STATUSES})(,({_STATUSES}))*$",
        description="journey statuses, comma-separated: any of them matches",
    ),
]


class JourneyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    itinerary: uuid.UUID  # the id of an itinerary of GET /plan


class CancelJourney(msgspec.Struct, frozen=True, kw_only=True):
    reason: Text | None = None


class RideOut(msgspec.Struct, frozen=True, kw_only=True):
    """An on-demand leg's booking, its promise and where its vehicle is."""

    booking_id: uuid.UUID
    status: BookingStatus
    vehicle_id: uuid.UUID | None
    pickup_window: BookingWindowOut
    dropoff_latest: Timestamp
    eta: Timestamp | None  # the vehicle's expected arrival at the rider's next stop (GPS when fresh, else plan)
    eta_stop: Literal["pickup", "dropoff"] | None
    connection: ConnectionOut
    eta_source: EtaSource | None = None
    planned_at: Timestamp | None = None  # the plan's time at that stop


class JourneyLegOut(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    mode: str
    from_: Place
    to: Place
    departure: Timestamp
    arrival: Timestamp
    route_name: str | None
    trip: str | None
    ride: RideOut | None  # on-demand legs


class JourneyEventOut(msgspec.Struct, frozen=True, kw_only=True):
    at: Timestamp
    kind: str
    detail: str | None


class JourneyOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    itinerary_id: uuid.UUID
    status: JourneyStatus
    departure: Timestamp
    arrival: Timestamp
    legs: list[JourneyLegOut]
    events: list[JourneyEventOut]
    created_at: Timestamp
    caller: CallerOut | None = None  # a phone caller's journey (POST /operator/journeys): whom it is for


async def journey_out(details: JourneyDetails, etas: Etas, schedules: Schedules) -> JourneyOut:
    journey, itinerary = details.journey, details.itinerary
    legs = []
    for record, leg in zip(details.legs, itinerary.legs, strict=False):
        ride = None
        trip = next((x for x in itinerary.legs if record.connection_trip and x.trip == record.connection_trip), None)
        stop_name = None
        if trip is not None:
            stop_name = trip.from_.name if record.connection_kind == "first_mile" else trip.to.name
        booking = details.bookings.get(record.booking_id) if record.booking_id is not None else None
        if booking is not None:
            view = await ride_view(etas, schedules, booking)
            ride = RideOut(
                booking_id=booking.id,
                status=booking.status,
                vehicle_id=booking.vehicle_id,
                pickup_window=BookingWindowOut(
                    earliest=iso(booking.pickup_earliest), latest=iso(booking.pickup_latest)
                ),
                dropoff_latest=iso(booking.dropoff_latest),
                eta=view.eta,
                eta_stop=view.eta_stop,
                eta_source=view.eta_source,
                planned_at=view.planned_at,
                connection=ConnectionOut(
                    kind=record.connection_kind or "direct",  # type: ignore[arg-type]  # the CHECK of 0019
                    stop=record.connection_stop,
                    trip=record.connection_trip,
                    at=iso_or_none(record.connection_at),
                    change_s=record.change_s,
                    stop_name=stop_name,
                    route_name=trip.route_name if trip is not None else None,
                ),
            )
        legs.append(
            JourneyLegOut(
                mode=leg.mode,
                from_=leg.from_,
                to=leg.to,
                departure=iso(leg.departure),
                arrival=iso(leg.arrival),
                route_name=leg.route_name,
                trip=leg.trip,
                ride=ride,
            )
        )
    return JourneyOut(
        id=journey.id,
        itinerary_id=journey.itinerary_id,
        status=journey.status,
        departure=iso(journey.departure),
        arrival=iso(journey.arrival),
        legs=legs,
        events=[JourneyEventOut(at=iso(e.at), kind=e.kind, detail=e.detail) for e in details.events],
        created_at=iso(journey.created_at),
        caller=CallerOut(name=journey.caller_name, phone=journey.caller_phone) if journey.caller_name else None,
    )


class JourneyController(Controller):
    path = "/journeys"

    @post("/", guards=[roles("rider")])
    async def book(
        self,
        request: Request[User, Any, Any],
        journeys: NamedDependency[JourneyService],
        etas: NamedDependency[Etas],
        schedules: NamedDependency[Schedules],
        data: JSONBody[JourneyBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[JourneyOut]:
        """Book an itinerary of GET /plan: every on-demand leg with the promise its connection needs, or
        none (409 with the itineraries that fit now). A repeated Idempotency-Key returns the same
        journey (200, not 201)."""
        journey, created = await journeys.book(request.user, data.itinerary, idempotency_key)
        body = await journey_out(await journeys.details(journey), etas, schedules)
        return Response(body, status_code=201 if created else 200)

    @get("/", guards=[roles("rider", "operator", "admin")], response_headers=[TOTAL_COUNT])
    async def list_journeys(
        self,
        request: Request[User, Any, Any],
        journeys: NamedDependency[JourneyService],
        etas: NamedDependency[Etas],
        schedules: NamedDependency[Schedules],
        status: JourneyStatuses = None,
        q: SearchText = None,
        sort: FromQuery[JourneySort] = "-created",
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response[list[JourneyOut]]:
        """A rider's own journeys; every journey for operators. Filtered by status (comma-separated) and
        `q` (the rider's name or the start of the journey's id); newest first, or by `sort` (departure,
        created; `-` for descending); one page of `limit` after `offset`, with the number of all matches
        in the X-Total-Count header."""
        search = JourneySearch(statuses=statuses(status), q=q, sort=sort, limit=limit, offset=offset)
        page = await journeys.search(request.user, search)
        found = [await journey_out(await journeys.details(j), etas, schedules) for j in page.journeys]
        return paged(found, page.total)

    @get("/{journey_id:uuid}", guards=[roles("rider", "operator", "admin")])
    async def get_journey(
        self,
        request: Request[User, Any, Any],
        journeys: NamedDependency[JourneyService],
        etas: NamedDependency[Etas],
        schedules: NamedDependency[Schedules],
        journey_id: FromPath[uuid.UUID],
    ) -> JourneyOut:
        """The journey with each ride's live status and its vehicle's ETA, and every decision taken."""
        journey = await journeys.get(request.user, journey_id)
        return await journey_out(await journeys.details(journey), etas, schedules)

    @post("/{journey_id:uuid}/cancel", status_code=200, guards=[roles("rider", "operator", "admin")])
    async def cancel(
        self,
        request: Request[User, Any, Any],
        journeys: NamedDependency[JourneyService],
        etas: NamedDependency[Etas],
        schedules: NamedDependency[Schedules],
        journey_id: FromPath[uuid.UUID],
        data: JSONBody[CancelJourney | None] = None,
    ) -> JourneyOut:
        """Cancel the whole journey: every ride not yet picked up is freed."""
        reason = data.reason if data else None
        journey = await journeys.cancel(request.user, journey_id, reason)
        return await journey_out(await journeys.details(journey), etas, schedules)
