"""Build a multimodal network directory from GTFS feeds, GBFS systems and an OSM extract.

Used only to build: nothing on the query path imports this package (tests/test_architecture.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from feeds.gbfs import SharingSystem, load_gbfs
from feeds.gtfs import GtfsFeed, read_gtfs_feeds
from feeds.osm import StreetGraph, StreetSpeeds, load_streets
from routing.builder.footpaths import (
    Footpaths,
    apply_transfer_rules,
    station_footpaths,
    straight_line_footpaths,
    street_footpaths,
)
from routing.builder.manifest import build_manifest, is_url, save_atomically
from routing.builder.sharing import sharing_arrays, snap_points
from routing.builder.timetable import build_timetable, string_array
from routing.errors import RoutingError
from routing.model import BuildParams, Manifest, Network, StopSnap, StreetArrays, Timetable
from routing.network import read_manifest
from routing.spatial import EdgeSnapper

__all__ = ["BuildError", "BuildInputs", "build_network", "street_arrays"]


class BuildError(RoutingError):
    """A network that cannot be built from the given inputs; the message names the input."""


class BuildInputs(msgspec.Struct, frozen=True, kw_only=True):
    """What to build from: feed paths, with optional explicit GTFS feed ids (one per feed or none)."""

    gtfs: list[str] = msgspec.field(default_factory=list)
    gtfs_ids: list[str | None] | None = None
    gbfs: list[str] = msgspec.field(default_factory=list)
    osm: str | None = None


class _Phases:
    """Times each build phase and shows it as a progress bar."""

    def __init__(self, console: Console | None) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            disable=console is None,
            transient=False,
        )

    @contextlib.contextmanager
    def phase(self, name: str, total: int = 1) -> Iterator[Callable[[int], None]]:
        task = self.progress.add_task(name, total=max(total, 1))
        start = time.perf_counter()

        def tick(n: int = 1) -> None:
            self.progress.advance(task, n)

        yield tick
        self.seconds[name] = time.perf_counter() - start
        self.progress.update(task, completed=max(total, 1))


def street_arrays(graph: StreetGraph) -> StreetArrays:
    return StreetArrays(
        mode=graph.mode,
        node_osm_id=graph.node_osm_id,
        node_lat=graph.node_lat,
        node_lon=graph.node_lon,
        indptr=graph.indptr,
        indices=graph.indices,
        length_m=graph.length_m,
        travel_time_s=graph.travel_time_s,
        name_idx=graph.name_idx,
        names=string_array(graph.names),
        geometry_offsets=graph.geometry_offsets,
        geometry_lat=graph.geometry_lat,
        geometry_lon=graph.geometry_lon,
    )


def build_network(
    inputs: BuildInputs,
    out: str | Path,
    params: BuildParams = BuildParams(),
    console: Console | None = None,
) -> Manifest:
    """Read every input, build the arrays and write the network to `out` (replaced atomically)."""
    if not inputs.gtfs and inputs.osm is None:
        raise BuildError("nothing to build: give at least one GTFS feed or an OSM extract")
    for path in [*inputs.gtfs, *inputs.gbfs, *([inputs.osm] if inputs.osm else [])]:
        if not is_url(path) and not Path(path).exists():
            raise BuildError(f"{path}: no such file or directory")
    phases = _Phases(console)
    with phases.progress:
        with phases.phase("read GTFS", len(inputs.gtfs)):
            feeds: list[GtfsFeed] = read_gtfs_feeds(inputs.gtfs, inputs.gtfs_ids)
        with phases.phase("read GBFS", len(inputs.gbfs)) as tick:
            systems: list[SharingSystem] = []
            for source in inputs.gbfs:
                systems.extend(load_gbfs(source))
                tick(1)
        streets: dict[str, StreetArrays] = {}
        if inputs.osm:
            speeds = StreetSpeeds(walk_mps=params.walk_speed_mps, bike_mps=params.bike_speed_mps)
            with phases.phase("read OSM streets", 3):
                graphs = load_streets(inputs.osm, speeds=speeds)
                streets = {mode: street_arrays(g) for mode, g in graphs.items()}
        with phases.phase("timetable", 1) as tick:
            parts = build_timetable(feeds)
        a = parts.arrays
        n_stops = len(a["stop_id"])
        snaps: dict[str, StopSnap] = {}
        snappers: dict[str, EdgeSnapper] = {}
        with phases.phase("snap stops", len(streets)) as tick:
            for mode, graph in streets.items():
                snappers[mode] = EdgeSnapper(graph)
                node, dist = snap_points(a["stop_lat"], a["stop_lon"], snappers[mode], params.snap_radius_m)
                snaps[mode] = StopSnap(mode=mode, node=node, distance_m=dist)
                tick(1)
        paths = Footpaths(n_stops)
        walk_snapped = int((snaps["walk"].node >= 0).sum()) if "walk" in snaps else 0
        with phases.phase("footpaths", walk_snapped or 1) as tick:
            if "walk" in streets:
                street_footpaths(paths, streets["walk"], snaps["walk"], params.max_transfer_walk_m, tick)
            else:
                straight_line_footpaths(
                    paths, a["stop_lat"], a["stop_lon"], params.max_transfer_walk_m, params.straight_line_detour
                )
            station_footpaths(paths, a["stop_parent"], a["stop_lat"], a["stop_lon"], params.straight_line_detour)
            apply_transfer_rules(paths, parts.transfer_rules, parts.stop_index, params.default_min_transfer_s)
            a.update(paths.arrays(params.walk_speed_mps))
            a["stop_min_transfer_s"] = paths.stop_min_transfer_s
        with phases.phase("sharing", 1):
            sharing = sharing_arrays(systems, snappers, params.snap_radius_m)
        timetable = Timetable(**a)
        manifest = build_manifest(inputs, params, feeds, systems, timetable, streets, snaps, sharing, parts)
        network = Network(manifest=manifest, timetable=timetable, streets=streets, snaps=snaps, sharing=sharing)
        with phases.phase("save", 1):
            save_atomically(network, Path(out), phases.seconds)
    return read_manifest(Path(out))
