"""`maas demo`: the bundled Herrenberg region, built once into a cache folder and summarised."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from routing.build.network import BuildInputs, build_network
from routing.model import Manifest
from routing.network import NetworkError, read_manifest

DEMO_FEEDS = (
    "vvs-herrenberg-2021-subset.gtfs.zip",
    "vvs-s1-only.gtfs.zip",
    "vvs-bus-751-only.gtfs.zip",
    "vvs-bus-764-only.gtfs.zip",
    "vvs-only-bronntor-bus-stop.gtfs.zip",
)
DEMO_GBFS = ("stadtrad", "alf", "bananologen", "gueltstein-mobil", "car-sharing")


def demo_region() -> Path:
    """The folder of the bundled sample region (OSM extract, VVS feeds, GBFS systems)."""
    return Path(str(resources.files("maas") / "data" / "region-herrenberg"))


def demo_inputs() -> BuildInputs:
    region = demo_region()
    return BuildInputs(
        osm=str(region / "herrenberg-and-around.osm.pbf"),
        gtfs=[str(region / "gtfs" / name) for name in DEMO_FEEDS],
        gbfs=[str(region / "gbfs" / name) for name in DEMO_GBFS],
    )


def default_demo_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "maas" / "demo-network"


def _up_to_date(out: Path, inputs: BuildInputs) -> Manifest | None:
    try:
        manifest = read_manifest(out)
    except NetworkError:
        return None
    recorded = sorted(s.path for s in manifest.sources)
    wanted = sorted([*inputs.gtfs, *inputs.gbfs, *([inputs.osm] if inputs.osm else [])])
    return manifest if recorded == wanted else None


def run_demo(out: Path | None, rebuild: bool, console: Console) -> Manifest:
    """Build (unless an up-to-date one exists) and summarise the demo network."""
    out = out or default_demo_dir()
    inputs = demo_inputs()
    manifest = None if rebuild else _up_to_date(out, inputs)
    if manifest is None:
        console.print(f"building the Herrenberg demo network into {out}")
        manifest = build_network(inputs, out, console=console)
    else:
        console.print(f"using the demo network in {out} (--rebuild builds it again)")
    c = manifest.counts
    table = Table(title="Herrenberg demo region (VVS timetables, stadtnavi GBFS, OpenStreetMap)")
    table.add_column("what")
    table.add_column("count", justify="right")
    for feed in manifest.feeds:
        table.add_row(f"feed {feed.id} ({feed.service_start} .. {feed.service_end})",
                      f"{feed.trips} trips / {feed.stop_times} stop times")
    table.add_row("route patterns", str(c.patterns))
    table.add_row("stops snapped to streets", f"{c.stops_snapped} of {c.stops}")
    table.add_row("footpath transfers", str(c.transfers))
    for mode, g in c.streets.items():
        table.add_row(f"{mode} streets", f"{g['nodes']} nodes / {g['edges']} edges")
    table.add_row("sharing", f"{c.sharing['systems']} systems, {c.sharing['stations']} stations")
    Console().print(table)
    console.print(f"inspect it with: maas network info {out}")
    return manifest
