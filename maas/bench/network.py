"""`maas bench network`: build seconds per phase and network load time, against re-reading the GTFS sources."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from feeds.gtfs import read_gtfs
from routing.builder import BuildInputs, build_network
from routing.network import load_network, read_manifest


def _inputs_of(directory: Path) -> BuildInputs:
    manifest = read_manifest(directory)
    gtfs = [s for s in manifest.sources if s.kind == "gtfs"]
    osm = [s.path for s in manifest.sources if s.kind == "osm"]
    return BuildInputs(
        gtfs=[s.path for s in gtfs],
        gtfs_ids=[s.id for s in gtfs],
        gbfs=[s.path for s in manifest.sources if s.kind == "gbfs"],
        osm=osm[0] if osm else None,
    )


def bench_network(directory: Path, loads: int, rebuild: bool, console: Console) -> None:
    """Print build seconds per phase and network load time against re-reading the GTFS sources."""
    manifest = read_manifest(directory)
    phases = manifest.phase_seconds
    title = "recorded build"
    if rebuild:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            rebuilt = build_network(_inputs_of(directory), Path(tmp) / "net", manifest.params, console=None)
            total = time.perf_counter() - start
        phases = dict(rebuilt.phase_seconds)
        phases["total (wall)"] = total
        title = "build (measured now)"
    table = Table(title=f"{title}: {directory}")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for name, seconds in phases.items():
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)

    times = []
    for _ in range(max(loads, 1)):
        start = time.perf_counter()
        net = load_network(directory)
        # Touch every timetable array so the measurement includes reading them, not only mapping.
        _ = sum(int(getattr(net.timetable, f)[-1:].size) for f in ("arrival", "departure", "pattern_stops"))
        times.append(time.perf_counter() - start)
    gtfs_sources = [s for s in manifest.sources if s.kind == "gtfs"]
    start = time.perf_counter()
    for source in gtfs_sources:
        read_gtfs(source.path, source.id)
    reference = time.perf_counter() - start
    load = Table(title="load")
    for col in ("what", "median s", "p95 s", "vs reference"):
        load.add_column(col, justify="left" if col == "what" else "right")
    times.sort()
    median = statistics.median(times)
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    load.add_row(f"load_network ({len(times)} runs)", f"{median:.4f}", f"{p95:.4f}", f"{median / reference:.4f}x")
    load.add_row(f"reference: re-read {len(gtfs_sources)} GTFS feeds", f"{reference:.4f}", "", "1x")
    console.print(load)
