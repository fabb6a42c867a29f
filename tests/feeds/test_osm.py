"""Street networks from the real Herrenberg, Cobb County and Deufringen extracts; broken files."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import osmium
import pytest
from numpy.typing import ArrayLike

from feeds import osm
from feeds.model import FeedError
from feeds.osm import MODES, OsmError, StreetGraph, StreetSpeeds, load_streets

SHARED_DATA = Path(__file__).parents[3] / "shared" / "data"
HERRENBERG = SHARED_DATA / "region-herrenberg" / "herrenberg-and-around.osm.pbf"
DEUFRINGEN = SHARED_DATA / "region-herrenberg" / "extra" / "deufringen.osm.pbf"
COBB_COUNTY = SHARED_DATA / "region-cobb-county" / "cobb-county.filtered.osm.pbf"

# Ways of the Herrenberg extract, looked up by hand in OSM.
KRONENSTRASSE = 22936955  # residential, oneway=yes
ROBERT_KOCH_STRASSE = 24786839  # oneway=yes, oneway:bicycle=no, cycleway=opposite

EARTH_RADIUS_M = 6_371_009.0


class RawWay:
    """A way as pyosmium reads it, independently of the loader under test."""

    def __init__(self, tags: dict[str, str], nodes: list[int]) -> None:
        self.tags = tags
        self.nodes = nodes


@pytest.fixture(scope="module")
def herrenberg() -> dict[str, StreetGraph]:
    return load_streets(HERRENBERG)


@pytest.fixture(scope="module")
def herrenberg_ways() -> dict[int, RawWay]:
    return {
        way.id: RawWay(dict(way.tags), [n.ref for n in way.nodes])
        for way in osmium.FileProcessor(str(HERRENBERG), osmium.osm.WAY)
    }


def _sources(graph: StreetGraph) -> np.ndarray:
    return np.repeat(np.arange(graph.n_nodes), np.diff(graph.indptr))


def _edges_by_osm_id(graph: StreetGraph) -> set[tuple[int, int]]:
    source = graph.node_osm_id[_sources(graph)]
    target = graph.node_osm_id[graph.indices]
    return set(zip(source.tolist(), target.tolist(), strict=True))


def _haversine_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> np.ndarray:
    """Great-circle distance in metres, written independently of the loader's own."""
    phi1, lam1, phi2, lam2 = (np.radians(np.asarray(a, dtype=float)) for a in (lat1, lon1, lat2, lon2))
    h = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(h))


def _nodes_only_on(ways: dict[int, RawWay], chosen: Callable[[dict[str, str]], bool]) -> set[int]:
    """Nodes of ways for which `chosen(tags)` holds that lie on no other highway way."""
    inside: set[int] = set()
    outside: set[int] = set()
    for way in ways.values():
        if chosen(way.tags):
            inside.update(way.nodes)
        elif "highway" in way.tags:
            outside.update(way.nodes)
    return inside - outside


def test_herrenberg_sizes_are_plausible(herrenberg: dict[str, StreetGraph]) -> None:
    # Measured with plain osmnx: walk 15,215 nodes / 42,112 edges; osmnx's "drive" type has
    # 3,733 / 9,077 but leaves out all service roads, which the drive network here keeps.
    walk, bike, drive = herrenberg["walk"], herrenberg["bike"], herrenberg["drive"]
    assert 13_000 <= walk.n_nodes <= 18_000 and 36_000 <= walk.n_edges <= 48_000
    assert 11_000 <= bike.n_nodes <= 16_000 and 30_000 <= bike.n_edges <= 42_000
    assert 4_000 <= drive.n_nodes <= 6_500 and 9_000 <= drive.n_edges <= 15_000
    assert drive.n_edges < bike.n_edges < walk.n_edges
    assert set(herrenberg) == set(MODES)
    assert all(graph.mode == mode for mode, graph in herrenberg.items())


@pytest.mark.parametrize("mode", MODES)
def test_arrays_have_the_promised_types(herrenberg: dict[str, StreetGraph], mode: str) -> None:
    graph = herrenberg[mode]
    expected = {
        "node_osm_id": (np.int64, graph.n_nodes),
        "node_lat": (np.float64, graph.n_nodes),
        "node_lon": (np.float64, graph.n_nodes),
        "indptr": (np.int32, graph.n_nodes + 1),
        "indices": (np.int32, graph.n_edges),
        "length_m": (np.float32, graph.n_edges),
        "travel_time_s": (np.float32, graph.n_edges),
        "name_idx": (np.int32, graph.n_edges),
        "geometry_offsets": (np.int32, graph.n_edges + 1),
        "geometry_lat": (np.float64, None),
        "geometry_lon": (np.float64, None),
    }
    for field, (dtype, size) in expected.items():
        array = getattr(graph, field)
        assert array.dtype == dtype, field
        assert array.ndim == 1 and array.flags.c_contiguous, field
        if size is not None:
            assert len(array) == size, field
    assert len(graph.geometry_lat) == len(graph.geometry_lon) == graph.geometry_offsets[-1]
    assert isinstance(graph.names, list) and all(isinstance(n, str) and n for n in graph.names)
    assert len(set(graph.names)) == len(graph.names)


@pytest.mark.parametrize("mode", MODES)
def test_csr_is_consistent(herrenberg: dict[str, StreetGraph], mode: str) -> None:
    graph = herrenberg[mode]
    assert graph.indptr[0] == 0 and graph.indptr[-1] == graph.n_edges
    assert np.all(np.diff(graph.indptr) >= 0)
    assert graph.indices.min() >= 0 and graph.indices.max() < graph.n_nodes
    # Within a source node the targets are sorted and distinct: parallel edges were merged.
    source = _sources(graph).astype(np.int64)
    key = source * graph.n_nodes + graph.indices
    assert np.all(np.diff(key) > 0)
    assert np.all(np.diff(graph.node_osm_id) > 0)
    assert np.all(graph.length_m > 0) and np.all(np.isfinite(graph.length_m))
    assert np.all(graph.travel_time_s > 0) and np.all(np.isfinite(graph.travel_time_s))
    assert graph.name_idx.min() >= -1 and graph.name_idx.max() < len(graph.names)
    assert (graph.name_idx >= 0).mean() > 0.3
    # Every node has an edge: nothing isolated is left over.
    out_degree = np.bincount(source, minlength=graph.n_nodes)
    in_degree = np.bincount(graph.indices, minlength=graph.n_nodes)
    assert np.all(out_degree + in_degree > 0)
    # Coordinates are in the region.
    assert graph.node_lat.min() > 48.4 and graph.node_lat.max() < 48.8
    assert graph.node_lon.min() > 8.6 and graph.node_lon.max() < 9.1


@pytest.mark.parametrize("mode", MODES)
def test_lengths_match_the_geometry(herrenberg: dict[str, StreetGraph], mode: str) -> None:
    graph = herrenberg[mode]
    source = _sources(graph)
    offsets = graph.geometry_offsets
    assert np.all(np.diff(offsets) >= 2)
    first, last = offsets[:-1], offsets[1:] - 1
    # The polyline runs from the source node to the target node.
    assert np.array_equal(graph.geometry_lat[first], graph.node_lat[source])
    assert np.array_equal(graph.geometry_lon[first], graph.node_lon[source])
    assert np.array_equal(graph.geometry_lat[last], graph.node_lat[graph.indices])
    assert np.array_equal(graph.geometry_lon[last], graph.node_lon[graph.indices])
    # An edge is never shorter than the straight line between its ends...
    straight_m = _haversine_m(
        graph.node_lat[source],
        graph.node_lon[source],
        graph.node_lat[graph.indices],
        graph.node_lon[graph.indices],
    )
    assert np.all(graph.length_m >= straight_m - 0.01)
    # ...and is as long as its polyline.
    step_m = _haversine_m(
        graph.geometry_lat[:-1], graph.geometry_lon[:-1], graph.geometry_lat[1:], graph.geometry_lon[1:]
    )
    along_m = np.concatenate(([0.0], np.cumsum(step_m)))
    polyline_m = along_m[last] - along_m[first]
    np.testing.assert_allclose(graph.length_m, polyline_m, rtol=1e-5, atol=0.01)


def test_oneway_street_is_one_directional_only_for_driving(
    herrenberg: dict[str, StreetGraph], herrenberg_ways: dict[int, RawWay]
) -> None:
    way = herrenberg_ways[KRONENSTRASSE]
    assert way.tags["oneway"] == "yes" and way.tags["name"] == "Kronenstraße"
    start, end = way.nodes[0], way.nodes[-1]
    edges = {mode: _edges_by_osm_id(graph) for mode, graph in herrenberg.items()}
    assert (start, end) in edges["drive"] and (end, start) not in edges["drive"]
    assert (start, end) in edges["bike"] and (end, start) not in edges["bike"]
    assert (start, end) in edges["walk"] and (end, start) in edges["walk"]


def test_contraflow_cycling_is_two_way_for_bikes(
    herrenberg: dict[str, StreetGraph], herrenberg_ways: dict[int, RawWay]
) -> None:
    way = herrenberg_ways[ROBERT_KOCH_STRASSE]
    assert way.tags["oneway"] == "yes" and way.tags["oneway:bicycle"] == "no"
    start, end = way.nodes[0], way.nodes[-1]
    drive, bike = _edges_by_osm_id(herrenberg["drive"]), _edges_by_osm_id(herrenberg["bike"])
    assert (start, end) in drive and (end, start) not in drive
    assert (start, end) in bike and (end, start) in bike


def test_graph_nodes_lie_on_highways_only(
    herrenberg: dict[str, StreetGraph], herrenberg_ways: dict[int, RawWay]
) -> None:
    highway_nodes = {n for way in herrenberg_ways.values() if "highway" in way.tags for n in way.nodes}
    building_only = {n for way in herrenberg_ways.values() if "building" in way.tags for n in way.nodes} - highway_nodes
    assert len(building_only) > 10_000  # the extract has buildings
    for graph in herrenberg.values():
        nodes = set(graph.node_osm_id.tolist())
        assert nodes <= highway_nodes
        assert not nodes & building_only


def test_footways_are_for_walking_not_driving(
    herrenberg: dict[str, StreetGraph], herrenberg_ways: dict[int, RawWay]
) -> None:
    footway_only = _nodes_only_on(herrenberg_ways, lambda t: t.get("highway") in {"footway", "steps"})
    walk = set(herrenberg["walk"].node_osm_id.tolist())
    drive = set(herrenberg["drive"].node_osm_id.tolist())
    assert len(footway_only & walk) > 100
    assert not footway_only & drive


def test_motorways_are_for_driving_only(herrenberg: dict[str, StreetGraph], herrenberg_ways: dict[int, RawWay]) -> None:
    motorway_only = _nodes_only_on(herrenberg_ways, lambda t: t.get("highway") in {"motorway", "motorway_link"})
    assert len(motorway_only & set(herrenberg["drive"].node_osm_id.tolist())) > 5
    assert not motorway_only & set(herrenberg["walk"].node_osm_id.tolist())
    assert not motorway_only & set(herrenberg["bike"].node_osm_id.tolist())


def test_travel_times_follow_the_speeds(herrenberg: dict[str, StreetGraph]) -> None:
    drive_kmh = herrenberg["drive"].length_m / herrenberg["drive"].travel_time_s * 3.6
    assert drive_kmh.min() >= 5 - 1e-3 and drive_kmh.max() <= 140
    # Most roads here are 30 and 50 zones; the motorway is 120 or unlimited.
    assert 25 < np.median(drive_kmh) < 60 and drive_kmh.max() > 100
    walk_mps = herrenberg["walk"].length_m / herrenberg["walk"].travel_time_s
    np.testing.assert_allclose(walk_mps, 1.3, rtol=1e-4)
    bike_mps = herrenberg["bike"].length_m / herrenberg["bike"].travel_time_s
    # Pushing the bicycle (bicycle=dismount, ramps on steps) goes at walking speed.
    assert bike_mps.min() >= 1.3 - 1e-4 and bike_mps.max() <= 4.5 + 1e-4
    assert np.median(bike_mps) == pytest.approx(4.5, rel=1e-4)


def test_streets_are_named(herrenberg: dict[str, StreetGraph]) -> None:
    drive = herrenberg["drive"]
    named = collections.Counter(drive.names[i] for i in drive.name_idx.tolist() if i >= 0)
    assert named["Kronenstraße"] >= 1
    assert "Hindenburgstraße" in drive.names or "Tübinger Straße" in drive.names


def test_speeds_are_configurable() -> None:
    kmh = dict(StreetSpeeds().drive_default_kmh, residential=20.0)
    speeds = StreetSpeeds(walk_mps=1.0, bike_mps=5.0, drive_default_kmh=kmh, drive_fallback_kmh=25.0)
    graphs = load_streets(DEUFRINGEN, speeds=speeds)
    np.testing.assert_allclose(graphs["walk"].travel_time_s, graphs["walk"].length_m / 1.0, rtol=1e-5)
    bike_mps = graphs["bike"].length_m / graphs["bike"].travel_time_s
    assert bike_mps.max() == pytest.approx(5.0, rel=1e-4)
    default = load_streets(DEUFRINGEN, ["drive"])["drive"]
    assert graphs["drive"].travel_time_s.sum() > default.travel_time_s.sum()


def test_speeds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        StreetSpeeds(walk_mps=0.0)
    with pytest.raises(ValueError, match="positive"):
        StreetSpeeds(drive_default_kmh={"residential": -30.0})


@pytest.mark.parametrize(
    ("value", "kmh"),
    [
        ("50", 50.0),
        ("50 mph", 50 * 1.609344),
        ("30 km/h", 30.0),
        ("DE:urban", 50.0),
        ("DE:rural", 100.0),
        ("DE:zone30", 30.0),
        ("DE:zone:30", 30.0),
        ("walk", 7.0),
        ("DE:living_street", 7.0),
        ("30;50", 30.0),
        ("3", 5.0),
        ("none", None),
        ("signals", None),
        ("DE:motorway", None),
        ("fast", None),
        ("900", None),
        (None, None),
    ],
)
def test_maxspeed_values(value: str | None, kmh: float | None) -> None:
    assert osm._maxspeed_kmh(value) == (pytest.approx(kmh) if kmh is not None else None)


def test_cobb_county_loads() -> None:
    graphs = load_streets(COBB_COUNTY)
    assert 1_500 < graphs["drive"].n_nodes < graphs["walk"].n_nodes < 5_000
    # Limits in mph: 45 mph is the most common posted one.
    drive_kmh = graphs["drive"].length_m / graphs["drive"].travel_time_s * 3.6
    assert drive_kmh.max() <= 65 * 1.609344 + 0.01
    assert np.any(np.isclose(drive_kmh, 45 * 1.609344, rtol=1e-4))
    assert 33.5 < graphs["drive"].node_lat.mean() < 34.5 and -85 < graphs["drive"].node_lon.mean() < -84


def test_xml_input_gives_the_same_network(tmp_path: Path) -> None:
    xml = tmp_path / "deufringen.osm"
    with osmium.SimpleWriter(str(xml)) as writer:
        for obj in osmium.FileProcessor(str(DEUFRINGEN)):
            writer.add(obj)
    from_xml = load_streets(xml)
    from_pbf = load_streets(DEUFRINGEN)
    for mode in MODES:
        assert from_xml[mode].n_edges > 50
        for field in ("node_osm_id", "indptr", "indices", "length_m", "travel_time_s", "geometry_lat"):
            assert np.array_equal(getattr(from_xml[mode], field), getattr(from_pbf[mode], field))
        assert from_xml[mode].names == from_pbf[mode].names


def test_modes_can_be_chosen() -> None:
    assert list(load_streets(DEUFRINGEN, ["drive", "walk"])) == ["drive", "walk"]
    assert list(load_streets(DEUFRINGEN, "bike")) == ["bike"]


def test_loading_leaves_no_files_and_settings_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import osmnx

    def settings() -> tuple[object, ...]:
        s = osmnx.settings
        return s.use_cache, list(s.useful_tags_way), s.log_file, s.log_console

    monkeypatch.chdir(tmp_path)
    before = settings()
    load_streets(DEUFRINGEN)
    assert list(tmp_path.iterdir()) == []  # no cache/, logs/ or data/ of osmnx
    assert settings() == before


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


BAD_FILES = {
    "text named .osm.pbf": lambda tmp: _write(tmp / "notes.osm.pbf", b"these are not the streets\n"),
    "empty pbf": lambda tmp: _write(tmp / "empty.osm.pbf", b""),
    "truncated pbf": lambda tmp: _write(tmp / "cut.osm.pbf", DEUFRINGEN.read_bytes()[:30_000]),
    "missing": lambda tmp: tmp / "nowhere.osm.pbf",
    "directory": lambda tmp: tmp,
    "broken xml": lambda tmp: _write(tmp / "broken.osm", b"<osm version='0.6'><node id='1' lat="),
    "empty xml": lambda tmp: _write(tmp / "empty.osm", b""),
    "unknown extension": lambda tmp: _write(tmp / "streets.txt", b"hello"),
    "no streets": lambda tmp: _write(
        tmp / "bench.osm",
        b"<?xml version='1.0'?><osm version='0.6'>"
        b"<node id='1' version='1' lat='48.6' lon='8.9'><tag k='amenity' v='bench'/></node></osm>",
    ),
    "building only": lambda tmp: _write(
        tmp / "house.osm",
        b"<?xml version='1.0'?><osm version='0.6'>"
        b"<node id='1' version='1' lat='48.60' lon='8.90'/>"
        b"<node id='2' version='1' lat='48.60' lon='8.91'/>"
        b"<node id='3' version='1' lat='48.61' lon='8.91'/>"
        b"<way id='1' version='1'><nd ref='1'/><nd ref='2'/><nd ref='3'/><nd ref='1'/>"
        b"<tag k='building' v='yes'/></way></osm>",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_raises_osm_error_naming_the_file(tmp_path: Path, case: str) -> None:
    path = BAD_FILES[case](tmp_path)
    with pytest.raises(OsmError) as info:
        load_streets(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, FeedError)


def test_unknown_mode_raises_osm_error_naming_the_file() -> None:
    with pytest.raises(OsmError, match="boat") as info:
        load_streets(DEUFRINGEN, ["walk", "boat"])
    assert str(DEUFRINGEN) in str(info.value)


def test_a_mode_without_streets_raises(tmp_path: Path) -> None:
    # Only a footway: walkable, but nothing to drive on.
    xml = _write(
        tmp_path / "footway.osm",
        b"<?xml version='1.0'?><osm version='0.6'>"
        b"<node id='1' version='1' lat='48.60' lon='8.90'/>"
        b"<node id='2' version='1' lat='48.60' lon='8.91'/>"
        b"<way id='1' version='1'><nd ref='1'/><nd ref='2'/><tag k='highway' v='footway'/></way></osm>",
    )
    walk = load_streets(xml, ["walk"])["walk"]
    assert walk.n_nodes == 2 and walk.n_edges == 2
    assert walk.length_m[0] == pytest.approx(_haversine_m(48.6, 8.9, 48.6, 8.91), rel=1e-6)
    assert math.isclose(walk.travel_time_s[0], walk.length_m[0] / 1.3, rel_tol=1e-5)
    with pytest.raises(OsmError, match="drive") as info:
        load_streets(xml, ["walk", "drive"])
    assert str(xml) in str(info.value)
