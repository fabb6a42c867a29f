"""Distances and nearest-point look-ups in a local metric projection."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from feeds.geo import EARTH_RADIUS_M, haversine_m

__all__ = ["EARTH_RADIUS_M", "LocalProjection", "NearestIndex", "haversine_m"]


class LocalProjection:
    """Equirectangular metres around a reference latitude: exact enough within a region of 100 km."""

    def __init__(self, ref_lat: float) -> None:
        self.cos_ref = float(np.cos(np.radians(ref_lat)))

    def xy(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        return np.column_stack([
            np.radians(lon) * EARTH_RADIUS_M * self.cos_ref,
            np.radians(lat) * EARTH_RADIUS_M,
        ])


class NearestIndex:
    """Nearest of a fixed set of points (e.g. street nodes) to query points, within a radius."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray) -> None:
        known = np.isfinite(lat) & np.isfinite(lon)
        ref = float(np.median(lat[known])) if known.any() else 0.0
        self.projection = LocalProjection(ref)
        # Points without a position are never found; the tree holds the others, `_ids` maps back.
        self._ids = np.flatnonzero(known)
        self.lat = np.asarray(lat, dtype=np.float64)[known]
        self.lon = np.asarray(lon, dtype=np.float64)[known]
        self._tree = cKDTree(self.projection.xy(self.lat, self.lon)) if len(self._ids) else None

    def nearest(self, lat: np.ndarray, lon: np.ndarray, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Index of the nearest point and its great-circle distance; -1 and inf beyond `radius_m`."""
        n = len(lat)
        index = np.full(n, -1, dtype=np.int32)
        dist = np.full(n, np.inf, dtype=np.float64)
        ok = np.isfinite(lat) & np.isfinite(lon)
        if self._tree is None or not ok.any():
            return index, dist
        # The projection distorts a little away from its reference latitude: query wider, then check exactly.
        _, found = self._tree.query(self.projection.xy(lat[ok], lon[ok]), distance_upper_bound=radius_m * 1.05)
        hit = found < len(self.lat)
        rows = np.flatnonzero(ok)[hit]
        exact = haversine_m(lat[rows], lon[rows], self.lat[found[hit]], self.lon[found[hit]])
        inside = exact <= radius_m
        index[rows[inside]] = self._ids[found[hit][inside]]
        dist[rows[inside]] = exact[inside]
        return index, dist

    def pairs_within(self, radius_m: float) -> np.ndarray:
        """All unordered index pairs (i < j) of the points closer than about `radius_m`, as an (k, 2) array."""
        if self._tree is None:
            return np.zeros((0, 2), dtype=np.int64)
        return self._ids[self._tree.query_pairs(radius_m * 1.05, output_type="ndarray")]
