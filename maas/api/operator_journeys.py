"""Operators: a door-to-door journey booked for a phone caller (no app account)."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from maas.api.bookings import IdempotencyKey
from maas.api.journeys import JourneyOut, journey_out
from maas.auth import roles
from maas.booking import Caller
from maas.driving import Schedules
from maas.eta import Etas
from maas.journeys import JourneyService
from maas.model import User


class CallerJourneyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    itinerary: uuid.UUID  # the id of an itinerary of GET /plan, planned by this operator (or by any staff)
    caller: Caller


class OperatorJourneyController(Controller):
    path = "/operator/journeys"
    guards = [roles("operator", "admin")]

    @post("/")
    async def book_for_caller(
        self,
        request: Request[User, Any, Any],
        journeys: NamedDependency[JourneyService],
        etas: NamedDependency[Etas],
        schedules: NamedDependency[Schedules],
        data: JSONBody[CallerJourneyBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[JourneyOut]:
        """Book an itinerary of GET /plan for a phone caller (name and number, no app account): every
        on-demand leg with the promise its connection needs, the rides and the journey naming the caller,
        or nothing (409 with the itineraries that fit now). A repeated Idempotency-Key returns the same
        journey (200, not 201); with another itinerary or caller, 422."""
        journey, created = await journeys.book(request.user, data.itinerary, idempotency_key, caller=data.caller)
        body = await journey_out(await journeys.details(journey), etas, schedules)
        return Response(body, status_code=201 if created else 200)
