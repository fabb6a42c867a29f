"""Build a multimodal network directory from GTFS feeds, GBFS systems and an OSM extract."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import msgspec
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from feeds.gbfs import SharingSystem, load_gbfs
from feeds.gtfs import GtfsFeed, read_gtfs_feeds
from feeds.osm import StreetGraph, StreetSpeeds, load_streets
from routing.build.snap import EdgeSnapper
from routing.build.timetable import TimetableParts, build_timetable, string_array
from routing.build.transfers import (
    Footpaths,
    apply_transfer_rules,
    station_footpaths,
    straight_line_footpaths,
    street_footpaths,
)
from routing.model import (
    FORMAT_VERSION,
    BuildParams,
    FeedInfo,
    Manifest,
    Network,
    NetworkCounts,
    SharingArrays,
    SourceFile,
    StopSnap,
    StreetArrays,
    Timetable,
)
from routing.network import read_manifest, save_manifest, save_network


class BuildError(Exception):
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
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console or Console(stderr=True), disable=console is None,
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


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file():
                digest.update(child.relative_to(path).as_posix().encode())
                digest.update(child.read_bytes())
        return digest.hexdigest()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def street_arrays(graph: StreetGraph) -> StreetArrays:
    return StreetArrays(
        mode=graph.mode, node_osm_id=graph.node_osm_id, node_lat=graph.node_lat, node_lon=graph.node_lon,
        indptr=graph.indptr, indices=graph.indices, length_m=graph.length_m, travel_time_s=graph.travel_time_s,
        name_idx=graph.name_idx, names=string_array(graph.names), geometry_offsets=graph.geometry_offsets,
        geometry_lat=graph.geometry_lat, geometry_lon=graph.geometry_lon,
    )


def _snap(points_lat: np.ndarray, points_lon: np.ndarray, snapper: EdgeSnapper, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    node, dist = snapper.snap(points_lat, points_lon, radius_m)
    return node, dist.astype(np.float32)


def _sharing_arrays(systems: Sequence[SharingSystem], snappers: dict[str, EdgeSnapper], radius_m: float) -> SharingArrays:
    stations = [(k, s) for k, sys in enumerate(systems) for s in sys.stations]
    vehicles = [(k, v) for k, sys in enumerate(systems) for v in sys.vehicles if v.lat is not None and v.lon is not None]
    form_factor = {(k, t.vehicle_type_id): t.form_factor for k, sys in enumerate(systems) for t in sys.vehicle_types}

    def opt(value: int | None) -> int:
        return -1 if value is None else int(value)

    st_lat = np.array([s.lat for _, s in stations], dtype=np.float64)
    st_lon = np.array([s.lon for _, s in stations], dtype=np.float64)
    ve_lat = np.array([v.lat for _, v in vehicles], dtype=np.float64)
    ve_lon = np.array([v.lon for _, v in vehicles], dtype=np.float64)
    nodes = {}
    for mode in ("walk", "bike"):
        for kind, lat, lon in (("station", st_lat, st_lon), ("vehicle", ve_lat, ve_lon)):
            if mode in snappers:
                node, dist = _snap(lat, lon, snappers[mode], radius_m)
            else:
                node, dist = np.full(len(lat), -1, dtype=np.int32), np.full(len(lat), np.inf, dtype=np.float32)
            nodes[f"{kind}_{mode}_node"], nodes[f"{kind}_{mode}_m"] = node, dist
    return SharingArrays(
        system_id=string_array([s.system_id for s in systems]),
        system_name=string_array([s.name for s in systems]),
        system_form_factors=string_array([",".join(sorted({t.form_factor for t in s.vehicle_types})) for s in systems]),
        station_system=np.array([k for k, _ in stations], dtype=np.int16),
        station_id=string_array([s.station_id for _, s in stations]),
        station_name=string_array([s.name for _, s in stations]),
        station_lat=st_lat, station_lon=st_lon,
        station_capacity=np.array([opt(s.capacity) for _, s in stations], dtype=np.int32),
        station_vehicles=np.array([opt(s.vehicles_available) for _, s in stations], dtype=np.int32),
        station_docks=np.array([opt(s.docks_available) for _, s in stations], dtype=np.int32),
        station_renting=np.array([s.is_renting for _, s in stations], dtype=np.bool_),
        station_returning=np.array([s.is_returning for _, s in stations], dtype=np.bool_),
        vehicle_system=np.array([k for k, _ in vehicles], dtype=np.int16),
        vehicle_id=string_array([v.vehicle_id for _, v in vehicles]),
        vehicle_form_factor=string_array([form_factor.get((k, v.vehicle_type_id), "") for k, v in vehicles]),
        vehicle_available=np.array([not (v.is_reserved or v.is_disabled) for _, v in vehicles], dtype=np.bool_),
        vehicle_lat=ve_lat, vehicle_lon=ve_lon,
        **nodes,
    )


def build_network(
    inputs: BuildInputs, out: str | Path, params: BuildParams = BuildParams(), console: Console | None = None,
) -> Manifest:
    """Read every input, build the arrays and write the network to `out` (replaced atomically)."""
    if not inputs.gtfs and inputs.osm is None:
        raise BuildError("nothing to build: give at least one GTFS feed or an OSM extract")
    for path in [*inputs.gtfs, *inputs.gbfs, *([inputs.osm] if inputs.osm else [])]:
        if not _is_url(path) and not Path(path).exists():
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
                node, dist = _snap(a["stop_lat"], a["stop_lon"], snappers[mode], params.snap_radius_m)
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
            sharing = _sharing_arrays(systems, snappers, params.snap_radius_m)
        timetable = Timetable(**a)
        manifest = _manifest(inputs, params, feeds, systems, timetable, streets, snaps, sharing, parts)
        network = Network(manifest=manifest, timetable=timetable, streets=streets, snaps=snaps, sharing=sharing)
        with phases.phase("save", 1):
            _save_atomically(network, Path(out), phases.seconds)
    return read_manifest(Path(out))


def _save_atomically(network: Network, out: Path, seconds: dict[str, float]) -> None:
    """Write into a sibling temporary directory, then swap it in: a failed build leaves `out` as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        start = time.perf_counter()
        save_network(network, tmp)
        timed = dict(seconds)
        timed["save"] = time.perf_counter() - start
        manifest = msgspec.structs.replace(read_manifest(tmp), phase_seconds=timed)
        save_manifest(manifest, tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _manifest(
    inputs: BuildInputs, params: BuildParams, feeds: Sequence[GtfsFeed], systems: Sequence[SharingSystem],
    timetable: Timetable, streets: dict[str, StreetArrays], snaps: dict[str, StopSnap],
    sharing: SharingArrays, parts: TimetableParts,
) -> Manifest:
    feed_infos = [
        FeedInfo(
            id=f.feed_id, source=f.source, sha256=f.sha256, timezone=f.timezone,
            stops=f.counts.stops, routes=f.counts.routes, trips=f.counts.trips, stop_times=f.counts.stop_times,
            service_start=f.counts.service_start, service_end=f.counts.service_end,
            errors=len(f.report.errors), warnings=len(f.report.warnings),
        )
        for f in feeds
    ]
    sources = [SourceFile(kind="gtfs", path=f.source, sha256=f.sha256, id=f.feed_id) for f in feeds]
    # A GBFS URL is live data: its content at build time is not kept, so there is no hash to record.
    sources += [
        SourceFile(kind="gbfs", path=str(p), sha256="" if _is_url(p) else _sha256_file(Path(p))) for p in inputs.gbfs
    ]
    if inputs.osm:
        sources.append(SourceFile(kind="osm", path=str(inputs.osm), sha256=_sha256_file(Path(inputs.osm))))
    walk = snaps.get("walk")
    snapped = int((walk.node >= 0).sum()) if walk is not None else 0
    counts = NetworkCounts(
        stops=sum(f.counts.stops for f in feeds),
        routes=sum(f.counts.routes for f in feeds),
        patterns=timetable.n_patterns,
        trips=sum(f.counts.trips for f in feeds),
        stop_times=sum(f.counts.stop_times for f in feeds),
        streets={m: {"nodes": g.n_nodes, "edges": g.n_edges} for m, g in streets.items()},
        stops_snapped=snapped,
        stops_unsnapped=timetable.n_stops - snapped,
        transfers=int(timetable.transfer_to.shape[0]),
        sharing={
            "systems": int(sharing.system_id.shape[0]),
            "stations": int(sharing.station_id.shape[0]),
            "vehicles": int(sum(len(s.vehicles) for s in systems)),
        },
    )
    timezone = feeds[0].timezone if feeds else "UTC"
    first_date, n_days = parts.first_date, parts.n_days
    return Manifest(
        format_version=FORMAT_VERSION, created=dt.datetime.now(dt.UTC).replace(microsecond=0),
        timezone=timezone, first_date=first_date, n_days=n_days, params=params, sources=sources,
        feeds=feed_infos, counts=counts, arrays={}, phase_seconds={},
    )
