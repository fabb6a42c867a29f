"""Where the on-demand service runs: GeoJSON checked once, points tested against a prepared polygon."""

from __future__ import annotations

from typing import Any

import shapely
import shapely.geometry
import shapely.validation

from maas.errors import Invalid


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
