"""Riders: door-to-door journey plans on the network being served."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.params import FromQuery, QueryParameter

from maas.auth import roles
from maas.errors import Invalid
from maas.journeys import JourneyService, Wish
from maas.model import User
from maas.served import Serving, network_header
from maas.wire import MAX_ID, PRINTABLE
from routing.plan import Endpoint, Plan, PlanRequest, Router

MAX_WALK_M = 5000.0
# A plan is asked for a time around the served timetables: up to a year before or after their days.
PLAN_MARGIN = dt.timedelta(days=366)
Time = Annotated[str | None, QueryParameter(required=False, min_length=1, max_length=64, pattern=PRINTABLE)]


def _time(text: str, name: str, router: Router) -> dt.datetime:
    """ISO 8601; without an offset the time is local to the network's time zone. Invalid when it lies
    more than a year outside the days the network's timetables cover."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{name}={text!r}: give an ISO 8601 time such as 2021-06-15T07:30+02:00") from None
    manifest = router.network.manifest
    first = manifest.first_date - PLAN_MARGIN
    last = manifest.first_date + dt.timedelta(days=manifest.n_days) + PLAN_MARGIN
    if not first <= value.date() <= last:
        raise Invalid(
            f"{name}={text!r}: this network's timetables cover {manifest.first_date} and the following"
            f" {manifest.n_days} days; plans are made from {first} to {last}"
        )
    return value if value.tzinfo is not None else value.replace(tzinfo=router.timezone)


class PlanController(Controller):
    path = "/plan"
    guards = [roles("rider", "operator", "admin")]

    @get("/")
    async def plan(
        self,
        request: Request[User, Any, Any],
        serving: NamedDependency[Serving],
        journeys: NamedDependency[JourneyService],
        origin: Annotated[str, QueryParameter(name="from", min_length=1, max_length=MAX_ID, pattern=PRINTABLE)],
        destination: Annotated[str, QueryParameter(name="to", min_length=1, max_length=MAX_ID, pattern=PRINTABLE)],
        depart: Time = None,
        arrive_by: Time = None,
        max_walk_m: FromQuery[float] = 1000.0,
        wheelchair: FromQuery[bool] = False,
        seated: Annotated[int, QueryParameter(ge=0, le=1000)] = 1,
        wheelchairs: Annotated[int, QueryParameter(ge=0, le=1000)] = 0,
    ) -> Response[Plan]:
        """Itineraries from `from` to `to` (each `lat,lon` or `stop:<feed>:<stop_id>`) leaving at `depart`
        or arriving by `arrive_by`, for `seated` riders and `wheelchairs` wheelchair users. On-demand
        legs are offers of the live fleet inside the service area in force, timed to their trains;
        every itinerary has an `id` that `POST /journeys` books. The `X-Maas-Network` header names the
        network that answered."""
        served = serving.current  # this request keeps it even if a publish swaps it
        if served is None:
            raise ServiceUnavailableException("no network is served: set MAAS_NETWORK_DIR or publish a feed")
        if (depart is None) == (arrive_by is None):
            raise Invalid("give exactly one of depart and arrive_by")
        if not 0 <= max_walk_m <= MAX_WALK_M:
            raise Invalid(f"max_walk_m must be between 0 and {MAX_WALK_M:.0f}")
        when = _time(depart or arrive_by or "", "depart" if depart else "arrive_by", served.router)
        plan_request = PlanRequest(
            origin=Endpoint.parse(origin),
            destination=Endpoint.parse(destination),
            depart=when,
            max_walk_m=max_walk_m,
            wheelchair=wheelchair or wheelchairs > 0,
        )
        wish = Wish(request=plan_request, arrive_by=arrive_by is not None, seated=seated, wheelchairs=wheelchairs)
        planned = await journeys.plan(request.user, wish)
        return Response(planned.plan, headers=network_header(served))
