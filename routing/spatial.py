"""Where things are at query time: great-circle distances, nearest points, snapping onto streets.

The builder uses these too, but they live here so that nothing on the query path imports the
builder. `EdgeSnapper` matches points against the edges' polylines, not just the nodes: a
simplified graph has few nodes along a long road, and a stop beside the middle of it is near the
road but far from both ends. Each point is assigned the nearer end of its matched edge, with the
distance walked to reach it (the straight line to the road plus the way along the road).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from routing.model import StreetArrays

EARTH_RADIUS_M = 6_371_009.0  # the mean Earth radius, the value osmnx uses (as feeds.geo)


def haversine_m(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distances in metres (element-wise, broadcasting; floats give a 0-d array)."""
    p1, l1, p2, l2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (lat1, lon1, lat2, lon2))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    distance: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distance


class LocalProjection:
    """Equirectangular metres around a reference latitude: exact enough within a region of 100 km."""

    def __init__(self, ref_lat: float) -> None:
        self.cos_ref = float(np.cos(np.radians(ref_lat)))

    def xy(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        return np.column_stack(
            [
                np.radians(lon) * EARTH_RADIUS_M * self.cos_ref,
                np.radians(lat) * EARTH_RADIUS_M,
            ]
        )


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
        _, nearest = self._tree.query(self.projection.xy(lat[ok], lon[ok]), distance_upper_bound=radius_m * 1.05)
        # One point per query row in, so one tree index per row out (len(lat) where none is in range).
        found = np.asarray(nearest)
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


# Spacing of the densified points: a point off the road is matched within about this much error.
DENSIFY_STEP_M = 20.0


class EdgeSnapper:
    """Nearest road position of query points on one street graph."""

    def __init__(self, graph: StreetArrays, step_m: float = DENSIFY_STEP_M) -> None:
        offsets = np.asarray(graph.geometry_offsets, dtype=np.int64)
        lat = np.asarray(graph.geometry_lat)
        lon = np.asarray(graph.geometry_lon)
        n_points = np.diff(offsets)
        edge_of_point = np.repeat(np.arange(graph.n_edges), n_points)
        # Segments join consecutive points of the same edge.
        seg_start = np.flatnonzero(np.r_[edge_of_point[1:] == edge_of_point[:-1], False])
        seg_len = haversine_m(lat[seg_start], lon[seg_start], lat[seg_start + 1], lon[seg_start + 1])
        # Distance along the edge at the start of each segment.
        along = np.zeros(len(lat))
        along[seg_start + 1] = seg_len
        along = np.cumsum(along)
        first_point = offsets[:-1]
        along -= np.repeat(along[first_point], n_points)
        pieces = np.maximum(np.ceil(seg_len / step_m).astype(np.int64), 1)
        seg_of = np.repeat(np.arange(len(seg_start)), pieces)
        frac = (np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)) / np.repeat(pieces, pieces)
        a, b = seg_start[seg_of], seg_start[seg_of] + 1
        self.lat = np.r_[lat[a] + (lat[b] - lat[a]) * frac, lat]
        self.lon = np.r_[lon[a] + (lon[b] - lon[a]) * frac, lon]
        self.edge = np.r_[edge_of_point[a], edge_of_point]
        self.along = np.r_[along[a] + seg_len[seg_of] * frac, along]
        total = np.zeros(graph.n_edges)
        np.add.at(total, edge_of_point[seg_start], seg_len)
        self.total = total
        self.source = np.repeat(np.arange(graph.n_nodes, dtype=np.int32), np.diff(graph.indptr))
        self.target = np.asarray(graph.indices)
        self._index = NearestIndex(self.lat, self.lon)

    def snap(self, lat: np.ndarray, lon: np.ndarray, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Node reached from each point and the walk to it; -1 / inf when no road is within `radius_m`."""
        point, off_road = self._index.nearest(
            np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64), radius_m
        )
        node = np.full(len(point), -1, dtype=np.int32)
        dist = np.full(len(point), np.inf, dtype=np.float64)
        hit = point >= 0
        p = point[hit]
        e = self.edge[p]
        to_start = self.along[p]
        to_end = np.maximum(self.total[e] - to_start, 0.0)
        use_start = to_start <= to_end
        node[hit] = np.where(use_start, self.source[e], self.target[e])
        dist[hit] = off_road[hit] + np.where(use_start, to_start, to_end)
        return node, dist
