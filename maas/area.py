"""Where the on-demand service runs: GeoJSON checked once, points tested against a prepared polygon; the
versions operators set."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import shapely
import shapely.geometry
import shapely.validation

from maas.db import areas, audit
from maas.db.database import Database
from maas.errors import Invalid, NotFound
from maas.model import User


def polygon_of(geojson: dict[str, Any]) -> shapely.geometry.base.BaseGeometry:
    """The (Multi)Polygon of a GeoJSON geometry, Feature or one-feature FeatureCollection; Invalid otherwise."""
    geometry = geojson
    if geojson.get("type") == "FeatureCollection":
        features = geojson.get("features") or []
        if len(features) != 1:
            raise Invalid("a service area FeatureCollection needs exactly one feature")
        geometry = features[0]
    if geometry.get("type") == "Feature":
        geometry = geometry.get("geometry") or {}
    if geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise Invalid("a service area is a GeoJSON Polygon or MultiPolygon")
    try:
        shape = shapely.geometry.shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise Invalid(f"the service area is not valid GeoJSON: {exc}") from exc
    if shape.is_empty or not shape.is_valid:
        raise Invalid(f"the service area polygon is invalid: {shapely.validation.explain_validity(shape)}")
    minx, miny, maxx, maxy = shape.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise Invalid("service area coordinates must be longitude, latitude in degrees (GeoJSON order)")
    shapely.prepare(shape)
    return shape


def covers(shape: shapely.geometry.base.BaseGeometry, lat: float, lon: float) -> bool:
    return bool(shape.covers(shapely.Point(lon, lat)))


class ServiceArea(msgspec.Struct, frozen=True, kw_only=True):
    """One version of the service area: its GeoJSON as the operator sent it."""

    version: int
    name: str
    geometry: dict[str, Any]
    created_at: dt.datetime


class AreaService:
    """The service area in force and its replacement by operators."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def current(self) -> ServiceArea:
        """The area in force; NotFound while none is set."""
        async with self.db.pool.acquire() as conn:
            area = await areas.find_current_area(conn)
        if area is None:
            raise NotFound("no service area is set: rides are limited by the road network only")
        return msgspec.convert(area, ServiceArea)

    async def replace(self, user: User, name: str, geometry: dict[str, Any]) -> ServiceArea:
        """A new version of the area (checked first); bookings already made keep their promises."""
        name = name.strip()
        if not name:
            raise Invalid("a service area needs a name")
        polygon_of(geometry)
        async with self.db.pool.acquire() as conn, conn.transaction():
            area = await areas.add_area(conn, name, geometry, user.id)
            await audit.record(conn, user.id, "set_service_area", str(area["version"]), {"name": name})
        return msgspec.convert(area, ServiceArea)
