"""Operators set where the on-demand service runs."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from maas.area import polygon_of
from maas.auth import roles
from maas.db import areas, audit
from maas.db.database import Database
from maas.errors import Invalid, NotFound
from maas.model import User


class AreaBody(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    geometry: dict[str, Any]  # GeoJSON Polygon, MultiPolygon, Feature or one-feature FeatureCollection


def _out(area: dict[str, Any]) -> dict[str, Any]:
    return {**area, "created_at": area["created_at"].isoformat()}


class ServiceAreaController(Controller):
    path = "/service-area"

    @get("/", guards=[roles("rider", "driver", "operator", "agency", "admin")])
    async def current(self, request: Request[User, Any, Any], db: NamedDependency[Database]) -> dict[str, Any]:
        """The area in force (rides must start and end inside it); 404 while none is set."""
        async with db.pool.acquire() as conn:
            area = await areas.find_current_area(conn)
        if area is None:
            raise NotFound("no service area is set: rides are limited by the road network only")
        return _out(area)

    @put("/", guards=[roles("operator", "admin")])
    async def replace(
        self, request: Request[User, Any, Any], db: NamedDependency[Database], data: JSONBody[AreaBody]
    ) -> dict[str, Any]:
        """A new version of the service area (GeoJSON, longitude first); booked rides keep their promises."""
        if not data.name.strip():
            raise Invalid("a service area needs a name")
        polygon_of(data.geometry)
        async with db.pool.acquire() as conn, conn.transaction():
            area = await areas.add_area(conn, data.name.strip(), data.geometry, request.user.id)
            await audit.record(conn, request.user.id, "set_service_area", str(area["version"]), {"name": data.name})
        return _out(area)
