"""OpenStreetMap street networks for walking, cycling and driving, read offline into CSR arrays.

One pass with pyosmium over a `.osm.pbf` or `.osm` (XML) file picks the ways each mode may use
and settles, per way, the direction of travel and the speed. The rules are written out below;
they follow what OpenTripPlanner and osmnx do by default: walk on any street that is not a
motorway or a private way, cycle on roads, tracks and cycleways, drive on public roads but not
in parking aisles or driveways.

Per mode, the ways of the largest connected part go to a temporary OSM XML file in a normalised
form: nodes listed in the direction of travel, `oneway=yes` exactly when the mode may go one way
only, each direction's speed as a tag, and without the bends that osmnx would simplify away
anyway (they make up two thirds of the nodes and most of osmnx's time; their coordinates and
lengths are put back on the edges afterwards). osmnx builds the graph from that file and
simplifies it to intersections and dead ends; this module flattens it into arrays sorted by
source node, with every edge's full polyline.

Anything that cannot be read as an OSM street network raises OsmError naming the file.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast
from xml.sax.saxutils import quoteattr

import msgspec
import numpy as np
import osmium
import scipy.sparse
import scipy.sparse.csgraph

from feeds.geo import haversine_m
from feeds.model import FeedError

MODES = ("walk", "bike", "drive")

# Highway values not listed for a mode are not used by it: construction, proposed, abandoned,
# platform, raceway, bus_guideway and the like are no streets for anyone.

# Walking: these classes are walkable unless a tag says otherwise...
_WALK_DEFAULT = frozenset(
    {
        "footway",
        "path",
        "pedestrian",
        "steps",
        "corridor",
        "living_street",
        "residential",
        "service",
        "track",
        "unclassified",
        "road",
        "tertiary",
        "tertiary_link",
        "secondary",
        "secondary_link",
        "primary",
        "primary_link",
    }
)
# ...and these only where `foot` (or `access`) explicitly allows it.
_WALK_IF_ALLOWED = frozenset({"cycleway", "bridleway", "motorway", "motorway_link", "trunk", "trunk_link"})

_BIKE_DEFAULT = frozenset(
    {
        "cycleway",
        "path",
        "track",
        "living_street",
        "residential",
        "service",
        "unclassified",
        "road",
        "tertiary",
        "tertiary_link",
        "secondary",
        "secondary_link",
        "primary",
        "primary_link",
    }
)
_BIKE_IF_ALLOWED = frozenset(
    {"footway", "pedestrian", "bridleway", "corridor", "motorway", "motorway_link", "trunk", "trunk_link"}
)

_DRIVE = frozenset(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "road",
        "service",
    }
)
# Service roads a car may use but that no route should pass through.
_DRIVE_EXCLUDED_SERVICE = frozenset(
    {"parking_aisle", "parking", "driveway", "emergency_access", "private", "drive-through"}
)

# Access values that keep the general public out. `destination`, `customers` and `delivery` do
# not: a trip may well start or end there.
_DENIED = frozenset({"no", "private", "agricultural", "forestry", "military", "use_sidepath"})
# Values that open a way the mode could not use by its class alone (a cycleway for walking).
_EXPLICIT = frozenset({"yes", "designated", "permissive", "official", "public"})

# The most specific key that is present decides (foot over access, motorcar over vehicle).
_WALK_ACCESS_KEYS = ("foot", "access")
_BIKE_ACCESS_KEYS = ("bicycle", "vehicle", "access")
_DRIVE_ACCESS_KEYS = ("motorcar", "motor_vehicle", "vehicle", "access")

_ONEWAY_FORWARD = frozenset({"yes", "true", "1"})
_ONEWAY_BACKWARD = frozenset({"-1", "reverse"})
_ONEWAY_BOTH = frozenset({"no", "false", "0", "alternating"})

_MPH_KMH = 1.609344
# Implicit limits written as `<country>:<kind>` (maxspeed=DE:urban, source:maxspeed=DE:zone30).
# "rural" is the German and Austrian limit; most of Europe has 80 to 100.
_ZONE_KMH = {
    "urban": 50.0,
    "rural": 100.0,
    "living_street": 7.0,
    "walk": 7.0,
    "bicycle_road": 30.0,
    "nsl_restricted": 30 * _MPH_KMH,
    "nsl_single": 60 * _MPH_KMH,
    "nsl_dual": 70 * _MPH_KMH,
}
_ZONE_RE = re.compile(r"^[A-Z]{2}(?:-[A-Z0-9]+)?:([a-z_]+?):?(\d+)?$")
_NUMBER_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?$")
# A posted limit outside this range is a tagging error, not a speed.
_MAX_PLAUSIBLE_KMH = 150.0
_MIN_DRIVE_KMH = 5.0

# Tags of the temporary XML that carry each direction's speed through osmnx to the edges.
_FORWARD_TAG = "maas:forward_mps"
_BACKWARD_TAG = "maas:backward_mps"

# Characters that XML 1.0 cannot carry; names with them exist in OSM and would break the parser.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class OsmError(FeedError):
    """An OSM file that cannot be read as a street network; the message names the file."""


def _default_drive_kmh() -> dict[str, float]:
    # Typical speeds where no limit is tagged (or the limit is "none"), lower than the legal
    # maximum of the class because towns, bends and junctions slow everyone down.
    return {
        "motorway": 110.0,
        "motorway_link": 60.0,
        "trunk": 90.0,
        "trunk_link": 50.0,
        "primary": 70.0,
        "primary_link": 50.0,
        "secondary": 60.0,
        "secondary_link": 40.0,
        "tertiary": 50.0,
        "tertiary_link": 40.0,
        "unclassified": 40.0,
        "road": 40.0,
        "residential": 30.0,
        "living_street": 10.0,
        "service": 20.0,
    }


class StreetSpeeds(msgspec.Struct, frozen=True, kw_only=True):
    """Travel speeds per mode; driving uses the tagged limit, else the class default here."""

    walk_mps: float = 1.3
    bike_mps: float = 4.5
    drive_default_kmh: dict[str, float] = msgspec.field(default_factory=_default_drive_kmh)
    drive_fallback_kmh: float = 30.0

    def __post_init__(self) -> None:
        speeds = [self.walk_mps, self.bike_mps, self.drive_fallback_kmh, *self.drive_default_kmh.values()]
        if not all(math.isfinite(s) and s > 0 for s in speeds):
            raise ValueError(f"street speeds must be positive and finite: {self}")


class StreetGraph(msgspec.Struct, frozen=True, kw_only=True):
    """The street network of one mode: nodes, and directed edges in CSR order by source node.

    Nodes are intersections and dead ends, ordered by OSM id. Between two nodes there is at most
    one edge per direction (the fastest). An edge's polyline runs from its source to its target,
    both included.
    """

    mode: str
    node_osm_id: np.ndarray  # int64 [n]
    node_lat: np.ndarray  # float64 [n]
    node_lon: np.ndarray  # float64 [n]
    indptr: np.ndarray  # int32 [n+1]: edges of node i are indptr[i]:indptr[i+1]
    indices: np.ndarray  # int32 [m]: target node of each edge
    length_m: np.ndarray  # float32 [m]
    travel_time_s: np.ndarray  # float32 [m]
    name_idx: np.ndarray  # int32 [m]: index into names, -1 when unnamed
    names: list[str]
    geometry_offsets: np.ndarray  # int32 [m+1] into geometry_lat/geometry_lon
    geometry_lat: np.ndarray  # float64
    geometry_lon: np.ndarray  # float64

    @property
    def n_nodes(self) -> int:
        return len(self.node_osm_id)

    @property
    def n_edges(self) -> int:
        return len(self.indices)


class _Way(msgspec.Struct, frozen=True):
    """A way as one mode uses it: nodes in the direction of travel."""

    node_ids: list[int]
    oneway: bool
    name: str | None
    forward_mps: float
    backward_mps: float


class _Use(msgspec.Struct, frozen=True):
    """How one mode may use a way: which directions, at which speeds."""

    direction: int  # 1: along the way only, -1: against it only, 0: both
    forward_mps: float
    backward_mps: float


def load_streets(
    path: str | Path,
    modes: Sequence[str] = MODES,
    speeds: StreetSpeeds = StreetSpeeds(),  # frozen, so one shared default is safe
) -> dict[str, StreetGraph]:
    """Read the street network of each mode from an `.osm.pbf` or `.osm` file, reading it once.

    Each graph is the largest connected part of the mode's network. Raises OsmError naming the
    file when it cannot be read or a mode finds no usable street in it.
    """
    path = Path(path)
    modes = [modes] if isinstance(modes, str) else list(dict.fromkeys(modes))
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise OsmError(f"{path}: unknown mode {unknown[0]!r}, expected one of {', '.join(MODES)}")
    if not path.exists():
        raise OsmError(f"{path}: no such file")
    if not path.is_file():
        raise OsmError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise OsmError(f"{path}: empty file")
    coords, ways = _read_ways(path, modes, speeds)
    graphs = {}
    with tempfile.TemporaryDirectory(prefix="maas-osm-") as tmp:
        for mode in modes:
            if not ways[mode]:
                raise OsmError(f"{path}: no streets usable for {mode} in the file")
            network = _contract(_largest_component(ways[mode]), coords)
            xml = Path(tmp) / f"{mode}.osm"
            _write_xml(xml, network.ways, coords)
            graphs[mode] = _build_graph(path, mode, xml, network, coords)
    return graphs


def _read_ways(
    path: Path, modes: Sequence[str], speeds: StreetSpeeds
) -> tuple[dict[int, tuple[float, float]], dict[str, list[_Way]]]:
    """Collect, for every mode, the ways it may use, and the coordinates of their nodes."""
    rules = {"walk": _walk_use, "bike": _bike_use, "drive": _drive_use}
    coords: dict[int, tuple[float, float]] = {}
    ways: dict[str, list[_Way]] = {mode: [] for mode in modes}
    # Node locations are cached before the filters run, so only highway ways reach Python.
    processor = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    try:
        for entity in processor:
            # The EntityFilter above lets only ways through.
            way = cast(osmium.osm.Way, entity)
            tags = {tag.k: tag.v for tag in way.tags}
            uses = [(mode, rules[mode](tags, speeds)) for mode in modes]
            if all(use is None for _, use in uses):
                continue
            pieces = _located_pieces(way.nodes, coords)
            name = _street_name(tags)
            for mode, use in uses:
                if use is None:
                    continue
                for piece in pieces:
                    ways[mode].append(_mode_way(piece, use, name))
    except RuntimeError as exc:
        # osmium reports every unreadable input (missing, not OSM, truncated) as RuntimeError.
        raise OsmError(f"{path}: not a readable OSM file (.osm.pbf or .osm): {exc}") from None
    return coords, ways


def _located_pieces(nodes: Any, coords: dict[int, tuple[float, float]]) -> list[list[int]]:
    """The runs of a way's nodes that have a location (clipped extracts lack some), recorded."""
    pieces: list[list[int]] = []
    current: list[int] = []
    for node in nodes:
        location = node.location
        if not location.valid():
            pieces.append(current)
            current = []
            continue
        ref = node.ref
        if not current or current[-1] != ref:
            current.append(ref)
        coords[ref] = (location.lat, location.lon)
    pieces.append(current)
    return [p for p in pieces if len(p) >= 2]


def _mode_way(node_ids: list[int], use: _Use, name: str | None) -> _Way:
    if use.direction == -1:
        # Listing the nodes in the direction of travel lets the XML say just `oneway=yes`.
        return _Way(node_ids[::-1], True, name, use.backward_mps, use.forward_mps)
    return _Way(node_ids, use.direction == 1, name, use.forward_mps, use.backward_mps)


def _street_name(tags: dict[str, str]) -> str | None:
    # Unnamed main roads are known by their number ("B 14", "I 75").
    name = tags.get("name") or tags.get("ref")
    if not name:
        return None
    return " ".join(_XML_INVALID.sub(" ", name).split()) or None


def _access(tags: dict[str, str], keys: Sequence[str]) -> bool | None:
    """True if the most specific key present explicitly allows, False if it denies, else None."""
    for key in keys:
        value = tags.get(key)
        if value is None:
            continue
        values = {v.strip() for v in value.split(";")}
        if values & _EXPLICIT:
            return True
        if values <= _DENIED:
            return False
        return None
    return None


def _walk_use(tags: dict[str, str], speeds: StreetSpeeds) -> _Use | None:
    """Pedestrians go both ways on any way they may use; None when they may not."""
    # An area's outline (a square, a parking lot) is not a way along which anyone walks.
    if tags.get("area") == "yes":
        return None
    access = _access(tags, _WALK_ACCESS_KEYS)
    if access is False or (tags.get("service") == "private" and access is not True):
        return None
    if _is_open_to(tags, _WALK_DEFAULT, _WALK_IF_ALLOWED, access):
        return _Use(0, speeds.walk_mps, speeds.walk_mps)
    return None


def _is_open_to(tags: dict[str, str], default: frozenset[str], if_allowed: frozenset[str], access: bool | None) -> bool:
    """Whether the way's class admits the mode, by default or by an explicit permission."""
    highway = tags["highway"]
    # A motorroad (German Kraftfahrstraße) is closed to walking and cycling like a motorway.
    if highway in default and tags.get("motorroad") != "yes":
        return True
    return (highway in if_allowed or highway in default) and access is True


def _bike_use(tags: dict[str, str], speeds: StreetSpeeds) -> _Use | None:
    """Where and which way a bicycle may go; where it must be pushed, at walking speed."""
    if tags.get("area") == "yes":
        return None
    highway = tags["highway"]
    dismount = tags.get("bicycle") == "dismount"
    access = True if dismount else _access(tags, _BIKE_ACCESS_KEYS)
    if access is False or (tags.get("service") == "private" and access is not True):
        return None
    if highway == "steps":
        # Steps are passable only with a ramp to push the bicycle on.
        if tags.get("ramp:bicycle") != "yes" and _access(tags, ("bicycle",)) is not True:
            return None
        dismount = True
    elif not _is_open_to(tags, _BIKE_DEFAULT, _BIKE_IF_ALLOWED, access):
        return None
    direction = _oneway(tags)
    if direction is None:
        return None
    if direction != 0 and _contraflow_cycling(tags):
        direction = 0
    bicycle_oneway = tags.get("oneway:bicycle")
    if bicycle_oneway in _ONEWAY_FORWARD:
        direction = 1
    elif bicycle_oneway in _ONEWAY_BACKWARD:
        direction = -1
    speed = speeds.walk_mps if dismount else speeds.bike_mps
    return _Use(direction, speed, speed)


def _contraflow_cycling(tags: dict[str, str]) -> bool:
    """Whether a one-way street is open to cycling against its direction."""
    if tags.get("oneway:bicycle") in _ONEWAY_BOTH:
        return True
    for side in ("cycleway", "cycleway:both", "cycleway:left", "cycleway:right"):
        if tags.get(side, "").startswith("opposite"):
            return True
        if tags.get(f"{side}:oneway") in {"no", "-1"}:
            return True
    return False


def _drive_use(tags: dict[str, str], speeds: StreetSpeeds) -> _Use | None:
    """Where and which way a car may go, at the tagged limit or the class default."""
    highway = tags["highway"]
    if tags.get("area") == "yes" or highway not in _DRIVE:
        return None
    if highway == "service" and tags.get("service") in _DRIVE_EXCLUDED_SERVICE:
        return None
    if _access(tags, _DRIVE_ACCESS_KEYS) is False:
        return None
    direction = _oneway(tags)
    if direction is None:
        return None
    default_kmh = speeds.drive_default_kmh.get(highway, speeds.drive_fallback_kmh)
    implicit_kmh = (
        _maxspeed_kmh(tags.get("maxspeed:type"))
        or _maxspeed_kmh(tags.get("source:maxspeed"))
        or _maxspeed_kmh(tags.get("zone:traffic"))
    )
    both_kmh = _maxspeed_kmh(tags.get("maxspeed")) or implicit_kmh or default_kmh
    forward_kmh = _maxspeed_kmh(tags.get("maxspeed:forward")) or both_kmh
    backward_kmh = _maxspeed_kmh(tags.get("maxspeed:backward")) or both_kmh
    return _Use(direction, forward_kmh / 3.6, backward_kmh / 3.6)


def _oneway(tags: dict[str, str]) -> int | None:
    """1 along the way only, -1 against it only, 0 both ways, None when it changes by the hour."""
    value = tags.get("oneway")
    if value in _ONEWAY_FORWARD:
        return 1
    if value in _ONEWAY_BACKWARD:
        return -1
    if value in _ONEWAY_BOTH:
        return 0
    if value == "reversible":
        return None
    # Implied by OSM convention when not tagged.
    if tags.get("junction") in {"roundabout", "circular"} or tags["highway"] == "motorway":
        return 1
    return 0


def _maxspeed_kmh(value: str | None) -> float | None:
    """A speed limit in km/h from a maxspeed-like tag; None when absent, "none" or unreadable."""
    if not value:
        return None
    limits = []
    for part in value.split(";"):
        part = part.strip()
        kmh: float | None = None
        if number := _NUMBER_RE.match(part):
            kmh = float(number[1]) * (_MPH_KMH if number[2] == "mph" else 1.0)
        elif part == "walk":
            kmh = _ZONE_KMH["walk"]
        elif zone := _ZONE_RE.match(part):
            kind, digits = zone[1], zone[2]
            # DE:zone30 and DE:zone:30 give a number; DE:urban and the like a national default.
            kmh = (float(digits) if kind == "zone" else None) if digits else _ZONE_KMH.get(kind)
        if kmh is not None and 0 < kmh <= _MAX_PLAUSIBLE_KMH:
            limits.append(max(kmh, _MIN_DRIVE_KMH))
    # Where several limits apply (by time or vehicle), plan with the lowest.
    return min(limits) if limits else None


def _largest_component(ways: list[_Way]) -> list[_Way]:
    """The ways of the largest connected part of the network (by node count)."""
    # osmnx finds the same component (retain_all=False) but copies the whole unsimplified
    # networkx graph to cut it out, which takes seconds; here it is a sparse-matrix pass.
    node_ids = np.fromiter((n for way in ways for n in way.node_ids), dtype=np.int64)
    way_lengths = np.fromiter((len(way.node_ids) for way in ways), dtype=np.int64, count=len(ways))
    unique_ids, node_index = np.unique(node_ids, return_inverse=True)
    # Consecutive nodes of a way are linked; the last node of a way is not linked to the next way.
    link = np.ones(len(node_ids), dtype=bool)
    link[np.cumsum(way_lengths) - 1] = False
    start = np.flatnonzero(link)
    adjacency = scipy.sparse.coo_matrix(
        (np.ones(len(start), dtype=np.int8), (node_index[start], node_index[start + 1])),
        shape=(len(unique_ids), len(unique_ids)),
    )
    _, component = scipy.sparse.csgraph.connected_components(adjacency, directed=False)
    largest = np.bincount(component).argmax()
    first_nodes = node_index[np.cumsum(way_lengths) - way_lengths]
    keep = component[first_nodes] == largest
    return [way for way, kept in zip(ways, keep.tolist(), strict=True) if kept]


class _Contracted(msgspec.Struct, frozen=True):
    """Ways reduced to the nodes that can become graph nodes, and what lies between those.

    `stretches[(way_number, a, b)]` is the length in metres from kept node a to the next kept
    node b of way number `way_number` (counted from 1), and the dropped nodes in between.
    """

    ways: list[_Way]
    stretches: dict[tuple[int, int, int], tuple[float, tuple[int, ...]]]


def _contract(ways: list[_Way], coords: dict[int, tuple[float, float]]) -> _Contracted:
    """Drop the nodes that osmnx's simplification would remove anyway, remembering them.

    A node that lies on one way only, once, between two different neighbours is a bend that
    simplification always merges away; osmnx spends most of its time on such nodes. Dropping
    them first yields the same simplified graph as long as no two stretches join the same pair
    of kept nodes (that would change the nodes' neighbour counts, which decide what osmnx
    keeps), so stretches that would do so keep all their nodes.
    """
    uses = collections.Counter(n for way in ways for n in way.node_ids)
    cuts_of_way = []
    pair_count: collections.Counter[tuple[int, int]] = collections.Counter()
    for way in ways:
        nodes = way.node_ids
        last = len(nodes) - 1
        # Kept: the ends, nodes shared with other ways (or met twice), and the tip of a spike
        # (A-B-A), which is a dead end.
        cuts = [0]
        cuts += [i for i in range(1, last) if uses[nodes[i]] > 1 or nodes[i - 1] == nodes[i + 1]]
        cuts.append(last)
        for p, q in itertools.pairwise(cuts):
            a, b = nodes[p], nodes[q]
            # A stretch back to its own start would become a self-loop: never contract it.
            pair_count[(min(a, b), max(a, b))] += 2 if a == b else 1
        cuts_of_way.append(cuts)

    distance_m = _cumulative_distance_m(ways, coords)
    contracted = []
    stretches = {}
    offset = 0
    for number, (way, cuts) in enumerate(zip(ways, cuts_of_way, strict=True), start=1):
        nodes = way.node_ids
        kept_at = [0]
        for p, q in itertools.pairwise(cuts):
            a, b = nodes[p], nodes[q]
            if pair_count[(min(a, b), max(a, b))] > 1:
                kept_at.extend(range(p + 1, q + 1))
            else:
                kept_at.append(q)
        for p, q in itertools.pairwise(kept_at):
            length_m = float(distance_m[offset + q] - distance_m[offset + p])
            stretches[(number, nodes[p], nodes[q])] = (length_m, tuple(nodes[p + 1 : q]))
        offset += len(nodes)
        kept = [nodes[i] for i in kept_at]
        contracted.append(_Way(kept, way.oneway, way.name, way.forward_mps, way.backward_mps))
    return _Contracted(contracted, stretches)


def _cumulative_distance_m(ways: list[_Way], coords: dict[int, tuple[float, float]]) -> np.ndarray:
    """Distance along the ways, all laid end to end; differences within one way are lengths."""
    points = np.array([coords[n] for way in ways for n in way.node_ids], dtype=np.float64)
    step_m = haversine_m(points[:-1, 0], points[:-1, 1], points[1:, 0], points[1:, 1])
    return np.concatenate(([0.0], np.cumsum(step_m)))


def _write_xml(xml: Path, ways: list[_Way], coords: dict[int, tuple[float, float]]) -> None:
    """Write ways, numbered from 1, and exactly the nodes they reference as OSM XML for osmnx."""
    node_ids = sorted({n for way in ways for n in way.node_ids})
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="maas">']
    for node_id in node_ids:
        lat, lon = coords[node_id]
        lines.append(f'<node id="{node_id}" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    # Ways get numbers of their own: one OSM way may become several pieces (_located_pieces).
    for number, way in enumerate(ways, start=1):
        lines.append(f'<way id="{number}">')
        lines.extend(f'<nd ref="{n}"/>' for n in way.node_ids)
        if way.name:
            lines.append(f'<tag k="name" v={quoteattr(way.name)}/>')
        if way.oneway:
            lines.append('<tag k="oneway" v="yes"/>')
        lines.append(f'<tag k="{_FORWARD_TAG}" v="{way.forward_mps!r}"/>')
        lines.append(f'<tag k="{_BACKWARD_TAG}" v="{way.backward_mps!r}"/>')
        lines.append("</way>")
    lines.append("</osm>\n")
    xml.write_text("\n".join(lines), encoding="utf-8")


@contextlib.contextmanager
def _osmnx_offline() -> Iterator[Any]:
    """osmnx with no cache, no log files and only the tags the XML carries; settings restored after.

    osmnx settings are module globals, so two threads must not load streets at the same time.
    """
    # Imported here: osmnx pulls in geopandas (about a second), needed only while loading.
    import osmnx

    settings = osmnx.settings
    wanted = {
        "use_cache": False,
        "cache_only_mode": False,
        "log_console": False,
        "log_file": False,
        "all_oneway": False,
        "useful_tags_node": [],
        "useful_tags_way": ["name", "oneway", _FORWARD_TAG, _BACKWARD_TAG],
    }
    saved = {key: getattr(settings, key) for key in wanted}
    for key, value in wanted.items():
        setattr(settings, key, value)
    try:
        yield osmnx
    finally:
        for key, value in saved.items():
            setattr(settings, key, value)


def _build_graph(
    path: Path, mode: str, xml: Path, network: _Contracted, coords: dict[int, tuple[float, float]]
) -> StreetGraph:
    """Turn one mode's XML into a simplified graph of its largest component, as arrays."""
    with _osmnx_offline() as osmnx:
        # The XML lists one-way ways in their direction, so only walking ignores `oneway`.
        graph = osmnx.graph_from_xml(xml, bidirectional=(mode == "walk"), simplify=False, retain_all=False)
        # Put the dropped nodes back as each edge's `points` (its start and the bends after it)
        # and the true length in place of the straight line. Travel times are summed per
        # stretch: one simplified edge may join ways with different limits.
        for u, v, data in graph.edges(data=True):
            if data["reversed"]:
                length_m, bends = network.stretches[(data["osmid"], v, u)]
                bends = bends[::-1]
                speed_mps = float(data[_BACKWARD_TAG])
            else:
                length_m, bends = network.stretches[(data["osmid"], u, v)]
                speed_mps = float(data[_FORWARD_TAG])
            data["length"] = length_m
            data["travel_time"] = length_m / speed_mps
            data["points"] = (u, *bends)
            if "name" in data:
                data["name"] = ((data["name"], length_m),)
        graph = osmnx.simplify_graph(
            graph,
            edge_attr_aggs={
                "length": sum,
                "travel_time": sum,
                "name": _concatenate,
                "points": _concatenate,
            },
        )
    if graph.number_of_edges() == 0:
        raise OsmError(f"{path}: the streets usable for {mode} form no network")
    return _to_csr(mode, graph, coords)


def _main_name(named_lengths: tuple[tuple[str, float], ...]) -> str:
    """The name that the longest part of an edge carries; on a tie the first along the edge."""
    total_m: dict[str, float] = collections.defaultdict(float)
    for name, length_m in named_lengths:
        total_m[name] += length_m
    return max(total_m, key=total_m.__getitem__)


def _concatenate(parts: list[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(itertools.chain.from_iterable(parts))


def _to_csr(mode: str, graph: Any, coords: dict[int, tuple[float, float]]) -> StreetGraph:
    """Flatten an osmnx graph into CSR arrays, keeping the fastest of parallel edges."""
    node_ids = np.array(sorted(graph.nodes), dtype=np.int64)
    index = {n: i for i, n in enumerate(node_ids.tolist())}
    node_coords = np.array([coords[n] for n in node_ids.tolist()], dtype=np.float64)

    m = graph.number_of_edges()
    source = np.empty(m, dtype=np.int64)
    target = np.empty(m, dtype=np.int64)
    length_m = np.empty(m, dtype=np.float64)
    time_s = np.empty(m, dtype=np.float64)
    name_idx = np.full(m, -1, dtype=np.int32)
    point_count = np.empty(m, dtype=np.int64)
    names: dict[str, int] = {}
    points: list[int] = []
    for e, (u, v, data) in enumerate(graph.edges(data=True)):
        source[e] = index[u]
        target[e] = index[v]
        length_m[e] = data["length"]
        time_s[e] = data["travel_time"]
        # Stretches without a name do not vote (see _build_graph).
        name = _main_name(data["name"]) if "name" in data else None
        if name:
            name_idx[e] = names.setdefault(name, len(names))
        points += data["points"]
        points.append(v)
        point_count[e] = len(data["points"]) + 1

    # Sort by source, then target, then fastest first; the first of each (source, target) stays.
    order = np.lexsort((length_m, time_s, target, source))
    first = np.ones(m, dtype=bool)
    by_source, by_target = source[order], target[order]
    first[1:] = (by_source[1:] != by_source[:-1]) | (by_target[1:] != by_target[:-1])
    order = order[first]

    # Gather each kept edge's run of points, in the new edge order.
    point_start = np.cumsum(point_count) - point_count
    counts = point_count[order]
    offsets = np.concatenate(([0], np.cumsum(counts)))
    picked = np.repeat(point_start[order] - offsets[:-1], counts) + np.arange(offsets[-1])
    point_coords = np.array([coords[n] for n in points], dtype=np.float64)[picked]

    indptr = np.zeros(len(node_ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(source[order], minlength=len(node_ids)), out=indptr[1:])
    return StreetGraph(
        mode=mode,
        node_osm_id=node_ids,
        node_lat=np.ascontiguousarray(node_coords[:, 0]),
        node_lon=np.ascontiguousarray(node_coords[:, 1]),
        indptr=indptr.astype(np.int32),
        indices=target[order].astype(np.int32),
        length_m=length_m[order].astype(np.float32),
        travel_time_s=time_s[order].astype(np.float32),
        name_idx=name_idx[order],
        names=list(names),
        geometry_offsets=offsets.astype(np.int32),
        geometry_lat=np.ascontiguousarray(point_coords[:, 0]),
        geometry_lon=np.ascontiguousarray(point_coords[:, 1]),
    )
