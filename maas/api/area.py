"""Operators set where the on-demand service runs."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from maas.area import AreaService, ServiceArea
from maas.auth import roles
from maas.model import User
from maas.wire import Timestamp, iso


class AreaBody(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    geometry: dict[str, Any]  # GeoJSON Polygon, MultiPolygon, Feature or one-feature FeatureCollection


class AreaOut(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    geometry: dict[str, Any]  # GeoJSON as it was set, longitude first
    created_at: Timestamp


def area_out(area: ServiceArea) -> AreaOut:
    return AreaOut(version=area.version, name=area.name, geometry=area.geometry, created_at=iso(area.created_at))


class ServiceAreaController(Controller):
    path = "/service-area"

    @get("/", guards=[roles("rider", "driver", "operator", "agency", "admin")])
    async def current(self, areas: NamedDependency[AreaService]) -> AreaOut:
        """The area in force (rides must start and end inside it); 404 while none is set."""
        return area_out(await areas.current())

    @put("/", guards=[roles("operator", "admin")])
    async def replace(
        self, request: Request[User, Any, Any], areas: NamedDependency[AreaService], data: JSONBody[AreaBody]
    ) -> AreaOut:
        """A new version of the service area (GeoJSON, longitude first); booked rides keep their promises."""
        return area_out(await areas.replace(request.user, data.name, data.geometry))
