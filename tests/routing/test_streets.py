"""The Dijkstra kernel against the pure-Python oracle, on random graphs and on a real street graph."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.model import StreetArrays
from routing.oracles import search_reference
from routing.streets import StreetRouter


def _graph(n: int, edges: list[tuple[int, int, float]]) -> StreetArrays:
    edges = sorted(edges)
    src = np.array([e[0] for e in edges], dtype=np.int64)
    counts = np.bincount(src, minlength=n) if len(edges) else np.zeros(n, dtype=np.int64)
    m = len(edges)
    zeros = np.zeros(m, dtype=np.float32)
    return StreetArrays(
        mode="walk",
        node_osm_id=np.arange(n, dtype=np.int64),
        node_lat=np.zeros(n),
        node_lon=np.zeros(n),
        indptr=np.r_[0, np.cumsum(counts)].astype(np.int32),
        indices=np.array([e[1] for e in edges], dtype=np.int32),
        length_m=np.array([e[2] for e in edges], dtype=np.float32),
        travel_time_s=zeros,
        name_idx=np.full(m, -1, dtype=np.int32),
        names=np.zeros(0, dtype="<U1"),
        geometry_offsets=np.zeros(m + 1, dtype=np.int32),
        geometry_lat=np.zeros(0),
        geometry_lon=np.zeros(0),
    )


@st.composite
def graphs_and_queries(draw: st.DrawFn) -> tuple[StreetArrays, np.ndarray, np.ndarray, float]:
    n = draw(st.integers(1, 30))
    edges = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0, 100, width=32)),
            max_size=120,
        )
    )
    k = draw(st.integers(1, 3))
    sources = np.array(draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k)), dtype=np.int32)
    costs = np.array(draw(st.lists(st.floats(0, 50), min_size=k, max_size=k)), dtype=np.float64)
    budget = draw(st.one_of(st.just(float("inf")), st.floats(0, 300)))
    return _graph(n, edges), sources, costs, budget


@settings(max_examples=300, deadline=None)
@given(graphs_and_queries())
def test_kernel_matches_oracle_on_random_graphs(case: tuple[StreetArrays, np.ndarray, np.ndarray, float]) -> None:
    graph, sources, costs, budget = case
    nodes, found = StreetRouter(graph).search(sources, costs, budget)
    expected = search_reference(graph, "length_m", sources, costs, budget)
    assert dict(zip(nodes.tolist(), found.tolist(), strict=True)) == pytest.approx(expected)
    assert np.all(np.diff(found) >= 0), "nodes come out in increasing cost"


def test_search_validates_its_input() -> None:
    graph = _graph(3, [(0, 1, 1.0), (1, 2, 1.0)])
    router = StreetRouter(graph)
    with pytest.raises(IndexError):
        router.search(np.array([5]))
    with pytest.raises(ValueError, match="weight"):
        StreetRouter(graph, "speed")
    nodes, costs = router.search(np.array([0]), budget=1.5)
    assert nodes.tolist() == [0, 1] and costs.tolist() == [0.0, 1.0]


def test_kernel_matches_oracle_on_the_herrenberg_walk_graph() -> None:
    from feeds.osm import load_streets
    from routing.builder import street_arrays
    from tests.conftest import HERRENBERG

    graph = street_arrays(load_streets(HERRENBERG / "herrenberg-and-around.osm.pbf", modes=("walk",))["walk"])
    rng = np.random.default_rng(7)
    for weight in ("length_m", "travel_time_s"):
        router = StreetRouter(graph, weight)
        for _ in range(10):
            sources = rng.integers(0, graph.n_nodes, size=2).astype(np.int32)
            costs = rng.uniform(0, 50, size=2)
            budget = 2000.0 if weight == "length_m" else 1500.0
            nodes, found = router.search(sources, costs, budget)
            expected = search_reference(graph, weight, sources, costs, budget)
            assert len(nodes) > 10
            assert dict(zip(nodes.tolist(), found.tolist(), strict=True)) == pytest.approx(expected)


def test_missing_kernel_is_an_actionable_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    import routing.streets

    monkeypatch.setitem(sys.modules, "ext.dijkstra", None)
    with pytest.raises(ImportError, match="pip install -e"):
        importlib.reload(routing.streets)
    monkeypatch.undo()
    importlib.reload(routing.streets)


def test_tree_paths_cost_what_the_search_says(network_dir) -> None:
    from routing.network import load_network
    from routing.streets import path_points, tree_path

    walk = load_network(network_dir).streets["walk"]
    router = StreetRouter(walk, "length_m")
    rng = np.random.default_rng(4)
    for source in rng.integers(0, walk.n_nodes, size=5):
        nodes, costs, pred = router.search_tree(np.array([source]), budget=1500.0)
        for k in rng.integers(0, len(nodes), size=10):
            edges = tree_path(walk, nodes, pred, int(nodes[k]))
            assert float(np.asarray(walk.length_m)[edges].sum()) == pytest.approx(costs[k], rel=1e-5, abs=1e-3)
            lat, lon = path_points(walk, edges)
            if len(edges):
                assert (lat[0], lon[0]) == (walk.node_lat[source], walk.node_lon[source])
                assert (lat[-1], lon[-1]) == (walk.node_lat[nodes[k]], walk.node_lon[nodes[k]])


def test_drive_time_matrix_matches_single_searches(network_dir) -> None:
    from routing.network import load_network
    from routing.streets import travel_matrix

    drive = load_network(network_dir).streets["drive"]
    router = StreetRouter(drive, "travel_time_s")
    rng = np.random.default_rng(9)
    sources = rng.integers(0, drive.n_nodes, size=6)
    targets = rng.integers(0, drive.n_nodes, size=9)
    matrix = travel_matrix(router, sources, targets)
    for i, s in enumerate(sources):
        expected = search_reference(drive, "travel_time_s", np.array([s]), np.array([0.0]), np.inf)
        for j, t in enumerate(targets):
            assert matrix[i, j] == pytest.approx(expected.get(int(t), np.inf))
    # The drive graph is one strongly connected piece: every pair has a finite time, zero on the diagonal.
    square = travel_matrix(router, sources, sources)
    assert np.isfinite(square).all() and np.allclose(np.diag(square), 0.0)
