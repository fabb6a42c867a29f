"""`maas plan`: journeys on a built network, printed or as JSON."""

from __future__ import annotations

import click
import msgspec
from rich.console import Console

from maas.cli.common import fail, json_encoder, parse_time
from routing.network import NetworkError


@click.command()
@click.argument("directory", type=click.Path())
@click.option("--from", "origin", required=True, help="lat,lon or stop:<feed>:<stop_id>.")
@click.option("--to", "destination", required=True, help="lat,lon or stop:<feed>:<stop_id>.")
@click.option("--depart", default=None, help="ISO 8601 departure time (local to the network without an offset).")
@click.option(
    "--arrive-by",
    "arrive_by",
    default=None,
    help="ISO 8601 arrival deadline instead of --depart: leave as late as possible, arrive by then.",
)
@click.option(
    "--window-min",
    type=int,
    default=None,
    help="With --depart: every useful journey leaving within this many minutes (a range query).",
)
@click.option(
    "--max-walk-m",
    type=float,
    default=1000.0,
    show_default=True,
    help="Longest walk to, from and between stops; 0 gives the pure timetable answer.",
)
@click.option(
    "--min-transfer-s",
    type=int,
    default=None,
    help="Minimum change time at a stop [default: 60, or 0 with --max-walk-m 0].",
)
@click.option("--max-transfers", type=int, default=6, show_default=True)
@click.option("--wheelchair", is_flag=True, help="Only wheelchair-accessible trips and stops (and no bike share).")
@click.option(
    "--no-bike-share",
    "no_bike_share",
    is_flag=True,
    help="No rentals from bike-share stations (offered by default when the network has GBFS bikes).",
)
@click.option(
    "--on-demand",
    "on_demand",
    type=click.Path(),
    default=None,
    help="On-demand service definition (TOML); its rides may start or end a journey.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable itineraries.")
def plan(
    directory: str,
    origin: str,
    destination: str,
    depart: str | None,
    arrive_by: str | None,
    window_min: int | None,
    max_walk_m: float,
    min_transfer_s: int | None,
    max_transfers: int,
    wheelchair: bool,
    no_bike_share: bool,
    on_demand: str | None,
    as_json: bool,
) -> None:
    """Plan journeys on a built network: walking to, between and from stops, transit, bike share, on-demand rides."""
    from routing.network import load_network
    from routing.ondemand import DriveTimeEstimator, ServiceError, load_service
    from routing.plan import Endpoint, PlanError, PlanRequest, Router

    if (depart is None) == (arrive_by is None):
        fail("give exactly one of --depart and --arrive-by")
    if window_min is not None and (window_min <= 0 or arrive_by):
        fail("--window-min must be positive and goes with --depart")
    try:
        network_ = load_network(directory)
        rides = DriveTimeEstimator(network_, load_service(on_demand)) if on_demand else None
        request = PlanRequest(
            origin=Endpoint.parse(origin),
            destination=Endpoint.parse(destination),
            depart=parse_time(depart or arrive_by or "", network_.manifest.timezone),
            max_walk_m=max_walk_m,
            min_transfer_s=min_transfer_s,
            max_transfers=max_transfers,
            wheelchair=wheelchair,
            bike_share=not no_bike_share,
        )
        router = Router(network_, rides)
        if arrive_by:
            result = router.plan_arriving_by(request, request.depart)
        elif window_min is not None:
            result = router.plan_range(request, window_min * 60)
        else:
            result = router.plan(request)
    except (NetworkError, PlanError, ServiceError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(msgspec.json.format(json_encoder.encode(result)).decode())
        return
    console = Console(soft_wrap=True)
    if not result.itineraries:
        console.print("no journey found (is the date inside the feeds' service periods? see `maas network info`)")
    for n, it in enumerate(result.itineraries, 1):
        console.print(
            f"[bold]{n}. {it.departure:%H:%M} -> {it.arrival:%H:%M}[/], {it.transfers} transfers,"
            f" walk {it.walk_m:.0f} m"
        )
        for leg in it.legs:
            what = {
                "transit": f"{leg.route_name or leg.route}",
                "walk": f"walk {leg.distance_m:.0f} m",
                "bike_share": f"bike share ({leg.system}) {leg.distance_m:.0f} m",
                "on_demand": "on-demand ride" + (" (times estimated: no fleet was asked)" if leg.estimated else ""),
            }[leg.mode]
            console.print(f"   {leg.departure:%H:%M} {leg.from_.name} -> {leg.arrival:%H:%M} {leg.to.name}: {what}")
