"""Snapping points (stops, sharing stations) onto a street graph's edges, not just its nodes.

A simplified graph has few nodes along a long road; a stop beside the middle of it is near the
road but far from both ends. Points are therefore matched against the edges' polylines, densified
every few metres, and then assigned the nearer end of the matched edge, with the distance walked
to reach it: the straight line to the road plus the way along the road.
"""

from __future__ import annotations

import numpy as np

from routing.build.geo import NearestIndex, haversine_m
from routing.model import StreetArrays

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
        point, off_road = self._index.nearest(np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64), radius_m)
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
