"""How an endpoint connects to stops: the walk to (or from) every stop within reach, and walking all the way."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from routing.model import Network, Timetable
from routing.plan.scratch import RouterScratch, StreetGraphs
from routing.plan.wire import Endpoint, Place, PlanError
from routing.spatial import haversine_m

if TYPE_CHECKING:
    from routing.plan.bike_share import Rental

# How an access reaches each of its stops.
WALK, ON_DEMAND, BIKE_SHARE = 0, 1, 2


def stop_place(tt: Timetable, stop: int) -> Place:
    return Place(
        name=str(tt.stop_name[stop]),
        lat=float(tt.stop_lat[stop]),
        lon=float(tt.stop_lon[stop]),
        stop=str(tt.stop_id[stop]),
    )


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """How an endpoint connects to stops: seconds and metres per stop, by walking, an on-demand ride or a rental."""

    stops: np.ndarray  # int32
    seconds: np.ndarray  # int64
    metres: np.ndarray  # float64: walked, or straight line for a ride
    mode: np.ndarray  # int8: WALK, ON_DEMAND or BIKE_SHARE
    place: Place
    walk_reach: np.ndarray | None = None  # metres walked to every walk-graph node (inf beyond reach); coordinates only
    rentals: dict[int, Rental] = {}  # by stop, for BIKE_SHARE

    def with_rides(
        self,
        stops: np.ndarray,
        seconds: np.ndarray,
        metres: np.ndarray,
        mode: int = ON_DEMAND,
        rentals: dict[int, Rental] | None = None,
    ) -> Access:
        """Each stop by whichever is faster: the walk already known, or the given rides (or rentals)."""
        best: dict[int, tuple[int, float, int]] = {
            int(s): (int(t), float(m), int(k))
            for s, t, m, k in zip(self.stops, self.seconds, self.metres, self.mode, strict=True)
        }
        for s, t, m in zip(stops.tolist(), seconds.tolist(), metres.tolist(), strict=True):
            if s not in best or t < best[s][0]:
                best[s] = (t, m, mode)
        keys = sorted(best)
        kept = {k: v for k, v in {**self.rentals, **(rentals or {})}.items() if k in best and best[k][2] == BIKE_SHARE}
        return Access(
            stops=np.array(keys, dtype=np.int32),
            seconds=np.array([best[k][0] for k in keys], dtype=np.int64),
            metres=np.array([best[k][1] for k in keys]),
            mode=np.array([best[k][2] for k in keys], dtype=np.int8),
            place=self.place,
            walk_reach=self.walk_reach,
            rentals=kept,
        )


class Walking:
    """Walks on one network: from an endpoint to its stops, between two endpoints, onto the walk graph."""

    def __init__(self, network: Network, graphs: StreetGraphs) -> None:
        self.network = network
        self.graphs = graphs
        self.walk_speed_mps = network.manifest.params.walk_speed_mps
        self.stop_index = {str(s): i for i, s in enumerate(network.timetable.stop_id)}

    def access(self, end: Endpoint, max_walk_m: float, label: str, scratch: RouterScratch) -> Access:
        """Stops reachable on foot from an endpoint, with the walking distance to each."""
        tt = self.network.timetable
        if end.stop is not None:
            if end.stop not in self.stop_index:
                raise PlanError(f"{label}: no stop {end.stop!r} in this network (ids look like <feed>:<stop_id>)")
            s = self.stop_index[end.stop]
            return Access(
                stops=np.array([s], np.int32),
                seconds=np.zeros(1, np.int64),
                metres=np.zeros(1),
                mode=np.zeros(1, np.int8),
                place=stop_place(tt, s),
            )
        assert end.lat is not None and end.lon is not None
        place = Place(name=f"{end.lat:.5f},{end.lon:.5f}", lat=end.lat, lon=end.lon)
        # Stops off the street graph (beyond the OSM extract, or a network without one) are
        # reached along a straight line times the build's detour factor.
        detour = self.network.manifest.params.straight_line_detour
        walk = haversine_m(end.lat, end.lon, tt.stop_lat, tt.stop_lon) * detour
        walk[~np.isfinite(walk)] = np.inf
        snap = self.network.snaps.get("walk")
        node = np.array([-1])
        reached: np.ndarray | None = None
        snapper, walk_graph = self.graphs.walk_snapper, self.graphs.walk
        if snap is not None and snapper is not None and walk_graph is not None and scratch.walk is not None:
            stop_nodes = np.asarray(snap.node)
            on_streets = stop_nodes >= 0
            walk[on_streets] = np.inf
            node, snap_m = snapper.get().snap(np.array([end.lat]), np.array([end.lon]), max(max_walk_m, 300.0))
            if node[0] >= 0:
                nodes, costs = scratch.walk.search(node, snap_m, max_walk_m)
                reached = np.full(walk_graph.n_nodes, np.inf)
                reached[nodes] = costs
                walk[on_streets] = reached[stop_nodes[on_streets]] + np.asarray(snap.distance_m)[on_streets]
        stops = np.flatnonzero(walk <= max_walk_m).astype(np.int32)
        if not len(stops) and (snap is None or node[0] < 0):
            raise PlanError(
                f"{label}: {end.lat},{end.lon} is outside this network (no street and no stop within {max_walk_m:.0f} m)"
            )
        return Access(
            stops=stops,
            seconds=np.ceil(walk[stops] / self.walk_speed_mps).astype(np.int64),
            metres=walk[stops],
            mode=np.zeros(len(stops), np.int8),
            place=place,
            walk_reach=reached,
        )

    def direct_walk(
        self, origin: Access, destination: Access, max_walk_m: float, scratch: RouterScratch
    ) -> tuple[int, float] | None:
        """Seconds and metres of walking the whole way, when the destination is within `max_walk_m` of the origin."""
        snapper = self.graphs.walk_snapper
        if origin.place.stop is not None or destination.place.stop is not None:
            return None
        # Only a network whose stops are snapped to its walk graph walks along the streets.
        if snapper is None or "walk" not in self.network.snaps or scratch.walk is None:
            return None
        nodes_o, cost_o = snapper.get().snap(np.array([origin.place.lat]), np.array([origin.place.lon]), 300.0)
        nodes_d, cost_d = snapper.get().snap(
            np.array([destination.place.lat]), np.array([destination.place.lon]), 300.0
        )
        if nodes_o[0] < 0 or nodes_d[0] < 0:
            return None
        reached, costs = scratch.walk.search(nodes_o, cost_o, max_walk_m)
        hit = np.flatnonzero(reached == nodes_d[0])
        if not len(hit):
            return None
        metres = float(costs[hit[0]] + cost_d[0])
        if metres > max_walk_m:
            return None
        return math.ceil(metres / self.walk_speed_mps), metres

    def node_of(self, place: Place) -> int:
        """The walk-graph node a place is snapped to, -1 when it is off the streets."""
        snapper = self.graphs.walk_snapper
        if snapper is None:
            return -1
        if place.stop is not None:
            return int(self.network.snaps["walk"].node[self.stop_index[place.stop]])
        return int(snapper.get().snap(np.array([place.lat]), np.array([place.lon]), 300.0)[0][0])
