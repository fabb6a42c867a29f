"""The manifest of a built network (sources with SHA-256, counts) and its atomic save."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from feeds.gbfs import SharingSystem
from feeds.gtfs import GtfsFeed
from routing.builder.timetable import TimetableParts
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

if TYPE_CHECKING:  # the builder's __init__ imports this module
    from routing.builder import BuildInputs


def is_url(source: str) -> bool:
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


def save_atomically(network: Network, out: Path, seconds: dict[str, float]) -> None:
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


def build_manifest(
    inputs: BuildInputs,
    params: BuildParams,
    feeds: Sequence[GtfsFeed],
    systems: Sequence[SharingSystem],
    timetable: Timetable,
    streets: dict[str, StreetArrays],
    snaps: dict[str, StopSnap],
    sharing: SharingArrays,
    parts: TimetableParts,
) -> Manifest:
    feed_infos = [
        FeedInfo(
            id=f.feed_id,
            source=f.source,
            sha256=f.sha256,
            timezone=f.timezone,
            stops=f.counts.stops,
            routes=f.counts.routes,
            trips=f.counts.trips,
            stop_times=f.counts.stop_times,
            service_start=f.counts.service_start,
            service_end=f.counts.service_end,
            errors=len(f.report.errors),
            warnings=len(f.report.warnings),
        )
        for f in feeds
    ]
    sources = [SourceFile(kind="gtfs", path=f.source, sha256=f.sha256, id=f.feed_id) for f in feeds]
    # A GBFS URL is live data: its content at build time is not kept, so there is no hash to record.
    sources += [
        SourceFile(kind="gbfs", path=str(p), sha256="" if is_url(p) else _sha256_file(Path(p))) for p in inputs.gbfs
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
        format_version=FORMAT_VERSION,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0),
        timezone=timezone,
        first_date=first_date,
        n_days=n_days,
        params=params,
        sources=sources,
        feeds=feed_infos,
        counts=counts,
        arrays={},
        phase_seconds={},
    )
