"""Places by name and the map's data (streets, stops) of the network being served."""

from __future__ import annotations

import asyncio
from typing import Annotated, cast

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ServiceUnavailableException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter

from maas.auth import roles
from maas.errors import Invalid
from maas.served import MapData, ServedNetwork, Serving
from maas.wire import PRINTABLE
from routing.mapdata import StreetClass
from routing.places import PlaceKind

MAX_QUERY = 100
NEAR = r"^-?[0-9]{1,2}(\.[0-9]{1,12})?,-?[0-9]{1,3}(\.[0-9]{1,12})?$"
# The map is the network's: the same until a publish swaps it, so clients ask again and get a 304.
MAP_CACHE = "private, no-cache"
GEOJSON = "application/geo+json"


class PlaceOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # "stop:<feed>:<stop_id>" (as /plan takes it), "street:…", "locality:…", "bike_station:<system>:<id>"
    label: str
    kind: PlaceKind
    lat: float
    lon: float


class LineString(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="LineString"):
    coordinates: list[list[float]]  # [[lon, lat], ...]


class MultiLineString(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="MultiLineString"):
    coordinates: list[list[list[float]]]


class Point(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="Point"):
    coordinates: list[float]  # [lon, lat]


class StreetProperties(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None
    street_class: StreetClass = msgspec.field(name="class")  # from the speed: major >= 55 km/h, main >= 40


class StreetFeature(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="Feature"):
    geometry: LineString | MultiLineString
    properties: StreetProperties


class StreetCollection(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="FeatureCollection"):
    features: list[StreetFeature]


class StopProperties(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    feeds: list[str]
    routes: list[str]  # short names of the routes serving the stop
    stops: list[str]  # the namespaced GTFS ids of the stops drawn as this point (platforms, feeds)


class StopFeature(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="Feature"):
    id: str  # the namespaced GTFS id of the stop standing for the group
    geometry: Point
    properties: StopProperties


class StopCollection(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="FeatureCollection"):
    features: list[StopFeature]


def _served(serving: Serving) -> ServedNetwork:
    served = serving.current  # this request keeps it even if a publish swaps it
    if served is None:
        raise ServiceUnavailableException("no network is served: set MAAS_NETWORK_DIR or publish a feed")
    return served


def _near(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    lat, lon = (float(x) for x in text.split(","))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Invalid(f"near={text!r}: give lat,lon in WGS84 degrees (lat -90..90, lon -180..180)")
    return lat, lon


class PlaceController(Controller):
    path = "/places"
    guards = [roles("rider", "operator", "admin")]

    @get("/")
    async def search(
        self,
        serving: NamedDependency[Serving],
        q: Annotated[str, QueryParameter(min_length=2, max_length=MAX_QUERY, pattern=PRINTABLE)],
        limit: Annotated[int, QueryParameter(ge=1, le=50)] = 10,
        near: Annotated[str | None, QueryParameter(pattern=NEAR, description="lat,lon: nearer places first")] = None,
    ) -> list[PlaceOut]:
        """Places of the served network whose name matches `q`: stops and stations, localities, bike-sharing
        stations and streets. Case and accents do not matter (ä = ae, ß = ss), every word of `q` must begin a
        word of the name; exact names come first, then names `q` begins, then other matches, stops before
        streets; among equals the nearer to `near` first. An empty list when nothing matches."""
        places = _served(serving).places.search(q, limit, _near(near))
        return [PlaceOut(id=p.id, label=p.label, kind=p.kind, lat=p.lat, lon=p.lon) for p in places]


def _streets_out(data: MapData) -> StreetCollection:
    features: list[StreetFeature] = []
    for s in data.streets:
        geometry: LineString | MultiLineString = (
            LineString(coordinates=s.lines[0]) if len(s.lines) == 1 else MultiLineString(coordinates=s.lines)
        )
        features.append(
            StreetFeature(geometry=geometry, properties=StreetProperties(name=s.name, street_class=s.street_class))
        )
    return StreetCollection(features=features)


def _stops_out(data: MapData) -> StopCollection:
    return StopCollection(
        features=[
            StopFeature(
                id=s.id,
                geometry=Point(coordinates=[s.lon, s.lat]),
                properties=StopProperties(name=s.name, feeds=s.feeds, routes=s.routes, stops=s.stops),
            )
            for s in data.stops
        ]
    )


async def _map_data(served: ServedNetwork) -> MapData:
    return await asyncio.to_thread(served.map_data)  # made once per network, in a worker thread


def _not_modified(served: ServedNetwork, if_none_match: str | None) -> bool:
    if if_none_match is None:
        return False
    return if_none_match.strip() == "*" or served.etag in (t.strip() for t in if_none_match.split(","))


IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", max_length=1000, pattern=PRINTABLE)]
NOT_MODIFIED = {304: ResponseSpec(None, description="Not modified: the ETag given in If-None-Match is current")}


class MapController(Controller):
    path = "/map"
    guards = [roles("operator", "admin")]

    @get("/streets", media_type=GEOJSON, responses=NOT_MODIFIED)
    async def streets(
        self, serving: NamedDependency[Serving], if_none_match: IfNoneMatch = None
    ) -> Response[StreetCollection]:
        """The served network's drive streets as GeoJSON: one feature per street name and class (`major`,
        `main`, `minor` by speed), lines merged and simplified to about 5 m, coordinates to 5 decimals.
        Carries a strong `ETag` of the network; `If-None-Match` with it answers 304."""
        served = _served(serving)
        headers = {"ETag": served.etag, "Cache-Control": MAP_CACHE}
        if _not_modified(served, if_none_match):
            # A 304 carries no body; the documented body is the 200's.
            return cast("Response[StreetCollection]", Response(None, status_code=304, headers=headers))
        return Response(_streets_out(await _map_data(served)), headers=headers)

    @get("/stops", media_type=GEOJSON, responses=NOT_MODIFIED)
    async def stops(
        self, serving: NamedDependency[Serving], if_none_match: IfNoneMatch = None
    ) -> Response[StopCollection]:
        """The served network's stops within its streets as GeoJSON points, one per place (a station's
        platforms and a stop of several feeds are one), with the feeds and the short names of the routes
        serving it. Carries a strong `ETag` of the network; `If-None-Match` with it answers 304."""
        served = _served(serving)
        headers = {"ETag": served.etag, "Cache-Control": MAP_CACHE}
        if _not_modified(served, if_none_match):
            return cast("Response[StopCollection]", Response(None, status_code=304, headers=headers))
        return Response(_stops_out(await _map_data(served)), headers=headers)
