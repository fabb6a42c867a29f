"""Operators define the on-demand service: where it runs and by which rules (one version per change)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from maas.auth import roles
from maas.definition import DefinitionService
from maas.errors import Invalid
from maas.model import ServiceDefinition, ServiceRules, User
from maas.served import Serving
from maas.wire import MAX_NAME, PRINTABLE, Name, Timestamp, iso

MAX_RINGS = 100  # rings of a polygon, polygons of a multipolygon


# GeoJSON as an area is given (RFC 7946, longitude first): a Polygon or MultiPolygon, bare, in a
# Feature or in a FeatureCollection of one Feature; its size is bounded by the number of rings and by
# MAAS_MAX_BODY_BYTES. The OpenAPI document shows bounds at a field only, not inside nested lists, so
# the area check (maas.area) refuses short rings and coordinates off the earth, with a 422 saying so.
Rings = Annotated[list[list[list[float]]], msgspec.Meta(min_length=1, max_length=MAX_RINGS)]


class Polygon(msgspec.Struct, frozen=True, kw_only=True, tag="Polygon", tag_field="type"):
    coordinates: Rings


class MultiPolygon(msgspec.Struct, frozen=True, kw_only=True, tag="MultiPolygon", tag_field="type"):
    coordinates: Annotated[list[list[list[list[float]]]], msgspec.Meta(min_length=1, max_length=MAX_RINGS)]


class Feature(msgspec.Struct, frozen=True, kw_only=True, tag="Feature", tag_field="type"):
    geometry: Polygon | MultiPolygon
    properties: dict[str, str | float | bool | None] | None = None  # names and texts: printable, checked


class FeatureCollection(msgspec.Struct, frozen=True, kw_only=True, tag="FeatureCollection", tag_field="type"):
    features: Annotated[list[Feature], msgspec.Meta(min_length=1, max_length=1)]


Area = Polygon | MultiPolygon | Feature | FeatureCollection


def geojson(area: Area | None) -> dict[str, Any] | None:
    """The area as the JSON object it was sent as (what the service definition stores); Invalid when
    a property's name or text is too long or holds control characters (NUL cannot be stored)."""
    if area is None:
        return None
    features = area.features if isinstance(area, FeatureCollection) else [area] if isinstance(area, Feature) else []
    for feature in features:
        for key, value in (feature.properties or {}).items():
            for text in (key, value) if isinstance(value, str) else (key,):
                if len(text) > MAX_NAME or not re.match(PRINTABLE, text):
                    raise Invalid(
                        f"property {key[:40]!r}: names and texts have at most {MAX_NAME} printable characters"
                    )
    stored: dict[str, Any] = msgspec.to_builtins(area)
    return stored


class AreaBody(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    geometry: Area


class AreaOut(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    geometry: dict[str, Any]  # GeoJSON as it was set, longitude first
    created_at: Timestamp


class ServiceBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A new version of the service definition; an area or rules left out are kept as they are."""

    name: Name
    area: Area | None = None
    rules: ServiceRules | None = None


class ServiceOut(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    area: dict[str, Any]
    rules: ServiceRules
    created_at: Timestamp
    # The served network's time zone (IANA): the service's clock, in which a time given without an offset is
    # read; None while no network is served.
    timezone: str | None = None


def area_out(definition: ServiceDefinition) -> AreaOut:
    return AreaOut(
        version=definition.version,
        name=definition.name,
        geometry=definition.geometry,
        created_at=iso(definition.created_at),
    )


def service_out(definition: ServiceDefinition, serving: Serving) -> ServiceOut:
    served = serving.current
    return ServiceOut(
        version=definition.version,
        name=definition.name,
        area=definition.geometry,
        rules=definition.rules,
        created_at=iso(definition.created_at),
        timezone=None if served is None else str(served.router.timezone),
    )


_READERS = roles("rider", "driver", "operator", "agency", "admin")


class ServiceController(Controller):
    path = "/service"

    @get("/", guards=[_READERS])
    async def current(
        self, definitions: NamedDependency[DefinitionService], serving: NamedDependency[Serving]
    ) -> ServiceOut:
        """The service definition in force: area, hours, booking rules, ride-time rule, connections, and
        the time zone of the service's clock."""
        return service_out(await definitions.current(), serving)

    @put("/", guards=[roles("operator", "admin")])
    async def replace(
        self,
        request: Request[User, Any, Any],
        definitions: NamedDependency[DefinitionService],
        serving: NamedDependency[Serving],
        data: JSONBody[ServiceBody],
    ) -> ServiceOut:
        """A new version of the definition; plans, quotes, bookings and journeys follow it at once, and
        rides already booked keep their promises."""
        return service_out(await definitions.replace(request.user, data.name, geojson(data.area), data.rules), serving)


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
        return area_out(await definitions.replace(request.user, data.name, geojson(data.geometry), None))
