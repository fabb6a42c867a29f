"""Riders: door-to-door journey plans on the network being served."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.params import FromQuery, QueryParameter

from maas.auth import roles
from maas.db.database import Database
from maas.errors import Invalid
from maas.model import User
from maas.served import Serving, network_header
from maas.transit_rt import TransitRealtime
from routing.plan import Endpoint, Plan, PlanRequest, Router

MAX_WALK_M = 5000.0


def _time(text: str, name: str, router: Router) -> dt.datetime:
    """ISO 8601; without an offset the time is local to the network's time zone."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{name}={text!r}: give an ISO 8601 time such as 2021-06-15T07:30+02:00") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=router.timezone)


def _plan(router: Router, request: PlanRequest, arrive_by: bool) -> Plan:
    # A Router plans from several threads at once (each thread has its own search scratch).
    return router.plan_arriving_by(request, request.depart) if arrive_by else router.plan(request)


class PlanController(Controller):
    path = "/plan"
    guards = [roles("rider", "operator", "admin")]

    @get("/")
    async def plan(
        self,
        request: Request[User, Any, Any],
        serving: NamedDependency[Serving],
        db: NamedDependency[Database],
        transit: NamedDependency[TransitRealtime],
        origin: Annotated[str, QueryParameter(name="from")],
        destination: Annotated[str, QueryParameter(name="to")],
        depart: FromQuery[str | None] = None,
        arrive_by: FromQuery[str | None] = None,
        max_walk_m: FromQuery[float] = 1000.0,
        wheelchair: FromQuery[bool] = False,
    ) -> Response[Plan]:
        """Itineraries from `from` to `to` (each `lat,lon` or `stop:<feed>:<stop_id>`) leaving at `depart`
        or arriving by `arrive_by`: the JSON of `maas plan --json`. On-demand legs run inside the
        service area in force; transit legs take the stored GTFS-Realtime predictions (`realtime`,
        `delay_s`, and the `scheduled_` times beside them); the `X-Maas-Network` header names the
        network that answered."""
        served = serving.current  # this request keeps it even if a publish swaps it
        if served is None:
            raise ServiceUnavailableException("no network is served: set MAAS_NETWORK_DIR or publish a feed")
        async with db.pool.acquire() as conn:
            area = await serving.area(conn)
        router = await asyncio.to_thread(served.router_for, area)
        router = await transit.planning(router)  # on the stored GTFS-Realtime trip updates' times
        if (depart is None) == (arrive_by is None):
            raise Invalid("give exactly one of depart and arrive_by")
        if not 0 <= max_walk_m <= MAX_WALK_M:
            raise Invalid(f"max_walk_m must be between 0 and {MAX_WALK_M:.0f}")
        when = _time(depart or arrive_by or "", "depart" if depart else "arrive_by", router)
        plan_request = PlanRequest(
            origin=Endpoint.parse(origin),
            destination=Endpoint.parse(destination),
            depart=when,
            max_walk_m=max_walk_m,
            wheelchair=wheelchair,
        )
        plan = await asyncio.to_thread(_plan, router, plan_request, arrive_by is not None)
        return Response(plan, headers=network_header(served))
