"""A network's streets and stops as lines and points to draw on a map (small: merged and simplified).

The drive graph's edges (each direction once) are merged into lines per street name and class,
simplified by Douglas-Peucker at SIMPLIFY_M in local metres, coordinates rounded to 5 decimals (1 m).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import msgspec
import numpy as np
import shapely

from routing.model import Network
from routing.places import stop_groups

StreetClass = Literal["major", "main", "minor"]
# Speeds (km/h) from which a street is drawn as a main road (a 50 km/h road through town) or a major
# one (country roads and motorways).
MAIN_KMH = 40.0
MAJOR_KMH = 55.0
SIMPLIFY_M = 5.0
DIGITS = 5

Line = list[list[float]]  # [[lon, lat], ...], GeoJSON order


class MapStreet(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None
    street_class: StreetClass
    lines: list[Line]


class MapStop(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the namespaced GTFS id of the stop standing for the group
    name: str
    feeds: list[str]
    routes: list[str]  # short names of the routes serving it
    stops: list[str]  # every namespaced GTFS stop id of the group
    lat: float
    lon: float


def _street_class(kmh: float) -> StreetClass:
    if kmh >= MAJOR_KMH:
        return "major"
    return "main" if kmh >= MAIN_KMH else "minor"


def map_streets(network: Network) -> list[MapStreet]:
    """The drive streets, one entry per name and class (unnamed ones per class), lines merged end to end."""
    drive = network.streets.get("drive")
    if drive is None or not drive.n_edges:
        return []
    indptr, indices = np.asarray(drive.indptr), np.asarray(drive.indices)
    source = np.repeat(np.arange(drive.n_nodes, dtype=np.int64), np.diff(indptr))
    target = indices.astype(np.int64)
    kmh = np.asarray(drive.length_m) / np.maximum(np.asarray(drive.travel_time_s), 1e-3) * 3.6
    offsets = np.asarray(drive.geometry_offsets)
    lat, lon = np.asarray(drive.geometry_lat), np.asarray(drive.geometry_lon)
    cos_ref = float(np.cos(np.radians(np.median(lat)))) if len(lat) else 1.0
    name_idx = np.asarray(drive.name_idx)
    # Each street once: of its two directions the one from the lower node (one-way streets have one).
    seen: set[tuple[int, int, int]] = set()
    parts: dict[tuple[int, StreetClass], list[shapely.LineString]] = defaultdict(list)
    for e in range(drive.n_edges):
        a, b = int(source[e]), int(target[e])
        start, end = int(offsets[e]), int(offsets[e + 1])
        if end - start < 2:
            continue
        key = (min(a, b), max(a, b), end - start)
        if key in seen:
            continue
        seen.add(key)
        # Local metres (x = lon scaled by cos(lat)), so that the tolerance below is metres in both axes.
        xy = np.column_stack([lon[start:end] * cos_ref, lat[start:end]])
        parts[(int(name_idx[e]), _street_class(float(kmh[e])))].append(shapely.LineString(xy))
    tolerance = SIMPLIFY_M / 111_195.0  # metres in degrees of latitude
    streets: list[MapStreet] = []
    for (name, cls), lines in sorted(parts.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        merged = shapely.line_merge(shapely.MultiLineString(lines))
        simple = shapely.simplify(merged, tolerance, preserve_topology=False)
        geoms = list(getattr(simple, "geoms", [simple]))
        out: list[Line] = []
        for g in geoms:
            c = np.asarray(g.coords)
            if len(c) < 2:
                continue
            coords = np.column_stack([c[:, 0] / cos_ref, c[:, 1]]).round(DIGITS)
            out.append(coords.tolist())
        if out:
            streets.append(MapStreet(name=str(drive.names[name]) if name >= 0 else None, street_class=cls, lines=out))
    return streets


def map_stops(network: Network) -> list[MapStop]:
    """The stops within the drive streets' bounding box as places (grouped as routing.places groups
    them), with their feeds and routes."""
    t = network.timetable
    feeds = [f.id for f in network.manifest.feeds]
    drive = network.streets.get("drive")
    box = None
    if drive is not None and drive.n_nodes:
        box = (
            float(drive.node_lat.min()),
            float(drive.node_lat.max()),
            float(drive.node_lon.min()),
            float(drive.node_lon.max()),
        )
    out: list[MapStop] = []
    for g in stop_groups(network):
        # A feed may reach far beyond the streets (a whole region's stops); the map shows the streets' part.
        if box is not None and not (box[0] <= g.lat <= box[1] and box[2] <= g.lon <= box[3]):
            continue
        routes: set[str] = set()
        for stop in g.stops:
            patterns = t.stop_patterns[t.stop_pattern_offsets[stop] : t.stop_pattern_offsets[stop + 1]]
            routes.update(str(t.route_short_name[t.pattern_route[p]]) for p in patterns)
        out.append(
            MapStop(
                id=str(t.stop_id[g.stops[0]]),
                name=g.label,
                feeds=sorted({feeds[int(t.stop_feed[s])] for s in g.stops}),
                routes=sorted(r for r in routes if r),
                stops=[str(t.stop_id[s]) for s in g.stops],
                lat=round(g.lat, DIGITS),
                lon=round(g.lon, DIGITS),
            )
        )
    return out
