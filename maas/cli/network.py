"""`maas network build` and `maas network info`: build a network directory from feeds, summarise one."""

from __future__ import annotations

from pathlib import Path

import click
import msgspec
from rich.console import Console
from rich.table import Table

from feeds.model import FeedError
from maas.cli.common import err_console, fail, json_encoder
from routing.builder import BuildError, BuildInputs, build_network
from routing.model import BuildParams, Manifest
from routing.network import NetworkError, read_manifest


@click.group()
def network() -> None:
    """Build and inspect multimodal networks (streets, timetables, sharing)."""


def _split_feed_arg(value: str) -> tuple[str, str | None]:
    """`ID=path` gives a feed an explicit id; a plain path takes its file name as the id."""
    if "=" in value and not Path(value).exists():
        feed_id, _, path = value.partition("=")
        return path, feed_id
    return value, None


@network.command("build")
@click.option("--osm", type=click.Path(), help="OpenStreetMap extract (.osm.pbf or .osm XML).")
@click.option(
    "--gtfs",
    "gtfs",
    multiple=True,
    metavar="[ID=]PATH",
    help="GTFS feed (zip or directory); repeat for several feeds. ID= sets the feed id.",
)
@click.option("--gbfs", "gbfs", multiple=True, metavar="DIR|URL", help="GBFS system (directory or URL); repeatable.")
@click.option("--out", required=True, type=click.Path(), help="Network directory to write (replaced atomically).")
@click.option(
    "--snap-radius-m",
    type=float,
    default=BuildParams().snap_radius_m,
    show_default=True,
    help="Stops farther than this from any street are reported as unsnapped.",
)
@click.option(
    "--max-transfer-walk-m",
    type=float,
    default=BuildParams().max_transfer_walk_m,
    show_default=True,
    help="Longest walk between two stops offered as a transfer.",
)
@click.option("--walk-speed-mps", type=float, default=BuildParams().walk_speed_mps, show_default=True)
@click.option("--bike-speed-mps", type=float, default=BuildParams().bike_speed_mps, show_default=True)
@click.option(
    "--min-transfer-s",
    type=int,
    default=BuildParams().default_min_transfer_s,
    show_default=True,
    help="Change time at the same stop unless transfers.txt says otherwise.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def network_build(
    osm: str | None,
    gtfs: tuple[str, ...],
    gbfs: tuple[str, ...],
    out: str,
    snap_radius_m: float,
    max_transfer_walk_m: float,
    walk_speed_mps: float,
    bike_speed_mps: float,
    min_transfer_s: int,
    quiet: bool,
) -> None:
    """Build a network directory from GTFS feeds, GBFS systems and an OSM extract."""
    for name, value in (
        ("--snap-radius-m", snap_radius_m),
        ("--max-transfer-walk-m", max_transfer_walk_m),
        ("--walk-speed-mps", walk_speed_mps),
        ("--bike-speed-mps", bike_speed_mps),
    ):
        if not value > 0:
            fail(f"{name} must be positive, got {value}")
    if min_transfer_s < 0:
        fail(f"--min-transfer-s must not be negative, got {min_transfer_s}")
    split = [_split_feed_arg(v) for v in gtfs]
    inputs = BuildInputs(
        gtfs=[p for p, _ in split],
        gtfs_ids=[i for _, i in split],
        gbfs=list(gbfs),
        osm=osm,
    )
    params = BuildParams(
        walk_speed_mps=walk_speed_mps,
        bike_speed_mps=bike_speed_mps,
        snap_radius_m=snap_radius_m,
        max_transfer_walk_m=max_transfer_walk_m,
        default_min_transfer_s=min_transfer_s,
    )
    try:
        manifest = build_network(inputs, out, params, console=None if quiet else err_console)
    except (BuildError, FeedError, NetworkError) as exc:
        fail(str(exc))
    _print_summary(manifest, out)


def _print_summary(manifest: Manifest, out: str | Path) -> None:
    c = manifest.counts
    err_console.print(
        f"[green]built[/] {out}: {c.stops} stops ({c.stops_snapped} snapped, {c.stops_unsnapped} not),"
        f" {c.patterns} patterns, {c.trips} trips, {c.stop_times} stop times, {c.transfers} transfers,"
        f" sharing {c.sharing['systems']} systems / {c.sharing['stations']} stations",
        highlight=False,
    )
    for feed in manifest.feeds:
        if feed.errors or feed.warnings:
            err_console.print(
                f"  feed {feed.id}: {feed.errors} errors, {feed.warnings} warnings"
                f" (see `maas feeds validate {feed.source}`)",
                highlight=False,
            )


def network_info_dict(manifest: Manifest) -> dict[str, object]:
    """The stable JSON shape of `maas network info --json` (other tools read these keys)."""
    c = manifest.counts
    return {
        "feeds": [
            {
                "id": f.id,
                "source": f.source,
                "stops": f.stops,
                "routes": f.routes,
                "trips": f.trips,
                "stop_times": f.stop_times,
                "service_start": f.service_start.isoformat() if f.service_start else None,
                "service_end": f.service_end.isoformat() if f.service_end else None,
            }
            for f in manifest.feeds
        ],
        "stops": c.stops,
        "routes": c.routes,
        "patterns": c.patterns,
        "trips": c.trips,
        "stop_times": c.stop_times,
        "streets": c.streets,
        "stops_snapped": c.stops_snapped,
        "stops_unsnapped": c.stops_unsnapped,
        "transfers": c.transfers,
        "sharing": c.sharing,
    }


@network.command("info")
@click.argument("directory", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def network_info(directory: str, as_json: bool) -> None:
    """Summarise a built network: feeds, counts, street graphs, snapping, sharing."""
    try:
        manifest = read_manifest(directory)
    except NetworkError as exc:
        fail(str(exc))
    info = network_info_dict(manifest)
    if as_json:
        click.echo(msgspec.json.format(json_encoder.encode(info)).decode())
        return
    console = Console()
    table = Table(title=f"network {directory} (built {manifest.created:%Y-%m-%d %H:%M} UTC, tz {manifest.timezone})")
    for col in ("feed", "stops", "routes", "trips", "stop_times", "service"):
        table.add_column(col, justify="right" if col not in ("feed", "service") else "left")
    for f in manifest.feeds:
        table.add_row(
            f.id, str(f.stops), str(f.routes), str(f.trips), str(f.stop_times), f"{f.service_start} .. {f.service_end}"
        )
    console.print(table)
    c = manifest.counts
    console.print(
        f"patterns {c.patterns}, transfers {c.transfers}, stops snapped {c.stops_snapped},"
        f" unsnapped {c.stops_unsnapped}"
    )
    for mode, g in c.streets.items():
        console.print(f"streets {mode}: {g['nodes']} nodes, {g['edges']} edges")
    console.print(f"sharing: {c.sharing}")
