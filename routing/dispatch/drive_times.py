"""Driving seconds between the places a live plan uses: a matrix grown one place (drive-graph node) at
a time, with one forward and one backward street search per new place."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from routing.dispatch.model import DispatchError
from routing.model import StreetArrays
from routing.spatial import NearestIndex
from routing.streets import StreetRouter, reversed_graph

# Driving time used for places that cannot reach each other: large but finite, so that sums stay numbers.
UNREACHABLE_S = 1e9
SNAP_RADIUS_M = 500.0


class DriveTimes:
    """Driving seconds between the places in use, grown one place at a time."""

    def __init__(self, drive: StreetArrays, capacity: int = 256) -> None:
        self.graph = drive
        # Only the largest strongly connected part of the roads can be served both ways.
        adjacency = csr_matrix(
            (np.ones(drive.n_edges), np.asarray(drive.indices), np.asarray(drive.indptr)),
            shape=(drive.n_nodes, drive.n_nodes),
        )
        _, component = connected_components(adjacency, directed=True, connection="strong")
        self.routable: npt.NDArray[np.bool_] = component == np.bincount(component).argmax()
        self._forward = StreetRouter(drive, "travel_time_s")
        self._backward = StreetRouter(reversed_graph(drive), "travel_time_s")
        self._nearest: NearestIndex | None = None
        self.matrix: npt.NDArray[np.float64] = np.zeros((capacity, capacity), dtype=np.float64)
        self.nodes: list[int] = []
        self._place_of: dict[int, int] = {}
        self.grown = 0  # bumps whenever `matrix` is replaced by a bigger one

    def snap(self, lat: float, lon: float) -> int:
        """The drive-graph node nearest to a position, within 500 m."""
        return self.snap_many([lat], [lon])[0]

    def snap_many(self, lats: Sequence[float], lons: Sequence[float]) -> list[int]:
        """`snap` of several positions in one look-up; DispatchError names the first too far from a road."""
        if self._nearest is None:
            lat_, lon_ = np.asarray(self.graph.node_lat).copy(), np.asarray(self.graph.node_lon).copy()
            lat_[~self.routable] = np.nan  # never snap onto a road cut off from the rest
            self._nearest = NearestIndex(lat_, lon_)
        if not len(lats):
            return []
        index, _ = self._nearest.nearest(
            np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64), SNAP_RADIUS_M
        )
        for k in np.flatnonzero(index < 0)[:1].tolist():
            raise DispatchError(f"{lats[k]:.5f},{lons[k]:.5f} is more than {SNAP_RADIUS_M:.0f} m from any road")
        nodes: list[int] = index.tolist()
        return nodes

    def place(self, node: int) -> int:
        """The place index of a drive-graph node, adding it (two searches) when new."""
        known = self._place_of.get(node)
        if known is not None:
            return known
        if not 0 <= node < self.graph.n_nodes:
            raise DispatchError(f"node {node} is not in the drive graph")
        if not self.routable[node]:
            raise DispatchError(f"node {node} lies on a road cut off from the rest of the network")
        k = len(self.nodes)
        if k == len(self.matrix):
            bigger = np.zeros((2 * k, 2 * k), dtype=np.float64)
            bigger[:k, :k] = self.matrix[:k, :k]
            self.matrix = bigger
            self.grown += 1
        targets = np.array(self.nodes, dtype=np.int64)
        source = np.array([node], dtype=np.int32)
        row = self._times(self._forward, source, targets)
        column = self._times(self._backward, source, targets)
        self.matrix[k, :k] = row
        self.matrix[:k, k] = column
        self.matrix[k, k] = 0.0
        self.nodes.append(node)
        self._place_of[node] = k
        return k

    def warm(self, nodes: Sequence[int]) -> None:
        """Add the places riders will mostly use (the bus stops on the drive graph) ahead of the first
        quote; nodes off the routable roads are skipped."""
        for node in nodes:
            if 0 <= node < self.graph.n_nodes and self.routable[node]:
                self.place(int(node))

    def _times(
        self, router: StreetRouter, source: npt.NDArray[np.int32], targets: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        nodes, costs = router.search(source)
        full = np.full(self.graph.n_nodes, UNREACHABLE_S)
        full[nodes] = costs
        times: npt.NDArray[np.float64] = full[targets]
        return times

    def seconds(self, a: int, b: int) -> float:
        """Driving seconds from drive-graph node `a` to node `b`."""
        # Both places first: adding one may grow the matrix, which must be read afterwards.
        i, j = self.place(a), self.place(b)
        return float(self.matrix[i, j])
