"""On-demand service areas and the ride-time estimator the router asks for on-demand legs.

Until the dispatcher answers with real vehicle plans, a ride takes the drive time on the street
graph times the service's detour factor (pooled rides go round other riders), after a pickup
delay. The estimator's methods are the interface the dispatcher will implement.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np
import shapely

from routing.errors import RoutingError
from routing.model import Network, StreetArrays
from routing.spatial import EdgeSnapper, haversine_m
from routing.streets import StreetRouter, reversed_graph


class ServiceError(RoutingError):
    """A service definition that cannot be used; the message names the file and field."""


class OnDemandService(msgspec.Struct, frozen=True, kw_only=True):
    """A demand-responsive service: where and when it runs, and how its ride times are estimated."""

    name: str
    area: dict[str, Any]  # GeoJSON Polygon or MultiPolygon
    detour_factor: float = 1.5
    pickup_delay_s: int = 0
    max_ride_s: int = 45 * 60
    start: dt.time = dt.time(6, 0)
    end: dt.time = dt.time(22, 0)
    rules: dict[str, Any] = {}  # the file's [rules] table: booking rules the service imports

    def runs_at(self, local: dt.datetime) -> bool:
        return self.start <= local.time() <= self.end


class _ServiceFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    area_file: str
    detour_factor: float = 1.5
    pickup_delay_s: int = 0
    max_ride_s: int = 45 * 60
    start: dt.time = dt.time(6, 0)
    end: dt.time = dt.time(22, 0)
    rules: dict[str, Any] = {}


def load_service(path: str | Path) -> OnDemandService:
    """Read a service definition (TOML with `name`, `area_file` and optional tuning fields)."""
    path = Path(path)
    if not path.exists():
        raise ServiceError(f"{path}: no such file")
    try:
        spec = msgspec.toml.decode(path.read_bytes(), type=_ServiceFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ServiceError(f"{path}: {exc}") from exc
    if not spec.detour_factor >= 1.0:
        raise ServiceError(f"{path}: detour_factor must be at least 1, got {spec.detour_factor}")
    if spec.pickup_delay_s < 0 or spec.max_ride_s <= 0:
        raise ServiceError(f"{path}: pickup_delay_s must not be negative and max_ride_s must be positive")
    area_path = (path.parent / spec.area_file).resolve()
    try:
        data = json.loads(area_path.read_text())
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{path}: area_file {spec.area_file!r}: {exc}") from exc
    geometry = (
        data["features"][0]["geometry"] if data.get("type") == "FeatureCollection" else data.get("geometry", data)
    )
    if geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise ServiceError(f"{area_path}: the service area must be a Polygon or MultiPolygon")
    return OnDemandService(
        name=spec.name,
        area=geometry,
        detour_factor=spec.detour_factor,
        pickup_delay_s=spec.pickup_delay_s,
        max_ride_s=spec.max_ride_s,
        start=spec.start,
        end=spec.end,
        rules=spec.rules,
    )


class RideEstimator(Protocol):
    """What the router needs to know about on-demand rides (the dispatcher will answer the same)."""

    def rides_to_stops(self, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]: ...
    def rides_from_stops(self, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]: ...
    def direct_ride_s(self, a: tuple[float, float], b: tuple[float, float]) -> int | None: ...
    def covers(self, lat: float, lon: float) -> bool: ...
    def nearest_stop(self, lat: float, lon: float, max_m: float) -> int | None: ...


class DriveTimeEstimator:
    """Ride time = pickup delay + drive time × detour factor, inside the service area only."""

    def __init__(self, network: Network, service: OnDemandService) -> None:
        if "drive" not in network.streets:
            raise ServiceError("on-demand rides need a network built with --osm (a drive graph)")
        self.service = service
        self.polygon = shapely.geometry.shape(service.area)
        shapely.prepare(self.polygon)
        drive: StreetArrays = network.streets["drive"]
        self._forward = StreetRouter(drive, "travel_time_s")
        self._backward = StreetRouter(reversed_graph(drive), "travel_time_s")
        self._snapper = EdgeSnapper(drive)
        tt = network.timetable
        self._timetable = tt
        snap = network.snaps["drive"]
        inside = shapely.contains_xy(self.polygon, np.asarray(tt.stop_lon), np.asarray(tt.stop_lat))
        self._stops = np.flatnonzero(inside & (np.asarray(snap.node) >= 0)).astype(np.int32)
        self._stop_nodes = np.asarray(snap.node)[self._stops]
        self._n_nodes = drive.n_nodes
        # Reaching the road from a door is at walking pace, not driving.
        self._snap_speed_mps = network.manifest.params.walk_speed_mps

    def covers(self, lat: float, lon: float) -> bool:
        return bool(shapely.contains_xy(self.polygon, lon, lat))

    def nearest_stop(self, lat: float, lon: float, max_m: float) -> int | None:
        """The stop inside the area that vehicles reach (a virtual stop) nearest to (lat, lon), if one
        lies within `max_m` (straight line)."""
        if not len(self._stops):
            return None
        tt = self._timetable
        metres = haversine_m(lat, lon, np.asarray(tt.stop_lat)[self._stops], np.asarray(tt.stop_lon)[self._stops])
        k = int(np.argmin(metres))
        return int(self._stops[k]) if metres[k] <= max_m else None

    def _budget_s(self) -> float:
        return (self.service.max_ride_s - self.service.pickup_delay_s) / self.service.detour_factor

    def _snap(self, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray] | None:
        node, dist = self._snapper.snap(np.array([lat]), np.array([lon]), 300.0)
        if node[0] < 0:
            return None
        return node, dist / self._snap_speed_mps

    def _ride_s(self, drive_s: np.ndarray) -> np.ndarray:
        return self.service.pickup_delay_s + np.ceil(drive_s * self.service.detour_factor).astype(np.int64)

    def _to_stops(self, router: StreetRouter, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros(0, np.int32), np.zeros(0, np.int64))
        if not self.covers(lat, lon):
            return empty
        snapped = self._snap(lat, lon)
        if snapped is None:
            return empty
        nodes, costs = router.search(snapped[0], snapped[1], self._budget_s())
        reached = np.full(self._n_nodes, np.inf)
        reached[nodes] = costs
        drive_s = reached[self._stop_nodes]
        ok = np.isfinite(drive_s)
        return self._stops[ok], self._ride_s(drive_s[ok])

    def rides_to_stops(self, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]:
        """Stops in the area a ride from (lat, lon) reaches, and the ride's seconds from the booked time."""
        return self._to_stops(self._forward, lat, lon)

    def rides_from_stops(self, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]:
        """Stops in the area from which a ride reaches (lat, lon), and the ride's seconds."""
        return self._to_stops(self._backward, lat, lon)

    def direct_ride_s(self, a: tuple[float, float], b: tuple[float, float]) -> int | None:
        """Seconds of a ride from a to b when both lie in the area, else None."""
        if not (self.covers(*a) and self.covers(*b)):
            return None
        sa, sb = self._snap(*a), self._snap(*b)
        if sa is None or sb is None:
            return None
        nodes, costs = self._forward.search(sa[0], sa[1], self._budget_s())
        hit = np.flatnonzero(nodes == sb[0][0])
        if not len(hit):
            return None
        return int(self._ride_s(np.array([costs[hit[0]] + sb[1][0]]))[0])
