"""Operators define the on-demand service: where it runs and by which rules (one version per change)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from maas.auth import roles
from maas.definition import DefinitionService
from maas.model import ServiceDefinition, ServiceRules, User
from maas.wire import Timestamp, iso


class AreaBody(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    geometry: dict[str, Any]  # GeoJSON Polygon, MultiPolygon, Feature or one-feature FeatureCollection


class AreaOut(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    geometry: dict[str, Any]  # GeoJSON as it was set, longitude first
    created_at: Timestamp


class ServiceBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new version of the service definition; an area or rules left out are kept as they are."""

    name: str
    area: dict[str, Any] | None = None  # GeoJSON Polygon, MultiPolygon, Feature or one-feature FeatureCollection
    rules: ServiceRules | None = None


class ServiceOut(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    area: dict[str, Any]
    rules: ServiceRules
    created_at: Timestamp


def area_out(definition: ServiceDefinition) -> AreaOut:
    return AreaOut(
        version=definition.version,
        name=definition.name,
        geometry=definition.geometry,
        created_at=iso(definition.created_at),
    )


def service_out(definition: ServiceDefinition) -> ServiceOut:
    return ServiceOut(
        version=definition.version,
        name=definition.name,
        area=definition.geometry,
        rules=definition.rules,
        created_at=iso(definition.created_at),
    )


_READERS = roles("rider", "driver", "operator", "agency", "admin")


class ServiceController(Controller):
    path = "/service"

    @get("/", guards=[_READERS])
    async def current(self, definitions: NamedDependency[DefinitionService]) -> ServiceOut:
        """The service definition in force: area, hours, booking rules, ride-time rule, connections."""
        return service_out(await definitions.current())

    @put("/", guards=[roles("operator", "admin")])
    async def replace(
        self,
        request: Request[User, Any, Any],
        definitions: NamedDependency[DefinitionService],
        data: JSONBody[ServiceBody],
    ) -> ServiceOut:
        """A new version of the definition; plans, quotes, bookings and journeys follow it at once, and
        rides already booked keep their promises."""
        return service_out(await definitions.replace(request.user, data.name, data.area, data.rules))


class ServiceAreaController(Controller):
    path = "/service-area"

    @get("/", guards=[_READERS])
    async def current(self, definitions: NamedDependency[DefinitionService]) -> AreaOut:
        """The area in force (rides must start and end inside it); 404 while none is set."""
        return area_out(await definitions.current())

    @put("/", guards=[roles("operator", "admin")])
    async def replace(
        self,
        request: Request[User, Any, Any],
        definitions: NamedDependency[DefinitionService],
        data: JSONBody[AreaBody],
    ) -> AreaOut:
        """A new version of the service definition with this area (GeoJSON, longitude first) and the
        rules in force; booked rides keep their promises."""
        return area_out(await definitions.replace(request.user, data.name, data.geometry, None))
