"""Street searches: the one module that calls the `ext.dijkstra` kernel (its test oracle is in `routing.oracles`)."""

from __future__ import annotations

import msgspec
import numpy as np

from routing.kernels import require_array
from routing.model import StreetArrays

try:
    from ext.dijkstra import StreetSearch as _KernelSearch
except ImportError as exc:
    raise ImportError(
        "the compiled kernel ext.dijkstra is missing; build it with `pip install -e .` "
        "(or `python setup.py build_ext --inplace`) in the repository"
    ) from exc

WEIGHTS = ("length_m", "travel_time_s")


class StreetRouter:
    """Bounded one-to-many searches on one street graph, by length or by travel time."""

    def __init__(self, graph: StreetArrays, weight: str = "length_m") -> None:
        if weight not in WEIGHTS:
            raise ValueError(f"weight must be one of {WEIGHTS}, got {weight!r}")
        self.graph = graph
        self.weight = weight
        self._search = _KernelSearch(
            require_array(graph.indptr, np.int32, "indptr"),
            require_array(graph.indices, np.int32, "indices"),
            require_array(getattr(graph, weight), np.float32, weight),
        )

    def search(
        self, sources: np.ndarray, source_costs: np.ndarray | None = None, budget: float = np.inf
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nodes reachable within `budget` from any source (starting at its cost), with their costs."""
        nodes, costs, _ = self.search_tree(sources, source_costs, budget)
        return nodes, costs

    def search_tree(
        self, sources: np.ndarray, source_costs: np.ndarray | None = None, budget: float = np.inf
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As `search`, plus the edge each node was reached by (-1 at a source): the shortest-path tree."""
        sources = np.ascontiguousarray(sources, dtype=np.int32)
        if source_costs is None:
            source_costs = np.zeros(len(sources), dtype=np.float64)
        source_costs = np.ascontiguousarray(source_costs, dtype=np.float64)
        if len(sources) != len(source_costs):
            raise ValueError("one source cost per source node")
        if len(sources) and (sources.min() < 0 or sources.max() >= self.graph.n_nodes):
            raise IndexError("source node outside the graph")
        return self._search.search(sources, source_costs, float(budget))


def travel_matrix(router: StreetRouter, sources: np.ndarray, targets: np.ndarray, budget: float = np.inf) -> np.ndarray:
    """Costs from every source node to every target node (inf where beyond `budget`), one search per source."""
    sources = np.asarray(sources, dtype=np.int32)
    targets = np.asarray(targets, dtype=np.int64)
    out = np.full((len(sources), len(targets)), np.inf)
    scratch = np.full(router.graph.n_nodes, np.inf)
    for row, source in enumerate(sources.tolist()):
        nodes, costs = router.search(np.array([source], dtype=np.int32), budget=budget)
        scratch[nodes] = costs
        out[row] = scratch[targets]
        scratch[nodes] = np.inf
    return out


def tree_path(graph: StreetArrays, nodes: np.ndarray, pred_edge: np.ndarray, target: int) -> np.ndarray:
    """Edges from the search's source to `target` along a shortest-path tree of `search_tree`."""
    edge_of = dict(zip(nodes.tolist(), pred_edge.tolist(), strict=True))
    source_of_edge = np.repeat(np.arange(graph.n_nodes, dtype=np.int32), np.diff(graph.indptr))
    edges: list[int] = []
    node = target
    while edge_of.get(node, -1) >= 0:
        edge = edge_of[node]
        edges.append(edge)
        node = int(source_of_edge[edge])
    edges.reverse()
    return np.array(edges, dtype=np.int64)


def path_points(graph: StreetArrays, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The polyline (lat, lon) of consecutive edges, without repeating the shared end points."""
    if not len(edges):
        return np.zeros(0), np.zeros(0)
    offsets = np.asarray(graph.geometry_offsets)
    lat, lon = [], []
    for k, edge in enumerate(edges.tolist()):
        lo, hi = int(offsets[edge]), int(offsets[edge + 1])
        skip = 1 if k else 0
        lat.append(np.asarray(graph.geometry_lat[lo + skip : hi]))
        lon.append(np.asarray(graph.geometry_lon[lo + skip : hi]))
    return np.concatenate(lat), np.concatenate(lon)


def reversed_graph(graph: StreetArrays) -> StreetArrays:
    """The same streets with every edge turned round: searching it finds the ways *to* a node."""
    source = np.repeat(np.arange(graph.n_nodes, dtype=np.int32), np.diff(graph.indptr))
    order = np.argsort(np.asarray(graph.indices), kind="stable")
    counts = np.bincount(np.asarray(graph.indices), minlength=graph.n_nodes)
    return msgspec.structs.replace(
        graph,
        indptr=np.r_[0, np.cumsum(counts)].astype(np.int32),
        indices=np.ascontiguousarray(source[order]),
        length_m=np.ascontiguousarray(np.asarray(graph.length_m)[order]),
        travel_time_s=np.ascontiguousarray(np.asarray(graph.travel_time_s)[order]),
        name_idx=np.ascontiguousarray(np.asarray(graph.name_idx)[order]),
        # Reversed searches use costs only: the reversed graph carries no edge geometry.
        geometry_offsets=np.zeros(graph.n_edges + 1, dtype=np.int32),
        geometry_lat=np.zeros(0),
        geometry_lon=np.zeros(0),
    )
