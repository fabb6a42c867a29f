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
    _sample_plan(out, console)
    return manifest


def _sample_plan(out: Path, console: Console) -> None:
    """A journey a rural rider makes: from Nebringen (no scheduled bus) by Rufbus and S-Bahn to Ehningen."""
    import datetime as dt
    import zoneinfo

    from routing.network import load_network
    from routing.ondemand import DriveTimeEstimator, load_service
    from routing.router import Endpoint, PlanRequest, Router

    network = load_network(out)
    service = demo_region() / "on-demand.toml"
    router = Router(network, DriveTimeEstimator(network, load_service(service)))
    depart = dt.datetime(2020, 10, 6, 7, 30, tzinfo=zoneinfo.ZoneInfo(network.manifest.timezone))
    plan = router.plan(PlanRequest(
        origin=Endpoint(lat=48.5627, lon=8.8481), destination=Endpoint(lat=48.6582, lon=8.9408), depart=depart,
    ))
    console.print("sample journey, Nebringen -> Ehningen on 2020-10-06 from 07:30:")
    for it in plan.itineraries[:3]:
        steps = ", ".join(
            f"{leg.departure:%H:%M} {leg.route_name or leg.mode.replace('_', '-')} to {leg.to.name}" for leg in it.legs
        )
        console.print(f"  {it.departure:%H:%M} -> {it.arrival:%H:%M}: {steps}", highlight=False)
    console.print(
        f"plan your own: maas plan {out} --from 48.5627,8.8481 --to 48.6582,8.9408"
        f" --depart 2020-10-06T07:30 --on-demand {service}", highlight=False,
    )
